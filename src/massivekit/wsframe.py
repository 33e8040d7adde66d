"""Server-side WebSocket TEXT frame headers built by hand (RFC 6455 5.2), for fan-out.

The mock's flood mode and the proxy write many frames to many sockets and
batch them into single transport writes, bypassing the server library's
per-message writer. Server frames are never masked: a frame is a header
(FIN + TEXT, then the payload length in 1, 3 or 9 bytes) and the payload.
"""

from __future__ import annotations

from typing import Final

__all__ = ["HEADERS", "TABLE", "ws_text_header"]


def ws_text_header(size: int) -> bytes:
    """The header of an unmasked, final TEXT frame of ``size`` payload bytes."""
    if size < 126:
        return bytes((0x81, size))
    if size < 1 << 16:
        return bytes((0x81, 126, size >> 8, size & 0xFF))
    return b"\x81\x7f" + size.to_bytes(8, "big")


TABLE: Final = 16384
HEADERS: Final = tuple(ws_text_header(size) for size in range(TABLE))
"""Headers of payloads under 16 KiB, built once: a tuple index instead of a call."""
