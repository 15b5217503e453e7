"""Logging set up once per service, as JSON lines or readable text, that never prints a secret.

Every line is redacted after it is fully rendered (message, `extra=` fields, exception traceback,
stack), so nothing a formatter adds can slip past. Two layers:
- values registered with `register_secret` (the api_secret, password, TOTP secret, access token,
  Redis password, bot token, webhook URL...) are masked wherever they appear, including their
  JSON- and repr-escaped spellings;
- well-known shapes are masked even when nobody registered the value: `access_token=...`,
  `"password": "..."`, `Authorization: token k:t`, `scheme://user:pass@host`, Telegram bot URLs and
  Slack webhook paths.
SecretStr values already render as '**********'.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from shared.clock import IST

MASK = "********"

# Keys whose values are secrets wherever they appear as key=value / "key": "value".
SECRET_KEYS = (
    "access_token",
    "refresh_token",
    "request_token",
    "public_token",
    "enctoken",
    "api_secret",
    "client_secret",
    "secret",
    "totp_secret",
    "totp_key",
    "totp",
    "twofa_value",
    "password",
    "passwd",
    "pwd",
    "pin",
    "checksum",
    "bot_token",
    "webhook_url",
    "slack_webhook_url",
    "telegram_bot_token",
    "redis_password",
    "clickhouse_password",
    "x-kite-apikey-secret",
)

_SECRET_KEY_SET = frozenset(SECRET_KEYS)
_KEYS = "|".join(re.escape(k) for k in sorted(SECRET_KEYS, key=len, reverse=True))
_QUOTE = r"""(?:\\?["'])?"""  # a key or value may be quoted, or quoted inside a JSON string
_KEY_VALUE = re.compile(
    # key=value, key: value, "key": "value", 'key': 'value'; a quoted value may hold escapes.
    rf"""(?P<key>(?<![\w-])(?:{_KEYS}){_QUOTE}\s*[:=]\s*)"""
    r"""(?:(?P<q>\\?["'])(?:\\.|(?!(?P=q)).)*?(?P=q)|[^\s"'\\&,;)}\]]+)""",
    re.IGNORECASE,
)
# (a lowercase substring every match contains, pattern, replacement): the substring test is a
# cheap filter that skips the regex for the vast majority of lines.
_SHAPES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    # Authorization: token api_key:access_token / Bearer x / Basic x
    (
        "authorization",
        re.compile(
            rf"""(?P<key>authorization{_QUOTE}\s*[:=]\s*{_QUOTE}(?:(?:token|bearer|basic)\s+)?)"""
            r"""[^\s"'\\,;)}\]]+""",
            re.IGNORECASE,
        ),
        rf"\g<key>{MASK}",
    ),
    # scheme://user:password@host (redis, clickhouse, http)
    ("://", re.compile(r"(?P<key>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@", re.IGNORECASE),
     rf"\g<key>{MASK}@"),
    # Telegram bot token in an API URL
    ("/bot", re.compile(r"(?P<key>/bot)\d+:[\w-]+"), rf"\g<key>{MASK}"),
    # Slack incoming-webhook path
    ("hooks.slack.com/", re.compile(r"(?P<key>hooks\.slack\.com/services/)[\w/-]+"),
     rf"\g<key>{MASK}"),
)  # fmt: skip


def _mask_value(match: re.Match[str]) -> str:
    quote = match["q"] or ""  # keep the quotes so a JSON line stays valid JSON
    return f"{match['key']}{quote}{MASK}{quote}"


class SecretRegistry:
    """Secret values to mask; thread-safe, append-only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    def register(self, value: str | SecretStr | None) -> None:
        """Mask this value (and its JSON/repr-escaped forms) from now on; empty values are ignored."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not raw or not raw.strip():
            return
        forms = {
            raw,
            json.dumps(raw)[1:-1],
            repr(raw)[1:-1],
            json.dumps(raw, ensure_ascii=False)[1:-1],
        }
        with self._lock:
            values = self._values | forms
            # Longest first, so a secret containing another is masked whole.
            alternation = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
            self._pattern = re.compile(alternation)
            self._values = values

    def redact(self, text: str) -> str:
        """The text with every registered value and every known secret shape masked."""
        pattern = self._pattern
        if pattern is not None and any(value in text for value in self._values):
            text = pattern.sub(MASK, text)
        lower = text.lower()
        if any(key in lower for key in SECRET_KEYS):
            text = _KEY_VALUE.sub(_mask_value, text)
        for trigger, shape, replacement in _SHAPES:
            if trigger in lower:
                text = shape.sub(replacement, text)
        return text


SECRETS = SecretRegistry()


def register_secret(value: str | SecretStr | None) -> None:
    """Never print this value in any log line of this process."""
    SECRETS.register(value)


def register_settings_secrets(settings: BaseModel) -> None:
    """Register the value of every SecretStr field of a settings object.

    A URL-valued secret (redis_url) registers only its password: the host stays readable in logs.
    """
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not isinstance(value, SecretStr):
            continue
        raw = value.get_secret_value()
        if "://" in raw:
            try:
                password = urlsplit(raw).password
            except ValueError:  # unparseable: hide it whole
                password = raw
            SECRETS.register(password)
        else:
            SECRETS.register(raw)


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS}


