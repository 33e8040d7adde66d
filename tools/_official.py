"""Facts about the official ``massive`` REST client, learned by introspection.

Used only by ``tools/codegen_rest.py`` at generation time (the official
client is a dev dependency; nothing generated imports it). For every public
method of ``massive.RESTClient`` (and of its ``vx`` client) this module reads:

* the signature: parameter names, order, defaults and annotations;
* from the source (parsed with :mod:`ast`, never executed): the URL template,
  whether it pages (``_paginate``) or not (``_get``), the result key and the
  model class that decodes each result;
* from the model classes: their fields and annotations, and, by running each
  ``from_dict`` on a recording :class:`_Probe`, which wire key feeds which
  attribute (``Agg.open`` is read from ``"o"``), including nested models.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import keyword
import textwrap
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# --- the recording probe -----------------------------------------------------------------


class _Probe:
    """A stand-in for a decoded JSON object that remembers where each value was read.

    ``from_dict`` implementations use ``d.get(k)``, ``d[k]``, ``k in d``,
    ``**d`` and iteration; each answers with another probe whose ``path``
    says which wire keys led to it.
    """

    vocabulary: tuple[str, ...] = ()

    def __init__(self, path: tuple[str, ...] = ()) -> None:
        self.path = path

    def get(self, key: str, default: Any = None) -> _Probe:
        return _Probe((*self.path, key))

    def __getitem__(self, key: str) -> _Probe:
        return _Probe((*self.path, key))

    def __contains__(self, key: object) -> bool:
        return True

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[_Probe]:
        yield _Probe((*self.path, "[]"))

    def keys(self) -> tuple[str, ...]:
        # `Model(**d)`: offer every attribute name any model has; the official
        # model __init__ ignores names it does not declare.
        return self.vocabulary


@dataclass
class ModelField:
    """One attribute of an official model class.

    Attributes:
        attr: the attribute name.
        wire: the JSON key it is read from (``None`` when it is not read from
            a direct key: flattened from a nested object, or never read).
        annotation: the resolved type annotation.
        model: the nested official model class name, if the value is one.
        is_list: the value is a list of ``model``.
    """

    attr: str
    wire: str | None
    annotation: Any
    model: str | None = None
    is_list: bool = False


@dataclass
class ModelInfo:
    """An official model class: its name and fields in declaration order."""

    name: str
    fields: list[ModelField] = field(default_factory=list)


def _model_classes() -> dict[str, type]:
    import importlib
    import pkgutil

    from massive.rest import models

    out: dict[str, type] = {}
    for sub in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"{models.__name__}.{sub.name}")
        for name, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and obj.__module__ == module.__name__
                and dataclasses.is_dataclass(obj)
                and hasattr(obj, "from_dict")
            ):
                out[name] = obj
    return out


def _first_probe(value: Any) -> tuple[str, ...] | None:
    """The path of some probe inside a decoded value (a model, list or probe)."""
    if isinstance(value, _Probe):
        return value.path
    if isinstance(value, list):
        for item in value:
            found = _first_probe(item)
            if found is not None:
                return found
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            found = _first_probe(getattr(value, f.name, None))
            if found is not None:
                return found
    return None


def _probe_model(cls: type, classes: dict[str, type]) -> ModelInfo:
    hints = typing.get_type_hints(cls)
    decoded = cls.from_dict(_Probe())  # type: ignore[attr-defined]
    info = ModelInfo(cls.__name__)
    for f in dataclasses.fields(cls):
        value = getattr(decoded, f.name, None)
        nested, is_list = _nested_model(hints.get(f.name), classes)
        wire = _wire_key(value)
        if wire == f.name and wire.endswith("_") and keyword.iskeyword(wire[:-1]):
            wire = wire[:-1]  # `from_=d.get("from_")` can only have meant the key "from"
        info.fields.append(ModelField(f.name, wire, hints.get(f.name), nested, is_list))
    return info


def _wire_key(value: Any) -> str | None:
    """The JSON key an attribute was read from, when it was read from a direct key."""
    if isinstance(value, _Probe):
        return value.path[0] if len(value.path) == 1 else None  # else: flattened
    path = _first_probe(value)
    if not path or len(path) < 2:
        return None
    if isinstance(value, list) and path[1] != "[]":
        return None
    return path[0]


def _nested_model(annotation: Any, classes: dict[str, type]) -> tuple[str | None, bool]:
    """(model class name, is a list) when ``annotation`` names an official model."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    target = args[0] if typing.get_origin(annotation) is typing.Union and args else annotation
    is_list = typing.get_origin(target) is list
    if is_list:
        target = typing.get_args(target)[0]
    if isinstance(target, type) and target.__name__ in classes:
        return target.__name__, is_list
    return None, False


