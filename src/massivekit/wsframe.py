"""Server-side WebSocket TEXT frames built by hand (RFC 6455 5.2), for fan-out.

The mock's flood mode and the proxy write many frames to many sockets and
batch them into single transport writes, bypassing the server library's
per-message writer. Server frames are never masked: a frame is a header
(FIN + TEXT, then the payload length in 1, 3 or 9 bytes) and the payload.
"""

from __future__ import annotations

from typing import Final

__all__ = ["text_frame", "unframe", "ws_text_header"]


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


def text_frame(payload: bytes) -> bytes:
    """One whole TEXT frame carrying ``payload``."""
    size = len(payload)
    return (HEADERS[size] if size < TABLE else ws_text_header(size)) + payload


def unframe(frame: bytes) -> bytes:
    """The payload of one frame made by :func:`text_frame` (tests, views).

    Raises:
        ValueError: ``frame`` is not one unmasked TEXT frame whose length matches.
    """
    if len(frame) < 2 or frame[0] != 0x81 or frame[1] & 0x80:
        raise ValueError("not an unmasked final TEXT frame")
    size, start = frame[1], 2
    if size == 126:
        size, start = int.from_bytes(frame[2:4], "big"), 4
    elif size == 127:
        size, start = int.from_bytes(frame[2:10], "big"), 10
    if len(frame) - start != size:
        raise ValueError(f"frame length {size} does not match its {len(frame) - start} bytes")
    return frame[start:]
