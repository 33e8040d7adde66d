"""The proxy's HTTP operations: health, metrics and admin commands.

Open to anyone (they show names of keys, never keys):

* ``GET /health``: ``{"status": "ok"|"degraded"|"draining", ...}`` (503 while
  draining or when an upstream is not READY);
* ``GET /health/upstream``: one object per cluster (state, reconnects,
  ``max_connections`` refusals, topics, last reason);
* ``GET /health/clients``: one row per client (cluster, key name, topics,
  frames/events/bytes sent, buffer, drops);
* ``GET /metrics``: Prometheus text.

Behind ``Authorization: Bearer <admin-token>`` (401 without it, 403 with a
wrong one, 404 when no admin token is configured):

=====================================  ===============================================
``GET /admin/status``                  health, upstreams and clients together
``GET /admin/subscriptions``           per cluster: upstream set, grace, per client
``POST /admin/reconnect``              ``{"cluster": "stocks"}``: a fresh upstream
``POST /admin/disconnect``             ``{"client": 7}``: ``force_disconnect`` it
``POST /admin/test-mode``              ``{"enabled": true, "scenario": "halt"}``
``POST /admin/scenario``               ``{"name": "gap_up"}``: load it (test mode on)
=====================================  ===============================================
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from massivekit.auth import get_logger
from massivekit.config import Market
from massivekit.proxy.auth import check_bearer

if TYPE_CHECKING:
    from massivekit.proxy.server import ProxyServer

__all__ = ["add_routes"]

_log = get_logger("massivekit.proxy.admin")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, proxy: ProxyServer) -> None:
    """Add the health, metrics and admin routes of ``proxy`` to ``app``."""
    ops = _Ops(proxy)
    app.router.add_get("/health", ops.health)
    app.router.add_get("/health/upstream", ops.health_upstream)
    app.router.add_get("/health/clients", ops.health_clients)
    app.router.add_get("/metrics", ops.metrics)
    app.router.add_get("/admin/status", ops.guarded(ops.status))
    app.router.add_get("/admin/subscriptions", ops.guarded(ops.subscriptions))
    app.router.add_post("/admin/reconnect", ops.guarded(ops.reconnect))
    app.router.add_post("/admin/disconnect", ops.guarded(ops.disconnect))
    app.router.add_post("/admin/test-mode", ops.guarded(ops.test_mode))
    app.router.add_post("/admin/scenario", ops.guarded(ops.scenario))


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda v: json.dumps(v, default=str))


class _Ops:
    def __init__(self, proxy: ProxyServer) -> None:
        self.proxy = proxy

    async def health(self, request: web.Request) -> web.Response:
        body = self.proxy.health()
        return _json(body, 200 if body["status"] == "ok" else 503)

    async def health_upstream(self, request: web.Request) -> web.Response:
        return _json({m.value: u.health() for m, u in self.proxy.upstreams.items()})

    async def health_clients(self, request: web.Request) -> web.Response:
        return _json(self.proxy.clients_view())

    async def metrics(self, request: web.Request) -> web.Response:
        body = self.proxy.metrics.render()
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    def guarded(self, handler: _Handler) -> _Handler:
        async def guard(request: web.Request) -> web.StreamResponse:
            token = self.proxy.config.admin_token
            if token is None:
                raise web.HTTPNotFound(text="admin is disabled: no admin token configured")
            header = request.headers.get("Authorization")
            if header is None:
                raise web.HTTPUnauthorized(
                    text="admin token required", headers={"WWW-Authenticate": "Bearer"}
                )
            if not check_bearer(header, token):
                _log.warning("= admin: refused a wrong token from %s", request.remote)
                raise web.HTTPForbidden(text="wrong admin token")
            return await handler(request)

        return guard

    async def status(self, request: web.Request) -> web.Response:
        proxy = self.proxy
        return _json(
            {
                "health": proxy.health(),
                "upstreams": {m.value: u.health() for m, u in proxy.upstreams.items()},
                "clients": proxy.clients_view(),
            }
        )

    async def subscriptions(self, request: web.Request) -> web.Response:
        return _json(self.proxy.subscriptions_view())

    async def reconnect(self, request: web.Request) -> web.Response:
        params = await _params(request)
        try:
            market = Market(str(params.get("cluster", "")))
        except ValueError:
            raise web.HTTPBadRequest(text="cluster: one of " + ", ".join(Market)) from None
        upstream = self.proxy.upstreams.get(market)
        if upstream is None:
            raise web.HTTPNotFound(text=f"no upstream open for {market.value}")
        _log.info("= admin: reconnecting the %s upstream", market.value)
        await upstream.reconnect()
        return _json({"reconnecting": market.value})

    async def disconnect(self, request: web.Request) -> web.Response:
        params = await _params(request)
        try:
            client = int(params["client"])
        except (KeyError, TypeError, ValueError):
            raise web.HTTPBadRequest(text='body: {"client": <id>}') from None
        if not self.proxy.disconnect_client(client):
            raise web.HTTPNotFound(text=f"no client {client}")
        _log.info("= admin: disconnected client #%s", client)
        return _json({"disconnected": client})

    async def test_mode(self, request: web.Request) -> web.Response:
        params = await _params(request)
        feed = self.proxy.test_feed
        try:
            if params.get("enabled", True):
                scenario = params.get("scenario")
                await feed.enable(None if scenario is None else str(scenario))
            else:
                await feed.disable()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        _log.info("= admin: test mode %s (%s)", "on" if feed.enabled else "off", feed.scenario)
        return _json({"test_mode": feed.enabled, "scenario": feed.scenario})

    async def scenario(self, request: web.Request) -> web.Response:
        params = await _params(request)
        try:
            await self.proxy.test_feed.enable(str(params.get("name", "")))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return _json({"test_mode": True, "scenario": self.proxy.test_feed.scenario})


async def _params(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body
