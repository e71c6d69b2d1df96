"""What the installed provider SDKs themselves say about a resource type: deprecated or not, taggable or not.

Deprecated inputs passed as keyword arguments log nothing (the SDK only warns through its `...Args` classes), and
under the mock runtime no provider is there to warn either, so the program's use of the SDK is checked against the
SDK's own markers instead: `@deprecated` property getters on the `...Args` class for inputs, and a class-level
`DeprecationWarning` or a `**DEPRECATED:**` note in the resource's documentation for whole resources.

The policy pack runs in its own small virtualenv without the provider SDK, so `python -m policy.sdk_facts` writes the
facts it needs, for the SDK services this project uses, to `policy/sdk_facts.json`; a test keeps that file current.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import re
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import pulumi
from pulumi.type_token import get_type_token

_PACKAGES = {"alicloud": "pulumi_alicloud", "random": "pulumi_random"}
_TOKEN_RE = re.compile(r"(?P<package>[\w-]+):(?P<module>[\w/]+)/(?P<member>\w+):(?P<cls>\w+)")
_DEPRECATED_DOC_RE = re.compile(r"\*\*DEPRECATED:\*\*\s*(?P<why>[^\n]*)")
_CLASS_WARNING_RE = re.compile(r'^    warnings\.warn\("""(?P<why>.*?)""", DeprecationWarning\)', re.M | re.S)


@functools.cache
def resource_class(type_token: str) -> type[pulumi.CustomResource] | None:
    """The SDK class registered for `type_token`, or None for tokens no installed SDK provides."""
    match = _TOKEN_RE.fullmatch(type_token)
    if match is None or match["package"] not in _PACKAGES:
        return None
    package = _PACKAGES[match["package"]]
    module_name = package if match["module"] == "index" else f"{package}.{match['module'].replace('/', '.')}"
    try:
        cls = getattr(importlib.import_module(module_name), match["cls"])
    except (ImportError, AttributeError):
        return None
    return cls if get_type_token(cls) == type_token else None


@functools.cache
def deprecated_resource(type_token: str) -> str | None:
    """Why the SDK deprecates this resource type, or None if it does not."""
    cls = resource_class(type_token)
    if cls is None:
        return None
    source = inspect.getsource(cls)
    for pattern in (_CLASS_WARNING_RE, _DEPRECATED_DOC_RE):
        found = pattern.search(source)
        if found:
            return " ".join(found["why"].split())
    return None


@functools.cache
def deprecated_inputs(type_token: str) -> dict[str, str]:
    """The resource's deprecated inputs, by wire (camelCase) name, with the SDK's reason."""
    cls = resource_class(type_token)
    if cls is None:
        return {}
    args_cls = getattr(inspect.getmodule(cls), f"{cls.__name__}Args", None)
    found: dict[str, str] = {}
    for attr, prop in vars(args_cls or object).items():
        if not isinstance(prop, property):
            continue
        getter = prop.fget
        while getter is not None:
            if "_pulumi_deprecated_callable" in getattr(getter, "__dict__", {}):
                wire_name = getattr(prop.fget, "_pulumi_name", None) or attr
                # The SDK's @deprecated(message) keeps its message in the wrapper's closure.
                message = inspect.getclosurevars(getter).nonlocals.get("message")
                found[wire_name] = " ".join(str(message or "deprecated").split())
                break
            getter = getattr(getter, "__wrapped__", None)
    return found


def args_properties(type_token: str) -> set[str]:
    """The Python names of the inputs the resource's `...Args` class declares."""
    cls = resource_class(type_token)
    args_cls = getattr(inspect.getmodule(cls), f"{cls.__name__}Args", None) if cls else None
    return {name for name, value in vars(args_cls or object).items() if isinstance(value, property)}


def taggable(type_token: str) -> bool:
    return "tags" in args_properties(type_token)


# The provider services this project's program may use; the policy pack's facts cover exactly these.
SERVICES = ("cms", "dns", "ecs", "oos", "ram", "rds", "slb", "vpc")
FACTS_FILE = Path(__file__).resolve().parent / "sdk_facts.json"


def service_types(service: str) -> list[str]:
    """Every resource type token of one pulumi_alicloud service package."""
    package = importlib.import_module(f"pulumi_alicloud.{service}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated modules warn on import; reading them is fine
        # The SDK loads service packages lazily: touching one attribute loads the whole package namespace.
        getattr(package, "outputs", None)
        classes = [v for v in vars(package).values() if isinstance(v, type) and issubclass(v, pulumi.CustomResource)]
    return sorted(token for cls in classes if (token := get_type_token(cls)))


def facts(services: tuple[str, ...] = SERVICES) -> dict[str, object]:
    tokens = [t for s in services for t in service_types(s)]
    return {
        "generatedBy": "python -m policy.sdk_facts",
        "sdk": {"pulumi-alicloud": version("pulumi-alicloud")},
        "services": list(services),
        "deprecated": {t: reason for t in tokens if (reason := deprecated_resource(t))},
        "taggable": [t for t in tokens if taggable(t)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policy.sdk_facts", description="Write the policy pack's SDK facts."
    )
    parser.add_argument("--output", type=Path, default=FACTS_FILE)
    args = parser.parse_args(argv)
    args.output.write_text(json.dumps(facts(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
