"""Model tables for ``tools/codegen_rest.py``: msgspec Struct definitions built from
the spec's response schemas and the official client's model classes.

A struct is named after the official model class where one decodes that
object (``Agg``, ``TickerSnapshot``), so attribute names match the official
client's (``open`` for ``"o"``); objects the official client lacks get names
derived from where they appear. Every contribution to one name is merged:
``Agg`` is the union of the aggregate bars of every asset class, of the
snapshot ``day`` bars, and of the official ``Agg`` fields.
"""

from __future__ import annotations

import keyword
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from _official import ModelField, ModelInfo

# Names a field must not take: they are the types annotations refer to.
_RESERVED = frozenset(
    {"str", "int", "float", "bool", "list", "dict", "Any", "to_datetime", "timestamp_units"}
)
_UNIT_NAMES = ("timestamp", "window_start")
_NS_NAMES = frozenset({"last_updated", "updated"})


@dataclass(frozen=True)
class Ty:
    """A field type: a scalar, ``list``/``dict`` of a type, a struct, a union or ``Any``.

    ``unit`` marks an integer timestamp (``ns``, ``ms`` or ``s``).
    """

    kind: str
    args: tuple[Ty, ...] = ()
    name: str = ""
    unit: str | None = None

    def render(self) -> str:
        """The annotation text (without ``| None``)."""
        if self.kind in ("list", "dict"):
            inner = self.args[0].render()
            return f"list[{inner}]" if self.kind == "list" else f"dict[str, {inner}]"
        if self.kind == "struct":
            return self.name
        if self.kind == "union":
            return " | ".join(a.render() for a in self.args)
        return {"any": "Any"}.get(self.kind, self.kind)

    def json_schema(self, structs: Mapping[str, StructDef]) -> dict[str, Any]:
        """A JSON schema of this type, for the mock's synthesizer."""
        if self.kind == "list":
            return {"type": "array", "items": self.args[0].json_schema(structs)}
        if self.kind == "dict":
            return {"type": "object"}
        if self.kind == "struct":
            return structs[self.name].json_schema(structs)
        if self.kind == "union":
            return self.args[0].json_schema(structs)
        out: dict[str, Any] = {}
        kind = {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}
        if self.kind in kind:
            out["type"] = kind[self.kind]
        if self.unit:
            out["x-unit"] = self.unit
        return out


ANY = Ty("any")


def merge_types(a: Ty, b: Ty, where: str) -> Ty:
    """The narrowest type holding both ``a`` and ``b`` (``Any`` when they conflict)."""
    if a == b:
        return a
    if "any" in (a.kind, b.kind):
        return ANY
    if {a.kind, b.kind} == {"int", "float"}:
        unit = a.unit or b.unit
        return Ty("int", unit=unit) if unit else Ty("float")
    if a.kind == b.kind == "int":
        return Ty("int", unit=a.unit or b.unit)
    if a.kind == b.kind and a.kind in ("list", "dict"):
        return Ty(a.kind, (merge_types(a.args[0], b.args[0], where),))
    print(f"codegen_rest: {where}: {a.render()} vs {b.render()}: typed Any", file=sys.stderr)
    return ANY


@dataclass
class FieldDef:
    """One struct field: attribute name, wire key and type."""

    attr: str
    wire: str
    ty: Ty


@dataclass
class StructDef:
    """One generated struct, its fields keyed by wire name, in first-seen order."""

    name: str
    doc: str
    fields: dict[str, FieldDef] = field(default_factory=dict)

    def add(self, wire: str, attr: str, ty: Ty) -> None:
        """Add a field, or merge ``ty`` into the field already read from ``wire``."""
        if wire in self.fields:
            old = self.fields[wire]
            old.ty = merge_types(old.ty, ty, f"{self.name}.{old.attr}")
            return
        taken = {f.attr for f in self.fields.values()}
        if attr in taken:
            attr = safe_name(snake(wire))
            while attr in taken:
                attr += "_"
        self.fields[wire] = FieldDef(attr, wire, ty)

    def json_schema(self, structs: Mapping[str, StructDef]) -> dict[str, Any]:
        """A JSON schema of this struct (wire keys), for the mock's synthesizer."""
        props = {}
        for f in self.fields.values():
            schema = f.ty.json_schema(structs)
            fmt = _string_format(f.wire) if schema.get("type") == "string" else None
            props[f.wire] = {**schema, "format": fmt} if fmt else schema
        return {"type": "object", "properties": props}


