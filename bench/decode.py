"""Typed decoding of stream frames: massivekit vs the official ``massive`` client.

The frames come from the mock's stocks simulator. Three decoders see the
same bytes in the same run:

* official: ``json.loads`` + ``massive.websocket.models.parse`` (what its
  ``WebSocketClient`` does per frame);
* massivekit: ``FrameDecoder(Market.STOCKS).decode`` (typed msgspec Structs);
* limit: msgspec splitting the frame into ``list[Raw]`` (no model at all).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from massive.websocket.models import Market as OfficialMarket
from massive.websocket.models import parse as official_parse

from massivekit.config import Market
from massivekit.models import FrameDecoder, frame_events_raw
from massivekit.sim.market import MarketSimulator

SIZES = (1, 10, 100)
TARGET_EVENTS = 300_000
ROUNDS = 3


def _frames(per_frame: int) -> list[bytes]:
    simulator = MarketSimulator(Market.STOCKS, seed=11)
    count = max(1, TARGET_EVENTS // per_frame)
    return simulator.frames(per_frame, count, 1_700_000_000_000)


def _rate(decode: Callable[[bytes], object], frames: list[bytes], per_frame: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for frame in frames:
            decode(frame)
        best = min(best, time.perf_counter() - start)
    return len(frames) * per_frame / best


def main() -> None:
    logger = logging.getLogger("official")
    typed = FrameDecoder(Market.STOCKS).decode

    def official(frame: bytes) -> object:
        return official_parse(json.loads(frame), logger, OfficialMarket.Stocks)

    print("decode: typed events/s from stocks frames (best of 3, one process)")
    print(f"{'events/frame':>12} {'official':>12} {'massivekit':>12} {'limit':>12} {'ratio':>7}")
    for per_frame in SIZES:
        frames = _frames(per_frame)
        ours = _rate(typed, frames, per_frame)
        theirs = _rate(official, frames, per_frame)
        limit = _rate(frame_events_raw, frames, per_frame)
        print(
            f"{per_frame:>12} {theirs:>12,.0f} {ours:>12,.0f} {limit:>12,.0f} "
            f"{ours / theirs:>6.1f}x"
        )


if __name__ == "__main__":
    main()
