"""Generate the REST client's models and endpoint methods from the spec and the official client.

Usage::

    python tools/codegen_rest.py [--spec-dir DIR] [--out-dir DIR]

``DIR`` defaults to ``$MASSIVEKIT_SPEC_DIR``; ``SHA256SUMS`` is checked before
anything is read, and a mismatch refuses to generate. The output is committed
(a fresh clone needs neither the spec nor the generator):

* ``src/massivekit/rest/_models.py``: msgspec Structs for every result;
* ``src/massivekit/rest/_endpoints.py``: the async mixin, one typed method per
  endpoint, and the ``ENDPOINTS`` table;
* ``src/massivekit/rest/_endpoints_sync.py``: the same methods, blocking;
* ``src/massivekit/mock/_rest_extra_endpoints.py``: the endpoint families
  beyond the spec, as rows the mock server serves.

Two sources, one result. Every path of ``rest.json`` becomes a method (the
``x-massive-ignore`` twins, ``/v3/trades/{optionsTicker}`` and the like, are
served by the asset-agnostic method of their shape). Where the official
``massive`` client has the endpoint, the method takes its name and its
parameters, in its order, with its defaults, and the models take its attribute
names; parameters the spec adds come after, keyword-only. The families the
official client has beyond the spec (futures, Benzinga, ETF Global, economy,
TMX, filings, short interest...) are generated from its signatures and model
classes alone. The official client is imported here, at generation time only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _official import MethodInfo, official_methods, official_models
from _rest_models import ModelBuilder, safe_name, snake
from _rest_render import PACKAGE, render_all
from _spec import SpecIndex, result_schema
from codegen_mock import SpecError, extract, verify_checksums

SPEC_ENV = "MASSIVEKIT_SPEC_DIR"
OUT_DIR = PACKAGE
OUTPUTS = {
    "models": Path("rest/_models.py"),
    "endpoints": Path("rest/_endpoints.py"),
    "endpoints_sync": Path("rest/_endpoints_sync.py"),
    "mock": Path("mock/_rest_extra_endpoints.py"),
}
SPECIAL = ("params", "raw", "options")
_SUFFIXES = ("_lte", "_lt", "_gte", "_gt", "_any_of", "_all_of")


@dataclass(frozen=True)
class SpecOnly:
    """How to name a spec path the official client lacks.

    Attributes:
        name: the method name, in the official client's style.
        model: the struct of each result.
        key: the body field holding the result (``None``: the whole body).
        renames: readable names for terse wire keys of its objects.
        like: an official model class whose attribute names the struct borrows.
    """

    name: str
    model: str
    key: str | None
    renames: Mapping[str, str] = field(default_factory=dict)
    like: str | None = None


_TICK = {"c": "conditions", "i": "id", "p": "price", "s": "size", "t": "timestamp", "x": "exchange"}
_FX_TICK = {"a": "ask", "b": "bid", "t": "timestamp", "x": "exchange"}

SPEC_ONLY: Mapping[str, SpecOnly] = {
    "/v1/historic/crypto/{from}/{to}/{date}": SpecOnly(
        "get_historic_crypto_trades", "HistoricCryptoTrade", "ticks", _TICK
    ),
    "/v1/historic/forex/{from}/{to}/{date}": SpecOnly(
        "get_historic_forex_quotes", "HistoricForexQuote", "ticks", _FX_TICK
    ),
    "/v1/open-close/crypto/{from}/{to}/{date}": SpecOnly(
        "get_crypto_daily_open_close_agg", "CryptoDailyOpenCloseAgg", None, _TICK
    ),
    "/v1/reference/sec/filings": SpecOnly("list_sec_filings", "SecFiling", "results"),
    "/v1/reference/sec/filings/{filing_id}": SpecOnly("get_sec_filing", "SecFiling", "results"),
    "/v1/reference/sec/filings/{filing_id}/files": SpecOnly(
        "list_sec_filing_files", "SecFilingFile", "results"
    ),
    "/v1/reference/sec/filings/{filing_id}/files/{file_id}": SpecOnly(
        "get_sec_filing_file", "SecFilingFile", None
    ),
    "/v2/ticks/stocks/trades/{ticker}/{date}": SpecOnly(
        "get_historic_trades", "HistoricTrade", "results", like="LastTrade"
    ),
    "/v2/ticks/stocks/nbbo/{ticker}/{date}": SpecOnly(
        "get_historic_quotes", "HistoricQuote", "results", like="LastQuote"
    ),
    "/vX/reference/tickers/taxonomies": SpecOnly(
        "list_ticker_taxonomies", "TickerTaxonomy", "results"
    ),
}
"""The spec paths the official client has no method for."""

STRUCT_RENAMES: Mapping[str, Mapping[str, str]] = {
    "LastQuote": {"a": "ask", "b": "bid"},  # forex snapshots' last quote
    "PreviousCloseAgg": {"n": "transactions"},
}
"""Readable attribute names for terse wire keys the official model classes do not name."""

STRUCT_NAMES: Mapping[str, str] = {
    "CryptoDailyOpenCloseAggOpenTrade": "CryptoOpenCloseTrade",
    "CryptoDailyOpenCloseAggClosingTrade": "CryptoOpenCloseTrade",
}
"""One struct for objects of one shape that appear under several names."""


# --- the plan ----------------------------------------------------------------------------


@dataclass
class Param:
    """One method parameter.

    Attributes:
        name: the Python name.
        wire: the name on the wire (query key or spec path variable).
        location: ``path``, ``query`` or ``special`` (``params``, ``raw``, ``options``).
        annotation: the annotation text (``None`` included where optional).
        default: the default's source text, or ``None`` when required.
        doc: one line for the docstring.
        keyword_only: comes after ``*`` (parameters the official client lacks).
    """

    name: str
    wire: str
    location: str
    annotation: str
    default: str | None
    doc: str
    keyword_only: bool = False


@dataclass
class Plan:
    """One generated method."""

    name: str
    path: str
    paginated: bool
    key: str | None
    model: str
    result: str
    params: list[Param]
    summary: str
    spec_paths: tuple[str, ...]
    official: bool


def _segments(path: str) -> list[str | None]:
    """Path segments, ``None`` for a variable."""
    return [None if s.startswith("{") else s for s in path.strip("/").split("/")]


def _match_score(template: str, spec_path: str) -> int | None:
    """How many literal segments agree, or ``None`` when the shapes differ."""
    ours, theirs = _segments(template), _segments(spec_path)
    if len(ours) != len(theirs):
        return None
    score = 0
    for mine, spec in zip(ours, theirs, strict=True):
        if mine is None:
            continue
        if mine != spec:
            return None
        score += 1
    return score


def match_spec_paths(methods: Mapping[str, MethodInfo], paths: list[str]) -> dict[str, list[str]]:
    """Map each official method to the spec paths it serves (best literal match wins)."""
    served: dict[str, list[str]] = {name: [] for name in methods}
    for path in paths:
        scores = {n: _match_score(m.url, path) for n, m in methods.items()}
        valid = {n: s for n, s in scores.items() if s is not None}
        if not valid:
            continue
        best = max(valid.values())
        for name, score in valid.items():
            if score == best:
                served[name].append(path)
    return served


# --- parameters --------------------------------------------------------------------------


def derived_wire(name: str) -> str:
    """The official client's rule: ``timestamp_gte`` travels as ``timestamp.gte``."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)] + "." + suffix[1:]
    return name


