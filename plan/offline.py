"""Evaluate the real program for a stack without a cloud account, a state backend or the Pulumi CLI.

`evaluate("prod")` runs `__main__.py` under the Pulumi SDK's mock runtime with the settings of `Pulumi.prod.yaml`
(secure values replaced by placeholders) and records every resource the program registers: its type, name, parent,
inputs (secrets still wrapped, so callers can tell them apart), dependencies and resource options. The tests assert on
these records; the offline plan prints them.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.settings
import yaml
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.sync_await import _sync_await

from plan.stack_file import SECRET_PLACEHOLDER as SECRET_PLACEHOLDER
from plan.stack_file import StackFileError as StackFileError
from plan.stack_file import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[1]
PROGRAM = PROJECT_DIR / "__main__.py"

# How the SDK marks a secret value on the wire (pulumi.runtime.rpc._special_secret_sig).
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # pragma: allowlist secret
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"  # pragma: allowlist secret
# How the SDK marks a value that is not known until deploy time (pulumi.runtime.rpc.UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# Program modules kept across evaluations. infra.config holds only constants and the settings model (it reads config
# when called, never at import): building its pydantic models again for every stack cost about 0.1 s each.
_KEPT = ("infra.config",)

# Values the cloud computes and the program reads. They are returned only in deploy mode (preview=False); in preview
# mode they stay unknown, as in `pulumi preview`.
_COMPUTED: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "random:index/randomPassword:RandomPassword": lambda name, _: {"result": f"{name}-Offline-Pa55word"},
    "alicloud:ecs/eipAddress:EipAddress": lambda name, _: {"ipAddress": "203.0.113.10"},
    "alicloud:rds/instance:Instance": lambda name, _: {
        "connectionString": f"rm-{name}.mysql.rds.aliyuncs.com",
        "port": "3306",
    },
    "alicloud:slb/applicationLoadBalancer:ApplicationLoadBalancer": lambda name, _: {"address": "10.0.0.100"},
    "alicloud:ecs/instance:Instance": lambda name, _: {"privateIp": "10.0.0.10", "status": "Running"},
    # The suffix of the OOS encrypted parameter's name (infra/database.py).
    "random:index/randomString:RandomString": lambda name, _: {"result": "x7k2q9"},
}


class UnknownStackError(pulumi.RunError):
    """No Pulumi.<stack>.yaml for the requested stack."""

    def __init__(self, stack: str, known: list[str]) -> None:
        super().__init__(f"unknown stack '{stack}'; this project has: {', '.join(known) or 'no stacks'}")


@dataclass(frozen=True)
class Resource:
    """One resource registration as the engine would receive it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    inputs: dict[str, Any]
    dependencies: tuple[str, ...]
    property_dependencies: dict[str, tuple[str, ...]]
    protect: bool
    replace_on_changes: tuple[str, ...]
    delete_before_replace: bool
    ignore_changes: tuple[str, ...]

    def value(self, key: str) -> Any:
        """An input with secret envelopes removed."""
        return unwrap(self.inputs.get(key))

    def is_secret(self, key: str) -> bool:
        return is_secret(self.inputs.get(key))


@dataclass
class Evaluation:
    stack: str
    resources: list[Resource]
    exports: dict[str, Any]
    secret_exports: set[str]
    warnings: list[str]
    invokes: list[str] = field(default_factory=list)
    # Exports the cloud computes (preview mode); their value in `exports` is None.
    unknown_exports: set[str] = field(default_factory=set)
    # The raw config the program ran with (the stack file plus overrides; secure values as placeholders).
    config: dict[str, str] = field(default_factory=dict)
    # Which of those keys are secret.
    secret_keys: list[str] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}

    def by_id(self) -> dict[str, Resource]:
        """Resources by the ID the offline runtime gave them (deploy mode only; preview IDs are unknown)."""
        return {mock_id(r.name): r for r in self.resources if r.custom}


def mock_id(name: str) -> str:
    """The ID a resource gets offline; logical names are unique within a stack, so IDs are too."""
    return f"{name}-id"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def unwrap(value: Any) -> Any:
    """Strip secret envelopes from a captured input value."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def stacks() -> list[str]:
    """The stacks this project defines, one per Pulumi.<stack>.yaml."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def project_name() -> str:
    return str(yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["name"])


def stack_config(stack: str) -> tuple[dict[str, str], list[str]]:
    """The config map Pulumi would hand the program for `stack`, and which keys are secret.

    The stack file is read as the Pulumi CLI reads it (plan/stack_file.py): values are strings, objects are JSON;
    `secure:` values, which only the stack's secrets provider can decrypt, become a placeholder. A file the CLI would
    refuse raises StackFileError (a RunError: the plan exits 2 naming the file, line and key).
    """
    path = PROJECT_DIR / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise UnknownStackError(stack, stacks())
    config = read_stack_config(path, project_name())
    return config.values, config.secret_keys


