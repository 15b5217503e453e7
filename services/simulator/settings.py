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
    host: str = Field(
        "127.0.0.1",
        description="address the REST and WebSocket servers bind to (loopback by default)",
    )
    rest_port: int = Field(8710, ge=0, le=65535, description="REST API port (0: a free port)")
    ws_port: int = Field(
        8711, ge=0, le=65535, description="KiteTicker WebSocket port (0: a free port)"
    )

    # Replay.
    data_dir: str = Field(
        "", description="market data directory; empty: the bundled shared/marketdata"
    )
    nifty_minute_file: str = Field(
        "nifty50_index_1m_2024-01-01_2024-08-23.csv.gz",
        description="NIFTY 50 1-minute bars file in data_dir",
    )
    banknifty_minute_file: str = Field(
        "niftybank_index_1m_2024-01-01_2024-08-23.csv.gz",
        description="NIFTY BANK 1-minute bars file in data_dir",
    )
    nifty_daily_file: str = Field(
        "nifty50_index_1d_2007-01-02_2022-11-07.csv.gz",
        description="NIFTY 50 daily bars file in data_dir",
    )
    day: date = Field(
        date(2024, 8, 20), description="the simulated trading day (must be in the data)"
    )
    start_time: time = Field(time(9, 15), description="simulated start time, IST")
    speed: float = Field(
        1.0,
        ge=0,
        description="replay speed: 1 real time, 60 a minute per second, 0 as fast as possible",
    )
    paused: bool = Field(
        False, description="start with the simulated clock stopped (tests step or resume it)"
    )
    ticks_per_second: float = Field(
        1.0,
        gt=0,
        le=20,
        description="ticks per simulated second per underlying (at least 4 per minute)",
    )
    seed: int = Field(
        20240820, description="seed of the tick paths and depth (a pure function of seed and data)"
    )
    max_packets_per_frame: int = Field(
        2000, ge=1, le=65535, description="packets per WebSocket frame at maximum speed"
    )
    heartbeat_interval_s: float = Field(
        2.0, gt=0, description="idle wall seconds before a 1-byte heartbeat frame"
    )

    # The simulated account (documented, fake defaults).
    api_key: str = Field("sim_api_key", description="the simulated app's api_key (fake)")
    api_secret: SecretStr = Field(
        SecretStr("sim_api_secret"), description="the simulated app's api_secret (fake)"
    )
    user_id: str = Field("SIM001", description="the simulated user id")
    user_name: str = Field("Simulated Trader", description="the simulated user's name (profile)")
    email: str = Field(
        "trader@simulator.invalid", description="the simulated user's e-mail (profile)"
    )
    password: SecretStr = Field(
        SecretStr("sim-password"), description="the simulated user's password (fake)"
    )
    totp_secret: SecretStr = Field(
        SecretStr("SIMULATORTOTPSECRETFORTESTSONLYA"),
        description="the simulated user's base32 TOTP secret (fake)",
    )
    redirect_url: str = Field(
        "", description="login redirect target; empty: the simulator's own /_sim/redirect page"
    )
    request_token_ttl_s: float = Field(
        300.0, gt=0, description="wall seconds a request_token stays valid"
    )
    token_expiry_time: time = Field(
        time(6, 0), description="IST time on the simulated clock at which access tokens expire"
    )
    opening_cash: float = Field(
        1_000_000.0, ge=0, description="the simulated account's opening cash, rupees"
    )

    # Rate limits (per API key, wall clock) and API limits.
    rate_quote_per_s: float = Field(
        1.0, gt=0, description="quote requests per second before HTTP 429"
    )
    rate_historical_per_s: float = Field(
        3.0, gt=0, description="historical requests per second before HTTP 429"
    )
    rate_orders_per_s: float = Field(
        10.0, gt=0, description="order requests per second before HTTP 429"
    )
    rate_other_per_s: float = Field(
        10.0, gt=0, description="other requests per second before HTTP 429"
    )
    orders_per_minute: int = Field(
        200, ge=1, description="order placements per minute before rejection"
    )
    orders_per_day: int = Field(3000, ge=1, description="order placements per day before rejection")
    max_modifications: int = Field(25, ge=1, description="modifications allowed per order")
    quote_max_instruments: int = Field(500, ge=1, description="instruments per /quote call")
    ohlc_max_instruments: int = Field(1000, ge=1, description="instruments per /quote/ohlc call")
    ltp_max_instruments: int = Field(1000, ge=1, description="instruments per /quote/ltp call")
    historical_max_days: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_HISTORICAL_MAX_DAYS),
        description="maximum days per historical call by interval (JSON)",
    )
    ws_max_connections: int = Field(3, ge=1, description="WebSocket connections per api_key")
    ws_max_instruments: int = Field(3000, ge=1, description="instruments per WebSocket connection")

    # Instruments (2024 values; change them for another period).
    nifty_lot_size: int = Field(25, ge=1, description="NIFTY derivatives lot size")
    banknifty_lot_size: int = Field(15, ge=1, description="BANKNIFTY derivatives lot size")
    nifty_freeze_quantity: int = Field(
        1800, ge=1, description="NIFTY freeze quantity (larger orders are rejected)"
    )
    banknifty_freeze_quantity: int = Field(
        900, ge=1, description="BANKNIFTY freeze quantity (larger orders are rejected)"
    )
    nifty_strike_step: float = Field(50.0, gt=0, description="NIFTY strike spacing, rupees")
    banknifty_strike_step: float = Field(
        100.0, gt=0, description="BANKNIFTY strike spacing, rupees"
    )
    nifty_expiry_weekday: int = Field(
        3, ge=0, le=6, description="NIFTY weekly expiry weekday (0 Monday .. 6 Sunday)"
    )
    banknifty_expiry_weekday: int = Field(
        2, ge=0, le=6, description="BANKNIFTY weekly expiry weekday (0 Monday .. 6 Sunday)"
    )
    strikes_each_side: int = Field(
        20, ge=0, description="option strikes listed each side of the money"
    )
    weekly_expiries: int = Field(4, ge=0, description="weekly expiries listed")
    monthly_expiries: int = Field(3, ge=1, description="monthly expiries listed")
    tick_size: float = Field(0.05, gt=0, description="derivatives tick size, rupees")

    # Modelled prices of derivatives (labelled "modelled" wherever they appear).
    nifty_volatility: float = Field(
        0.13, gt=0, description="Black-76 volatility of NIFTY options (modelled premiums)"
    )
    banknifty_volatility: float = Field(
        0.16, gt=0, description="Black-76 volatility of BANKNIFTY options (modelled premiums)"
    )
    risk_free_rate: float = Field(0.07, ge=0, description="annual risk-free rate for discounting")
    futures_carry_rate: float = Field(
        0.07, description="annual continuous carry: futures = index x exp(carry x t)"
    )
    derived_daily_volume_lots: int = Field(
        200_000, ge=0, description="modelled day volume of an at-the-money contract, lots"
    )
    derived_open_interest_lots: int = Field(
        100_000, ge=0, description="modelled open interest of an at-the-money contract, lots"
    )
    depth_spread_ticks: int = Field(1, ge=1, description="modelled bid-ask spread, ticks")
    depth_step_ticks: int = Field(1, ge=1, description="modelled gap between depth levels, ticks")
    depth_max_lots_per_level: int = Field(
        40, ge=1, description="modelled quantity per depth level at most, lots"
    )

    # Orders: margins, market protection, exchange limit-price protection.
    futures_margin_rate: float = Field(
        0.12, gt=0, description="futures margin as a share of notional"
    )
    short_option_margin_rate: float = Field(
        0.15, gt=0, description="short option margin as a share of the underlying's notional"
    )
    auto_market_protection_pct: float = Field(
        2.0, gt=0, description="market protection used for market_protection=-1, %"
    )
    price_band_threshold: float = Field(
        50.0, gt=0, description="premium above which the options price band is a percentage"
    )
    price_band_pct: float = Field(
        40.0, gt=0, description="options price band above the threshold, %"
    )
    price_band_abs: float = Field(
        20.0, gt=0, description="options price band at or below the threshold, rupees"
    )
    charges: ChargeSchedule = Field(
        default_factory=ChargeSchedule,
        description="Zerodha charges schedule (JSON; see shared/charges.py)",
    )

    # Faults active from the start (the control endpoint changes them at run time).
    fault_reject_orders: int = Field(0, ge=0, description="fault: reject the first N orders")
    fault_slow_response_ms: int = Field(0, ge=0, description="fault: delay every REST response, ms")
    fault_drop_websocket_every_s: float = Field(
        0.0, ge=0, description="fault: drop WebSocket connections every N s (0: never)"
    )
    fault_stall_every_s: float = Field(
        0.0, ge=0, description="fault: stall ticks every N s with the socket open (0: never)"
    )
    fault_stall_for_s: float = Field(
        10.0, gt=0, description="fault: how long a periodic stall lasts, s"
    )

    def data_path(self) -> Path:
        """The directory holding the market data files."""
        return Path(self.data_dir) if self.data_dir else BUNDLED_DATA_DIR
