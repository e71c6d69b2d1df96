"""LocalCloud: the operations of the local Alibaba Cloud, for the provider plugin, the SLB API, the tests and the CLI.

Every create, update and delete checks what the real API would refuse, takes its simulated duration (really sleeping,
outside the lock, so that the engine's parallelism is real), and records a begin and an end event in the timeline. A
create reserves its ID and unique names at its beginning, as the real API does, so that two concurrent creates of one
name are refused.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

from localcloud import health
from localcloud.resources import CloudError, key, kind, plain
from localcloud.store import ENV_DIR, Store

OPERATIONS = ("create", "update", "delete")
# What the migration tool of an image marked by `mark_bad_migration` prints, unless told otherwise.
DEFAULT_BAD_MIGRATION = "migration failed: the local cloud was told this image's migrations fail"
PACKAGE_DIR = Path(__file__).resolve().parent


class LocalCloud:
    """One local cloud, in the folder `root` (default: $LOCALCLOUD_DIR)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        root = root or os.environ.get(ENV_DIR)
        if not root:
            raise ValueError(f"no local cloud folder: pass one or set {ENV_DIR}")
        self.store = Store(root)

    @property
    def root(self) -> Path:
        return self.store.root

    def init(
        self,
        scale: float | None = None,
        boot_seconds: float = 90.0,
        durations: dict[str, dict[str, float]] | None = None,
    ) -> LocalCloud:
        """Create an empty cloud; `durations` overrides simulated seconds per type token and operation."""
        self.store.initialise(scale=scale, boot_seconds=boot_seconds)
        if durations:
            with self.store.transaction() as tx:
                tx.cloud["durations"] = durations
        return self

    # --- time ----------------------------------------------------------------------------------------------------

    def now(self) -> float:
        return self.store.now()

    def duration(self, cloud: dict[str, Any], token: str, operation: str) -> float:
        override = cloud.get("durations", {}).get(token, {}).get(operation)
        return float(override if override is not None else kind(token).durations[OPERATIONS.index(operation)])

    # --- the resource API ----------------------------------------------------------------------------------------

    def create(self, token: str, inputs: dict[str, Any], urn: str = "") -> dict[str, Any]:
        """Create a resource; returns its record (`id`, `outputs`, ...) once its simulated creation is over."""
        spec = kind(token)
        with self.store.transaction() as tx:
            cloud = tx.cloud
            spec.check(plain(inputs), cloud, None)
            rid = spec.new_id(plain(inputs), cloud)
            if key(token, rid) in tx.resources:
                raise CloudError("IdempotentParameterMismatch", f"{rid} already exists.", 409)
            record: dict[str, Any] = {
                "id": rid,
                "type": token,
                "urn": urn,
                "state": "creating",
                "inputs": inputs,
                "outputs": {},
                "zone": spec.zone(plain(inputs), cloud),
            }
            tx.resources[key(token, rid)] = record
            # Addresses are allocated at the beginning, as the API does, so that concurrent creates never share one.
            record["outputs"] = {**inputs, **spec.computed(rid, plain(inputs), cloud), "id": rid}
            wait = self.duration(cloud, token, "create")
            # When the operation ends on the cloud's side, whether or not its caller is still there to see it.
            record["endsAt"] = round(self.store.now() + wait, 3)
            tx.record("create-begin", record=copy.deepcopy(record))
        self.store.sleep(wait)
        with self.store.transaction() as tx:
            _settle(tx, self.store.now())
            record = tx.resources[key(token, rid)]
        return record

    def update(self, token: str, rid: str, inputs: dict[str, Any]) -> dict[str, Any]:
        with self.store.transaction() as tx:
            record = self._get(tx.cloud, token, rid)
            spec = kind(record["type"])
            spec.check(plain(inputs), tx.cloud, rid)
            reboots = record["type"] == "alicloud:ecs/instance:Instance" and plain(inputs.get("imageId")) != plain(
                record["inputs"].get("imageId")
            )
            record["state"] = "updating"
            if reboots:  # the provider stops the server, swaps its system disk and starts it again
                record["healthyAt"] = None
                record["reboots"] = True
            wait = self.duration(tx.cloud, record["type"], "update")
            record["endsAt"] = round(self.store.now() + wait, 3)
            record["pendingInputs"] = inputs
            tx.record("update-begin", record=copy.deepcopy(record))
        self.store.sleep(wait)
        with self.store.transaction() as tx:
            _settle(tx, self.store.now())
            record = self._get(tx.cloud, token, rid)
        return record

    def delete(self, token: str, rid: str) -> None:
        """Delete a resource; one that is already gone is not an error (as the provider treats NotFound)."""
        with self.store.transaction() as tx:
            record = tx.resources.get(key(token, rid))
            if record is None:
                return
            spec = kind(record["type"])
            spec.check_delete(record, tx.cloud)
            record["state"] = "deleting"
            wait = self.duration(tx.cloud, record["type"], "delete")
            record["endsAt"] = round(self.store.now() + wait, 3)
            tx.record("delete-begin", record=copy.deepcopy(record))
        self.store.sleep(wait)
        with self.store.transaction() as tx:
            _settle(tx, self.store.now())

    def settle(self) -> None:
        """Finish every operation whose time is up, as the cloud does even when its caller was killed meanwhile."""
        with self.store.transaction() as tx:
            _settle(tx, self.store.now())

    def read(self, token: str, rid: str) -> dict[str, Any] | None:
        self.settle()
        record: dict[str, Any] | None = self.store.snapshot()["resources"].get(key(token, rid))
        return record

    def find(self, rid: str) -> dict[str, Any]:
        """The record with this ID, whatever its type (the first by type when a child shares its parent's ID)."""
        matches = [r for r in self.inventory() if r["id"] == rid]
        if not matches:
            raise CloudError("InvalidResourceId.NotFound", f"The resource {rid} does not exist.", 404)
        return matches[0]

    def _get(self, cloud: dict[str, Any], token: str, rid: str) -> dict[str, Any]:
        record: dict[str, Any] | None = cloud["resources"].get(key(token, rid))
        if record is None:
            raise CloudError("InvalidResourceId.NotFound", f"The resource {rid} does not exist.", 404)
        return record

    # --- what tests and users look at ----------------------------------------------------------------------------

    def inventory(self) -> list[dict[str, Any]]:
        """Every resource the cloud holds, sorted by type and ID."""
        self.settle()
        resources = self.store.snapshot()["resources"].values()
        return sorted(resources, key=lambda r: (r["type"], r["id"]))

    def timeline(self) -> list[dict[str, Any]]:
        self.settle()
        return self.store.timeline()

    def health(self, load_balancer_id: str, listener_port: int = 80) -> dict[str, str]:
        """Each backend server's status on the listener now, as DescribeHealthStatus reports it."""
        self.settle()
        entries = health.backends(self.store.snapshot(), load_balancer_id, listener_port, self.now())
        return {e["ServerId"]: e["ServerHealthStatus"] for e in entries}

    def healthy_backends_over_time(self, load_balancer_id: str, listener_port: int = 80) -> list[tuple[float, int]]:
        return health.healthy_backends_over_time(self.timeline(), load_balancer_id, listener_port)

    # --- controls ------------------------------------------------------------------------------------------------

    def mark_bad_image(self, image_id: str) -> None:
        """Servers from this image never pass a health check (from now on)."""
        with self.store.transaction() as tx:
            tx.cloud["badImages"] = sorted({*tx.cloud["badImages"], image_id})
            tx.record("mark-bad-image", image=image_id)

    def mark_bad_migration(self, image_id: str, message: str | None = None) -> None:
        """The migrations of this image fail (from now on): exit 1, `message` as the tool's output."""
        with self.store.transaction() as tx:
            tx.cloud.setdefault("badMigrations", {})[image_id] = message or DEFAULT_BAD_MIGRATION
            tx.record("mark-bad-migration", image=image_id, message=message or DEFAULT_BAD_MIGRATION)

    def zone_down(self, zone: str) -> None:
        with self.store.transaction() as tx:
            tx.cloud["zonesDown"] = sorted({*tx.cloud["zonesDown"], zone})
            tx.record("zone-down", zone=zone)

    def zone_up(self, zone: str) -> None:
        with self.store.transaction() as tx:
            tx.cloud["zonesDown"] = [z for z in tx.cloud["zonesDown"] if z != zone]
            tx.record("zone-up", zone=zone)

    def tamper(
        self, rid: str, changes: dict[str, Any] | None = None, delete: bool = False, token: str | None = None
    ) -> dict[str, Any] | None:
        """An out-of-band change, as someone in the console would make it: set some properties, or delete."""
        token = token or self.find(rid)["type"]
        with self.store.transaction() as tx:
            record = self._get(tx.cloud, token, rid)
            if delete:
                tx.resources.pop(key(token, rid))
                tx.record("tamper", record={"id": rid, "type": record["type"], "urn": record["urn"]}, deleted=True)
                tx.events[-1]["event"] = "delete-end"
                tx.events[-1]["tampered"] = True
                return None
            record["inputs"] = {**record["inputs"], **(changes or {})}
            record["outputs"] = {**record["outputs"], **(changes or {})}
            tx.record("tamper", record=copy.deepcopy(record), changes=changes)
            return record

    # --- a rehearsal's environment -------------------------------------------------------------------------------

    def env(self, slb_endpoint: str, real_provider: str, ecs_endpoint: str) -> dict[str, str]:
        """Variables for a `pulumi` run against this cloud (PATH must still be prefixed with `bin_dir()`)."""
        credentials = self.store.snapshot()["credentials"]
        return {
            ENV_DIR: str(self.root),
            "LOCALCLOUD_REAL_PROVIDER": real_provider,
            "LOCALCLOUD_PYTHON": sys.executable,
            # The health gate reads it (infra/health_gate.py) to poll this cloud's SLB API.
            "HA_WEBAPP_SLB_ENDPOINT": slb_endpoint,
            # The schema migration step reads it (infra/migration.py) to run its command through this cloud's ECS API.
            "HA_WEBAPP_ECS_ENDPOINT": ecs_endpoint,
            # Both poll every interval times this (infra/cloud_api.py), so a poll is 5 s of this cloud's simulated time,
            # as in a real cloud, not 5 s of wall time.
            "HA_WEBAPP_REHEARSAL_TIME_SCALE": repr(self.store.snapshot()["scale"]),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials["accessKeyId"],
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials["accessKeySecret"],
        }


