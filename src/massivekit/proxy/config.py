"""The proxy's configuration: flags, environment and a TOML file, in that precedence.

Every setting has a default; a value given on the command line beats the
environment, which beats the file. Nothing is read at import time:
:func:`load_config` reads what it is given when it is called.

Environment:

* ``MASSIVE_API_KEY``: the upstream key (``--upstream-key`` beats it);
* ``MASSIVEKIT_PROXY_ADMIN_TOKEN``: the admin token;
* ``MASSIVEKIT_PROXY_CLIENT_KEYS``: comma-separated proxy keys allowed every cluster;
* ``MASSIVEKIT_PROXY_UNIX``: a Unix socket path to listen on as well (``--unix`` beats it);
* ``MASSIVEKIT_PROXY_CONFIG``: the TOML file, when ``--config`` is not given.

The TOML file (every key optional)::

    [proxy]
    host = "127.0.0.1"
    port = 8765
    unix = "/run/massivekit/proxy.sock"  # also listen here (same-host clients); omit for none
    upstream = "http://127.0.0.1:9000"   # omit for real Massive
    upstream_key = "..."                 # better in MASSIVE_API_KEY
    admin_token = "..."
    grace = 30.0                         # seconds before an upstream unsubscribe
    slow_client = "drop_oldest"          # or "disconnect"
    buffer_bytes = 4194304               # per client
    flush_interval = 0.001               # seconds between write rounds, at most
    flush_duty = 0.5                     # a round that took T waits 0.5 T before the next
    drain_timeout = 5.0
    test_mode = false
    scenario = "normal"

    [[proxy.clients]]
    name = "research"                    # shown in logs and /health/clients
    key = "a-long-proxy-key"
    clusters = ["stocks", "options"]     # omit for every cluster
"""

from __future__ import annotations

import enum
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from massivekit.auth import ApiKey
from massivekit.config import API_KEY_ENV, Market
from massivekit.errors import ConfigError

__all__ = [
    "ADMIN_TOKEN_ENV",
    "CLIENT_KEYS_ENV",
    "CONFIG_ENV",
    "DEFAULT_UPSTREAM",
    "UNIX_ENV",
    "ClientKey",
    "ProxyConfig",
    "SlowClientPolicy",
    "load_config",
    "stream_url",
]

ADMIN_TOKEN_ENV: Final = "MASSIVEKIT_PROXY_ADMIN_TOKEN"
CLIENT_KEYS_ENV: Final = "MASSIVEKIT_PROXY_CLIENT_KEYS"
CONFIG_ENV: Final = "MASSIVEKIT_PROXY_CONFIG"
UNIX_ENV: Final = "MASSIVEKIT_PROXY_UNIX"
DEFAULT_UPSTREAM: Final = "wss://socket.massive.com"
"""Real Massive: the cluster is appended as the path."""


class SlowClientPolicy(enum.StrEnum):
    """What happens to a client whose send buffer is full."""

    DROP_OLDEST = "drop_oldest"
    """Drop the oldest unsent frames, counting their events."""
    DISCONNECT = "disconnect"
    """Send ``slow_consumer`` and close with 1008, as Massive does."""


