"""The CLI's IO adapters: a synchronous Redis client, a ClickHouse client and small HTTP GETs.

The CLI is a short-lived synchronous program; services use the async bus, the CLI writes the same
wire format through `shared.bus.entry_fields`.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import redis
from clickhouse_driver import Client

from services.cli.errors import UNREACHABLE, CliError
from shared.bus import entry_fields
from shared.messages import Message
from shared.settings import ServiceSettings

STREAM_MAXLEN = 100_000  # the CLI writes a few control messages; trimming is the services' job


def redis_client(settings: ServiceSettings, timeout_s: float = 3.0) -> Any:
    """A bytes-replies Redis client (typed Any: redis-py's stubs mix sync and async returns)."""
    return redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
    )


def hash_of(client: Any, key: str) -> dict[str, str]:
    """A Redis hash with str keys and values."""
    raw: dict[bytes, bytes] = client.hgetall(key)
    return {k.decode(): v.decode(errors="replace") for k, v in raw.items()}


def publish(client: Any, stream: str, message: Message) -> str:
    """Append one message to a stream (the bus's wire layout); returns the entry id."""
    entry_id: bytes = client.xadd(
        stream, entry_fields(stream, message), maxlen=STREAM_MAXLEN, approximate=True
    )
    return entry_id.decode()


def clickhouse_client(settings: ServiceSettings, timeout_s: float = 5.0) -> Client:
    return Client(
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        database=settings.clickhouse_database,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password.get_secret_value(),
        connect_timeout=timeout_s,
        send_receive_timeout=timeout_s * 6,
    )


def clickhouse_unreachable(settings: ServiceSettings, exc: Exception) -> CliError:
    where = f"{settings.clickhouse_host}:{settings.clickhouse_port}/{settings.clickhouse_database}"
    return CliError(f"cannot query ClickHouse at {where}: {exc}", UNREACHABLE)


@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0: no answer
    body: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


def http_get(url: str, timeout_s: float) -> HttpAnswer:
    """GET a URL; a refused connection or timeout is an answer with status 0 and the reason."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return HttpAnswer(int(response.status), response.read().decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace") if exc.fp else ""
        return HttpAnswer(int(exc.code), body.strip())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpAnswer(0, "", f"no answer from {url}: {reason}")