def python_name(wire: str) -> str:
    """A parameter name for a spec wire name (``ticker.any_of`` → ``ticker_any_of``)."""
    return safe_name(snake(wire.replace(".", "_")))


def _annotation(ann: Any) -> str:
    """An official parameter annotation, in our types (enums become their value type)."""
    origin = typing.get_origin(ann)
    if origin is typing.Union:
        parts = [_annotation(a) for a in typing.get_args(ann)]
        return " | ".join(dict.fromkeys(p for p in parts if p != "None")) + (
            " | None" if type(None) in typing.get_args(ann) else ""
        )
    if origin is list:
        (inner,) = typing.get_args(ann) or (Any,)
        return f"list[{_annotation(inner)}]"
    if origin is dict or ann is dict:
        return "Mapping[str, Any]"
    if ann is type(None):
        return "None"
    if isinstance(ann, type) and issubclass(ann, Enum):
        return "int" if all(isinstance(m.value, int) for m in ann) else "str"
    if ann in (str, int, float, bool):
        return ann.__name__
    if ann in (datetime, date):
        return ann.__name__
    return "Any"


def _spec_annotation(spec_param: Mapping[str, Any]) -> str:
    wire = spec_param["name"]
    base = wire.split(".")[0]
    if wire.endswith(".any_of") or spec_param.get("type") == "array":
        return "str | list[str] | None"
    if "timestamp" in base.lower():
        return "str | int | datetime | date | None"
    if base.endswith("date") or base.startswith("date"):
        return "str | date | None"
    kind = spec_param.get("type", "string")
    return {"integer": "int", "number": "float", "boolean": "bool"}.get(kind, "str") + " | None"