def official_models() -> dict[str, ModelInfo]:
    """Every official model class with a ``from_dict``, probed."""
    classes = _model_classes()
    vocabulary: set[str] = set()
    for cls in classes.values():
        vocabulary.update(f.name for f in dataclasses.fields(cls))
    _Probe.vocabulary = tuple(sorted(vocabulary))
    return {name: _probe_model(cls, classes) for name, cls in sorted(classes.items())}


# --- methods -----------------------------------------------------------------------------


@dataclass
class MethodParam:
    """One parameter of an official method, with its resolved annotation."""

    name: str
    annotation: Any
    required: bool
    default: Any = None


@dataclass
class MethodInfo:
    """What an official REST method does.

    Attributes:
        name: the method name (``list_trades``).
        params: parameters after ``self``, in order.
        url: the URL template with the method's own variable names (``/v3/trades/{ticker}``).
        paginated: it follows ``next_url`` (``_paginate``) rather than fetching once.
        key: the body field holding the result (``None``: the whole body).
        model: the official model class decoding each result.
        query_from_signature: it sends its defaulted parameters as the query
            (``_get_params``) rather than only ``params``.
        vx: it lives on ``RESTClient.vx``.
    """

    name: str
    params: list[MethodParam]
    url: str
    paginated: bool
    key: str | None
    model: str
    query_from_signature: bool
    vx: bool = False


def _template(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name):
                parts.append("{" + value.value.id + "}")
            else:
                raise ValueError(f"unsupported URL piece {ast.dump(value)}")
        return "".join(parts)
    raise ValueError(f"unsupported URL expression {ast.dump(node)}")


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "self"
            and node.func.attr in ("_get", "_paginate")
        ):
            yield node


def _method_info(name: str, func: Any, vx: bool) -> MethodInfo:
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    url = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["url"]:
            url = _template(node.value)
    (call,) = list(_calls(tree))
    kwargs = {k.arg: k.value for k in call.keywords if k.arg}
    paginated = isinstance(call.func, ast.Attribute) and call.func.attr == "_paginate"
    key_node = kwargs.get("result_key")
    key = key_node.value if isinstance(key_node, ast.Constant) else None
    if paginated and key_node is None:
        key = "results"  # _paginate's default
    deserializer = kwargs["deserializer"]
    if not (isinstance(deserializer, ast.Attribute) and isinstance(deserializer.value, ast.Name)):
        raise ValueError(f"{name}: unsupported deserializer {ast.unparse(deserializer)}")
    params_node = kwargs.get("params")
    from_signature = isinstance(params_node, ast.Call) and "_get_params" in ast.unparse(params_node)
    if url is None:
        raise ValueError(f"{name}: no url assignment")
    hints = typing.get_type_hints(func)
    params = [
        MethodParam(p.name, hints.get(p.name, Any), p.default is p.empty, _plain(p.default))
        for p in list(inspect.signature(func).parameters.values())[1:]
    ]
    return MethodInfo(
        name=name,
        params=params,
        url=url,
        paginated=paginated,
        key=key or None,
        model=deserializer.value.id,
        query_from_signature=from_signature,
        vx=vx,
    )


def _plain(value: Any) -> Any:
    if value is inspect.Parameter.empty:
        return None
    return value.value if isinstance(value, Enum) else value


GENERIC_METHODS = frozenset({"time_mult"})
"""Public names of the official client that are helpers, not endpoints."""


def official_methods() -> dict[str, MethodInfo]:
    """Every endpoint method of ``massive.RESTClient`` and ``RESTClient.vx``, by name."""
    from massive import RESTClient
    from massive.rest.vX import VXClient

    out: dict[str, MethodInfo] = {}
    for owner, vx in ((RESTClient, False), (VXClient, True)):
        for name in sorted(dir(owner)):
            if name.startswith("_") or name in GENERIC_METHODS:
                continue
            func = getattr(owner, name)
            if not callable(func) or name in out:
                continue
            if vx and hasattr(RESTClient, name):
                continue
            out[name] = _method_info(name, func, vx)
    return out
