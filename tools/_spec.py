"""Reading the pinned OpenAPI document for ``tools/codegen_rest.py``.

The checksum check and the schema resolution are ``tools/codegen_mock.py``'s
(imported, not copied); this module adds what the REST client's generator
needs beyond them: the prose (summaries, parameter descriptions, first
sentence only) and the schema of one result under a body key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def _first_sentence(text: str | None) -> str | None:
    """The first sentence of Markdown prose, links and tags reduced to their text."""
    if not text:
        return None
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>|\[([^\]]*)\]\([^)]*\)", r"\1", text)).strip()
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    return sentence[:1].upper() + sentence[1:] if sentence else None


class SpecIndex:
    """What the raw spec says about paths and their parameters (descriptions included)."""

    def __init__(self, spec: Mapping[str, Any], endpoints: list[dict[str, Any]]) -> None:
        self.spec = spec
        self.rows = {e["path"]: e for e in endpoints if e["method"] == "GET"}

    def operation(self, path: str) -> Mapping[str, Any]:
        """The raw GET operation of ``path``."""
        return self.spec["paths"][path]["get"]  # type: ignore[no-any-return]

    def param_docs(self, path: str) -> dict[str, str]:
        """First sentences of parameter descriptions, by wire name."""
        item = self.spec["paths"][path]
        out: dict[str, str] = {}
        for raw in [*item.get("parameters", ()), *self.operation(path).get("parameters", ())]:
            param = self._deref(raw)
            sentence = _first_sentence(param.get("description"))
            if sentence and param.get("name") not in out:
                out[param["name"]] = sentence
        return out

    def _deref(self, node: Any) -> Mapping[str, Any]:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            node = target
        return node  # type: ignore[no-any-return]

    def summary(self, path: str) -> str:
        """The operation's summary and the first sentence of its description."""
        op = self.operation(path)
        summary = str(op.get("summary") or path).strip().rstrip(".")
        first = _first_sentence(op.get("description"))
        return f"{summary}: {first[:1].lower() + first[1:]}" if first else f"{summary}."


def result_schema(
    index: SpecIndex, schemas: list[dict[str, Any]], path: str, key: str | None
) -> tuple[Mapping[str, Any], bool]:
    """The schema of one result under ``key`` (an item when it is a list), and whether it is.

    Args:
        index: the spec's paths.
        schemas: the resolved response schemas (``codegen_mock.extract``).
        path: a spec path.
        key: the body field holding the result; ``None`` for the whole body.
    """
    response = schemas[index.rows[path]["response"]]
    sub = response if key is None else response.get("properties", {}).get(key, {})
    if sub.get("type") == "array":
        return sub.get("items", {}), True
    return sub, False
