"""The local cloud's state on disk: one folder shared by every process that plays a part (the provider plugin, the SLB
API server, the tests, the command line), guarded by an advisory lock.

Layout of the folder (`LOCALCLOUD_DIR`):
  cloud.json      the resources, the clock's epoch and scale, the durations, the bad images and the zones down
  timeline.jsonl  one event per line, append-only: every begin and end of a create/update/delete, every control action
  lock            flock(2) target; every read-modify-write of cloud.json and every append happen under it

Time is simulated: a simulated second lasts `scale` wall seconds, counted from the epoch written when the folder was
first used, so every process reads the same clock without talking to the others.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ENV_DIR = "LOCALCLOUD_DIR"
ENV_SCALE = "LOCALCLOUD_TIME_SCALE"
# 1 simulated second = 2 ms: RDS's ~25 minutes take 3 s, a whole stack a few seconds.
DEFAULT_SCALE = 0.002
# The throwaway keys the local cloud's APIs check signatures with (exported by LocalCloud.env for a rehearsal).
DEFAULT_ACCESS_KEY_ID = "LTAI-localcloud"
DEFAULT_ACCESS_KEY_SECRET = "localcloud-secret"  # pragma: allowlist secret

Cloud = dict[str, Any]


def new_cloud(scale: float, boot_seconds: float, access_key: tuple[str, str]) -> Cloud:
    return {
        "epoch": time.time(),
        "scale": scale,
        "bootSeconds": boot_seconds,
        "durations": {},
        "credentials": {"accessKeyId": access_key[0], "accessKeySecret": access_key[1]},
        "resources": {},
        "badImages": [],
        "zonesDown": [],
        "seq": 0,
    }


class Store:
    """Locked access to one local cloud's folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._clock: tuple[float, float] | None = None

    @property
    def cloud_file(self) -> Path:
        return self.root / "cloud.json"

    @property
    def timeline_file(self) -> Path:
        return self.root / "timeline.jsonl"

    def exists(self) -> bool:
        return self.cloud_file.exists()

    def initialise(
        self,
        scale: float | None = None,
        boot_seconds: float = 90.0,
        access_key: tuple[str, str] = (DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
    ) -> None:
        """Create an empty cloud here (the scale from the argument, else LOCALCLOUD_TIME_SCALE, else the default)."""
        if scale is None:
            scale = float(os.environ.get(ENV_SCALE) or DEFAULT_SCALE)
        if scale <= 0:
            raise ValueError(f"the time scale must be positive, not {scale}")
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if self.cloud_file.exists():
                raise FileExistsError(f"{self.root} already holds a local cloud")
            self._save(new_cloud(scale, boot_seconds, access_key))
            self.timeline_file.touch()

    @contextmanager
    def _locked(self, shared: bool = False) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self) -> Cloud:
        if not self.cloud_file.exists():
            # First use by a process that was not told to initialise (e.g. the provider plugin): defaults.
            cloud = new_cloud(float(os.environ.get(ENV_SCALE) or DEFAULT_SCALE), 90.0, _default_keys())
            self._save(cloud)
            self.timeline_file.touch()
            self._clock = (float(cloud["epoch"]), float(cloud["scale"]))
            return cloud
        loaded: Cloud = json.loads(self.cloud_file.read_text())
        self._clock = (float(loaded["epoch"]), float(loaded["scale"]))
        return loaded

    def _save(self, cloud: Cloud) -> None:
        # Write then rename, so that a reader without the lock (none today) never sees half a file.
        scratch = self.cloud_file.with_suffix(".tmp")
        scratch.write_text(json.dumps(cloud, indent=1, sort_keys=True))
        scratch.replace(self.cloud_file)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Read-modify-write under the exclusive lock; events recorded in it are appended before the lock goes."""
        with self._locked():
            tx = Transaction(self._load(), self)
            yield tx
            self._save(tx.cloud)
            if tx.events:
                with self.timeline_file.open("a") as out:
                    for event in tx.events:
                        out.write(json.dumps(event, sort_keys=True) + "\n")

    def snapshot(self) -> Cloud:
        with self._locked():
            return self._load()

    def timeline(self) -> list[dict[str, Any]]:
        with self._locked(shared=True):
            if not self.timeline_file.exists():
                return []
            return [json.loads(line) for line in self.timeline_file.read_text().splitlines() if line.strip()]

    # The clock -------------------------------------------------------------------------------------------------

    def _epoch_and_scale(self) -> tuple[float, float]:
        if self._clock is None:
            cloud = self.snapshot()
            self._clock = (float(cloud["epoch"]), float(cloud["scale"]))
        return self._clock

    def now(self) -> float:
        """Simulated seconds since the cloud was created."""
        epoch, scale = self._epoch_and_scale()
        return (time.time() - epoch) / scale

    def sleep(self, simulated_seconds: float) -> None:
        _, scale = self._epoch_and_scale()
        if simulated_seconds > 0:
            time.sleep(simulated_seconds * scale)


class Transaction:
    """The cloud as loaded under the lock, and the timeline events to append with it."""

    def __init__(self, cloud: Cloud, store: Store) -> None:
        self.cloud = cloud
        self.store = store
        self.events: list[dict[str, Any]] = []

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.cloud["resources"]
        return resources

    def record(self, event: str, at: float | None = None, **fields: Any) -> dict[str, Any]:
        """Append an event, at simulated time `at` (default: now; an operation's end can be recorded after it)."""
        self.cloud["seq"] += 1
        # Never before the last event: the timeline stays in order when an end is recorded late by another process.
        sim = round(max(self.store.now() if at is None else at, float(self.cloud.get("lastSim", 0.0))), 3)
        self.cloud["lastSim"] = sim
        entry = {"seq": self.cloud["seq"], "sim": sim, "wall": time.time(), "event": event}
        entry.update(fields)
        self.events.append(entry)
        return entry


def _default_keys() -> tuple[str, str]:
    return (DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
