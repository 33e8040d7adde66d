"""The REST endpoint table generator (tools/codegen_mock.py) and what it committed."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from massivekit.mock import _rest_endpoints
from massivekit.mock._rest_endpoints import ENDPOINTS

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "src" / "massivekit" / "mock" / "_rest_endpoints.py"


@pytest.fixture(scope="module")
def codegen() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "codegen_mock", REPO / "tools" / "codegen_mock.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["codegen_mock"] = module
    spec.loader.exec_module(module)
    return module


def _write_spec(root: Path, spec: dict[str, Any]) -> None:
    data = json.dumps(spec).encode()
    (root / "rest.json").write_bytes(data)
    (root / "SHA256SUMS").write_text(f"{hashlib.sha256(data).hexdigest()}  rest.json\n")


TINY_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "components": {
        "schemas": {
            "Base": {
                "type": "object",
                "properties": {"status": {"type": "string", "description": "prose"}},
                "required": ["status"],
            },
            "Trade": {
                "type": "object",
                "properties": {
                    "t": {"type": "integer", "description": "The nanosecond Unix timestamp."},
                    "p": {"type": "number", "format": "double", "example": 1.5},
                },
                "required": ["t"],
            },
        },
        "parameters": {
            "Limit": {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "default": 10, "maximum": 100},
            }
        },
    },
    "paths": {
        "/v1/things/{stocksTicker}": {
            "get": {
                "operationId": "Things",
                "parameters": [
                    {"name": "stocksTicker", "in": "path", "required": True, "schema": {}},
                    {"$ref": "#/components/parameters/Limit"},
                    {
                        "name": "order",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["asc", "desc"]},
                    },
                ],
                "x-massive-paginate": {"limit": {"default": 10, "max": 100}},
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "allOf": [
                                        {"$ref": "#/components/schemas/Base"},
                                        {
                                            "properties": {
                                                "results": {
                                                    "type": "array",
                                                    "items": {"$ref": "#/components/schemas/Trade"},
                                                }
                                            }
                                        },
                                    ]
                                }
                            }
                        },
                    }
                },
            }
        },
        "/v1/things/{cryptoTicker}": {
            "x-massive-ignore": True,
            "get": {"parameters": [], "responses": {}},
        },
    },
}


def test_generates_resolved_table_from_a_small_spec(codegen: ModuleType, tmp_path: Path) -> None:
    _write_spec(tmp_path, TINY_SPEC)
    endpoints, schemas = codegen.extract(json.loads((tmp_path / "rest.json").read_text()))
    twin, things = endpoints  # sorted by path
    assert things["path"] == "/v1/things/{stocksTicker}"
    assert things["operation_id"] == "Things"
    assert not things["ignored"]
    assert twin["ignored"]
    assert twin["operation_id"] == "get_v1_things__cryptoTicker"
    limit = next(p for p in things["params"] if p["name"] == "limit")
    assert limit == {
        "name": "limit",
        "location": "query",
        "type": "integer",
        "default": 10,
        "maximum": 100,
    }
    order = next(p for p in things["params"] if p["name"] == "order")
    assert order["enum"] == ("asc", "desc")
    schema = schemas[things["response"]]
    assert schema["type"] == "object"
    assert schema["required"] == ["status"]
    item = schema["properties"]["results"]["items"]
    assert item["properties"]["t"] == {"type": "integer", "x-unit": "ns"}
    assert item["properties"]["p"] == {"type": "number", "format": "double"}  # example dropped
    assert "description" not in json.dumps(schemas)


def test_output_is_ruff_clean_and_importable(codegen: ModuleType, tmp_path: Path) -> None:
    _write_spec(tmp_path, TINY_SPEC)
    text = codegen.generate(tmp_path)
    out = tmp_path / "table.py"
    out.write_text(text)
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    fmt = subprocess.run([ruff, "format", "--check", "--line-length", "100", str(out)], check=False)
    assert fmt.returncode == 0
    namespace: dict[str, Any] = {}
    exec(compile(text, str(out), "exec"), namespace)
    assert len(namespace["ENDPOINTS"]) == 2
    assert (
        namespace["SPEC_SHA256"]
        == hashlib.sha256((tmp_path / "rest.json").read_bytes()).hexdigest()
    )


def test_refuses_a_spec_that_fails_its_checksum(codegen: ModuleType, tmp_path: Path) -> None:
    _write_spec(tmp_path, TINY_SPEC)
    (tmp_path / "rest.json").write_text(json.dumps({**TINY_SPEC, "paths": {}}))
    out = tmp_path / "never.py"
    assert codegen.main(["--spec-dir", str(tmp_path), "--out", str(out)]) == 1
    assert not out.exists()
    with pytest.raises(codegen.SpecError, match="does not match"):
        codegen.generate(tmp_path)


def test_refuses_a_spec_dir_without_sums(codegen: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "rest.json").write_text("{}")
    with pytest.raises(codegen.SpecError, match="SHA256SUMS"):
        codegen.verify_checksums(tmp_path)


def test_committed_table_covers_every_path() -> None:
    assert len(ENDPOINTS) == 89
    assert sum(e.ignored for e in ENDPOINTS) == 21
    assert len({(e.method, e.path) for e in ENDPOINTS}) == 89
    assert all(e.method == "GET" for e in ENDPOINTS)
    assert all(e.response.get("type") in ("object", "array") for e in ENDPOINTS)
    trades = next(e for e in ENDPOINTS if e.path == "/v3/trades/{stockTicker}")
    assert trades.paginate is not None
    assert trades.paginate.limit_max == 50_000
    item = trades.response["properties"]["results"]["items"]["properties"]
    assert item["sip_timestamp"]["x-unit"] == "ns"


def test_committed_table_header_names_the_spec_digest() -> None:
    first = TABLE.read_text().splitlines()[0]
    assert first.startswith("# generated by tools/codegen_mock.py from rest.json sha256 ")
    assert _rest_endpoints.SPEC_SHA256 in first
    assert "do not edit" in first


@pytest.mark.spec
def test_committed_table_matches_the_spec(
    codegen: ModuleType, spec_dir: Path, rest_spec: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "_rest_endpoints.py"
    assert codegen.main(["--spec-dir", str(spec_dir), "--out", str(out)]) == 0
    assert out.read_text() == TABLE.read_text(), "regenerate: python tools/codegen_mock.py"
    assert len(rest_spec["paths"]) == len(ENDPOINTS)
