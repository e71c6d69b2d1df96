"""Stack files read the way the Pulumi CLI reads them, so that the offline plan accepts exactly what `pulumi` accepts.

The CLI (pkg/workspace/loaders.go, sdk/go/common/resource/config) decodes `Pulumi.<stack>.yaml` with Go's YAML v3
into plain values, namespaces keys without a `:` with the project's name, writes the result back as YAML and decodes
it again into its config map. What a program then receives, and what this module returns:

- a plain value is its text: `true` -> "true", `2.0` -> "2" and `1234567.0` -> "1234567" (Go's encoding/json writes
  floats), `0x10` -> "16", a date or timestamp becomes Go's time.Time text ("2024-01-01 00:00:00 +0000 UTC", as the
  real CLI shows it), `!!binary` is decoded, an empty value is "";
- a mapping or list is JSON (a float that is a whole number becomes an integer, as Go's JSON writes it);
- `{secure: ...}` is a secret (here a placeholder: only the stack's secrets provider can decrypt it).

A duplicated key is an error in YAML v3 (at any depth), as is a file that is not a mapping, a `config:` that is not a
mapping, a key that is not `<namespace>:<name>`, or malformed YAML. Where this reader is stricter than the CLI it says
so next to the check: a tag other than YAML's own (`!!python/object...`, `!foo`) -- the CLI would read the tagged text
as a string, but a tag in a stack file is never meant and may be an attempt to construct an object -- a key that is not
a string inside a value, nesting deeper than `MAX_DEPTH` and aliases that expand past `MAX_NODES`.

Every refusal is a `StackFileError` naming the file, the line (1-based) where known, and the key.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

SECRET_PLACEHOLDER = "offline-secret-value"  # pragma: allowlist secret
MAX_DEPTH = 64
MAX_NODES = 100_000

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "binary", "timestamp", "merge")}
# Go's YAML v3 resolver (resolve.go): the spellings it reads as booleans, nulls and special floats; YAML 1.1's
# yes/no/on/off are strings.
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = {"", "~", "null", "Null", "NULL"}
_SPECIAL_FLOATS = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


class StackFileError(pulumi.RunError):
    """A stack file the Pulumi CLI would refuse (or that this reader refuses on purpose), with file, line and key."""

    def __init__(self, path: Path, line: int | None, key: str, message: str) -> None:
        self.path, self.line, self.key, self.message = path, line, key, message
        where = f"{path.name}:{line}" if line else path.name
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


@dataclass
class _Node:
    kind: str  # "scalar", "map" or "seq"
    line: int
    tag: str | None = None
    text: str = ""
    plain: bool = True
    items: list[Any] = field(default_factory=list)  # seq: nodes; map: (key node, value node) pairs


@dataclass
class StackConfig:
    """The config map the CLI hands the program (`namespace:key` -> string), and which keys are secret."""

    values: dict[str, str]
    secret_keys: list[str]


def read_stack_config(path: Path, project: str) -> StackConfig:
    """Read `path` as the Pulumi CLI would for a stack of `project`; raise StackFileError on what it refuses."""
    return _Reader(path, project).read()


class _Reader:
    def __init__(self, path: Path, project: str) -> None:
        self.path = path
        self.project = project
        self.anchors: dict[str, _Node] = {}
        self.nodes = 0

    def fail(self, line: int | None, key: str, message: str) -> StackFileError:
        # Inside `config:` a key is named as in the program's errors (ha-webapp:app.port), not by its YAML path.
        return StackFileError(self.path, line, key.removeprefix("config."), message)

    def read(self) -> StackConfig:
        text = self._text()
        root = self._parse(text)
        if root is None or (root.kind == "scalar" and root.plain and root.tag is None and root.text in _NULLS):
            return StackConfig({}, [])  # an empty file: a stack without settings
        if root.kind != "map":
            raise self.fail(root.line, "", f"expected a mapping (config:, encryptionsalt:, ...), got {_what(root)}")
        document = self._mapping(root, "")
        config_node = next((v for k, v in root.items if self._key_text(k) == "config"), None)
        config = document.get("config")
        if config is None:
            return StackConfig({}, [])
        assert config_node is not None
        if not isinstance(config, dict):
            raise self.fail(
                config_node.line, "config", f"expected a mapping of <namespace>:<key>, got {_what(config_node)}"
            )
        return self._config(config_node, config)

    def _text(self) -> str:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise self.fail(None, "", f"cannot read the file: {exc.strerror or exc}") from None
        data = data.removeprefix(b"\xef\xbb\xbf")  # the CLI strips a UTF-8 byte-order mark
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise self.fail(line, "", f"not UTF-8 text (byte {exc.start}: {data[exc.start]:#04x})") from None

    def _parse(self, text: str) -> _Node | None:
        events = YAML(typ="safe", pure=True).parse(text)
        try:
            return self._document(iter(events))
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = mark.line + 1 if mark is not None else None
            position = getattr(exc, "position", None)  # a ReaderError (a character YAML does not allow) has no mark
            if line is None and isinstance(position, int):
                line = text[:position].count("\n") + 1
            problem = exc.problem if isinstance(exc, MarkedYAMLError) and exc.problem else str(exc).splitlines()[0]
            raise self.fail(line, "", f"not valid YAML: {problem}") from None
        except RecursionError:
            raise self.fail(None, "", f"nested deeper than {MAX_DEPTH} levels") from None

    def _document(self, events: Iterator[Event]) -> _Node | None:
        # Like Go's yaml.Unmarshal, only the first document counts.
        for event in events:
            if isinstance(event, StreamStartEvent | DocumentStartEvent):
                continue
            if isinstance(event, StreamEndEvent | DocumentEndEvent):
                return None
            return self._node(event, events, 1)
        return None

    def _node(self, event: Event, events: Iterator[Event], depth: int) -> _Node:
        line = event.start_mark.line + 1 if event.start_mark else 0
        if depth > MAX_DEPTH:
            raise self.fail(line, "", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(event, AliasEvent):
            if event.anchor not in self.anchors:
                raise self.fail(line, "", f"unknown anchor '{event.anchor}' referenced")
            return self.anchors[event.anchor]
        tag = getattr(event, "tag", None)
        tag = tag if tag != "!" else None
        if isinstance(event, ScalarEvent):
            node = _Node("scalar", line, tag, event.value, plain=event.style is None)
        elif isinstance(event, MappingStartEvent | SequenceStartEvent):
            kind = "map" if isinstance(event, MappingStartEvent) else "seq"
            node = _Node(kind, line, tag)
            end = MappingEndEvent if kind == "map" else SequenceEndEvent
            children = []
            for child in events:
                if isinstance(child, end):
                    break
                children.append(self._node(child, events, depth + 1))
            node.items = list(zip(children[::2], children[1::2], strict=True)) if kind == "map" else children
        else:
            raise self.fail(line, "", f"unexpected {type(event).__name__}")
        if getattr(event, "anchor", None):
            self.anchors[event.anchor] = node
        return node

    # --- from nodes to the values Go's YAML v3 decodes into interface{} ---

    def _value(self, node: _Node, key: str) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node.line, key, f"aliases expand to more than {MAX_NODES} values")
        if node.kind == "map":
            self._check_tag(node, f"{_CORE}map", key)
            return self._mapping(node, key)
        if node.kind == "seq":
            self._check_tag(node, f"{_CORE}seq", key)
            return [self._value(item, f"{key}[{i}]") for i, item in enumerate(node.items)]
        return self._scalar(node, key)

    def _check_tag(self, node: _Node, allowed: str, key: str) -> None:
        # Stricter than the CLI: it ignores a tag it does not know; a tag here is refused (see the module's doc).
        if node.tag is not None and node.tag != allowed and not (node.kind == "scalar" and node.tag in _SCALAR_TAGS):
            raise self.fail(node.line, key, f"the YAML tag {_short(node.tag)} is not allowed in a stack file")

    def _key_text(self, node: _Node) -> str | None:
        return node.text if node.kind == "scalar" else None

    def _mapping(self, node: _Node, key: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        seen: dict[str, int] = {}
        for key_node, value_node in node.items:
            where = f"{key}.{key_node.text}" if key and key_node.kind == "scalar" else (key_node.text or key)
            if key_node.kind != "scalar":
                raise self.fail(key_node.line, key or "(top)", f"a key must be a string, got {_what(key_node)}")
            # YAML v3 compares the keys' text: `1` and "1" collide, `true` and `True` do not.
            if key_node.text in seen:
                raise self.fail(key_node.line, where, f"duplicated key (already defined at line {seen[key_node.text]})")
            seen[key_node.text] = key_node.line
            if key_node.plain and key_node.text == "<<" and key_node.tag in (None, f"{_CORE}merge"):
                merged.update(self._merge(value_node, where))
                continue
            name = self._scalar(key_node, where)
            if not isinstance(name, str):
                # The CLI would turn it into text ("1", "true"); no settings key is a number or a boolean, so this
                # is refused here with its line rather than later as an unknown key.
                raise self.fail(key_node.line, where, f"a key must be a string, got {_what(key_node)}")
            result[name] = self._value(value_node, where)
        return {**merged, **result}

    def _merge(self, node: _Node, key: str) -> dict[str, Any]:
        sources = node.items if node.kind == "seq" else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):  # earlier maps in the list win
            if source.kind != "map":
                raise self.fail(node.line, key, "a merge (<<) needs a mapping or a list of mappings")
            merged.update(self._value(source, key))
        return merged

    def _scalar(self, node: _Node, key: str) -> Any:
        self._check_tag(node, f"{_CORE}str", key)
        tag, text = node.tag, node.text
        if tag == f"{_CORE}str" or (tag is None and not node.plain):
            return text
        if tag == f"{_CORE}timestamp":
            return _timestamp(text) or text
        if tag == f"{_CORE}binary":
            try:
                data = base64.b64decode("".join(text.split()), validate=True)
            except (binascii.Error, ValueError):
                raise self.fail(node.line, key, "!!binary value is not valid base64") from None
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                # Stricter than the CLI, which would pass the raw bytes on: no setting is binary.
                raise self.fail(node.line, key, "!!binary value does not decode to UTF-8 text") from None
        value = _resolve(text)
        if tag is None:
            return value
        wanted = {f"{_CORE}int": int, f"{_CORE}float": float, f"{_CORE}bool": bool, f"{_CORE}null": type(None)}[tag]
        if wanted is float and type(value) is int:
            return float(value)
        if type(value) is not wanted:
            raise self.fail(node.line, key, f"cannot read {text!r} as {_short(tag)}")
        return value

    # --- the config map ---

    def _config(self, node: _Node, config: dict[str, Any]) -> StackConfig:
        lines = {k.text: k.line for k, _ in node.items if k.kind == "scalar"}
        values: dict[str, str] = {}
        origins: dict[str, str] = {}
        secret_keys: list[str] = []
        for raw_key, value in config.items():
            line = lines.get(raw_key)
            key = self._config_key(raw_key, line)
            if key in origins:
                raise self.fail(line, key, f"the same key as {origins[key]!r} (a key without a namespace is {key})")
            origins[key] = raw_key
            plain, secret = _replace_secure(value)
            try:
                values[key] = _as_config_string(plain)
            except ValueError as exc:
                raise self.fail(line, key, str(exc)) from None
            if secret:
                secret_keys.append(key)
        return StackConfig(values, secret_keys)

    def _config_key(self, raw: str, line: int | None) -> str:
        # sdk/go/common/resource/config/key.go ParseKey, after the loader namespaced keys without a colon.
        if ":" not in raw:
            return f"{self.project}:{raw}"
        parts = raw.split(":")
        if len(parts) == 2:
            return raw
        if len(parts) == 3 and parts[1] == "config":  # the old <namespace>:config:<name> form
            return f"{parts[0]}:{parts[2]}"
        raise self.fail(line, raw, "not a configuration key (expected <namespace>:<name>)")


# Go's YAML v3 (resolve.go, allowedTimestampFormats): what a plain scalar must look like to decode as a time.Time.
_TIMESTAMP_RE = re.compile(
    r"(?P<date>\d{4}-\d{1,2}-\d{1,2})"
    r"(?:(?:[Tt]|[ \t]+)(?P<time>\d{1,2}:\d{1,2}:\d{1,2})(?P<fraction>\.\d+)?"
    r"(?:[ \t]*(?P<zone>Z|[+-]\d{1,2}(?::\d{2})?))?)?"
)


def _timestamp(text: str) -> datetime.datetime | None:
    """A YAML timestamp as Go's YAML v3 parses it (UTC unless it names an offset), or None."""
    match = _TIMESTAMP_RE.fullmatch(text)
    if not match:
        return None
    # Go's layouts: a space-separated time takes no zone; a `T` one may name Z or an offset.
    if match["zone"] and not re.search(r"[Tt]", text):
        return None
    try:
        year, month, day = (int(part) for part in match["date"].split("-"))
        hour, minute, second = (int(part) for part in (match["time"] or "0:0:0").split(":"))
        micro = int((match["fraction"] or ".0")[1:7].ljust(6, "0"))
        zone = match["zone"]
        if zone in (None, "Z"):
            tz = datetime.UTC
        else:
            hours, _, minutes = zone[1:].partition(":")
            offset = datetime.timedelta(hours=int(hours), minutes=int(minutes or 0))
            tz = datetime.timezone(-offset if zone[0] == "-" else offset)
        return datetime.datetime(year, month, day, hour, minute, second, micro, tz)
    except ValueError:
        return None


