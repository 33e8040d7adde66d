"""Type stubs of the C fan-out core (src/massivekit/proxy/_fanout.c)."""

from collections.abc import Callable, Iterable
from typing import Any

INSTRUMENT_FIELDS: dict[str, str]

class Sink:
    """One client's place in the routing index and, without ``deliver``, its send buffer."""

    def __init__(
        self,
        mark: Callable[[], object],
        deliver: Callable[[tuple[bytes, int, bool]], object] | None = None,
    ) -> None: ...
    @property
    def pending(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def frames(self) -> int: ...
    def push(self, payload: bytes, events: int, wrap: bool = False) -> None: ...
    def take(self) -> tuple[bytes, int, int]: ...
    def clear(self) -> None: ...
    def drop_oldest(self, over: int, /) -> tuple[int, int]: ...
    @property
    def attached(self) -> bool: ...
    @property
    def sent(self) -> tuple[int, int, int]: ...
    def attach(self, fd: int, transport: Any, /) -> None: ...
    def detach(self) -> None: ...

def send_all(sessions: Iterable[Any], /) -> list[tuple[Any, bytes | None]]: ...
def route(
    frame: bytes,
    wild: dict[str, tuple[Sink, ...]],
    specific: dict[str, dict[str, tuple[Sink, ...]]],
    events_in: dict[str, int],
    events_out: dict[str, int],
) -> tuple[int, int, int] | None: ...
def route_parts(
    frame: bytes,
    evs: list[str],
    instruments: list[str | None],
    raws: list[Any],
    wild: dict[str, tuple[Sink, ...]],
    specific: dict[str, dict[str, tuple[Sink, ...]]],
    events_in: dict[str, int],
    events_out: dict[str, int],
) -> tuple[int, int, int]: ...
