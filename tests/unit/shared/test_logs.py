"""Logging never prints a secret, whatever shape it takes, in either format."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import SecretStr

from shared.logs import (
    MASK,
    SECRETS,
    JsonLinesFormatter,
    SecretRegistry,
    TextFormatter,
    configure_logging,
    register_settings_secrets,
)
from shared.settings import ServiceSettings

TOKEN = "Zq81xAccessTok3n"
API_SECRET = "s3cr3tApiValue99"


def record(
    msg: str,
    args: tuple[Any, ...] = (),
    extra: dict[str, Any] | None = None,
    exc: BaseException | None = None,
) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    rec = logging.getLogger("services.sentinel.login").makeRecord(
        "services.sentinel.login", logging.INFO, __file__, 1, msg, args, exc_info, extra=extra
    )
    return rec


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def formatters(secrets: SecretRegistry) -> list[logging.Formatter]:
    return [JsonLinesFormatter("sentinel", secrets), TextFormatter("sentinel", secrets)]


# (case, record, registered secrets, text that must not appear, text that must remain)
CASES: list[tuple[str, logging.LogRecord, list[str], list[str], list[str]]] = [
    (
        "registered value in a %s argument",
        record("session ready with token %s for %s", (TOKEN, "AB1234")),
        [TOKEN],
        [TOKEN],
        ["session ready with token", "AB1234"],
    ),
    (
        "registered value in an extra field",
        record("login", extra={"detail": f"sent {API_SECRET} upstream"}),
        [API_SECRET],
        [API_SECRET],
        ["sent", "upstream"],
    ),
    (
        "registered value nested in an extra dict",
        record("login", extra={"response": {"data": {"k": TOKEN}}}),
        [TOKEN],
        [TOKEN],
        ["login"],
    ),
    (
        "registered value in an exception traceback",
        record("login failed", exc=raised(RuntimeError(f"bad checksum for {API_SECRET}"))),
        [API_SECRET],
        [API_SECRET],
        ["RuntimeError: bad checksum for", "Traceback"],
    ),
    (
        "registered value with quote and backslash, JSON-escaped",
        record("pw %s", ('pa"ss\\word9',)),
        ['pa"ss\\word9'],
        ['pa"ss\\word9', 'pa\\"ss\\\\word9', "ss\\word9", "word9"],
        ["pw"],
    ),
    (
        "access_token=... never registered",
        record("GET /session?access_token=abcDEF123&user=AB1234"),
        [],
        ["abcDEF123"],
        ["access_token=", "user=AB1234"],
    ),
    (
        "api_secret=... never registered",
        record("checksum inputs api_secret=qwerty7890 api_key=publickey1"),
        [],
        ["qwerty7890"],
        ["api_key=publickey1"],
    ),
    (
        "Authorization: token api_key:access_token",
        record("headers X-Kite-Version: 3, Authorization: token kitekey:acc3ssT0k"),
        [],
        ["acc3ssT0k", "kitekey:acc"],
        ["X-Kite-Version: 3", "Authorization: token"],
    ),
    (
        "password=... in a message",
        record("connecting with password=hunter2hunter"),
        [],
        ["hunter2hunter"],
        ["connecting with password="],
    ),
    (
        "redis://user:pass@ URL",
        record("redis at %s", ("redis://default:r3disPass@10.0.0.5:6379/0",)),
        [],
        ["r3disPass"],
        ["redis://default:", "@10.0.0.5:6379/0"],
    ),
    (
        "redis://:pass@ URL without a user",
        record("redis at redis://:0nlyPass@localhost:6379"),
        [],
        ["0nlyPass"],
        ["@localhost:6379"],
    ),
    (
        "dict repr of a Kite session response",
        record(
            "session %s", ({"user_id": "AB1234", "access_token": "tokVal42", "enctoken": "e9"},)
        ),
        [],
        ["tokVal42", "'e9'"],
        ["AB1234", "'access_token':"],
    ),
    (
        "JSON text with a quoted value holding a space",
        record('payload {"password": "p@ss w0rd", "user": "u1"}'),
        [],
        ["p@ss", "w0rd"],
        ['"user'],
    ),
    (
        "Telegram bot URL",
        record("POST https://api.telegram.org/bot123456:AAE-x_yZ/sendMessage failed"),
        [],
        ["123456:AAE-x_yZ", "AAE-x_yZ"],
        ["api.telegram.org/bot", "/sendMessage failed"],
    ),
    (
        "Slack webhook URL",
        record("POST https://hooks.slack.com/services/T0001/B0002/XXXXyyyyZZZZ failed"),
        [],
        ["XXXXyyyyZZZZ", "T0001"],
        ["hooks.slack.com/services/", "failed"],
    ),
    (
        "JSON text whose quoted secret holds an escaped quote",
        record('payload {"password": "a\\"bQx9", "user": "u1"}'),
        [],
        ["bQx9"],
        ['"user'],
    ),
    (
        "extra dict with a secret-named key",
        # A value no timestamp can contain ("42" failed whenever the line was logged at :42).
        record("kite response", extra={"data": {"access_token": 9081726354, "user_id": "AB1234"}}),
        [],
        ["9081726354"],
        ["AB1234"],
    ),
    (
        "extra field named like a secret, numeric",
        record("totp step", extra={"totp": 123456, "step": 30}),
        [],
        ["123456"],
        ["totp step"],
    ),
    (
        "SecretStr in an extra field",
        record("settings", extra={"api_secret_field": SecretStr("plainSecretXY")}),
        [],
        ["plainSecretXY"],
        ["**********"],
    ),
    (
        "secret key=value inside an exception message",
        record("db error", exc=raised(ValueError("auth failed: password='Pw0rd!x' user=ops"))),
        [],
        ["Pw0rd!x"],
        ["user=ops", "ValueError"],
    ),
    (
        "wrong number of %-arguments",
        record("token %s and %s", (TOKEN,)),
        [TOKEN],
        [TOKEN],
        ["unformattable log message"],
    ),
]


@pytest.mark.parametrize(
    ("rec", "registered", "forbidden", "kept"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_no_secret_reaches_a_rendered_line(
    rec: logging.LogRecord, registered: list[str], forbidden: list[str], kept: list[str]
) -> None:
    secrets = SecretRegistry()
    for value in registered:
        secrets.register(value)
    for formatter in formatters(secrets):
        line = formatter.format(rec)
        for bad in forbidden:
            assert bad not in line, (type(formatter).__name__, line)
        for good in kept:
            assert good in line, (type(formatter).__name__, line)
        if "unformattable" not in line:  # a bad-args line leaves the arguments out instead
            assert MASK in line or "**********" in line


@pytest.mark.parametrize(
    "rec", [pytest.param(case[1], id=case[0]) for case in CASES if case[0] != "wrong number"]
)
def test_a_redacted_json_line_is_still_one_valid_json_object(rec: logging.LogRecord) -> None:
    secrets = SecretRegistry()
    secrets.register(TOKEN)
    secrets.register('pa"ss\\word9')
    line = JsonLinesFormatter("sentinel", secrets).format(rec)
    assert "\n" not in line
    assert json.loads(line)["service"] == "sentinel"


@pytest.mark.parametrize("empty", ["", "   ", None, SecretStr("")])
def test_empty_values_are_not_registered(empty: str | SecretStr | None) -> None:
    secrets = SecretRegistry()
    secrets.register(empty)
    assert secrets.redact("nothing to hide here") == "nothing to hide here"


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    secrets = SecretRegistry()
    secrets.register("abcd")
    secrets.register("abcdEFGH")
    assert secrets.redact("x abcdEFGH y") == f"x {MASK} y"


def test_secretstr_values_can_be_registered() -> None:
    secrets = SecretRegistry()
    secrets.register(SecretStr("fromSettings1"))
    assert "fromSettings1" not in secrets.redact("value fromSettings1")


class SecretSettings(ServiceSettings):
    model_config = ServiceSettings.model_config | {"env_file": None}

    api_secret: SecretStr = SecretStr("")


def test_settings_secrets_are_registered_and_a_url_keeps_its_host_readable() -> None:
    settings = SecretSettings(
        api_secret=SecretStr("settingsApiSecret1"),
        redis_url=SecretStr("redis://default:settingsRedisPw@10.1.2.3:6379/0"),
        clickhouse_password=SecretStr("settingsChPw"),
    )
    register_settings_secrets(settings)
    line = SECRETS.redact(
        "secret settingsApiSecret1 ch settingsChPw redis 10.1.2.3 settingsRedisPw"
    )
    assert line == f"secret {MASK} ch {MASK} redis 10.1.2.3 {MASK}"


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_configure_logging_writes_json_lines_with_zone_service_and_extras(
    root_logger: logging.Logger,
) -> None:
    out = io.StringIO()
    configure_logging("INFO", True, "gatekeeper", stream=out, secrets=[SecretStr("cfgSecret77")])
    log = logging.getLogger("services.gatekeeper.risk")
    log.debug("hidden below the level")
    log.info("denied %s: %s", "NIFTY", "cfgSecret77", extra={"reason": "max_loss"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "INFO"
    assert entry["service"] == "gatekeeper"
    assert entry["logger"] == "services.gatekeeper.risk"
    assert entry["message"] == f"denied NIFTY: {MASK}"
    assert entry["reason"] == "max_loss"
    assert datetime.fromisoformat(entry["ts"]).utcoffset() is not None
    assert entry["ts"].endswith("+05:30")


def test_configure_logging_text_format_and_a_second_call_replaces_the_handler(
    root_logger: logging.Logger,
) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", True, "consumer", stream=first)
    configure_logging("WARNING", False, "consumer", stream=second)
    log = logging.getLogger("services.consumer.candles")
    log.info("not shown")
    log.warning("late tick %s", "NIFTY", extra={"lag_ms": 812})
    assert first.getvalue() == ""
    (line,) = second.getvalue().splitlines()
    assert " WARNING consumer services.consumer.candles: late tick NIFTY lag_ms=812" in line


def test_a_failing_stream_reports_the_error_without_the_message(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    class BrokenStream(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("disk gone")

    configure_logging("INFO", True, "producer", stream=BrokenStream())
    logging.getLogger("services.producer").info("token %s", "leakMe123")
    err = capsys.readouterr().err
    assert "logging error in services.producer: OSError" in err
    assert "leakMe123" not in err
    assert sys.stderr is not None