def _go_time(value: datetime.datetime) -> str:
    """Go's time.Time.String(): "2006-01-02 15:04:05.999999999 -0700 MST" (an unnamed zone shows its offset)."""
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.strftime("%z")
    return f"{text} {offset} {'UTC' if value.utcoffset() == datetime.timedelta(0) else offset}"


def _resolve(text: str) -> Any:
    """A plain scalar as Go's YAML v3 resolves it without a tag."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if text[0] in "+-0123456789":
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return number
        if _YAML_FLOAT.fullmatch(plain):
            return float(plain)
    elif text[0] == "." and _YAML_FLOAT.fullmatch(text):
        return float(text)
    return _timestamp(text) or text


def _go_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 0, 64), then ParseUint: 0x, 0o, 0b and a leading 0 (octal) prefixes."""
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text[1:] if text[:1] == "+" else text)
    base = 10
    if digits[:2].lower() in ("0x", "0o", "0b"):
        base, digits = {"x": 16, "o": 8, "b": 2}[digits[1].lower()], digits[2:]
    elif len(digits) > 1 and digits[0] == "0":
        base, digits = 8, digits[1:]
    if not digits or not digits.isascii() or not digits.isalnum():
        return None
    try:
        value = sign * int(digits, base)
    except ValueError:
        return None
    if _INT64[0] <= value <= _INT64[1] or (sign > 0 and value <= _UINT64_MAX):
        return value
    return None


