"""``make bench``: run every benchmark in turn, each against its named peer."""

from __future__ import annotations

from bench import decode, proxy_fanout, rest_pagination, stream_ingest


def main() -> None:
    decode.main()
    stream_ingest.main([])
    rest_pagination.main()
    proxy_fanout.main([])


if __name__ == "__main__":
    main()
