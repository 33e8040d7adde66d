"""The REST client's own objects never print the key (the network paths are in
tests/functional/test_rest_resilience.py)."""

from __future__ import annotations

import pytest

from massivekit.auth import ApiKey
from massivekit.config import RestConfig
from massivekit.rest import AsyncRestClient, RawResponse
from massivekit.rest._decode import error_for_response
from massivekit.rest._query import rebase, strip_secrets
from massivekit.rest._transport import Request

KEY = "rest-unit-secret-key-0123456789"


@pytest.fixture
def key() -> ApiKey:
    return ApiKey(KEY)


def test_client_and_config_reprs(key: ApiKey) -> None:
    client = AsyncRestClient(key, base_url="http://127.0.0.1:1")
    for text in (repr(client), str(client), repr(client.config), str(vars(client).get("config"))):
        assert KEY not in text


def test_requests_never_hold_the_key_in_headers_or_url(key: ApiKey) -> None:
    client = AsyncRestClient(key, base_url="http://127.0.0.1:1")
    request = client._request("http://127.0.0.1:1/v3/x", {"apiKey": KEY}, client_options())
    assert "Authorization" not in request.headers
    assert KEY not in repr(request)
    assert KEY not in request.safe_url
    assert all(KEY not in v for v in request.headers.values())


def client_options():  # type: ignore[no-untyped-def]
    from massivekit.rest import CallOptions

    return CallOptions(headers={"X-Edge": "1"})


def test_error_bodies_and_urls_are_redacted(key: ApiKey) -> None:
    body = f'{{"status":"ERROR","error":"apiKey={KEY} is bad","request_id":"r"}}'.encode()
    error = error_for_response(400, {}, body, f"http://h/v3/x?apiKey={KEY}")
    for text in (str(error), repr(error), error.body_preview or "", error.message):
        assert KEY not in text


def test_next_urls_lose_the_key(key: ApiKey) -> None:
    url = f"https://api.massive.com/v3/trades/A?cursor=c&apiKey={KEY}"
    assert KEY not in strip_secrets(url)
    assert KEY not in rebase("http://127.0.0.1:1", url)


def test_raw_response_repr(key: ApiKey) -> None:
    raw = RawResponse(
        200, {}, f'{{"next_url": "x?apiKey={KEY}"}}'.encode(), f"http://h/?apiKey={KEY}"
    )
    assert KEY not in repr(raw)


def test_config_key_is_wrapped(key: ApiKey) -> None:
    config = RestConfig(api_key=key)
    assert KEY not in repr(config)
    assert isinstance(AsyncRestClient(config=config).config.api_key, ApiKey)
    assert KEY not in repr(Request("http://h/", None, {}, key))
