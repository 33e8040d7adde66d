"""Which client gets which event: the proxy's routing index, without I/O.

Per upstream frame, :meth:`Router.route` cuts the frame into raw event
slices and their keys (:func:`massivekit.models.routing.frame_keys`),
appends each slice to the pending list of every client whose topics cover
it, then hands each client its slices as one frame, in upstream order. A
client that got every event of the frame is handed the frame's bytes as they
came; the others get their slices joined by ``,`` (the writer adds the
brackets as it frames the bytes, which saves two copies per client and
frame): events are never decoded and re-encoded (STYLE.md, "Route on bytes").

Why the index looks as it does: the work per (event, client) must stay at a
few tens of nanoseconds (PERFORMANCE.md: at 1,000 clients and 50k events/s
that is 4.3 M deliveries/s). So each topic maps to a tuple of the bound
``list.append`` methods of its holders' pending lists, and delivering an
event is one C-level call per holder. Specific topics are indexed as
``ev -> instrument -> tuple`` (two dict lookups, no string built per event),
wildcards as ``ev -> tuple``. A client holding ``T.*`` is left out of the
``T.AAPL`` tuple even if it holds ``T.AAPL`` too, so no event reaches a
client twice; when it gives ``T.*`` up, its specific topics come back.
Handing a client its frame is C-level too: the client's ``deliver`` is the
``append`` of its send queue and its ``mark`` a partial of the writer's
``set.add``; the router tells its owner once per frame (``on_output``) that
queues have grown.

When the C fan-out core is built (``massivekit.proxy._fanout``, see
``hatch_build.py``), the same index holds its ``Sink`` objects instead of
``append`` methods and one C call routes the whole frame: it scans the JSON
array itself (anything outside plain ASCII JSON goes back to msgspec, which
keeps the error messages and the odd cases), appends each event's span to
the sinks of its topic, and hands every sink its frame. The Python loop below
stays the reference: a differential test holds the two to the same output.
"""

from __future__ import annotations

import operator
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Final

import msgspec

from massivekit.models.events import FrameDecodeError
from massivekit.models.routing import frame_keys
from massivekit.protocol.topics import WILDCARD
from massivekit.proxy._accel import fanout

__all__ = ["Deliver", "Outgoing", "Router", "render"]

Outgoing = tuple[bytes, int, bool]
"""One frame for one client: ``(payload, events, wrap)``.

``events`` is the number of events in it (negative for a control frame:
an ack or a status). With ``wrap`` the payload is the events joined by
``,`` and the frame is ``[`` + payload + ``]``; without it the payload is
the whole frame."""

Deliver = Callable[[Outgoing], None]
"""Where a client's frames go (normally the ``append`` of its send queue); it must not block."""


def _nothing() -> None:
    pass


def render(item: Outgoing) -> bytes:
    """The frame an :data:`Outgoing` stands for (tests, slow paths)."""
    payload, _, wrap = item
    return b"[" + payload + b"]" if wrap else payload


_Target = Any
"""What the index holds per client: its pending list's ``append``, or its C ``Sink``."""
_EV_OF: Final = operator.attrgetter("ev")
_INSTRUMENT_OF: Final = operator.attrgetter("instrument")


class _Route:
    """One client's place in the index."""

    __slots__ = ("deliver", "key", "mark", "pending", "specific", "target", "wildcards")

    def __init__(
        self,
        key: Hashable,
        deliver: Deliver,
        mark: Callable[[], object],
        fast: bool,
        sink: object | None,
    ) -> None:
        self.key = key
        self.deliver = deliver
        self.mark = mark
        self.pending: list[msgspec.Raw] = []
        self.target: _Target
        if not fast or fanout is None:
            self.target = self.pending.append
        elif sink is not None:
            self.target = sink  # the client's send buffer: frames are written into it
        else:
            self.target = fanout.Sink(mark, deliver)  # frames go to deliver, as tuples
        self.specific: set[str] = set()  # "T.AAPL", whether covered by a wildcard or not
        self.wildcards: set[str] = set()  # "T" for T.*