def _replace_secure(value: Any) -> tuple[Any, bool]:
    # config/value.go isSecureValue: a mapping of exactly one key, `secure`, holding a string.
    if isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str):
        return SECRET_PLACEHOLDER, True
    if isinstance(value, dict):
        items = {k: _replace_secure(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        pairs = [_replace_secure(v) for v in value]
        return [v for v, _ in pairs], any(s for _, s in pairs)
    return value, False


def _as_config_string(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(_as_go_json(value))
    return _go_text(value)


def _go_text(value: Any) -> str:
    """A plain value as YAML v3 writes it back and the CLI reads it again as a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_json_float(value) if math.isfinite(value) else _go_float_g(value)
    if isinstance(value, datetime.datetime):
        return _go_time(value)
    return str(value)


def _as_go_json(value: Any) -> Any:
    """A value as Go's encoding/json writes it: a whole float is written without a fraction, so it reads as an int."""
    if isinstance(value, dict):
        return {k: _as_go_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_go_json(v) for v in value]
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            raise ValueError(f"{_go_float_g(value)} cannot be passed to the program (JSON has no such number)")
        if value.is_integer() and abs(value) < 1e21:
            return int(value)
    if isinstance(value, datetime.datetime):
        return _go_time(value)
    return value


def _go_json_float(value: float) -> str:
    """A finite float as Go's encoding/json writes it: fixed notation unless it is below 1e-6 or from 1e21 on, then
    the shortest exponent form with at least one exponent digit ("1e-7", "1e+21")."""
    if value == 0 or 1e-6 <= abs(value) < 1e21:
        text = format(decimal.Decimal(repr(value)), "f")
        return text[:-2] if text.endswith(".0") else text
    mantissa, exponent = repr(value).replace("E", "e").split("e") if "e" in repr(value) else (repr(value), "0")
    mantissa = mantissa.removesuffix(".0")
    number = int(exponent)
    return f"{mantissa}e{'-' if number < 0 else '+'}{abs(number)}"


def _go_float_g(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 64), with YAML's spellings of infinity and NaN."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digit_tuple, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # the decimal point's position after the first `point` digits
    prefix = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:  # Go: %e when exp < -4 || exp >= eprec, which is 6 for the shortest form
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp = point - 1
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{prefix}{digits}{'0' * (point - len(digits))}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


def _what(node: _Node) -> str:
    if node.kind == "map":
        return "a mapping"
    if node.kind == "seq":
        return "a list"
    return f"the value {node.text!r}"
