"""``massivekit get``: call any REST endpoint method from the command line.

::

    massivekit get list_trades AAPL timestamp.gte=2024-01-02 --limit 10000 --format csv
    massivekit get get_last_trade ticker=AAPL --format json
    massivekit get list_aggs AAPL 1 day 2024-01-02 2024-01-31 --format parquet -o aggs.parquet

ENDPOINT is a method of :class:`~massivekit.rest.AsyncRestClient`. Arguments
without ``=`` fill its required parameters in order; ``name=value`` sets a
parameter by its Python name (``timestamp_gte``) or its wire name
(``timestamp.gte``); any other ``name=value`` goes to the query as is. Values
are converted to ``int``/``float``/``bool`` when the parameter takes only that.
The key comes from ``MASSIVE_API_KEY``, never from the command line (where any
user of the machine could read it).

Output goes to stdout (or ``--output``): ``table`` (aligned columns),
``json`` (an array), ``csv`` (a header, then a row per item; nested values as
JSON) or ``parquet`` (needs pyarrow). Lists are written page by page as they
arrive, except ``table`` and ``parquet``, which need every row first. A
progress line on stderr counts pages and items (by default only when stderr
is a terminal).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import inspect
import io
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Final

import msgspec

from massivekit.errors import MassiveError
from massivekit.rest._frames import MissingDependency, as_plain, columns, to_arrow
from massivekit.rest._paginate import AsyncPager
from massivekit.rest._types import Pagination

if TYPE_CHECKING:
    from massivekit.rest._client import AsyncRestClient

FORMATS: Final = ("table", "json", "csv", "parquet")
_SKIP: Final = frozenset({"self", "params", "raw", "options", "pagination"})
_TABLE_CELL: Final = 40
_REDRAW_EVERY: Final = 0.1


_EXAMPLES: Final = """examples:
  massivekit get list_trades AAPL timestamp.gte=2024-01-02 --limit 10000 --format csv
  massivekit get get_last_trade ticker=AAPL --format json
  massivekit get list_aggs AAPL 1 day 2024-01-02 2024-01-31 --format parquet -o aggs.parquet

