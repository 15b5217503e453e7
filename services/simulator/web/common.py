"""What every handler shares: the server key, Kite's envelopes and the session check."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from services.simulator.auth import ApiSession
from services.simulator.errors import KiteApiError, TokenError

if TYPE_CHECKING:
    from services.simulator.service import SimulatorServer

SERVER: web.AppKey[SimulatorServer] = web.AppKey("simulator_server")


def server_of(request: web.Request) -> SimulatorServer:
    return request.app[SERVER]


def success(data: Any) -> web.Response:
    """Kite's success envelope, application/json."""
    return web.json_response({"status": "success", "data": data}, dumps=json.dumps)


def error(message: str, error_type: str, status: int) -> web.Response:
    """Kite's error envelope; `error_type` is always present (the client crashes without it)."""
    body = {"status": "error", "message": message, "error_type": error_type, "data": None}
    return web.json_response(body, status=status, dumps=json.dumps)


def error_from(exc: KiteApiError) -> web.Response:
    return error(exc.message, exc.error_type, exc.status)


def authorised(request: web.Request) -> ApiSession:
    """The session of `Authorization: token api_key:access_token`, or TokenException (403)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("token "):
        raise TokenError("Missing or invalid `Authorization` header.")
    api_key, _, access_token = header[len("token ") :].partition(":")
    server = server_of(request)
    return server.sim.sessions.validate(api_key, access_token, server.now())


async def form_of(request: web.Request) -> dict[str, str]:
    """A form-encoded body as a plain dict (first value of each field)."""
    posted = await request.post()
    return {k: v for k, v in posted.items() if isinstance(v, str)}
