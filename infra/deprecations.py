"""What the installed provider SDKs themselves mark deprecated, looked up by resource type token.

Deprecated inputs passed as keyword arguments log nothing (the SDK only warns through its `...Args` classes), and
under the mock runtime no provider is there to warn either, so the program's use of the SDK is checked against the
SDK's own markers instead: `@deprecated` property getters on the `...Args` class for inputs, and a class-level
`DeprecationWarning` or a `**DEPRECATED:**` note in the resource's documentation for whole resources.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re

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
