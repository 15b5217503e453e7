"""The Sentinel's settings, read from SENTINEL_* (Kite account fields also from KITE_*).

Defaults point at the REAL Kite endpoints; tests and the simulator override the three roots.
Secrets (api_secret, password, totp_secret) are SecretStr and registered with the log redactor in
`__main__`; they are never logged, stored or sent anywhere but to Kite.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from shared.settings import ServiceSettings, service_config

LoginMethod = Literal["auto", "manual"]


def _kite(name: str) -> AliasChoices:
    """Read SENTINEL_<NAME> first, then KITE_<NAME> (one .env for every service)."""
    return AliasChoices(f"SENTINEL_{name}", f"KITE_{name}")


def parse_quantity_map(value: Any) -> Any:
    """ "NIFTY:1800,BANKNIFTY:600" -> {"NIFTY": 1800, "BANKNIFTY": 600} (a dict passes through)."""
    if not isinstance(value, str):
        return value
    result: dict[str, int] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        name, sep, quantity = part.rpartition(":")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME:QUANTITY, got {part.strip()!r}")
        try:
            result[name.strip().upper()] = int(quantity)
        except ValueError:
            raise ValueError(f"quantity of {name.strip()!r} is not an integer") from None
    return result


def parse_name_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip().upper() for part in value.split(",") if part.strip())
    return value


class SentinelSettings(ServiceSettings):
    """Daily login, token distribution and the pre-market checks."""

    model_config = service_config("SENTINEL_")

    metrics_port: int = Field(9101, ge=0, le=65535, description="/metrics /healthz /ready port")

    # Kite account and endpoints.
    api_key: str = Field("", validation_alias=_kite("API_KEY"), description="Kite Connect API key")
    api_secret: SecretStr = Field(
        SecretStr(""), validation_alias=_kite("API_SECRET"), description="Kite Connect API secret"
    )
    user_id: str = Field("", validation_alias=_kite("USER_ID"), description="Zerodha user id")
    password: SecretStr = Field(
        SecretStr(""),
        validation_alias=_kite("PASSWORD"),
        description="Zerodha password (auto login)",
    )
    totp_secret: SecretStr = Field(
        SecretStr(""),
        validation_alias=_kite("TOTP_SECRET"),
        description="base32 TOTP secret of the Zerodha 2FA app (auto login)",
    )
    kite_api_root: str = Field(
        "https://api.kite.trade", validation_alias=_kite("API_ROOT"), description="Kite REST root"
    )
    kite_login_root: str = Field(
        "https://kite.zerodha.com",
        validation_alias=_kite("LOGIN_ROOT"),
        description="root of the login pages (/api/login, /api/twofa, /connect/login)",
    )
    http_timeout_s: float = Field(10.0, gt=0, description="timeout of one login/REST request")

    # Login.
    login_method: LoginMethod = Field(
        "auto", description="auto: user id, password and TOTP; manual: paste a request_token"
    )
    login_time: time = Field(time(8, 30), description="daily login time, IST")
    login_on_trading_days_only: bool = Field(
        True, description="skip the scheduled login on days without a session (calendar)"
    )
    token_expiry_time: time = Field(time(6, 0), description="IST time at which Kite tokens die")
    login_network_attempts: int = Field(
        5, ge=1, description="tries of one login step on network errors (never on bad credentials)"
    )
    login_backoff_initial_s: float = Field(1.0, ge=0, description="first network-error back-off")
    login_backoff_max_s: float = Field(30.0, ge=0, description="network-error back-off ceiling")
    relogin_min_interval_s: float = Field(
        30.0, ge=0, description="minimum seconds between two logins triggered by token rejections"
    )
    network_retry_after_s: float = Field(
        120.0, gt=0, description="after a login failed on network errors, try again this much later"
    )
    redirect_host: str = Field("127.0.0.1", description="manual login: redirect endpoint host")
    redirect_port: int = Field(
        9111, ge=0, le=65535, description="manual login: port of GET /kite/redirect (0: off)"
    )

    # Pre-market checks.
    check_interval_s: float = Field(30.0, gt=0, description="re-run the pre-market checks")
    token_validate_interval_s: float = Field(
        300.0, gt=0, description="validate the token with a profile call this often"
    )
    static_ip: str = Field("", description="registered static IP; empty: the IP check is skipped")
    public_ip_url: str = Field(
        "https://api.ipify.org", description="returns this machine's public IP as plain text"
    )
    instrument_exchanges: Annotated[tuple[str, ...], NoDecode] = Field(
        ("NSE", "NFO"), description="exchanges whose instruments are dumped each morning"
    )
    freeze_quantities: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=lambda: {"NIFTY": 1800, "BANKNIFTY": 600},
        description="F&O freeze quantity per underlying name, NAME:QTY,...",
    )
    instruments_max_age_h: float = Field(
        20.0, gt=0, description="an instruments dump older than this fails the check"
    )

    @field_validator("instrument_exchanges", mode="before")
    @classmethod
    def _split_exchanges(cls, value: Any) -> Any:
        return parse_name_list(value)

    @field_validator("freeze_quantities", mode="before")
    @classmethod
    def _split_freeze(cls, value: Any) -> Any:
        return parse_quantity_map(value)

    def secrets(self) -> tuple[SecretStr, ...]:
        """Values never to print."""
        return (self.api_secret, self.password, self.totp_secret)
