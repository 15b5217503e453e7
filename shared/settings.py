"""The settings base: one frozen pydantic-settings class per service, one shared `.env`.

Each service subclasses `ServiceSettings` with its own `env_prefix` ("GATEKEEPER_", ...). The
infrastructure fields declared here are read from the prefixed variable first and then from the
unprefixed one (`GATEKEEPER_REDIS_URL`, then `REDIS_URL`), so a single `.env` configures every
service. Settings are built once in a service's `__main__` with `load_settings` and passed down;
nothing else reads `os.environ`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_FILE = ".env"


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the environment variable."""


class ServiceSettings(BaseSettings):
    """Fields every service shares. Subclasses set `model_config = service_config("NAME_")`."""

    model_config = SettingsConfigDict(
        env_prefix="", env_file=ENV_FILE, extra="ignore", frozen=True, populate_by_name=True
    )
    # Fields that fall back to the unprefixed variable of the same name.
    SHARED_FIELDS: ClassVar[tuple[str, ...]] = (
        "redis_url",
        "clickhouse_host",
        "clickhouse_port",
        "clickhouse_database",
        "clickhouse_user",
        "clickhouse_password",
        "log_level",
        "log_json",
        "spool_dir",
        "telegram_bot_token",
        "telegram_chat_id",
        "slack_webhook_url",
        "alert_api_root",
        "alert_rate_per_minute",
        "alert_dedup_seconds",
        "alert_timeout_seconds",
        "market_calendar_path",
    )

    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL (may carry a password: treated as a secret)",
    )
    clickhouse_host: str = Field("127.0.0.1", description="ClickHouse host (native protocol)")
    clickhouse_port: int = Field(9000, ge=1, le=65535, description="ClickHouse native TCP port")
    clickhouse_database: str = Field(
        "tradealgo", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="ClickHouse database"
    )
    clickhouse_user: str = Field("default", description="ClickHouse user")
    clickhouse_password: SecretStr = Field(SecretStr(""), description="ClickHouse password")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    log_json: bool = Field(True, description="JSON-lines logs (false: readable text)")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="port of /metrics, /healthz, /ready (0: a free port)"
    )
    metrics_host: str = Field("127.0.0.1", description="address the metrics endpoint binds to")
    spool_dir: str = Field(
        "var/spool", description="directory for rows kept while ClickHouse is unreachable"
    )
    telegram_bot_token: SecretStr = Field(
        SecretStr(""), description="Telegram bot token for alerts"
    )
    telegram_chat_id: str = Field("", description="Telegram chat id for alerts")
    slack_webhook_url: SecretStr = Field(SecretStr(""), description="Slack incoming-webhook URL")
    alert_api_root: str = Field(
        "", description="override of the Telegram API root (tests, proxies); empty: the real one"
    )
    alert_rate_per_minute: int = Field(
        20, ge=1, description="alerts sent per rolling minute; the rest are dropped and counted"
    )
    alert_dedup_seconds: float = Field(
        300.0, ge=0, description="the same alert key within this window is suppressed"
    )
    alert_timeout_seconds: float = Field(5.0, gt=0, description="timeout of one webhook request")
    market_calendar_path: str = Field(
        "", description="NSE holiday/session file; empty: the shipped one (update it yearly)"
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        prefix = str(cls.model_config.get("env_prefix", ""))
        if not prefix:
            return
        for name in cls.SHARED_FIELDS:
            field = cls.model_fields[name]
            env = name.upper()
            field.validation_alias = AliasChoices(f"{prefix}{env}", env)
        cls.model_rebuild(force=True)

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable a field is read from first."""
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def service_config(prefix: str) -> SettingsConfigDict:
    """The model_config of a service's settings class."""
    return SettingsConfigDict(
        env_prefix=prefix, env_file=ENV_FILE, extra="ignore", frozen=True, populate_by_name=True
    )


def load_settings[S: ServiceSettings](cls: type[S], **overrides: Any) -> S:
    """Build settings once, turning a validation error into one line per bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field, variable = _field_and_variable(cls, str(err["loc"][0]) if err["loc"] else "?")
            value = err.get("input")
            info = cls.model_fields.get(field)
            hidden = info is not None and info.annotation is SecretStr  # never echo a secret
            shown = (
                ""
                if hidden or field in cls.SHARED_FIELDS or "secret" in field
                else f" (got {value!r})"
            )
            problems.append(f"{variable}: {err['msg']}{shown}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def _field_and_variable(cls: type[ServiceSettings], loc: str) -> tuple[str, str]:
    """The field an error is about and the variable to name: an error on a field read through
    an alias (`CONSUMER_LOG_LEVEL`, `LOG_LEVEL`) is located by that alias, which is the name."""
    if loc in cls.model_fields:
        return loc, cls.env_name(loc)
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        if loc in [str(choice) for choice in choices if choice is not None]:
            if name in cls.SHARED_FIELDS and cls.model_config.get("env_prefix"):
                return name, f"{cls.env_name(name)} (or {name.upper()})"
            return name, loc.upper()
    return loc, loc.upper()
