"""The daily login: the connect/login redirect, the automation endpoints and /session/token.

- POST /api/login (user_id, password) -> request_id
- POST /api/twofa (user_id, request_id, twofa_value, twofa_type=totp) -> browser cookie
- GET /connect/login?v=3&api_key=.. with that cookie -> 302 to the redirect URL with
  request_token; without it, a small HTML form (user id, password, TOTP) for people.
- POST /session/token (api_key, request_token, checksum) -> the session; DELETE logs out.
"""

from __future__ import annotations

import html
import time
from urllib.parse import urlencode

from aiohttp import web

from services.simulator.errors import InputError, KiteApiError
from services.simulator.kite_json import kite_time
from services.simulator.settings import SimulatorSettings
from services.simulator.web.common import form_of, server_of, success

BROWSER_COOKIE = "kf_session"
LOGIN_FORM = """<!doctype html>
<html><head><title>Kite simulator login</title></head><body>
<h1>Kite simulator: log in</h1><p>{problem}</p>
<form method="post" action="/connect/login">
<input type="hidden" name="api_key" value="{api_key}">
<label>User ID <input name="user_id"></label><br>
<label>Password <input name="password" type="password"></label><br>
<label>TOTP <input name="twofa_value" autocomplete="one-time-code"></label><br>
<button type="submit">Log in</button>
</form></body></html>
"""


def profile_json(settings: SimulatorSettings) -> dict[str, object]:
    return {
        "user_id": settings.user_id,
        "user_type": "individual",
        "email": settings.email,
        "user_name": settings.user_name,
        "user_shortname": settings.user_name.split()[0],
        "broker": "ZERODHA",
        "exchanges": ["NSE", "NFO"],
        "products": ["CNC", "NRML", "MIS"],
        "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
        "avatar_url": None,
        "meta": {"demat_consent": "physical"},
    }


def _redirect_to_app(request: web.Request, api_key: str) -> web.HTTPFound:
    server = server_of(request)
    request_token = server.sim.sessions.authorize(api_key, time.time())
    target = server.settings.redirect_url or f"{server.rest_root}/_sim/redirect"
    query = urlencode(
        {"action": "login", "type": "login", "status": "success", "request_token": request_token}
    )
    separator = "&" if "?" in target else "?"
    return web.HTTPFound(f"{target}{separator}{query}")


async def connect_login(request: web.Request) -> web.Response:
    server = server_of(request)
    api_key = request.query.get("api_key", "")
    if server.sim.sessions.has_browser_session(request.cookies.get(BROWSER_COOKIE)):
        raise _redirect_to_app(request, api_key)
    body = LOGIN_FORM.format(problem="", api_key=html.escape(api_key))
    return web.Response(text=body, content_type="text/html")


async def connect_login_form(request: web.Request) -> web.Response:
    """The HTML form's submit: all three factors at once, then the redirect."""
    sessions = server_of(request).sim.sessions
    form = await form_of(request)
    api_key = form.get("api_key", "")
    try:
        request_id = sessions.login(form.get("user_id", ""), form.get("password", ""))
        browser = sessions.twofa(
            form.get("user_id", ""), request_id, form.get("twofa_value", ""), "totp", time.time()
        )
        redirect = _redirect_to_app(request, api_key)
    except KiteApiError as exc:
        body = LOGIN_FORM.format(problem=html.escape(exc.message), api_key=html.escape(api_key))
        return web.Response(text=body, content_type="text/html", status=400)
    redirect.set_cookie(BROWSER_COOKIE, browser, httponly=True, samesite="Lax")
    raise redirect


async def api_login(request: web.Request) -> web.Response:
    form = await form_of(request)
    user_id = form.get("user_id", "")
    request_id = server_of(request).sim.sessions.login(user_id, form.get("password", ""))
    return success(
        {
            "user_id": user_id,
            "request_id": request_id,
            "twofa_type": "totp",
            "twofa_types": ["totp"],
            "twofa_status": "active",
        }
    )


async def api_twofa(request: web.Request) -> web.Response:
    form = await form_of(request)
    browser = server_of(request).sim.sessions.twofa(
        form.get("user_id", ""),
        form.get("request_id", ""),
        form.get("twofa_value", ""),
        form.get("twofa_type", "totp"),
        time.time(),
    )
    response = success({"profile": {}})
    response.set_cookie(BROWSER_COOKIE, browser, httponly=True, samesite="Lax")
    return response


async def create_session(request: web.Request) -> web.Response:
    server = server_of(request)
    form = await form_of(request)
    session = server.sim.sessions.exchange(
        form.get("api_key", ""),
        form.get("request_token", ""),
        form.get("checksum", ""),
        server.now(),
        time.time(),
    )
    data = profile_json(server.settings)
    data.update(
        {
            "api_key": server.settings.api_key,
            "access_token": session.access_token,
            "public_token": session.public_token,
            "refresh_token": "",
            "enctoken": "",
            "login_time": kite_time(session.login_time),
        }
    )
    return success(data)


async def delete_session(request: web.Request) -> web.Response:
    api_key = request.query.get("api_key", "")
    access_token = request.query.get("access_token", "")
    if not access_token:
        raise InputError("`access_token` is required.")
    server_of(request).sim.sessions.invalidate(api_key, access_token)
    return success(True)


async def redirect_page(request: web.Request) -> web.Response:
    """Where the login lands by default: shows the request_token to paste (manual path)."""
    token = html.escape(request.query.get("request_token", ""))
    body = f"<!doctype html><html><body><p>request_token: <code>{token}</code></p></body></html>"
    return web.Response(text=body, content_type="text/html")


def login_routes() -> list[web.RouteDef]:
    return [
        web.get("/connect/login", connect_login),
        web.post("/connect/login", connect_login_form),
        web.post("/api/login", api_login),
        web.post("/api/twofa", api_twofa),
        web.post("/session/token", create_session),
        web.delete("/session/token", delete_session),
        web.get("/_sim/redirect", redirect_page),
    ]
