"""``make bench``: run every benchmark in turn."""

from __future__ import annotations

from bench import decode, rest_pagination


def main() -> None:
    decode.main()
    rest_pagination.main()


if __name__ == "__main__":
    main()
