"""A small validator for the trimmed JSON schemas of the generated endpoint table.

It understands exactly the keywords the generator keeps (``type``,
``properties``, ``required``, ``items``, ``enum``, ``format``, ``oneOf``,
``nullable``, ``minimum``, ``maximum``, ``pattern``), which is enough to hold
the mock's answers to the spec without a third-party dependency.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any, Final

_INT_RANGES: Final = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def validate_value(schema: Mapping[str, Any], value: Any, where: str = "$") -> list[str]:
    """Return every way ``value`` breaks ``schema`` (empty when it is valid).

    Args:
        schema: a resolved schema (``ENDPOINTS[i].response`` or a part of one).
        value: decoded JSON.
        where: the JSON path reported in messages.
    """
    return list(_errors(schema, value, where))


def _errors(schema: Mapping[str, Any], value: Any, where: str) -> Iterator[str]:
    if value is None and schema.get("nullable"):
        return
    if "oneOf" in schema and "type" not in schema:
        if not any(not validate_value(alt, value, where) for alt in schema["oneOf"]):
            yield f"{where}: matches none of oneOf"
        return
    kind = schema.get("type")
    if kind is not None and not _is_type(kind, value):
        yield f"{where}: expected {kind}, got {type(value).__name__} {value!r:.60}"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{where}: {value!r} not in enum {schema['enum']}"
    yield from _scalar_errors(schema, value, where)
    if isinstance(value, dict):
        yield from _object_errors(schema, value, where)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from _errors(schema["items"], item, f"{where}[{i}]")


def _is_type(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    checks: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "boolean": bool,
        "object": dict,
        "array": list,
    }
    expected = checks.get(kind)
    return expected is None or isinstance(value, expected)


def _scalar_errors(schema: Mapping[str, Any], value: Any, where: str) -> Iterator[str]:
    fmt = schema.get("format")
    if isinstance(value, str):
        if fmt == "date" and not _parses(date.fromisoformat, value):
            yield f"{where}: {value!r} is not a date"
        if fmt == "date-time" and not _parses(datetime.fromisoformat, value.replace("Z", "+00:00")):
            yield f"{where}: {value!r} is not a date-time"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield f"{where}: {value!r} does not match {schema['pattern']}"
    if isinstance(value, int) and not isinstance(value, bool) and fmt in _INT_RANGES:
        low, high = _INT_RANGES[fmt]
        if not low <= value <= high:
            yield f"{where}: {value} is out of {fmt} range"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield f"{where}: {value} < minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield f"{where}: {value} > maximum {schema['maximum']}"


def _object_errors(schema: Mapping[str, Any], value: dict[str, Any], where: str) -> Iterator[str]:
    for name in schema.get("required", ()):
        if name not in value:
            yield f"{where}: missing required {name!r}"
    props: Mapping[str, Any] = schema.get("properties", {})
    wildcard = props.get("*")
    for name, item in value.items():
        sub = props.get(name, wildcard)
        if sub is not None:
            yield from _errors(sub, item, f"{where}.{name}")


def _parses(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True