@dataclass(frozen=True, slots=True)
class ClientKey:
    """A proxy key: what downstream clients authenticate with.

    Attributes:
        key: the secret (never logged: see ``name``).
        clusters: the cluster families it may use; ``None`` for all.
        name: a label safe to log and to show in health and metrics.
    """

    key: ApiKey
    clusters: frozenset[Market] | None = None
    name: str = ""

    def allows(self, market: Market) -> bool:
        """Whether this key may connect to ``market``."""
        return self.clusters is None or market.family in self.clusters


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Everything a :class:`~massivekit.proxy.server.ProxyServer` needs.

    Attributes:
        host: interface to listen on.
        port: 0 picks a free port.
        unix: a filesystem path to serve the same application on as a Unix
            stream socket too, for clients on the same host (writes and reads
            skip the TCP stack, so each costs less CPU); ``None`` for TCP only.
        upstream: base URL of the upstream (``http://h:p`` for a
            Massive-compatible server, ``wss://socket.massive.com`` by default).
        upstream_key: the upstream key (``None``: refuse to start upstreams).
        client_keys: the proxy keys clients authenticate with.
        admin_token: the bearer token of ``/admin``; ``None`` disables admin.
        grace: seconds an upstream subscription outlives its last client.
        slow_client: the policy for a client whose buffer is full.
        buffer_bytes: a client's send buffer (unsent frames) in bytes.
        flush_interval: the least time between two write rounds (one write per
            client each): under load, frames routed meanwhile go out together,
            in fewer, larger writes; when idle, a frame goes out at once.
        flush_duty: a round that took ``T`` also waits ``flush_duty * T``
            before the next, so writing takes at most ``1 / (1 + duty)`` of
            the loop: lower for latency, higher to leave the core to reading
            and routing (0.5: two thirds).
        drain_timeout: seconds to flush buffers on shutdown before closing.
        auth_timeout: seconds a client has to authenticate.
        test_mode: mix scenario frames into the routed stream.
        scenario: the scenario test mode plays.
        upstream_silence: seconds without upstream data before reconnecting.
        later_delay: seconds to wait after an upstream ``max_connections``.
    """

    host: str = "127.0.0.1"
    port: int = 0
    unix: str | None = None
    upstream: str = DEFAULT_UPSTREAM
    upstream_key: ApiKey | None = None
    client_keys: tuple[ClientKey, ...] = ()
    admin_token: ApiKey | None = None
    grace: float = 30.0
    slow_client: SlowClientPolicy = SlowClientPolicy.DROP_OLDEST
    buffer_bytes: int = 4 * 1024 * 1024
    flush_interval: float = 0.001
    flush_duty: float = 0.5
    drain_timeout: float = 5.0
    auth_timeout: float = 10.0
    test_mode: bool = False
    scenario: str = "normal"
    upstream_silence: float | None = 60.0
    later_delay: float = 60.0

    def __repr__(self) -> str:
        unix = "" if self.unix is None else f", unix={self.unix!r}"
        return (
            f"ProxyConfig(host={self.host!r}, port={self.port}{unix}, "
            f"upstream={self.upstream!r}, clients={len(self.client_keys)}, grace={self.grace:g})"
        )


def stream_url(upstream: str, market: Market) -> str:
    """The WebSocket URL of ``market`` on the upstream given by its base URL.

    Args:
        upstream: ``http://h:p`` (a Massive-compatible server), ``https://...``,
            or ``ws://``/``wss://`` base URLs.
        market: the cluster.

    Returns:
        ``ws://h:p/stocks`` and the like.
    """
    base = upstream.rstrip("/")
    if base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    elif base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif not base.startswith(("ws://", "wss://")):
        raise ConfigError(f"upstream URL must be http(s):// or ws(s)://, got {upstream!r}")
    return f"{base}/{market.value}"


def parse_clusters(values: Iterable[str] | None) -> frozenset[Market] | None:
    """Cluster names as written in a config file (``None``: all of them).

    Raises:
        ConfigError: an unknown cluster name.
    """
    if values is None:
        return None
    try:
        return frozenset(Market(str(v)).family for v in values)
    except ValueError as exc:
        raise ConfigError(f"unknown cluster in {list(values)!r}") from exc


def _client_from_table(index: int, table: Mapping[str, Any]) -> ClientKey:
    key = table.get("key")
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"proxy.clients[{index}] needs a non-empty key")
    clusters = table.get("clusters")
    return ClientKey(
        ApiKey(key), parse_clusters(clusters), str(table.get("name") or f"client{index}")
    )


def read_file(path: str | Path) -> dict[str, Any]:
    """The ``[proxy]`` table of a TOML file, with ``clients`` parsed.

    Raises:
        ConfigError: unreadable file or invalid TOML.
    """
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read proxy config {path}: {exc}") from exc
    table = dict(document.get("proxy", {}))
    clients = table.pop("clients", [])
    table["client_keys"] = tuple(_client_from_table(i, c) for i, c in enumerate(clients))
    return table


_FILE_FIELDS: Final = {
    "host": str,
    "port": int,
    "unix": str,
    "upstream": str,
    "grace": float,
    "buffer_bytes": int,
    "flush_interval": float,
    "flush_duty": float,
    "drain_timeout": float,
    "auth_timeout": float,
    "test_mode": bool,
    "scenario": str,
    "later_delay": float,
}


def _from_table(table: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, kind in _FILE_FIELDS.items():
        if name in table:
            values[name] = kind(table[name])
    if "slow_client" in table:
        values["slow_client"] = _policy(str(table["slow_client"]))
    for secret in ("upstream_key", "admin_token"):
        if table.get(secret):
            values[secret] = ApiKey(str(table[secret]))
    if table.get("client_keys"):
        values["client_keys"] = tuple(table["client_keys"])
    return values


def _policy(value: str) -> SlowClientPolicy:
    try:
        return SlowClientPolicy(value)
    except ValueError as exc:
        raise ConfigError(f"slow_client must be drop_oldest or disconnect, not {value!r}") from exc


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if env.get(API_KEY_ENV, "").strip():
        values["upstream_key"] = ApiKey(env[API_KEY_ENV])
    if env.get(ADMIN_TOKEN_ENV, "").strip():
        values["admin_token"] = ApiKey(env[ADMIN_TOKEN_ENV])
    if env.get(UNIX_ENV, "").strip():
        values["unix"] = env[UNIX_ENV]
    keys = [k.strip() for k in env.get(CLIENT_KEYS_ENV, "").split(",") if k.strip()]
    if keys:
        values["client_keys"] = tuple(
            ClientKey(ApiKey(k), None, f"env{i}") for i, k in enumerate(keys)
        )
    return values


def load_config(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    file: str | Path | None = None,
) -> ProxyConfig:
    """Merge defaults, the TOML file, the environment and flags (later wins).

    Client keys add up across sources rather than replace each other. An
    empty ``unix`` (say ``--unix ""`` over the file's) means no Unix socket.

    Args:
        flags: command-line values (``None`` values are ignored); ``client_keys``
            as plain strings (every cluster).
        env: the environment (``os.environ`` when ``None``).
        file: the TOML file (else ``MASSIVEKIT_PROXY_CONFIG``, else none).

    Returns:
        The merged configuration.

    Raises:
        ConfigError: a bad file or value.
    """
    source = os.environ if env is None else env
    path = file or source.get(CONFIG_ENV) or None
    layers = [_from_table(read_file(path)) if path else {}, _from_env(source)]
    layers.append(_from_flags(flags or {}))
    config = ProxyConfig()
    clients: list[ClientKey] = []
    for layer in layers:
        clients.extend(layer.pop("client_keys", ()))
        config = replace(config, **layer)
    for name in ("flush_interval", "flush_duty"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(config, name)!r}")
    # An empty path (`--unix ""` over a file's `unix`) means no Unix socket.
    return replace(config, client_keys=tuple(clients), unix=config.unix or None)


def _from_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in flags.items() if v is not None and k != "client_keys"}
    if "slow_client" in values:
        values["slow_client"] = _policy(str(values["slow_client"]))
    for secret in ("upstream_key", "admin_token"):
        if secret in values and not isinstance(values[secret], ApiKey):
            values[secret] = ApiKey(str(values[secret]))
    keys: Sequence[str] = flags.get("client_keys") or ()
    values["client_keys"] = tuple(
        ClientKey(ApiKey(k), None, f"flag{i}") for i, k in enumerate(keys)
    )
    return values
