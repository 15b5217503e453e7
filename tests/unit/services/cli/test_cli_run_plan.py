"""What `tradealgo run` starts, against the real settings classes of the services."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from services.cli.run.plan import (
    PlanError,
    Ports,
    SimAccount,
    StackPaths,
    build_plan,
    choose_broker,
    env_name,
    env_value,
    strategies_summary,
)
from services.cli.run.setup import plan_run
from services.cli.settings import RunSettings
from services.consumer.settings import ConsumerSettings
from services.gatekeeper.settings import GatekeeperSettings
from services.producer.settings import ProducerSettings
from services.sentinel.settings import SentinelSettings
from services.simulator.settings import SimulatorSettings
from shared.settings import ServiceSettings

CLASSES: dict[str, type[ServiceSettings]] = {
    "sentinel": SentinelSettings,
    "producer": ProducerSettings,
    "consumer": ConsumerSettings,
    "gatekeeper": GatekeeperSettings,
}
PORTS = Ports(6390, 9010, 9201, 9202, 9203, 9204, 9210, 9211, 9205)
PATHS = StackPaths("/r/var", "/r/var/log", "/r/var/spool")
ACCOUNT = SimAccount(
    "sim_api_key", "sim_api_secret", "SIM001", "sim-password", "SIMSECRET", date(2024, 8, 20),
    time(9, 15), 1_000_000.0,
)  # fmt: skip


def plan(broker: str = "simulator", **changes: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = dict(
        broker=broker, why="test", classes=CLASSES, simulator_cls=SimulatorSettings,
        simulator=ACCOUNT, configured_mode="logging", ports=PORTS, paths=PATHS,
        database="tradealgo", day=date(2024, 8, 8), start_time=time(9, 50), speed=120.0,
    )  # fmt: skip
    args.update(changes)
    return build_plan(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("setting", "kite_key", "expected"),
    [
        ("auto", "", "simulator"),
        ("auto", "sim_api_key", "simulator"),  # the simulator's own key is not a Kite account
        ("auto", "kite123", "kite"),
        ("simulator", "kite123", "simulator"),
        ("kite", "kite123", "kite"),
        ("kite", "sim_api_key", "kite"),  # asked for: a simulator elsewhere stands in for Kite
    ],
)
def test_choose_broker(setting: str, kite_key: str, expected: str) -> None:
    assert choose_broker(setting, kite_key, "sim_api_key")[0] == expected  # type: ignore[arg-type]


def test_kite_without_credentials_is_refused_with_what_to_set() -> None:
    with pytest.raises(PlanError, match="KITE_API_KEY"):
        choose_broker("kite", "", "sim_api_key")


@pytest.mark.parametrize(
    ("cls", "field", "variable"),
    [
        (SentinelSettings, "kite_api_root", "SENTINEL_API_ROOT"),
        (SentinelSettings, "redis_url", "SENTINEL_REDIS_URL"),
        (ProducerSettings, "kite_ws_root", "PRODUCER_KITE_WS_ROOT"),
        (GatekeeperSettings, "mode", "GATEKEEPER_MODE"),
        (SimulatorSettings, "speed", "SIM_SPEED"),
    ],
)
def test_env_name_is_the_first_alias_of_the_field(
    cls: type[ServiceSettings], field: str, variable: str
) -> None:
    assert env_name(cls, field) == variable


def test_env_name_of_a_field_that_does_not_exist_says_the_plan_is_out_of_date() -> None:
    with pytest.raises(PlanError, match="out of date"):
        env_name(GatekeeperSettings, "no_such_field")


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (date(2024, 8, 8), "2024-08-08"), (time(9, 50), "09:50:00"),
     (120.0, "120.0"), (7, "7")],
)  # fmt: skip
def test_env_value(value: object, text: str) -> None:
    assert env_value(value) == text


def test_simulator_run_points_every_service_at_the_simulator_in_paper_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = plan()
    assert (p.broker, p.mode) == ("simulator", "paper")
    for variable, value in p.service_env.items():
        monkeypatch.setenv(variable, value)
    sentinel = SentinelSettings(_env_file=None)  # type: ignore[call-arg]
    producer = ProducerSettings(_env_file=None)  # type: ignore[call-arg]
    gatekeeper = GatekeeperSettings(_env_file=None)  # type: ignore[call-arg]
    consumer = ConsumerSettings(_env_file=None)  # type: ignore[call-arg]
    assert sentinel.kite_api_root == sentinel.kite_login_root == "http://127.0.0.1:9210"
    assert (sentinel.api_key, sentinel.user_id, sentinel.login_method) == (
        "sim_api_key", "SIM001", "auto",
    )  # fmt: skip
    assert sentinel.totp_secret.get_secret_value() == "SIMSECRET"
    assert producer.kite_ws_root == "ws://127.0.0.1:9211"
    assert producer.kite_api_root == "http://127.0.0.1:9210"
    assert gatekeeper.mode == "paper"
    assert gatekeeper.capital == 1_000_000.0  # the simulated account's cash
    assert gatekeeper.paper_source() == "simulator" and gatekeeper.market_clock()
    for settings, port in (
        (sentinel, 9201),
        (producer, 9202),
        (consumer, 9203),
        (gatekeeper, 9204),
    ):
        assert settings.redis_url.get_secret_value() == "redis://127.0.0.1:6390/0"
        assert (settings.clickhouse_port, settings.metrics_port) == (9010, port)
        assert settings.spool_dir == "/r/var/spool"


@pytest.mark.parametrize(("speed", "skew"), [(120.0, "240.0"), (60.0, "120.0"), (1.0, None)])
def test_simulator_run_scales_the_tolerated_clock_skew_with_the_replay_speed(
    speed: float, skew: str | None
) -> None:
    # 2 wall seconds of transport are `speed` x 2 market seconds on a replay clock.
    assert plan(speed=speed).service_env.get("GATEKEEPER_MAX_CLOCK_SKEW_S") == skew


@pytest.mark.parametrize(
    ("users_skew", "speed", "effective_skew"),
    [
        (None, 1.0, 2.0),  # the Gatekeeper's default, untouched
        (None, 15.0, 30.0),  # the default scaled
        ("5", 15.0, 75.0),  # the user's value scaled, not replaced by the scaled default
        ("5", 1.0, 5.0),  # the user's value, untouched
    ],
)
def test_simulator_run_scales_the_clock_skew_the_user_configured(
    monkeypatch: pytest.MonkeyPatch, users_skew: str | None, speed: float, effective_skew: float
) -> None:
    # What the Gatekeeper reads: the user's environment, then the run's variables on top of it
    # (supervisord passes both; the plan's win).
    monkeypatch.delenv("GATEKEEPER_MAX_CLOCK_SKEW_S", raising=False)
    if users_skew is not None:
        monkeypatch.setenv("GATEKEEPER_MAX_CLOCK_SKEW_S", users_skew)
    configured = GatekeeperSettings(_env_file=None)
    p = plan(speed=speed, configured_clock_skew_s=configured.max_clock_skew_s)
    for variable, value in p.service_env.items():
        monkeypatch.setenv(variable, value)
    gatekeeper = GatekeeperSettings(_env_file=None)
    assert gatekeeper.max_clock_skew_s == effective_skew


def test_the_run_reads_the_clock_skew_the_user_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # an empty directory: no .env
    monkeypatch.setenv("GATEKEEPER_MAX_CLOCK_SKEW_S", "5")
    monkeypatch.setenv("RUN_BROKER", "simulator")
    run = RunSettings(_env_file=None, speed=15.0, base_port=20000, redis_server_port=20100,
                      clickhouse_server_port=20101, var_dir=str(tmp_path / "var"))  # fmt: skip
    p, _ = plan_run(run)
    assert p.service_env["GATEKEEPER_MAX_CLOCK_SKEW_S"] == "75.0"


def test_simulator_run_replaces_the_consumers_strategies_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    demo = '[{"kind": "trend_option_seller", "symbols": ["NSE:NIFTY 50"]}]'
    p = plan(strategies=demo)
    monkeypatch.setenv("CONSUMER_STRATEGIES", p.service_env["CONSUMER_STRATEGIES"])
    consumer = ConsumerSettings(_env_file=None)  # type: ignore[call-arg]
    assert [(s.kind, s.symbols) for s in consumer.strategies] == [
        ("trend_option_seller", ("NSE:NIFTY 50",))
    ]
    assert "CONSUMER_STRATEGIES" not in plan(strategies=" ").service_env
    assert "CONSUMER_STRATEGIES" not in plan("kite", strategies=demo).service_env


@pytest.mark.parametrize(
    ("raw", "summary"),
    [
        ('[{"kind": "trend_option_seller", "symbols": ["NSE:NIFTY 50"]}]',
         "trend_option_seller on NSE:NIFTY 50"),
        ('[{"kind": "rsi", "name": "rsi_fast", "symbols": ["NSE:A", "NSE:B"]}, {"kind": "momentum"}]',
         "rsi_fast on NSE:A, NSE:B; momentum"),
        ("[]", "none"),
        ("not json", "not json"),
    ],
)  # fmt: skip
def test_strategies_summary(raw: str, summary: str) -> None:
    assert strategies_summary(raw) == summary


def test_simulator_run_configures_the_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    p = plan()
    for variable, value in p.simulator_env.items():
        monkeypatch.setenv(variable, value)
    sim = SimulatorSettings(_env_file=None)  # type: ignore[call-arg]
    assert (sim.rest_port, sim.ws_port, sim.speed) == (9210, 9211, 120.0)
    assert (sim.day, sim.start_time) == (date(2024, 8, 8), time(9, 50))
    assert sim.paused  # started by the stack once the services are ready
    assert p.metrics_urls()["gatekeeper"] == "http://127.0.0.1:9204"


def test_simulator_run_without_a_day_uses_the_simulators_own() -> None:
    p = plan(day=None, start_time=None)
    assert "SIM_DAY" not in p.simulator_env
    assert (p.day, p.start_time) == (date(2024, 8, 20), time(9, 15))


def test_kite_run_keeps_kite_and_the_mode_from_env_and_starts_no_simulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = plan("kite", configured_mode="logging")
    assert (p.broker, p.mode, p.simulator_env) == ("kite", "logging", {})
    assert not any(name.startswith("KITE_") for name in p.service_env)
    assert "GATEKEEPER_MODE" not in p.service_env
    assert "GATEKEEPER_CAPITAL" not in p.service_env
    assert "SENTINEL_API_ROOT" not in p.service_env
    assert p.service_env["GATEKEEPER_REDIS_URL"] == "redis://127.0.0.1:6390/0"


def test_a_missing_service_is_named() -> None:
    with pytest.raises(PlanError, match="services not installed: consumer"):
        plan(classes={k: v for k, v in CLASSES.items() if k != "consumer"})
