"""Generate the mock server's REST endpoint table from the pinned Massive OpenAPI document.

Usage::

    python tools/codegen_mock.py [--spec-dir DIR] [--out FILE]

``DIR`` defaults to ``$MASSIVEKIT_SPEC_DIR``. The spec files are checked against
``SHA256SUMS`` before anything is read: a changed or corrupted spec must be
noticed, not silently turned into code. The output
(``src/massivekit/mock/_rest_endpoints.py``) is committed, so a fresh clone runs
the mock without the spec; ``tests/unit/test_codegen_mock.py`` regenerates it
and compares.

The table keeps what a mock needs to answer like the real service: every path
(``x-massive-ignore`` twins included, flagged), its parameters, its pagination
defaults, and the 200 response schema with every ``$ref`` inlined, ``allOf``
merged and prose dropped. Timestamp fields gain ``x-unit`` (``ns``/``ms``/``s``),
read from their descriptions, because the type alone (``integer``) does not say
whether a value is milliseconds or nanoseconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

SPEC_ENV = "MASSIVEKIT_SPEC_DIR"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "src" / "massivekit" / "mock" / "_rest_endpoints.py"
LINE_LENGTH = 100
INDENT = "    "

# Schema keywords that shape data; everything else (prose, examples, vendor
# extensions for Go codegen) is dropped to keep the table small.
_KEEP = ("type", "format", "enum", "nullable", "minimum", "maximum", "pattern")


class SpecError(Exception):
    """The spec directory is missing, incomplete, or fails its checksums."""


def verify_checksums(spec_dir: Path) -> dict[str, str]:
    """Check every file named in ``SHA256SUMS``; return ``{file name: digest}``.

    Raises:
        SpecError: a file is missing or its digest differs.
    """
    sums = spec_dir / "SHA256SUMS"
    if not sums.is_file():
        raise SpecError(f"{sums} is missing")
    digests: dict[str, str] = {}
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        name = name.strip().lstrip("*")
        path = spec_dir / name
        if not path.is_file():
            raise SpecError(f"{path} named in SHA256SUMS is missing")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            raise SpecError(f"{path} does not match SHA256SUMS ({actual} != {digest})")
        digests[name] = digest
    if "rest.json" not in digests:
        raise SpecError(f"{sums} does not pin rest.json")
    return digests


# --- schema resolution -------------------------------------------------------------------


class _Resolver:
    """Inline ``$ref``s, merge ``allOf``, fold ``anyOf`` into ``oneOf``, drop prose."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._spec = spec
        self._stack: list[str] = []

    def _lookup(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise SpecError(f"external $ref {ref!r} is not supported")
        node: Any = self._spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def deref(self, node: Any) -> Any:
        """Follow ``$ref`` chains at the top of ``node`` (not inside it)."""
        while isinstance(node, dict) and "$ref" in node:
            node = self._lookup(node["$ref"])
        return node

    def resolve(self, node: Any) -> dict[str, Any]:
        """Return a trimmed, self-contained copy of the schema ``node``."""
        if not isinstance(node, dict):
            return {}
        if "$ref" in node:
            ref = node["$ref"]
            if ref in self._stack:
                return {}  # a recursive schema: accept anything below this depth
            self._stack.append(ref)
            try:
                return self.resolve(self._lookup(ref))
            finally:
                self._stack.pop()
        if "allOf" in node:
            merged: dict[str, Any] = {}
            for part in node["allOf"]:
                _merge(merged, self.resolve(part))
            rest = {k: v for k, v in node.items() if k != "allOf"}
            _merge(merged, self.resolve(rest))
            _add_unit(merged, _descriptions(node, self))
            return merged
        return self._resolve_plain(node)

    def _resolve_plain(self, node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {k: node[k] for k in _KEEP if k in node}
        if "enum" in out:
            out["enum"] = list(out["enum"])
        if isinstance(node.get("properties"), dict):
            out["properties"] = {
                name: self.resolve(sub) for name, sub in sorted(node["properties"].items())
            }
            out.setdefault("type", "object")
        if node.get("required"):
            out["required"] = list(dict.fromkeys(node["required"]))
        if "items" in node:
            out["items"] = self.resolve(node["items"])
            out.setdefault("type", "array")
        alternatives = [*node.get("oneOf", ()), *node.get("anyOf", ())]
        if alternatives:
            out["oneOf"] = [self.resolve(alt) for alt in alternatives]
        _add_unit(out, _descriptions(node, self))
        return out


def _descriptions(node: Mapping[str, Any], resolver: _Resolver) -> str:
    texts = [str(node.get("description", ""))]
    for part in node.get("allOf", ()):
        texts.append(str(resolver.deref(part).get("description", "")))
    go_type = node.get("x-massive-go-type")
    if isinstance(go_type, dict):
        texts.append(str(go_type.get("name", "")))
    return " ".join(texts).lower()


def _add_unit(schema: dict[str, Any], text: str) -> None:
    """Record the unit of an integer/number timestamp, taken from its description.

    The description is the only reliable source: the Go type names disagree with
    it (indicator timestamps are typed ``IMicroseconds`` but documented, and
    served, as Unix milliseconds).
    """
    if schema.get("type") not in ("integer", "number") or "x-unit" in schema:
        return
    if "nanosecond" in text:
        schema["x-unit"] = "ns"
    elif "msec" in text or "millisecond" in text:
        schema["x-unit"] = "ms"
    elif "inanoseconds" in text:
        schema["x-unit"] = "ns"
    elif "imilliseconds" in text or "imicroseconds" in text:
        schema["x-unit"] = "ms"
    elif "unix" in text and "timestamp" in text:
        schema["x-unit"] = "s"


def _merge(into: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if key == "properties":
            props = into.setdefault("properties", {})
            for name, sub in value.items():
                if name in props:
                    _merge(props[name], sub)
                else:
                    props[name] = sub
            into["properties"] = dict(sorted(props.items()))
        elif key == "required":
            into["required"] = list(dict.fromkeys([*into.get("required", []), *value]))
        else:
            into.setdefault(key, value)
    if "properties" in into:
        # Some allOf lists start with a bare `status` string schema and continue
        # with the object that holds it: the object is what the service sends.
        into["type"] = "object"
        for key in ("format", "x-unit"):
            into.pop(key, None)


# --- endpoint extraction -----------------------------------------------------------------


def _operation_id(method: str, path: str, op: Mapping[str, Any]) -> str:
    """The spec's operationId, or the spec's own fallback naming (``get_v2_x__p_``)."""
    if op.get("operationId"):
        return str(op["operationId"])
    slug = path.replace("/", "_").replace("{", "_").replace("}", "_").replace(".", "_")
    return f"{method}{slug}".rstrip("_")


def _param(resolver: _Resolver, raw: Any) -> dict[str, Any]:
    param = resolver.deref(raw)
    schema = resolver.resolve(param.get("schema", {}))
    out: dict[str, Any] = {
        "name": param["name"],
        "location": param["in"],
        "type": schema.get("type") or _alt_type(schema),
    }
    if param.get("required"):
        out["required"] = True
    if schema.get("enum"):
        out["enum"] = tuple(str(v) for v in schema["enum"])
    raw_schema = resolver.deref(param.get("schema", {}))
    if "default" in raw_schema:
        out["default"] = raw_schema["default"]
    for bound in ("minimum", "maximum"):
        if bound in schema:
            out[bound] = schema[bound]
    return out


def _alt_type(schema: Mapping[str, Any]) -> str:
    for alt in schema.get("oneOf", ()):
        if alt.get("type"):
            return str(alt["type"])
    return "string"


def _paginate(op: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = op.get("x-massive-paginate")
    if not isinstance(raw, dict):
        return None
    out: dict[str, Any] = {}
    limit = raw.get("limit") or {}
    if "default" in limit:
        out["limit_default"] = limit["default"]
    if "max" in limit:
        out["limit_max"] = limit["max"]
    if "default" in (raw.get("order") or {}):
        out["order_default"] = raw["order"]["default"]
    sort = raw.get("sort") or {}
    if "default" in sort:
        out["sort_default"] = sort["default"]
    if sort.get("enum"):
        out["sort_enum"] = tuple(sort["enum"])
    return out


def _response(resolver: _Resolver, op: Mapping[str, Any]) -> dict[str, Any]:
    ok = resolver.deref(op.get("responses", {}).get("200", {}))
    content = ok.get("content", {}).get("application/json", {})
    return resolver.resolve(content.get("schema", {}))


def extract(spec: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return ``(endpoints, schemas)``: one row per path+method, and the distinct schemas.

    Each endpoint row names its response schema by index into ``schemas``, so
    twin paths (one per asset class) share one literal.
    """
    resolver = _Resolver(spec)
    endpoints: list[dict[str, Any]] = []
    schemas: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for path, item in sorted(spec["paths"].items()):
        shared = [resolver.deref(p) for p in item.get("parameters", ())]
        for method in ("get", "post", "put", "delete", "patch"):
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            schema = _response(resolver, op)
            key = json.dumps(schema, sort_keys=True)
            if key not in index:
                index[key] = len(schemas)
                schemas.append(schema)
            names = {p["name"] for p in op.get("parameters", ()) if "name" in p}
            params = [_param(resolver, p) for p in op.get("parameters", ())]
            params += [_param(resolver, p) for p in shared if p["name"] not in names]
            endpoints.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "operation_id": _operation_id(method, path, op),
                    "ignored": bool(item.get("x-massive-ignore") or op.get("x-massive-ignore")),
                    "params": params,
                    "paginate": _paginate(op),
                    "response": index[key],
                }
            )
    return endpoints, schemas


# --- rendering (output is already `ruff format` clean) ------------------------------------


class _Name(str):
    """A bare identifier inside a rendered literal (a reference to a schema constant)."""

    __slots__ = ()


def _literal(value: Any) -> str:
    if isinstance(value, _Name):
        return str(value)
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are valid Python; double quotes are ruff's style.
        return json.dumps(value)
    raise TypeError(f"cannot render {type(value).__name__}")


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, tuple):
        if len(value) == 1:
            return f"({_flat(value[0])},)"
        return "(" + ", ".join(_flat(v) for v in value) + ")"
    if isinstance(value, _Call):
        return value.flat()
    return _literal(value)


class _Call:
    """A constructor call rendered like a literal: ``Name(a=1, b=2)``."""

    def __init__(self, name: str, kwargs: Mapping[str, Any]) -> None:
        self.name = name
        self.kwargs = kwargs

    def flat(self) -> str:
        args = ", ".join(f"{k}={_flat(v)}" for k, v in self.kwargs.items())
        return f"{self.name}({args})"


def _render(value: Any, prefix: str, suffix: str, depth: int) -> Iterator[str]:
    """Yield lines for ``prefix + value + suffix``, exploding what does not fit."""
    indent = INDENT * depth
    flat = _flat(value)
    empty = isinstance(value, dict | list | tuple) and not value
    if empty or not isinstance(value, dict | list | tuple | _Call):
        yield f"{indent}{prefix}{flat}{suffix}"
        return
    if len(indent) + len(prefix) + len(flat) + len(suffix) <= LINE_LENGTH:
        yield f"{indent}{prefix}{flat}{suffix}"
        return
    if isinstance(value, dict):
        opener, closer = "{", "}"
        items = [(f"{_literal(k)}: ", v) for k, v in value.items()]
    elif isinstance(value, _Call):
        opener, closer = f"{value.name}(", ")"
        items = [(f"{k}=", v) for k, v in value.kwargs.items()]
    else:
        opener, closer = ("[", "]") if isinstance(value, list) else ("(", ")")
        items = [("", v) for v in value]
    yield f"{indent}{prefix}{opener}"
    for item_prefix, item in items:
        yield from _render(item, item_prefix, ",", depth + 1)
    yield f"{indent}{closer}{suffix}"


_HEADER = '''\
# generated by tools/codegen_mock.py from rest.json sha256 {digest}; do not edit  # noqa: E501
"""The Massive REST endpoints, as the mock server serves them.

One :class:`EndpointSpec` per path and method of the pinned OpenAPI document,
``x-massive-ignore`` twins included (flagged ``ignored``). ``response`` is the
200 JSON schema with every ``$ref`` inlined and prose dropped; timestamp fields
carry ``x-unit`` (``ns``, ``ms`` or ``s``). Regenerate with
``python tools/codegen_mock.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

SPEC_SHA256: Final = "{digest}"


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter: where it travels (``path``/``query``) and what it accepts."""

    name: str
    location: str
    type: str
    required: bool = False
    enum: tuple[str, ...] = ()
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True, slots=True)
class Paginate:
    """The ``x-massive-paginate`` defaults of a list endpoint."""

    limit_default: int | None = None
    limit_max: int | None = None
    order_default: str | None = None
    sort_default: str | None = None
    sort_enum: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One REST operation: method, path template, parameters and 200 response schema."""

    method: str
    path: str
    operation_id: str
    ignored: bool
    params: tuple[ParamSpec, ...]
    paginate: Paginate | None
    response: dict[str, Any] = field(hash=False, compare=False)
'''


def render(endpoints: list[dict[str, Any]], schemas: list[dict[str, Any]], digest: str) -> str:
    """Return the text of the generated module."""
    lines = [_HEADER.format(digest=digest)]
    for i, schema in enumerate(schemas):
        lines.append("")
        lines.extend(_render(schema, f"_R{i}: Final[dict[str, Any]] = ", "", 0))
    rows = []
    for ep in endpoints:
        kwargs = {k: v for k, v in ep.items() if k not in ("params", "paginate", "response")}
        kwargs["params"] = tuple(_Call("ParamSpec", p) for p in ep["params"])
        kwargs["paginate"] = _Call("Paginate", ep["paginate"]) if ep["paginate"] else None
        kwargs["response"] = _Name(f"_R{ep['response']}")
        rows.append(_Call("EndpointSpec", kwargs))
    lines.append("")
    lines.extend(_render(tuple(rows), "ENDPOINTS: Final[tuple[EndpointSpec, ...]] = ", "", 0))
    return "\n".join(lines) + "\n"


def generate(spec_dir: Path) -> str:
    """Verify the spec checksums, then return the generated module text.

    Raises:
        SpecError: the spec is missing or does not match ``SHA256SUMS``.
    """
    digests = verify_checksums(spec_dir)
    spec = json.loads((spec_dir / "rest.json").read_bytes())
    endpoints, schemas = extract(spec)
    return render(endpoints, schemas, digests["rest.json"])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec-dir", type=Path, default=None, help=f"default: ${SPEC_ENV}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    spec_dir = args.spec_dir or (Path(os.environ[SPEC_ENV]) if os.environ.get(SPEC_ENV) else None)
    if spec_dir is None:
        parser.error(f"pass --spec-dir or set {SPEC_ENV}")
    try:
        text = generate(spec_dir)
    except SpecError as exc:
        print(f"codegen_mock: refusing to generate: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(text)
    print(f"codegen_mock: wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
