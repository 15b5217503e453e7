"""The per-service HTTP endpoint: GET /metrics, /healthz (alive) and /ready (can do its job).

    server = await serve_health(metrics.registry, settings.metrics_host, settings.metrics_port,
                                ready=lambda: (not halt.active, halt.reason or "ready"))
    ...
    await server.stop()

`ready()` returns `(True, anything)` -> 200 "ready", or `(False, reason)` -> 503 with the reason,
e.g. "halted: pre-market checks failing: token invalid". A `ready` that raises answers 503 too.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)

Readiness = Callable[[], tuple[bool, str]]


class HealthServer:
    """An aiohttp site serving one registry and one readiness callable; port 0 picks a free port."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, ready: Readiness) -> None:
        self.registry = registry
        self.host = host
        self.requested_port = port
        self.ready = ready
        self.port = 0
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/ready", self._ready)
        return app

    async def start(self) -> int:
        """Bind and serve; returns the bound port."""
        if self._runner is not None:
            raise RuntimeError("health server already started")
        self._runner, self.port = await serve_app(
            self.app(), self.host, self.requested_port, shutdown_timeout=2.0
        )
        logger.info("metrics and readiness on http://%s:%s", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await runner.cleanup()
        logger.info("metrics and readiness endpoint on port %s stopped", self.port)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _ready(self, request: web.Request) -> web.Response:
        try:
            ready, reason = self.ready()
        except Exception as exc:
            logger.exception("readiness check raised")
            return web.Response(status=503, text=f"readiness check failed: {type(exc).__name__}")
        if ready:
            return web.Response(text="ready")
        return web.Response(status=503, text=reason or "not ready")


async def serve_health(
    registry: CollectorRegistry, host: str, port: int, ready: Readiness
) -> HealthServer:
    """Start the endpoint; `server.port` is the bound port, `await server.stop()` ends it."""
    server = HealthServer(registry, host, port, ready)
    await server.start()
    return server


async def serve_app(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 60.0
) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp app on (host, port; 0 = a free port); returns the runner (for cleanup)
    and the bound port. A port in use raises OSError before anything is left running."""
    sock = socket.create_server((host, port))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        sock.close()
        raise
    return runner, int(sock.getsockname()[1])
