"""``make bench``: run every benchmark in turn."""

from __future__ import annotations

from bench import decode


def main() -> None:
    decode.main()


if __name__ == "__main__":
    main()
