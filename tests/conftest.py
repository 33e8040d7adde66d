"""Fixtures shared by every tier.

* ``spec_dir``: the Massive specs, found through ``MASSIVEKIT_SPEC_DIR``; a test
  that needs them skips (saying why) when it is unset, and fails when it is set
  but the files do not match ``SHA256SUMS``.
* ``scale``: one number scaling every timeout of the functional tests
  (``MASSIVEKIT_TEST_TIME_SCALE``, default 1), for slow machines.
* ``live`` tests run only with ``MASSIVE_API_KEY`` set.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

SPEC_ENV = "MASSIVEKIT_SPEC_DIR"


def _verified_spec_dir() -> Path:
    raw = os.environ.get(SPEC_ENV)
    if not raw:
        pytest.skip(f"{SPEC_ENV} is unset: the Massive specs are not available here")
    root = Path(raw)
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        pytest.fail(f"{SPEC_ENV}={raw} has no SHA256SUMS")
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = root / name.strip().lstrip("*")
        if not path.is_file():
            pytest.fail(f"spec file {path} named in SHA256SUMS is missing")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            pytest.fail(f"spec file {path} does not match SHA256SUMS ({actual} != {digest})")
    return root


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    return _verified_spec_dir()


@pytest.fixture(scope="session")
def websocket_spec(spec_dir: Path) -> dict[str, Any]:
    return json.loads((spec_dir / "websocket.json").read_bytes())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def rest_spec(spec_dir: Path) -> dict[str, Any]:
    return json.loads((spec_dir / "rest.json").read_bytes())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def scale() -> float:
    return float(os.environ.get("MASSIVEKIT_TEST_TIME_SCALE", "1"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MASSIVE_API_KEY"):
        return
    skip_live = pytest.mark.skip(reason="live test: set MASSIVE_API_KEY to run it")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip_live)
