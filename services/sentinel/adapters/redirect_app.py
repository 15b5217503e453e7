"""The manual login endpoint (an IO adapter): Kite redirects the browser here with a request_token.

    GET /kite/login      -> 302 to Kite's connect/login page for this API key
    GET /kite/redirect   ?request_token=..&status=success -> exchange, validate, distribute

Register `http://<redirect_host>:<redirect_port>/kite/redirect` as the Kite app's redirect URL.
The page answers with the outcome and the token's fingerprint, never the token.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.sentinel.adapters.login_flow import LoginResult
from shared.health import serve_app

logger = logging.getLogger(__name__)

PAGE = "<!doctype html><html><head><title>TradeAlgo login</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"


def _page(title: str, text: str, status: int) -> web.Response:
    body = PAGE.format(title=html.escape(title), text=html.escape(text))
    return web.Response(text=body, content_type="text/html", status=status)


class RedirectServer:
    def __init__(
        self,
        host: str,
        port: int,
        login_url: str,
        exchange: Callable[[str], Awaitable[LoginResult]],
    ) -> None:
        self.host = host
        self.requested_port = port
        self.login_url = login_url
        self.exchange = exchange
        self.port = 0
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/kite/login", self._login)
        app.router.add_get("/kite/redirect", self._redirect)
        return app

    async def start(self) -> int:
        self._runner, self.port = await serve_app(self.app(), self.host, self.requested_port)
        logger.info("manual login: open http://%s:%s/kite/login", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _login(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self.login_url)

    async def _redirect(self, request: web.Request) -> web.Response:
        status = request.query.get("status", "success")
        request_token = request.query.get("request_token", "")
        if status != "success" or not request_token:
            logger.warning("login redirect without a request_token (status %s)", status)
            return _page(
                "Login failed", f"Kite redirected with status {status!r} and no token.", 400
            )
        result = await self.exchange(request_token)
        if result.ok and result.info is not None:
            return _page(
                "Logged in",
                f"User {result.info.user_id}, token {result.info.fingerprint}, valid until "
                f"{result.info.expires_at:%Y-%m-%d %H:%M} IST. You can close this page.",
                200,
            )
        return _page("Login failed", f"{result.outcome}: {result.reason}", 502)
