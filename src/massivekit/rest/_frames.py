"""Lists of model Structs to Arrow, pandas or polars tables, built by column.

A table is built in two steps: one pass over the items turns each into a
tuple of its field values (``msgspec.structs.astuple``, in C), one transpose
gives a list per field, and each library then builds every column from one
list at once, never row by row. Nested Structs (a snapshot's ``day`` bar)
become plain dicts keyed by attribute name (:func:`as_plain`), which each
library turns into a struct column.

pyarrow, pandas and polars are optional (``pip install 'massivekit[arrow]'``,
``[pandas]``, ``[polars]``): each is imported only when its helper is called,
and a missing one raises :class:`MissingDependency`, which is both a
:class:`~massivekit.errors.ConfigError` and an :class:`ImportError`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import msgspec

from massivekit.errors import ConfigError

__all__ = ["MissingDependency", "as_plain", "columns", "to_arrow", "to_pandas", "to_polars"]


class MissingDependency(ConfigError, ImportError):
    """An optional library a helper needs is not installed."""


def _require(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"this needs {module}: pip install 'massivekit[{extra}]' (or {module} itself)"
        ) from exc


def columns(items: Sequence[Any]) -> dict[str, list[Any]]:
    """Field name to the list of that field's values, in field order.

    Args:
        items: Structs, all of one type (else each is read as a dict, in a slower path).

    Returns:
        One list per field; ``{}`` for no items.
    """
    if not items:
        return {}
    kind = type(items[0])
    if isinstance(items[0], msgspec.Struct) and all(type(x) is kind for x in items):
        names: Sequence[str] = kind.__struct_fields__
        rows = list(map(msgspec.structs.astuple, items))
    else:
        dicts = [_as_dict(x) for x in items]
        names = list(dict.fromkeys(name for d in dicts for name in d))
        rows = [tuple(d.get(name) for name in names) for d in dicts]
    transposed = zip(*rows, strict=True)
    return {name: _plain(list(values)) for name, values in zip(names, transposed, strict=True)}


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, msgspec.Struct):
        return {name: getattr(item, name) for name in item.__struct_fields__}
    return dict(item)


def _plain(values: list[Any]) -> list[Any]:
    # Only columns holding Structs (nested models) need converting; most hold scalars.
    sample = (v for v in values[:64] if v is not None)
    if any(_holds_struct(v) for v in sample):
        return [as_plain(v) for v in values]
    return values


def _holds_struct(value: Any) -> bool:
    if isinstance(value, msgspec.Struct):
        return True
    return isinstance(value, list | tuple) and any(isinstance(v, msgspec.Struct) for v in value)


def as_plain(value: Any) -> Any:
    """``value`` with every Struct, however nested, as a dict keyed by attribute name.

    ``msgspec.to_builtins`` would key them by wire name (``o`` for ``open``);
    tables and the command line show the readable names.
    """
    if isinstance(value, msgspec.Struct):
        return {name: as_plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, list | tuple):
        return [as_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    return value


def to_arrow(items: Sequence[Any]) -> Any:
    """A :class:`pyarrow.Table` of ``items``, one column per field.

    Raises:
        MissingDependency: pyarrow is not installed.
    """
    pa = _require("pyarrow", "arrow")
    return pa.Table.from_pydict(columns(items))


def to_pandas(items: Sequence[Any]) -> Any:
    """A :class:`pandas.DataFrame` of ``items``, one column per field.

    Raises:
        MissingDependency: pandas is not installed.
    """
    pd = _require("pandas", "pandas")
    return pd.DataFrame(columns(items))


def to_polars(items: Sequence[Any]) -> Any:
    """A :class:`polars.DataFrame` of ``items``, one column per field.

    Raises:
        MissingDependency: polars is not installed.
    """
    pl = _require("polars", "polars")
    return pl.DataFrame(columns(items), strict=False)
