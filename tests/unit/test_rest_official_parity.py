"""Migrating from the official ``massive`` client is a change of import.

Every public method of ``massive.RESTClient`` (and of its ``vx`` namespace)
exists on both of our clients, with the same parameter names in the same
order and the same defaults; ours may add ``options`` (and, keyword-only,
``pagination`` and filters the spec documents). Every attribute of the
official model a method returns exists on our model.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from enum import Enum
from typing import Any

import pytest
from massive import RESTClient
from massive.rest import models as official_models
from massive.rest.vX import VXClient

from massivekit.rest import AsyncRestClient, RestClient, _models
from massivekit.rest._endpoints import ENDPOINTS, AsyncEndpoints
from massivekit.rest._endpoints_sync import SyncEndpoints

HELPERS = frozenset({"time_mult"})
"""Public names of the official client that are not endpoints."""

OURS = (AsyncRestClient, RestClient, AsyncEndpoints, SyncEndpoints)


def _official_methods() -> dict[str, Callable[..., Any]]:
    out: dict[str, Callable[..., Any]] = {}
    for owner in (RESTClient, VXClient):
        for name, member in inspect.getmembers(owner, inspect.isfunction):
            if not name.startswith("_") and name not in HELPERS:
                out.setdefault(name, member)
    return out


OFFICIAL = _official_methods()
TABLE = {info.name: info for info in ENDPOINTS}


def test_the_official_client_has_92_endpoint_methods() -> None:
    assert len(OFFICIAL) == 92


@pytest.mark.parametrize("cls", OURS, ids=lambda c: c.__name__)
def test_we_lack_no_official_method(cls: type) -> None:
    missing = sorted(name for name in OFFICIAL if not callable(getattr(cls, name, None)))
    assert missing == []


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_parameters_match_the_official_ones(name: str) -> None:
    theirs = list(inspect.signature(OFFICIAL[name]).parameters.values())[1:]
    for cls in OURS:
        ours = list(inspect.signature(getattr(cls, name)).parameters.values())[1:]
        assert [p.name for p in ours[: len(theirs)]] == [p.name for p in theirs], cls
        for mine, official in zip(ours, theirs, strict=False):
            assert mine.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (cls, mine)
            assert (mine.default is inspect.Parameter.empty) == (
                official.default is inspect.Parameter.empty
            ), (cls, mine)
            if official.default is not inspect.Parameter.empty:
                assert mine.default == _plain(official.default), (cls, mine)
        for extra in ours[len(theirs) :]:
            assert extra.name == "options" or extra.kind is inspect.Parameter.KEYWORD_ONLY
            assert extra.default is not inspect.Parameter.empty


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_paging_matches_the_official_method(name: str) -> None:
    pages = "self._paginate(" in inspect.getsource(OFFICIAL[name])
    assert TABLE[name].paginated == pages
    assert TABLE[name].official


def test_the_vx_namespace_is_the_client_itself() -> None:
    for cls in (AsyncEndpoints, SyncEndpoints):
        client = cls()
        assert client.vx is client
        assert callable(client.vx.list_ipos)
        assert callable(client.vx.list_stock_financials)


def _official_model_classes() -> dict[str, type]:
    out: dict[str, type] = {}
    for sub in pkgutil.iter_modules(official_models.__path__):
        module = importlib.import_module(f"{official_models.__name__}.{sub.name}")
        for name, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and obj.__module__ == module.__name__
                and dataclasses.is_dataclass(obj)
            ):
                out[name] = obj
    return out


def test_our_models_have_every_official_attribute() -> None:
    official = _official_model_classes()
    checked = 0
    for name, cls in official.items():
        ours = getattr(_models, name, None)
        if ours is None:
            continue
        attributes = {f.name for f in dataclasses.fields(cls)}
        assert attributes <= set(ours.__struct_fields__), name
        checked += 1
    assert checked >= 100
    for info in ENDPOINTS:
        if info.official:
            assert info.model in official, info.name