_RANGE_DOC = {
    "gt": "greater than",
    "gte": "greater than or equal to",
    "lt": "less than",
    "lte": "less than or equal to",
}


def param_doc(name: str, wire: str, spec_doc: str | None, location: str) -> str:
    """One line describing a parameter: the spec's words, else a rule by name."""
    base, _, op = wire.rpartition(".") if "." in wire else (wire, "", "")
    if spec_doc and op not in _RANGE_DOC and op not in ("any_of", "all_of"):
        return _capital(spec_doc)  # the spec's words for range filters say little ("Range by x")
    if op in _RANGE_DOC:
        return f"Only results whose ``{base}`` is {_RANGE_DOC[op]} this value."
    if op == "any_of":
        return f"Only results whose ``{base}`` is one of these (a list or comma-separated)."
    if op == "all_of":
        return f"Only results whose ``{base}`` has all of these (a list or comma-separated)."
    fixed = {
        "limit": "the page size: results per request.",
        "sort": "the field to sort by (``field`` or ``field.asc``/``field.desc``).",
        "order": "``asc`` or ``desc``.",
        "params": "extra query parameters, sent as given (named arguments win).",
        "options": "per-call timeout, extra headers and parameters, retries.",
    }
    if name in fixed:
        return _capital(fixed[name])
    if location == "path":
        return f"The ``{name}`` of the request path."
    return f"Only results with this ``{wire}``."


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _default_source(value: Any) -> str:
    return repr(value.value if isinstance(value, Enum) else value)


_SPECIAL_ANNOTATIONS = {
    "params": "Mapping[str, Any] | None",
    "raw": "bool",
    "options": "CallOptions | None",
}


