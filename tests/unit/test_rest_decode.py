"""Bodies to values and error answers to typed errors, without a network."""

from __future__ import annotations

import gc
from typing import Any

import msgspec
import pytest
from multidict import CIMultiDict

from massivekit import errors
from massivekit.rest import CallOptions, Pagination, RawResponse
from massivekit.rest._decode import (
    decode,
    error_for_response,
    gc_paused,
    page_decoder,
    peek_next_url,
    value_decoder,
)
from massivekit.rest._models import Agg, Trade


def test_a_page_decodes_items_next_url_and_request_id() -> None:
    body = (
        b'{"status":"OK","request_id":"r1","results":[{"price":1.5,"size":2,"new":1},'
        b'{"price":2.5}],"next_url":"https://h/v3/trades/A?cursor=x"}'
    )
    page = decode(page_decoder(Trade, "results"), body, status=200, request_id=None, url="u")
    assert page.value == [Trade(price=1.5, size=2.0), Trade(price=2.5)]
    assert page.next_url == "https://h/v3/trades/A?cursor=x"
    assert page.request_id == "r1"


def test_a_page_without_results_is_empty_and_any_key_works() -> None:
    empty = decode(
        page_decoder(Trade, "results"), b'{"status":"OK"}', status=200, request_id=None, url="u"
    )
    assert empty.value is None
    assert empty.next_url is None
    odd = decode(
        page_decoder(Agg, "from"), b'{"from":[{"o":1.0}]}', status=200, request_id=None, url="u"
    )
    assert odd.value == [Agg(open=1.0)]


def test_values_under_a_key_or_the_whole_body() -> None:
    body = b'{"request_id":"r","results":{"o":1.0,"c":2.0}}'
    under = decode(value_decoder(Agg, "results"), body, status=200, request_id=None, url="u")
    assert under.value == Agg(open=1.0, close=2.0)
    assert under.request_id == "r"
    whole = decode(value_decoder(dict[str, Any], None), body, status=200, request_id=None, url="u")
    assert whole["request_id"] == "r"
    absent = decode(value_decoder(Agg, "last"), body, status=200, request_id=None, url="u")
    assert absent.value is None


def test_decoders_are_built_once() -> None:
    assert page_decoder(Trade, "results") is page_decoder(Trade, "results")
    assert value_decoder(Agg, None) is value_decoder(Agg, None)


@pytest.mark.parametrize(
    ("body", "message"),
    [(b'{"results": [', "not valid JSON"), (b'{"results": [{"price": "x"}]}', "does not fit")],
)
def test_bad_bodies_are_deserialize_errors_with_context(body: bytes, message: str) -> None:
    with pytest.raises(errors.DeserializeError, match=message) as caught:
        decode(page_decoder(Trade, "results"), body, status=200, request_id="rid", url="http://h/x")
    assert caught.value.status == 200
    assert caught.value.request_id == "rid"
    assert caught.value.body_preview is not None
    assert isinstance(caught.value.__cause__, msgspec.MsgspecError)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, errors.BadRequest),
        (401, errors.AuthError),
        (403, errors.AuthError),
        (404, errors.NotFound),
        (429, errors.RateLimited),
        (500, errors.ServerError),
        (503, errors.ServerError),
        (418, errors.ApiError),
    ],
)
def test_error_answers_map_to_the_error_tree(status: int, kind: type[errors.ApiError]) -> None:
    headers = CIMultiDict({"x-request-id": "hdr-rid", "Retry-After": "3"})
    body = b'{"status":"ERROR","request_id":"body-rid","error":"something broke"}'
    error = error_for_response(status, headers, body, "http://h/v2/x")
    assert type(error) is kind
    assert error.status == status
    assert error.request_id == "hdr-rid"
    assert "something broke" in str(error)
    assert error.retry_after == (3.0 if status == 429 else None)


def test_error_request_id_falls_back_to_the_body_and_messages_to_the_status() -> None:
    error = error_for_response(
        404, {}, b'{"status":"NOT_FOUND","request_id":"b","message":"gone"}', "u"
    )
    assert error.request_id == "b"
    assert "gone" in str(error)
    html = error_for_response(502, {}, b"<html>Bad Gateway</html>", "u")
    assert html.request_id is None
    assert "HTTP 502" in str(html)
    assert html.body_preview == "<html>Bad Gateway</html>"


def test_peek_finds_the_next_url_without_decoding() -> None:
    assert peek_next_url(b'{"results":[],"next_url":"http://h/a?c=1"}') == "http://h/a?c=1"
    assert peek_next_url(b'{"next_url" :  "http:\\/\\/h\\/a"}') == "http://h/a"
    assert peek_next_url(b'{"results":[]}') is None
    assert peek_next_url(b'{"next_url":null}') is None
    assert peek_next_url(b'{"next_url":"unterminated') is None
    assert peek_next_url(b'{"next_url":"a\\"b"}') is None  # escaped quote: leave it to decode


def test_gc_is_paused_for_big_bodies_only_and_restored() -> None:
    assert gc.isenabled()
    with gc_paused(10):
        assert gc.isenabled()
    with gc_paused(10_000_000):
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused(10_000_000):
            pass
        assert not gc.isenabled()  # a collector the user turned off stays off
    finally:
        gc.enable()


def test_value_objects() -> None:
    assert Pagination.AUTO.follow
    assert Pagination.AUTO.limit is None
    assert not Pagination.NONE.follow
    assert Pagination.max_items(5).limit == 5
    with pytest.raises(ValueError):
        Pagination.max_items(-1)
    assert CallOptions().timeout is None
    raw = RawResponse(200, {}, b'{"a": 1}', "http://h/x?apiKey=SECRETVALUE")
    assert raw.json() == {"a": 1}
    assert "SECRETVALUE" not in repr(raw)
    assert "<8 bytes>" in repr(raw)
    with pytest.raises(errors.DeserializeError):
        RawResponse(200, {}, b"nope", "u").json()