def _message(record: logging.LogRecord) -> str:
    # A bad %-format must not reach logging.handleError, which prints the raw args to stderr.
    try:
        return record.getMessage()
    except Exception as exc:
        return f"unformattable log message {record.msg!r}: {type(exc).__name__}"


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, IST).isoformat(timespec="milliseconds")


def _exception_text(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[0] is not None:
        return "".join(traceback.format_exception(*record.exc_info)).rstrip()
    return record.exc_text or None


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, message, extras, exc, stack."""

    def __init__(self, service: str, secrets: SecretRegistry | None = None) -> None:
        super().__init__()
        self.service = service
        self.secrets = secrets or SECRETS

    def format(self, record: logging.LogRecord) -> str:
        # ts, level, service and logger come from code, not data; the rest may hold anything.
        payload: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
        }
        free: dict[str, Any] = {"message": _message(record)}
        for key, value in _extras(record).items():
            if key not in payload:
                free.setdefault(key, value)
        exc = _exception_text(record)
        if exc:
            free["exc"] = exc
        if record.stack_info:
            free["stack"] = record.stack_info
        # Redact the free fields before JSON escaping (one quoting level, as in the text format),
        # then the rendered line again as a backstop.
        for key, value in free.items():
            secret_named = key.lower() in _SECRET_KEY_SET
            payload[key] = MASK if secret_named else _redact_tree(value, self.secrets)
        return self.secrets.redact(json.dumps(payload, ensure_ascii=False))


def _redact_tree(value: object, secrets: SecretRegistry) -> object:
    """A JSON-ready copy: strings redacted, values under secret-named keys masked."""
    if isinstance(value, str):
        return secrets.redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {
            str(k): MASK if str(k).lower() in _SECRET_KEY_SET else _redact_tree(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_tree(v, secrets) for v in value]
    return secrets.redact(str(value))  # SecretStr -> '**********', datetimes, Decimals -> text


class TextFormatter(logging.Formatter):
    """`ts LEVEL service logger: message key=value ...` then any traceback, for a terminal."""

    def __init__(self, service: str, secrets: SecretRegistry | None = None) -> None:
        super().__init__()
        self.service = service
        self.secrets = secrets or SECRETS

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"{_timestamp(record)} {record.levelname:<7} {self.service} {record.name}: "
            f"{_message(record)}"
        ]
        parts.extend(f" {k}={v!s}" for k, v in _extras(record).items())
        exc = _exception_text(record)
        if exc:
            parts.append("\n" + exc)
        if record.stack_info:
            parts.append("\n" + record.stack_info)
        return self.secrets.redact("".join(parts))


class _ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs (a second call replaces it)."""

    def handleError(self, record: logging.LogRecord) -> None:
        # The default prints the raw message and arguments to stderr: they may hold a secret.
        _, exc, _ = sys.exc_info()
        sys.stderr.write(f"logging error in {record.name}: {type(exc).__name__}\n")


def configure_logging(
    level: str,
    json_lines: bool,
    service: str,
    stream: TextIO | None = None,
    secrets: Iterable[str | SecretStr] = (),
) -> logging.Handler:
    """Install the one root handler of a service (call once in its __main__); returns it."""
    for value in secrets:
        register_secret(value)
    handler = _ServiceHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLinesFormatter(service) if json_lines else TextFormatter(service))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ServiceHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Warnings go through the same redacting handler instead of straight to stderr.
    logging.captureWarnings(True)
    return handler
