"""The variables only `docker compose` reads (DEPLOY_*), documented with every other setting.

deploy/docker-compose.yml interpolates these from the shared `.env`: the per-service Redis and
ClickHouse passwords, Grafana's admin password, the published addresses. No service reads them;
this class exists so that `tradealgo config` lists them in README.md and `.env.example` (a test
keeps every `${VAR}` of the compose file documented there) and can validate them.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from shared.settings import ServiceSettings, service_config

# The passwords end up inside redis:// URLs: keep them to characters a URL needs no escaping for.
URL_SAFE = r"^[A-Za-z0-9._~-]*$"


def _password(what: str) -> SecretStr:
    return Field(
        SecretStr(""),
        description=f"{what} (required by docker compose; URL-safe, e.g. `openssl rand -hex 24`)",
    )


class DeploySettings(ServiceSettings):
    """docker compose's own variables (deploy/docker-compose.yml, deploy/docs/DEPLOYMENT.md)."""

    model_config = service_config("DEPLOY_")
    UNUSED_SETTINGS: ClassVar[tuple[str, ...]] = ("metrics_port", "metrics_host")

    image_tag: str = Field(
        "local", description="tag of the tradealgo image compose builds and runs"
    )
    redis_password_sentinel: SecretStr = _password("Redis password of the sentinel user")
    redis_password_producer: SecretStr = _password("Redis password of the producer user")
    redis_password_consumer: SecretStr = _password("Redis password of the consumer user")
    redis_password_gatekeeper: SecretStr = _password("Redis password of the gatekeeper user")
    redis_password_ops: SecretStr = _password("Redis password of the ops user (CLI, healthcheck)")
    clickhouse_password_sentinel: SecretStr = _password("ClickHouse password of the sentinel user")
    clickhouse_password_producer: SecretStr = _password("ClickHouse password of the producer user")
    clickhouse_password_consumer: SecretStr = _password("ClickHouse password of the consumer user")
    clickhouse_password_gatekeeper: SecretStr = _password(
        "ClickHouse password of the gatekeeper user"
    )
    clickhouse_password_ops: SecretStr = _password(
        "ClickHouse password of the ops user (CLI, backups)"
    )
    grafana_admin_password: SecretStr = _password("Grafana's admin password")
    bind_address: str = Field(
        "127.0.0.1", description="host address Grafana and Prometheus are published on"
    )
    grafana_port: int = Field(3000, ge=1, le=65535, description="host port of Grafana")
    prometheus_port: int = Field(9090, ge=1, le=65535, description="host port of Prometheus")
    prometheus_retention: str = Field(
        "30d", pattern=r"^[0-9]+[smhdwy]$", description="how long Prometheus keeps samples"
    )

    @field_validator(
        "redis_password_sentinel",
        "redis_password_producer",
        "redis_password_consumer",
        "redis_password_gatekeeper",
        "redis_password_ops",
        "clickhouse_password_sentinel",
        "clickhouse_password_producer",
        "clickhouse_password_consumer",
        "clickhouse_password_gatekeeper",
        "clickhouse_password_ops",
        "grafana_admin_password",
    )
    @classmethod
    def _url_safe(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(URL_SAFE, value.get_secret_value()):
            raise ValueError("use only letters, digits and . _ ~ - (it goes into a redis:// URL)")
        return value