class _RecordingMocks(Mocks):
    def __init__(self, preview: bool, deployed_outputs: Mapping[str, Any] | None) -> None:
        self.preview = preview
        self.deployed_outputs = dict(deployed_outputs or {})
        self.invokes: list[str] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            # The program reads its own stack's last outputs back (infra/guard.py): answer with the given ones.
            state: dict[str, Any] = {"name": args.inputs.get("name"), "outputs": self.deployed_outputs}
            return args.resource_id, {**state, "secretOutputNames": []}
        computed = _COMPUTED.get(args.typ)
        outputs = dict(args.inputs)
        if computed is not None and not self.preview:
            outputs.update(computed(args.name, args.inputs))
        return (None if self.preview else mock_id(args.name)), outputs

    def call(self, args: MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        self.invokes.append(args.token)
        # The program chooses nothing from data sources (zones are pinned in config); a new lookup must be taught
        # here on purpose, with camelCase keys, rather than silently answered with nothing.
        raise NotImplementedError(f"the offline evaluator has no answer for the data source {args.token}")


class _RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping the resource options it is sent (parent, protect, dependencies...)."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.requests: list[tuple[str, Any]] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.requests.append((response.urn, request))
        return response


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _is_program_module(name: str) -> bool:
    """A module imported afresh for every evaluation; the kept ones also keep their classes' identity for callers."""
    kept = any(name == k or name.startswith(f"{k}.") for k in _KEPT)
    return (name == "infra" or name.startswith("infra.")) and not kept


def _reattach_kept() -> None:
    """Import the `infra` package afresh and hang the kept modules on it again, as their first import did."""
    package = importlib.import_module("infra")
    for name, module in list(sys.modules.items()):
        if name.count(".") == 1 and name.startswith("infra.") and not _is_program_module(name):
            setattr(package, name.removeprefix("infra."), module)


def evaluate(
    stack: str,
    overrides: Mapping[str, str | None] | None = None,
    preview: bool = False,
    deployed_outputs: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> Evaluation:
    """Run the program for `stack` under the mock runtime; `overrides` replace, add or (None) remove raw config values;
    `deployed_outputs` are the stack's outputs as last deployed (None: a stack deployed for the first time); `secrets`
    are config values given as secrets (as `pulumi config set --secret` would).

    Raises the program's `pulumi.RunError` (for example invalid settings) unchanged.
    """
    config, secret_keys = stack_config(stack)
    for key, value in (overrides or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    for key, value in (secrets or {}).items():
        config[key] = value
        secret_keys = [*secret_keys, key]
    project = project_name()

    # Several stacks run in one process: each needs its own root stack, a replaced (not merged) config map, and
    # freshly imported program modules so that nothing one stack computed leaks into the next.
    for module in [m for m in sys.modules if _is_program_module(m)]:
        del sys.modules[module]
    _reattach_kept()
    pulumi.runtime.settings.ROOT.set(None)
    with _cyclic_gc_paused():
        return _run(stack, project, config, secret_keys, preview, deployed_outputs)


def _run(
    stack: str,
    project: str,
    config: dict[str, str],
    secret_keys: list[str],
    preview: bool,
    deployed_outputs: Mapping[str, Any] | None,
) -> Evaluation:
    mocks = _RecordingMocks(preview, deployed_outputs)
    monitor = _RecordingMonitor(mocks)
    handler = _ListHandler()
    logger = logging.getLogger(f"ha-webapp.offline.{stack}")
    logger.handlers = [handler]
    logger.propagate = False
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, logger=logger, monitor=monitor)
    pulumi.runtime.set_all_config(config, secret_keys)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def run() -> None:
        # Return nothing: returning the program's globals would make the SDK walk (and log about) every value.
        runpy.run_path(str(PROGRAM), run_name="__main__")

    run()

    root = pulumi.runtime.get_root_resource()
    outputs: dict[str, Any] = getattr(root, "outputs", None) or {}
    exports, secret_exports, unknown_exports = {}, set(), set()
    for name, value in outputs.items():
        output = pulumi.Output.from_input(value)
        exports[name] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            secret_exports.add(name)
        if not _sync_await(output.is_known()):
            unknown_exports.add(name)

    resources = [_record(urn, request) for urn, request in monitor.requests]
    warnings = [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
    return Evaluation(
        stack, resources, exports, secret_exports, warnings, mocks.invokes, unknown_exports, config, secret_keys
    )


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Run without the cyclic garbage collector, and restore it after.

    The mock runtime keeps several futures per input of every resource alive until the evaluation ends; each full
    collection walks all of them again, which made the cost per resource grow with the size of the stack (8.6 ms
    per resource at 50 servers per zone against 4.8 at one; benchmarks/offline_plan.py). Nothing allocated here needs
    collecting before the evaluation ends: reference counting frees the rest, and the collector catches up
    afterwards (the peak memory of a 50-servers-per-zone evaluation is the same either way, about 136 MB).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _record(urn: str, request: Any) -> Resource:
    from pulumi.output import Unknown
    from pulumi.runtime import rpc

    inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
    # pulumi 3.260 sends an input that is both unknown and secret as a bare unknown, without its secret envelope
    # (3.272 kept it). The resource class itself declares which of its properties are secret (additionalSecretOutputs),
    # and the engine treats them so: mark those unknowns secret, as the plan showed them before.
    for key in request.additionalSecretOutputs:
        if isinstance(inputs.get(key), Unknown):
            inputs[key] = {SECRET_SIG_KEY: SECRET_SIG, "value": inputs[key]}
    return Resource(
        urn=urn,
        type=request.type,
        name=request.name,
        custom=bool(request.custom),
        parent=request.parent or None,
        inputs=inputs,
        dependencies=tuple(request.dependencies),
        property_dependencies={k: tuple(v.urns) for k, v in request.propertyDependencies.items()},
        protect=bool(request.protect),
        replace_on_changes=tuple(request.replaceOnChanges),
        delete_before_replace=bool(request.deleteBeforeReplace),
        ignore_changes=tuple(request.ignoreChanges),
    )
