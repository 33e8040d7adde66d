"""A known key is pushed through every printable path; it must never appear."""

from __future__ import annotations

import logging
import pickle

import pytest

from massivekit import errors
from massivekit.auth import REDACTED, ApiKey, get_logger, redact, redact_url
from massivekit.config import Market, RestConfig, StreamConfig
from massivekit.protocol.client import ClientProtocol

KEY = "sEcReT-KeY-0123456789abcdef"


@pytest.fixture
def key() -> ApiKey:
    return ApiKey(KEY)


def test_api_key_never_prints_itself(key: ApiKey) -> None:
    for text in (repr(key), str(key), f"{key}", f"{key!r}", f"{key:>40}", "%s" % key):  # noqa: UP031
        assert KEY not in text
        assert REDACTED in text
    assert key.reveal() == KEY


def test_api_key_equality_and_hash_do_not_need_the_text(key: ApiKey) -> None:
    assert key == ApiKey(KEY)
    assert key != ApiKey("other")
    assert key != KEY
    assert len({key, ApiKey(KEY)}) == 1


def test_api_key_refuses_pickling_and_emptiness(key: ApiKey) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(ValueError, match="empty"):
        ApiKey("   ")
    assert ApiKey.coerce(key) is key
    assert ApiKey.coerce(KEY) == key


def test_configs_repr_redacts(key: ApiKey) -> None:
    rest = RestConfig(api_key=key)
    stream = StreamConfig(api_key=key, market=Market.CRYPTO)
    for text in (repr(rest), repr(stream), str(rest)):
        assert KEY not in text
    assert stream.endpoint == "wss://socket.massive.com/crypto"


@pytest.mark.parametrize(
    "url",
    [
        f"https://api.massive.com/v3/trades/AAPL?cursor=abc&apiKey={KEY}",
        f"https://api.massive.com/v3/trades/AAPL?apiKey={KEY}&cursor=abc",
        f"http://127.0.0.1:9/x?APIKEY={KEY}#frag",
        "https://api.massive.com/v3/trades/AAPL?apikey=unregistered-value",
    ],
)
def test_redact_url_removes_query_keys(url: str) -> None:
    ApiKey(KEY)
    cleaned = redact_url(url)
    assert KEY not in cleaned
    assert "unregistered-value" not in cleaned
    assert "cursor=abc" in cleaned or "cursor" not in url


def test_redact_scrubs_bearer_and_known_keys(key: ApiKey) -> None:
    assert KEY not in redact(f"Authorization: Bearer {KEY}")
    assert KEY not in redact(f'{{"action":"auth","params":"{KEY}"}}')
    assert redact("nothing secret here") == "nothing secret here"


ERROR_TYPES = [
    errors.MassiveError,
    errors.ConfigError,
    errors.TransportError,
    errors.RequestTimeout,
    errors.ApiError,
    errors.BadRequest,
    errors.AuthError,
    errors.NotFound,
    errors.RateLimited,
    errors.ServerError,
    errors.DeserializeError,
    errors.ProtocolError,
    errors.SubscriptionRefused,
    errors.StreamClosed,
    errors.BufferOverflow,
]


@pytest.mark.parametrize("kind", ERROR_TYPES)
def test_every_error_redacts_message_and_body(kind: type[errors.MassiveError], key: ApiKey) -> None:
    exc = kind(
        f"GET https://api.massive.com/v2?apiKey={KEY} failed for {KEY}",
        status=401,
        request_id="req-1",
        retry_after=2.5,
        topics=["T.AAPL"],
        body=f'{{"error":"bad key {KEY}"}}'.encode(),
    )
    for text in (str(exc), repr(exc), exc.message, exc.body_preview or "", *map(str, exc.args)):
        assert KEY not in text
    assert "status=401" in str(exc)
    assert "request_id=req-1" in str(exc)
    assert "retry_after=2.5s" in str(exc)
    assert "topics=T.AAPL" in str(exc)
    assert isinstance(exc, errors.MassiveError)


def test_disconnected_carries_reason_and_code() -> None:
    exc = errors.Disconnected("server closed", reason="max_connections", close_code=1008)
    assert exc.reason == "max_connections"
    assert exc.close_code == 1008
    assert isinstance(exc, errors.ProtocolError)


def test_body_preview_is_short() -> None:
    exc = errors.ApiError("x", body="y" * 10_000)
    assert exc.body_preview is not None
    assert len(exc.body_preview) <= errors.PREVIEW_CHARS + 1
    assert errors.preview(None) is None


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
def test_error_for_status(status: int, kind: type[errors.ApiError]) -> None:
    assert errors.error_for_status(status) is kind


def test_log_records_are_redacted(key: ApiKey, caplog: pytest.LogCaptureFixture) -> None:
    logger = get_logger("test.secrets")
    with caplog.at_level(logging.DEBUG, logger="massivekit"):
        logger.debug("> %s", f'{{"action":"auth","params":"{KEY}"}}')
        logger.info("GET %s", f"https://x/y?apiKey={KEY}")
        logger.warning("key object %r and %s", key, key)
        logger.error(f"inline {KEY}")
    assert caplog.records
    assert all(KEY not in record.getMessage() for record in caplog.records)
    assert KEY not in caplog.text


def test_get_logger_filters_once() -> None:
    a = get_logger("massivekit.same")
    b = get_logger("massivekit.same")
    assert a is b
    assert len(a.filters) == 1


def test_client_protocol_never_shows_the_key(key: ApiKey) -> None:
    protocol = ClientProtocol(key, Market.STOCKS)
    events = protocol.receive(b'[{"ev":"status","status":"connected","message":"hi"}]')
    assert KEY not in repr(protocol)
    assert all(KEY not in repr(e) for e in events)
    (auth,) = protocol.data_to_send()
    assert KEY.encode() in auth  # it must travel, but only on the wire


def test_short_secrets_do_not_scrub_ordinary_words() -> None:
    short = ApiKey("k")
    assert "k" not in repr(short).replace("ApiKey", "")
    assert redact("keep looking") == "keep looking"