def _string_format(name: str) -> str | None:
    """The format a string field's name implies (the official classes only say ``str``)."""
    if name == "date" or name.endswith("_date"):
        return "date"
    if name in ("last_updated", "published", "updated") or name.endswith(("_utc", "_at")):
        return "date-time"
    if name == "url" or name.endswith("_url"):
        return "uri"
    return None


def snake(name: str) -> str:
    """``todaysChangePerc`` → ``todays_change_perc``, ``isUTC`` → ``is_utc``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_").lower() or "field"


def safe_name(name: str) -> str:
    """A valid, unshadowing Python identifier for ``name``."""
    name = re.sub(r"[^0-9a-zA-Z_]", "_", name)
    if name[:1].isdigit():
        name = "n_" + name
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "_"
    return name


def camel(name: str) -> str:
    """``last_quote`` → ``LastQuote``, ``lastQuote`` → ``LastQuote``."""
    return "".join(part[:1].upper() + part[1:] for part in snake(name).split("_"))


def singular(name: str) -> str:
    """A crude singular for naming list items (``entities`` → ``entity``)."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("ses", "xes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


class ModelBuilder:
    """Collects :class:`StructDef` s from spec schemas and official model classes."""

    def __init__(
        self,
        official: Mapping[str, ModelInfo],
        renames: Mapping[str, Mapping[str, str]] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """
        Args:
            official: the official model classes, probed.
            renames: per struct, readable attribute names for terse wire keys
                the official class does not name.
            names: replacements for derived struct names (to share one struct).
        """
        self.official = official
        self.renames = renames or {}
        self.names = names or {}
        self.structs: dict[str, StructDef] = {}

    def _struct(self, name: str, doc: str) -> StructDef:
        if name not in self.structs:
            self.structs[name] = StructDef(name, doc)
        return self.structs[name]

    # --- from the spec (with the official class's names where it has one) -----------------

    def from_spec(
        self,
        name: str,
        schema: Mapping[str, Any],
        info: ModelInfo | None,
        doc: str,
        renames: Mapping[str, str] | None = None,
    ) -> Ty:
        """Register the object ``schema`` as struct ``name``; return its type."""
        name = self.names.get(name, name)
        struct = self._struct(name, doc)
        props: Mapping[str, Any] = schema.get("properties", {})
        renames = {**(renames or {}), **self.renames.get(name, {})}
        by_wire = {f.wire: f for f in info.fields if f.wire} if info else {}
        order = [f.wire for f in info.fields if f.wire] if info else []
        order += [w for w in props if w not in by_wire]
        for wire in order:
            of = by_wire.get(wire)
            attr = of.attr if of else safe_name(renames.get(wire) or snake(wire))
            if wire in props:
                ty = self._spec_type(props[wire], name, attr, of, renames)
            else:
                assert of is not None
                ty = self._official_type(of)
            struct.add(wire, attr, ty)
        return Ty("struct", name=name)

    def _spec_type(
        self,
        sub: Mapping[str, Any],
        parent: str,
        attr: str,
        of: ModelField | None,
        renames: Mapping[str, str],
    ) -> Ty:
        kind = sub.get("type")
        props = sub.get("properties")
        nested_info = self.official.get(of.model) if of and of.model else None
        if kind == "object" or props is not None:
            concrete = bool(props) and set(props) != {"*"}
            if nested_info is not None:
                if concrete:
                    doc = self._doc(parent, attr)
                    return self.from_spec(nested_info.name, sub, nested_info, doc)
                return self._official_with_wildcard(nested_info, (props or {}).get("*"))
            if not props:
                return Ty("dict", (ANY,))
            if not concrete:
                return Ty("dict", (self._spec_type(props["*"], parent, attr, None, renames),))
            return self.from_spec(parent + camel(attr), sub, None, self._doc(parent, attr), renames)
        if kind == "array":
            items = sub.get("items", {})
            if nested_info is not None and of is not None and of.is_list:
                if items.get("properties"):
                    doc = self._doc(parent, attr)
                    inner = self.from_spec(nested_info.name, items, nested_info, doc)
                else:
                    inner = self.from_official(nested_info.name)
                return Ty("list", (inner,))
            return Ty("list", (self._spec_type(items, parent, singular(attr), None, renames),))
        if kind is None and "oneOf" in sub:
            alts = [self._spec_type(a, parent, attr, None, renames) for a in sub["oneOf"]]
            scalars = [a for a in dict.fromkeys(alts) if a.kind in ("int", "float", "str", "bool")]
            return Ty("union", tuple(scalars)) if len(scalars) == len(alts) > 1 else ANY
        if kind is None:
            return ANY  # the spec leaves it untyped: accept whatever comes
        return self._scalar(kind, sub.get("x-unit"), of, attr)

    def _official_with_wildcard(self, info: ModelInfo, star: Mapping[str, Any] | None) -> Ty:
        """An official class whose fields the spec describes only as ``{"*": schema}``.

        The official class names the keys (``balance_sheet.assets``); the spec's
        wildcard schema describes each value, so it is merged into every nested
        struct field (a value the spec leaves untyped becomes ``Any``).
        """
        ty = self.from_official(info.name)
        if star and star.get("properties"):
            for f in info.fields:
                if f.model:
                    nested = self.official[f.model]
                    self.from_spec(f.model, star, nested, self._doc(info.name, f.attr))
        return ty

    def _scalar(self, kind: str, unit: str | None, of: ModelField | None, attr: str) -> Ty:
        if kind == "integer":
            # Snapshots' `updated` says only "the last updated timestamp": it is
            # nanoseconds, as `last_updated` (whose description says so) is.
            unit = unit or ("ns" if attr in _NS_NAMES else None)
            if unit:
                return Ty("int", unit=unit)
            official = self._official_type(of) if of is not None else None
            return Ty("float") if official == Ty("float") else Ty("int")
        return {"number": Ty("float"), "string": Ty("str"), "boolean": Ty("bool")}.get(kind, ANY)

    @staticmethod
    def _doc(parent: str, attr: str) -> str:
        return f"The ``{attr}`` object of :class:`{parent}`."

    # --- from the official model classes alone -------------------------------------------

    def from_official(self, name: str, doc: str | None = None) -> Ty:
        """Register official model class ``name`` (and those it nests) as structs."""
        info = self.official[name]
        fresh = name not in self.structs
        struct = self._struct(name, doc or f"A ``{name}`` record.")
        if fresh or not struct.fields:
            for f in info.fields:
                struct.add(f.wire or f.attr, f.attr, self._official_type(f))
        return Ty("struct", name=name)

    def _official_type(self, f: ModelField) -> Ty:
        if f.model:
            inner = self.from_official(f.model, f"A ``{f.model}`` record.")
            return Ty("list", (inner,)) if f.is_list else inner
        return self._annotation(f.annotation, f.attr)

    def _annotation(self, ann: Any, attr: str) -> Ty:
        origin = typing.get_origin(ann)
        if origin is typing.Union:
            parts = [self._annotation(a, attr) for a in typing.get_args(ann) if a is not type(None)]
            unique = list(dict.fromkeys(parts))
            if len(unique) == 1:
                return unique[0]
            return Ty("union", tuple(unique)) if all(p.kind != "any" for p in unique) else ANY
        if origin is list:
            args = typing.get_args(ann)
            return Ty("list", (self._annotation(args[0], attr) if args else ANY,))
        if origin is dict or ann is dict:
            return Ty("dict", (ANY,))
        if ann is int:
            unit = "ns" if any(u in attr for u in _UNIT_NAMES) or attr in _NS_NAMES else None
            return Ty("int", unit=unit)
        if ann in (float, str, bool):
            return Ty(ann.__name__)
        return ANY