class Planner:
    """Turns the spec and the official client's facts into :class:`Plan` s and structs."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        endpoints, self.schemas = extract(spec)
        self.index = SpecIndex(spec, endpoints)
        self.methods = official_methods()
        self.models = ModelBuilder(official_models(), STRUCT_RENAMES, STRUCT_NAMES)
        self.plans: list[Plan] = []

    def plan(self) -> list[Plan]:
        """Every method: the official client's, then the spec paths it lacks."""
        paths = sorted(self.index.rows)
        served = match_spec_paths(self.methods, paths)
        covered = {p for ps in served.values() for p in ps}
        for name, info in sorted(self.methods.items()):
            self.plans.append(self._official(info, served[name]))
        for path in paths:
            if path in covered:
                if path in SPEC_ONLY:
                    raise SpecError(f"{path} is in SPEC_ONLY but the official client serves it")
                continue
            if path not in SPEC_ONLY:
                raise SpecError(f"{path}: no method serves it; name it in SPEC_ONLY")
            self.plans.append(self._spec_only(path, SPEC_ONLY[path]))
        self.plans.sort(key=lambda p: p.name)
        return self.plans

    # --- official methods -----------------------------------------------------------

    def _official(self, info: MethodInfo, spec_paths: list[str]) -> Plan:
        variables = re.findall(r"\{(\w+)\}", info.url)
        spec_params: dict[str, Mapping[str, Any]] = {}
        docs: dict[str, str] = {}
        path_docs: dict[str, str] = {}
        for path in spec_paths:
            spec_docs = self.index.param_docs(path)
            spec_vars = re.findall(r"\{(\w+)\}", path)
            for param in self.index.rows[path]["params"]:
                if param["location"] == "query":
                    spec_params.setdefault(python_name(param["name"]), param)
                    docs.setdefault(param["name"], spec_docs.get(param["name"], ""))
            for ours, theirs in self._path_pairs(info.url, path, spec_vars):
                path_docs.setdefault(ours, spec_docs.get(theirs, ""))
        params = [
            self._official_param(p, variables, spec_params, docs, path_docs) for p in info.params
        ]
        if "options" not in {p.name for p in params}:
            params.append(self._special("options", None))
        taken = {p.name for p in params}
        for pname, sp in spec_params.items():
            if pname not in taken:
                doc = param_doc(pname, sp["name"], docs.get(sp["name"]), "query")
                params.append(
                    Param(pname, sp["name"], "query", _spec_annotation(sp), "None", doc, True)
                )
        self._check_required(info.name, params)
        model, is_list = self._official_model(info, spec_paths)
        summary = self._official_summary(info, spec_paths)
        return self._finish(
            Plan(
                name=info.name,
                path=info.url,
                paginated=info.paginated,
                key=info.key,
                model=model,
                result=f"list[{model}]" if is_list and not info.paginated else model,
                params=params,
                summary=summary,
                spec_paths=tuple(spec_paths),
                official=True,
            )
        )

    @staticmethod
    def _path_pairs(url: str, spec_path: str, spec_vars: list[str]) -> list[tuple[str, str]]:
        """(our variable, the spec's variable) at the same path position."""
        pairs = []
        for mine, theirs in zip(url.split("/"), spec_path.split("/"), strict=True):
            if mine.startswith("{") and theirs.startswith("{"):
                pairs.append((mine[1:-1], theirs[1:-1]))
        return pairs

    def _official_param(
        self,
        p: Any,
        variables: list[str],
        spec_params: Mapping[str, Mapping[str, Any]],
        docs: Mapping[str, str],
        path_docs: Mapping[str, str],
    ) -> Param:
        if p.name in SPECIAL:
            return self._special(p.name, None if p.required else _default_source(p.default))
        annotation = _annotation(p.annotation)
        default = None if p.required else _default_source(p.default)
        if default == "None" and not annotation.endswith("| None") and annotation != "Any":
            annotation += " | None"
        if p.name in variables:
            doc = param_doc(p.name, p.name, path_docs.get(p.name) or None, "path")
            return Param(p.name, p.name, "path", annotation, default, doc)
        sp = spec_params.get(p.name)
        wire = sp["name"] if sp else derived_wire(p.name)
        doc = param_doc(p.name, wire, docs.get(wire) or None, "query")
        return Param(p.name, wire, "query", annotation, default, doc)

    @staticmethod
    def _special(name: str, default: str | None) -> Param:
        default = default if default is not None else ("False" if name == "raw" else "None")
        doc = param_doc(name, name, None, "special")
        return Param(name, name, "special", _SPECIAL_ANNOTATIONS[name], default, doc)

    @staticmethod
    def _check_required(method: str, params: list[Param]) -> None:
        for p in params:
            if p.default is None and p.location != "path":
                raise SpecError(f"{method}: required parameter {p.name} is not in the path")
            if p.name in ("path", "query"):
                raise SpecError(f"{method}: parameter {p.name} shadows a generated local")

    def _official_model(self, info: MethodInfo, spec_paths: list[str]) -> tuple[str, bool]:
        official = self.models.official[info.model]
        doc = f"A result of ``{info.name}`` (``GET {info.url}``)."
        if not spec_paths:
            self.models.from_official(info.model, doc)
            return info.model, info.paginated
        is_list = False
        for path in spec_paths:
            schema, is_list = result_schema(self.index, self.schemas, path, info.key)
            self.models.from_spec(info.model, schema, official, doc)
        return info.model, is_list

    def _official_summary(self, info: MethodInfo, spec_paths: list[str]) -> str:
        served = [p for p in spec_paths if not self.index.rows[p]["ignored"]] or spec_paths
        # Describe the asset-agnostic method by its stocks twin where it has one.
        served.sort(key=lambda p: "stock" not in p.lower())
        if served:
            return self.index.summary(served[0])
        words = info.name.split("_", 1)[1].replace("_", " ")
        verb = "Iterate over" if info.paginated else "Get"
        return f"{verb} {words}."

    # --- spec paths the official client lacks ---------------------------------------

    def _spec_only(self, path: str, only: SpecOnly) -> Plan:
        row = self.index.rows[path]
        docs = self.index.param_docs(path)
        params: list[Param] = []
        rendered = path
        for sp in row["params"]:
            name = python_name(sp["name"])
            doc = param_doc(name, sp["name"], docs.get(sp["name"]), sp["location"])
            if sp["location"] == "path":
                annotation = "str | date" if sp["name"] == "date" else "str"
                params.append(Param(name, sp["name"], "path", annotation, None, doc))
                rendered = rendered.replace("{" + sp["name"] + "}", "{" + name + "}")
            else:
                annotation = _spec_annotation(sp)
                params.append(Param(name, sp["name"], "query", annotation, "None", doc))
        params.sort(key=lambda p: p.location != "path")
        params += [self._special(n, None) for n in SPECIAL]
        schema, is_list = result_schema(self.index, self.schemas, path, only.key)
        response = self.schemas[row["response"]].get("properties", {})
        paginated = row["paginate"] is not None or ("next_url" in response and is_list)
        like = self.models.official[only.like] if only.like else None
        doc = f"A result of ``{only.name}`` (``GET {rendered}``)."
        self.models.from_spec(only.model, schema, like, doc, only.renames)
        return self._finish(
            Plan(
                name=only.name,
                path=rendered,
                paginated=paginated,
                key=only.key,
                model=only.model,
                result=f"list[{only.model}]" if is_list and not paginated else only.model,
                params=params,
                summary=self.index.summary(path),
                spec_paths=(path,),
                official=False,
            )
        )

    @staticmethod
    def _finish(plan: Plan) -> Plan:
        for p in plan.params:
            if p.name == "raw":
                p.doc = (
                    "Return the first page undecoded (a ``RawResponse``) instead of a pager."
                    if plan.paginated
                    else "Return the response undecoded (a ``RawResponse``)."
                )
        if plan.paginated:
            doc = "``Pagination.AUTO`` (the default), ``NONE`` or ``Pagination.max_items(n)``."
            plan.params.append(
                Param("pagination", "pagination", "special", "Pagination | None", "None", doc, True)
            )
        return plan


# --- entry points ------------------------------------------------------------------------


def generate(spec_dir: Path) -> dict[str, str]:
    """Verify the spec checksums, then return ``{output name: module text}``.

    Raises:
        SpecError: the spec is missing, fails its checksums, or has a path no method serves.
    """
    digests = verify_checksums(spec_dir)
    spec = json.loads((spec_dir / "rest.json").read_bytes())
    planner = Planner(spec)
    plans = planner.plan()
    stamp = f"rest.json sha256 {digests['rest.json']} and massive {version('massive')}"
    return render_all(plans, planner.models.structs, stamp)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec-dir", type=Path, default=None, help=f"default: ${SPEC_ENV}")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="the massivekit package")
    args = parser.parse_args(argv)
    spec_dir = args.spec_dir or (Path(os.environ[SPEC_ENV]) if os.environ.get(SPEC_ENV) else None)
    if spec_dir is None:
        parser.error(f"pass --spec-dir or set {SPEC_ENV}")
    try:
        texts = generate(spec_dir)
    except SpecError as exc:
        print(f"codegen_rest: refusing to generate: {exc}", file=sys.stderr)
        return 1
    for name, text in texts.items():
        out = args.out_dir / OUTPUTS[name]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"codegen_rest: wrote {out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