def bin_dir() -> Path:
    """The folder with the `pulumi-resource-alicloud` that starts the local cloud's provider: put it first on PATH."""
    return PACKAGE_DIR / "bin"


def _settle(tx: Any, now: float) -> None:
    """End, in the transaction, every create, update and delete whose simulated duration is over."""
    cloud = tx.cloud
    boot = float(cloud["bootSeconds"])
    for record_key, record in sorted(tx.resources.items(), key=lambda item: item[1].get("endsAt") or 0):
        ends_at = record.get("endsAt")
        if ends_at is None or ends_at > now + 1e-9:
            continue
        record.pop("endsAt")
        if record["state"] == "creating":
            record["state"] = "ready"
            if record["type"] == "alicloud:ecs/instance:Instance":
                record["healthyAt"] = round(ends_at + boot, 3)
            tx.record("create-end", at=ends_at, record=copy.deepcopy(record))
        elif record["state"] == "updating":
            inputs = record.pop("pendingInputs")
            computed = {k: v for k, v in record["outputs"].items() if k not in record["inputs"]}
            record.update(state="ready", inputs=inputs, outputs={**computed, **inputs, "id": record["id"]})
            record["zone"] = kind(record["type"]).zone(plain(inputs), cloud)
            if record.pop("reboots", False):
                record["healthyAt"] = round(ends_at + boot, 3)
            tx.record("update-end", at=ends_at, record=copy.deepcopy(record))
        elif record["state"] == "deleting":
            tx.resources.pop(record_key)
            tx.record(
                "delete-end", at=ends_at, record={"id": record["id"], "type": record["type"], "urn": record["urn"]}
            )