class Router:
    """The routing index of one cluster, and the per-frame fan-out.

    Clients are added with the callable that takes their frames, then hold
    topics. Nothing here does I/O: the proxy's downstream sessions pass
    their ``enqueue`` as ``deliver`` and, with the C core, their send
    buffer (a ``Sink``) as ``sink``.

    Args:
        on_output: called once per routed frame that reached some client.
        accelerated: route with the C core (``True``: it must be built),
            in pure Python (``False``), or with the C core when it is built
            (``None``, the default).

    Raises:
        RuntimeError: ``accelerated=True`` but the C core is not built (or
            ``MASSIVEKIT_PURE_PYTHON`` is set).
    """

    def __init__(
        self, on_output: Callable[[], None] | None = None, *, accelerated: bool | None = None
    ) -> None:
        if accelerated and fanout is None:
            raise RuntimeError("the C fan-out core (massivekit.proxy._fanout) is not available")
        self._fast = fanout if accelerated is not False else None
        self._on_output = on_output
        self._routes: dict[Hashable, _Route] = {}
        self._active: list[_Route] = []  # routes holding at least one topic
        self._holders: dict[str, dict[Hashable, _Route]] = {}  # topic -> its holders
        self._specific: dict[str, dict[str, tuple[_Target, ...]]] = {}
        self._wild: dict[str, tuple[_Target, ...]] = {}
        self.taps: list[Callable[[bytes], None]] = []
        """Called with every frame before it is routed (tests record with it)."""
        self.frames_in = 0
        self.events_in: Counter[str] = Counter()
        """Events seen, per ``ev`` code."""
        self.events_out_by_ev: defaultdict[str, int] = defaultdict(int)
        """Event deliveries per ``ev`` code (one event to one client counts one)."""
        self.frames_out = 0
        self.whole_frames = 0
        """Deliveries of a frame as it came (the client wanted every event)."""
        self.bad_frames = 0

    def __repr__(self) -> str:
        return f"Router(clients={len(self._routes)}, topics={len(self._holders)})"

    @property
    def accelerated(self) -> bool:
        """Whether frames are routed by the C core."""
        return self._fast is not None

    @property
    def events_out(self) -> int:
        """Event deliveries, all codes together."""
        return sum(self.events_out_by_ev.values())

    # -- clients and topics -----------------------------------------------------------

    @property
    def clients(self) -> int:
        """Clients known to the router."""
        return len(self._routes)

    @property
    def topics(self) -> frozenset[str]:
        """Every topic some client holds."""
        return frozenset(self._holders)

    def topics_of(self, key: Hashable) -> frozenset[str]:
        """The topics client ``key`` holds."""
        route = self._routes.get(key)
        if route is None:
            return frozenset()
        return frozenset(route.specific | {w + "." + WILDCARD for w in route.wildcards})

    def add_client(
        self,
        key: Hashable,
        deliver: Deliver,
        mark: Callable[[], object] | None = None,
        *,
        sink: object | None = None,
    ) -> None:
        """Know a client (holding nothing yet).

        Args:
            key: the client's identity.
            deliver: takes the client's frames (normally its queue's ``append``).
            mark: called after each frame handed to it (normally a C-level
                ``functools.partial(dirty.add, client)``: the writer then
                visits only the clients that got something).
            sink: the client's send buffer as a C ``Sink`` (no ``deliver``):
                an accelerated router writes its frames straight into it, as
                WebSocket frames, and the sink calls its own ``mark``;
                ``deliver`` then only takes :meth:`broadcast` frames. A pure
                Python router ignores it.

        Raises:
            ValueError: ``key`` is already known.
        """
        if key in self._routes:
            raise ValueError(f"client {key!r} is already routed")
        self._routes[key] = _Route(key, deliver, mark or _nothing, self._fast is not None, sink)

    def remove_client(self, key: Hashable) -> None:
        """Forget a client and everything it held (unknown keys are ignored)."""
        route = self._routes.get(key)
        if route is None:
            return
        self.unsubscribe(key, list(self.topics_of(key)))
        del self._routes[key]

    def subscribe(self, key: Hashable, topics: Iterable[str]) -> None:
        """Client ``key`` now receives the events of ``topics`` (``EV.X`` or ``EV.*``)."""
        route = self._routes[key]
        for topic in topics:
            prefix, _, ticker = topic.partition(".")
            self._holders.setdefault(topic, {})[key] = route
            if ticker == WILDCARD:
                route.wildcards.add(prefix)
                self._reindex_wildcard(route, prefix)
            else:
                route.specific.add(topic)
                self._reindex(prefix, ticker)
        self._refresh_active(route)

    def unsubscribe(self, key: Hashable, topics: Iterable[str]) -> None:
        """Client ``key`` no longer receives ``topics`` (topics it lacks are ignored)."""
        route = self._routes[key]
        for topic in topics:
            holders = self._holders.get(topic)
            if holders is None or holders.pop(key, None) is None:
                continue
            if not holders:
                del self._holders[topic]
            prefix, _, ticker = topic.partition(".")
            if ticker == WILDCARD:
                route.wildcards.discard(prefix)
                self._reindex_wildcard(route, prefix)
            else:
                route.specific.discard(topic)
                self._reindex(prefix, ticker)
        self._refresh_active(route)

    def _reindex(self, prefix: str, ticker: str) -> None:
        """Rebuild the tuple of one specific topic from its holders."""
        holders = self._holders.get(prefix + "." + ticker, {})
        appends = tuple(r.target for r in holders.values() if prefix not in r.wildcards)
        by_ticker = self._specific.setdefault(prefix, {})
        if appends:
            by_ticker[ticker] = appends
        else:
            by_ticker.pop(ticker, None)
            if not by_ticker:
                del self._specific[prefix]

    def _reindex_wildcard(self, route: _Route, prefix: str) -> None:
        """Rebuild ``prefix.*`` and the specific topics of ``prefix`` that ``route`` holds."""
        holders = self._holders.get(prefix + "." + WILDCARD, {})
        appends = tuple(r.target for r in holders.values())
        if appends:
            self._wild[prefix] = appends
        else:
            self._wild.pop(prefix, None)
        for topic in route.specific:
            own_prefix, _, ticker = topic.partition(".")
            if own_prefix == prefix:
                self._reindex(prefix, ticker)

    def _refresh_active(self, route: _Route) -> None:
        holds = bool(route.specific or route.wildcards)
        if holds and route not in self._active:
            self._active.append(route)
        elif not holds and route in self._active:
            self._active.remove(route)
            route.pending.clear()

    # -- the hot path -------------------------------------------------------------------

    def route(self, frame: bytes) -> int:
        """Fan one upstream frame out to its clients.

        Args:
            frame: the frame's bytes, a JSON array of events.

        Returns:
            How many clients got a frame. A frame that is not a JSON array
            is counted in :attr:`bad_frames` and routed to no one.
        """
        for tap in self.taps:
            tap(frame)
        if self._fast is not None:
            return self._route_fast(frame, self._fast)
        try:
            keys, raws = frame_keys(frame)
        except FrameDecodeError:
            self.bad_frames += 1
            return 0
        self.frames_in += 1
        self.events_in.update(map(_EV_OF, keys))
        wild = self._wild
        specific = self._specific
        out = self.events_out_by_ev
        for key, raw in zip(keys, raws, strict=True):
            ev = key.ev
            appends = wild.get(ev)
            if appends is not None:
                for append in appends:
                    append(raw)
                out[ev] += len(appends)
            by_ticker = specific.get(ev)
            if by_ticker is not None:
                appends = by_ticker.get(key.instrument)  # type: ignore[arg-type]
                if appends is not None:
                    for append in appends:
                        append(raw)
                    out[ev] += len(appends)
        return self._deliver(frame, len(raws))

    def _route_fast(self, frame: bytes, fast: Any) -> int:
        wild, specific = self._wild, self._specific
        counts = self.events_in, self.events_out_by_ev
        result = fast.route(frame, wild, specific, *counts)
        if result is None:  # not plain ASCII JSON: msgspec cuts it (or refuses it)
            try:
                keys, raws = frame_keys(frame)
            except FrameDecodeError:
                self.bad_frames += 1
                return 0
            evs = list(map(_EV_OF, keys))
            instruments = list(map(_INSTRUMENT_OF, keys))
            result = fast.route_parts(frame, evs, instruments, raws, wild, specific, *counts)
        _, delivered, whole = result
        self.frames_in += 1
        if delivered:
            self.frames_out += delivered
            self.whole_frames += whole
            if self._on_output is not None:
                self._on_output()
        return int(delivered)

    def _deliver(self, frame: bytes, count: int) -> int:
        delivered = whole = 0
        join = b",".join
        for route in self._active:
            pending = route.pending
            if not pending:
                continue
            size = len(pending)
            if size == count:
                route.deliver((frame, size, False))  # every event: forward it as it came
                whole += 1
            else:
                route.deliver((join(pending), size, True))
            route.mark()
            pending.clear()
            delivered += 1
        if delivered:
            self.frames_out += delivered
            self.whole_frames += whole
            if self._on_output is not None:
                self._on_output()
        return delivered

    def broadcast(self, frame: bytes, count: int = 1) -> int:
        """Hand ``frame`` as is to every client (status notices); returns how many."""
        for route in list(self._routes.values()):
            route.deliver((frame, count, False))
            route.mark()
        if self._routes and self._on_output is not None:
            self._on_output()
        return len(self._routes)