Values without "=" fill the method's required parameters in order; name=value
sets a parameter by its Python name (timestamp_gte) or wire name (timestamp.gte);
other name=value pairs are sent in the query as given."""


class UsageError(Exception):
    """The command line does not fit the endpoint (exit status 2)."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``get`` command to a ``massivekit`` sub-parser set.

    Args:
        sub: what ``ArgumentParser.add_subparsers()`` returned.
    """
    p = sub.add_parser(
        "get",
        help="call a REST endpoint method (list_trades, get_aggs, ...) and print the result",
        description="Call any REST endpoint method and print the result. "
        "The API key comes from MASSIVE_API_KEY.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("endpoint", help="a client method name, e.g. list_trades")
    p.add_argument("args", nargs="*", help="positional values, or name=value")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format")
    p.add_argument("--limit", type=int, default=None, help="stop after N items")
    p.add_argument("--base-url", default=None, help="default: https://api.massive.com")
    p.add_argument("--output", "-o", default=None, help="write here instead of stdout")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show pages and items on stderr (default: when stderr is a terminal)",
    )


async def run(args: argparse.Namespace) -> int:
    """Run ``massivekit get`` with parsed ``args``.

    Returns:
        0 on success, 1 when the call failed, 2 on a usage error.
    """
    # Imported here: building the parser must not load the client (and aiohttp).
    from massivekit.rest._client import AsyncRestClient

    try:
        async with AsyncRestClient(base_url=args.base_url) as client:
            method = (
                getattr(client, args.endpoint, None) if _callable(client, args.endpoint) else None
            )
            if method is None:
                raise UsageError(f"no endpoint method {args.endpoint!r} (try list_trades)")
            kwargs = bind_arguments(method, args.args)
            return await _call(method, kwargs, args)
    except UsageError as exc:
        print(f"massivekit get: {exc}", file=sys.stderr)
        return 2
    except MassiveError as exc:
        print(f"massivekit get: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _callable(client: AsyncRestClient, name: str) -> bool:
    return name.startswith(("get_", "list_")) and callable(getattr(type(client), name, None))


def bind_arguments(method: Any, tokens: Sequence[str]) -> dict[str, Any]:
    """The keyword arguments for ``method`` from command-line ``tokens``.

    ``name=value`` tokens are bound first; the others then fill, in order, the
    required parameters left, then the optional path parameters
    (``get_ticker_details AAPL``).

    Raises:
        UsageError: too many positional values, a bad value, or a required parameter missing.
    """
    parameters = {
        name: p for name, p in inspect.signature(method).parameters.items() if name not in _SKIP
    }
    wire, path = _endpoint_names(method.__name__)
    kwargs: dict[str, Any] = {}
    extra: dict[str, str] = {}
    values: list[str] = []
    for token in tokens:
        name, sep, value = token.partition("=")
        if not sep:
            values.append(token)
            continue
        name = wire.get(name, name)
        if name not in parameters and f"{name}_" in parameters:
            name = f"{name}_"  # from=... for the parameter from_ (a Python keyword)
        if name in parameters:
            kwargs[name] = _convert(value, parameters[name].annotation)
        else:
            extra[name] = value
    required = [n for n, p in parameters.items() if p.default is inspect.Parameter.empty]
    order = dict.fromkeys([*required, *path])
    slots = [n for n in order if n in parameters and n not in kwargs]
    if len(values) > len(slots):
        raise UsageError(f"too many positional values at {values[len(slots)]!r}")
    for name, value in zip(slots, values, strict=False):
        kwargs[name] = _convert(value, parameters[name].annotation)
    missing = [n for n in required if n not in kwargs]
    if missing:
        raise UsageError(f"{method.__name__} needs {', '.join(missing)}")
    if extra:
        kwargs["params"] = extra
    return kwargs


def _endpoint_names(method: str) -> tuple[dict[str, str], list[str]]:
    """Wire name to Python name for the method's parameters, and its path parameters."""
    from massivekit.rest._endpoints import ENDPOINTS

    for info in ENDPOINTS:
        if info.name == method:
            wire = {p.wire: p.name for p in info.params}
            return wire, [p.name for p in info.params if p.location == "path"]
    return {}, []


def _convert(value: str, annotation: Any) -> Any:
    """``value`` as the parameter's only scalar type (``int | None`` -> int), else text."""
    kinds = {k.strip() for k in str(annotation).split("|")} - {"None"}
    try:
        if kinds == {"int"}:
            return int(value)
        if kinds == {"float"} or kinds == {"int", "float"}:
            return float(value)
    except ValueError as exc:
        raise UsageError(f"{value!r} is not a number") from exc
    if kinds == {"bool"}:
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise UsageError(f"{value!r} is not true or false")
        return value.lower() in ("true", "1", "yes")
    return value


async def _call(method: Any, kwargs: dict[str, Any], args: argparse.Namespace) -> int:
    if args.format == "parquet":
        _require_pyarrow()
    if "pagination" in inspect.signature(method).parameters and args.limit is not None:
        kwargs["pagination"] = Pagination.max_items(args.limit)
    result = method(**kwargs)
    progress = Progress(enabled=_progress_wanted(args.progress))
    if isinstance(result, AsyncPager):
        pages = _pages(result, progress)
    else:
        pages = _single(await result, args.limit)
    with _open_output(args.output, binary=args.format == "parquet") as out:
        await WRITERS[args.format](pages, out)
    progress.done()
    return 0


def _require_pyarrow() -> None:
    try:
        importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise UsageError("--format parquet needs pyarrow: pip install 'massivekit[arrow]'") from exc


