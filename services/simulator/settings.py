"""Every tunable number of the Kite simulator, read from `SIM_*` variables (CLI flags override).

The account defaults are deliberately fake-looking: the simulator must never be mistaken for, nor
configured with, a real Kite account.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

from pydantic import Field, SecretStr

from shared.charges import ChargeSchedule
from shared.settings import ServiceSettings, service_config

BUNDLED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "marketdata"

# Kite's documented maximum range per historical call; sources disagree (see the Kite notes).
DEFAULT_HISTORICAL_MAX_DAYS: dict[str, int] = {
    "minute": 60,
    "3minute": 100,
    "5minute": 100,
    "10minute": 100,
    "15minute": 200,
    "30minute": 200,
    "60minute": 400,
    "day": 2000,
}


class SimulatorSettings(ServiceSettings):
    """The simulator's settings. `speed` 0 means as fast as possible."""

    model_config = service_config("SIM_")

    # Network: loopback only unless told otherwise; port 0 picks a free port.
    host: str = "127.0.0.1"
    rest_port: int = Field(8710, ge=0, le=65535)
    ws_port: int = Field(8711, ge=0, le=65535)

    # Replay.
    data_dir: str = ""  # "" = the bundled shared/marketdata
    nifty_minute_file: str = "nifty50_index_1m_2024-01-01_2024-08-23.csv.gz"
    banknifty_minute_file: str = "niftybank_index_1m_2024-01-01_2024-08-23.csv.gz"
    nifty_daily_file: str = "nifty50_index_1d_2007-01-02_2022-11-07.csv.gz"
    day: date = date(2024, 8, 20)  # the simulated trading day; must be in the data
    start_time: time = time(9, 15)  # IST; the clock starts here
    speed: float = Field(1.0, ge=0)  # 1 = real time, 60 = a minute per second, 0 = max speed
    paused: bool = False  # start with the clock stopped (tests step or resume it)
    ticks_per_second: float = Field(1.0, gt=0, le=20)  # per underlying; >= 4 ticks per minute
    seed: int = 20240820  # the tick paths and depth are a pure function of seed and data
    max_packets_per_frame: int = Field(2000, ge=1, le=65535)  # batching at max speed
    heartbeat_interval_s: float = Field(2.0, gt=0)  # 1-byte frame when idle (wall seconds)

    # The simulated account (documented, fake defaults).
    api_key: str = "sim_api_key"
    api_secret: SecretStr = SecretStr("sim_api_secret")
    user_id: str = "SIM001"
    user_name: str = "Simulated Trader"
    email: str = "trader@simulator.invalid"
    password: SecretStr = SecretStr("sim-password")
    totp_secret: SecretStr = SecretStr("SIMULATORTOTPSECRETFORTESTSONLYA")
    redirect_url: str = ""  # "" = the simulator's own /_sim/redirect page showing the token
    request_token_ttl_s: float = Field(300.0, gt=0)  # wall seconds a request_token is valid
    token_expiry_time: time = time(6, 0)  # IST, simulated clock: access tokens die here
    opening_cash: float = Field(1_000_000.0, ge=0)

    # Rate limits (per API key, wall clock) and API limits.
    rate_quote_per_s: float = Field(1.0, gt=0)
    rate_historical_per_s: float = Field(3.0, gt=0)
    rate_orders_per_s: float = Field(10.0, gt=0)
    rate_other_per_s: float = Field(10.0, gt=0)
    orders_per_minute: int = Field(200, ge=1)
    orders_per_day: int = Field(3000, ge=1)
    max_modifications: int = Field(25, ge=1)
    quote_max_instruments: int = Field(500, ge=1)
    ohlc_max_instruments: int = Field(1000, ge=1)
    ltp_max_instruments: int = Field(1000, ge=1)
    historical_max_days: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_HISTORICAL_MAX_DAYS)
    )
    ws_max_connections: int = Field(3, ge=1)
    ws_max_instruments: int = Field(3000, ge=1)

    # Instruments (2024 values; change them for another period).
    nifty_lot_size: int = Field(25, ge=1)
    banknifty_lot_size: int = Field(15, ge=1)
    nifty_freeze_quantity: int = Field(1800, ge=1)
    banknifty_freeze_quantity: int = Field(900, ge=1)
    nifty_strike_step: float = Field(50.0, gt=0)
    banknifty_strike_step: float = Field(100.0, gt=0)
    nifty_expiry_weekday: int = Field(3, ge=0, le=6)  # Thursday
    banknifty_expiry_weekday: int = Field(2, ge=0, le=6)  # Wednesday
    strikes_each_side: int = Field(20, ge=0)
    weekly_expiries: int = Field(4, ge=0)
    monthly_expiries: int = Field(3, ge=1)
    tick_size: float = Field(0.05, gt=0)

    # Modelled prices of derivatives (labelled "modelled" wherever they appear).
    nifty_volatility: float = Field(0.13, gt=0)
    banknifty_volatility: float = Field(0.16, gt=0)
    risk_free_rate: float = Field(0.07, ge=0)
    futures_carry_rate: float = Field(0.07)  # annual, continuous: F = S * exp(carry * t)
    derived_daily_volume_lots: int = Field(200_000, ge=0)  # an at-the-money contract's day volume
    derived_open_interest_lots: int = Field(100_000, ge=0)
    depth_spread_ticks: int = Field(1, ge=1)
    depth_step_ticks: int = Field(1, ge=1)
    depth_max_lots_per_level: int = Field(40, ge=1)

    # Orders: margins, market protection, exchange limit-price protection.
    futures_margin_rate: float = Field(0.12, gt=0)
    short_option_margin_rate: float = Field(0.15, gt=0)
    auto_market_protection_pct: float = Field(2.0, gt=0)  # market_protection=-1
    price_band_threshold: float = Field(50.0, gt=0)  # premium above: percent band, else absolute
    price_band_pct: float = Field(40.0, gt=0)
    price_band_abs: float = Field(20.0, gt=0)
    charges: ChargeSchedule = Field(default_factory=ChargeSchedule)

    # Faults active from the start (the control endpoint changes them at run time).
    fault_reject_orders: int = Field(0, ge=0)  # reject the next N orders
    fault_slow_response_ms: int = Field(0, ge=0)  # delay every REST response
    fault_drop_websocket_every_s: float = Field(0.0, ge=0)  # 0 = never
    fault_stall_every_s: float = Field(0.0, ge=0)  # 0 = never
    fault_stall_for_s: float = Field(10.0, gt=0)

    def data_path(self) -> Path:
        """The directory holding the market data files."""
        return Path(self.data_dir) if self.data_dir else BUNDLED_DATA_DIR