async def _pages(pager: AsyncPager[Any], progress: Progress) -> AsyncIterator[list[Any]]:
    async with contextlib.aclosing(pager.pages()) as pages:
        async for page in pages:
            progress.page(len(page.items))
            yield page.items


async def _single(value: Any, limit: int | None) -> AsyncIterator[list[Any]]:
    rows = value if isinstance(value, list) else ([] if value is None else [value])
    yield rows if limit is None else rows[:limit]


class Progress:
    """``page 3 · 150,000 items · 1.2 s`` on stderr, redrawn in place, at most 10 times a second."""

    def __init__(self, enabled: bool, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.pages = 0
        self.items = 0
        self.started = time.monotonic()
        self._drawn = -_REDRAW_EVERY

    def page(self, items: int) -> None:
        """Count one page of ``items`` and redraw the line if it is due."""
        self.pages += 1
        self.items += items
        if self.enabled and time.monotonic() - self._drawn >= _REDRAW_EVERY:
            self._draw()

    def _draw(self) -> None:
        self._drawn = now = time.monotonic()
        line = f"\rpage {self.pages} · {self.items:,} items · {now - self.started:.1f} s"
        self.stream.write(line)
        self.stream.flush()

    def done(self) -> None:
        """Draw the final count and end the line."""
        if self.enabled and self.pages:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def _progress_wanted(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


@contextlib.contextmanager
def _open_output(path: str | None, *, binary: bool) -> Iterator[IO[Any]]:
    if path is None:
        yield sys.stdout.buffer if binary else sys.stdout
        return
    with open(path, "wb" if binary else "w", newline="" if not binary else None) as out:
        yield out


async def write_json(pages: AsyncIterator[list[Any]], out: IO[str]) -> None:
    """A JSON array of every item, written page by page."""
    first = True
    out.write("[")
    async for rows in pages:
        for row in rows:
            out.write("\n" if first else ",\n")
            out.write(msgspec.json.encode(as_plain(row)).decode())
            first = False
    out.write("\n]\n" if not first else "]\n")


async def write_csv(pages: AsyncIterator[list[Any]], out: IO[str]) -> None:
    """A header row, then one row per item (nested values as JSON), page by page."""
    writer = csv.writer(out)
    header: list[str] | None = None
    async for rows in pages:
        table = columns(rows)
        if not table:
            continue
        if header is None:
            header = list(table)
            writer.writerow(header)
        cells = [table.get(name, [None] * len(rows)) for name in header]
        writer.writerows([_cell(v) for v in row] for row in zip(*cells, strict=True))


async def write_table(pages: AsyncIterator[list[Any]], out: IO[str]) -> None:
    """Aligned columns of every item (fields that are never set are left out)."""
    rows = [row async for page in pages for row in page]
    table = {k: v for k, v in columns(rows).items() if any(x is not None for x in v)}
    if not table:
        out.write("(no results)\n")
        return
    text = {k: [_cell(x)[:_TABLE_CELL] for x in v] for k, v in table.items()}
    widths = {k: max(len(k), *(len(x) for x in v)) for k, v in text.items()}
    out.write("  ".join(k.ljust(widths[k]) for k in text).rstrip() + "\n")
    for i in range(len(rows)):
        out.write("  ".join(text[k][i].ljust(widths[k]) for k in text).rstrip() + "\n")


async def write_parquet(pages: AsyncIterator[list[Any]], out: IO[bytes]) -> None:
    """A Parquet file of every item (needs pyarrow)."""
    rows = [row async for page in pages for row in page]
    try:
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError as exc:  # checked before the call; kept for direct use
        raise MissingDependency("parquet output needs pyarrow") from exc
    buffer = io.BytesIO()
    pq.write_table(to_arrow(rows), buffer)
    out.write(buffer.getvalue())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return msgspec.json.encode(value).decode()
    return str(value)


WRITERS: Final[dict[str, Any]] = {
    "table": write_table,
    "json": write_json,
    "csv": write_csv,
    "parquet": write_parquet,
}
