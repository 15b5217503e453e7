"""Every Gatekeeper setting is documented (ready for the generated README table and .env.example),
and paper mode never points its orders at the real Kite."""

from __future__ import annotations

import pytest

from services.cli.configdoc import settings_of
from services.gatekeeper.settings import GatekeeperSettings, is_real_kite
from shared.settings import SettingsError, load_settings


def test_every_gatekeeper_setting_has_a_description() -> None:
    docs = settings_of(GatekeeperSettings, shared=False)
    assert [d.env for d in docs if not d.description] == []
    assert {d.env for d in docs} >= {"GATEKEEPER_MODE", "GATEKEEPER_PAPER_FILLS"}


@pytest.mark.parametrize(
    ("root", "real"),
    [
        ("https://api.kite.trade", True),
        ("https://API.KITE.TRADE/", True),
        ("wss://ws.kite.trade", True),
        ("https://kite.zerodha.com", True),
        ("http://127.0.0.1:8710", False),
        ("http://simulator:8710", False),
    ],
)
def test_is_real_kite(root: str, real: bool) -> None:
    assert is_real_kite(root) is real


@pytest.mark.parametrize(
    ("fills", "root", "source"),
    [
        ("auto", "https://api.kite.trade", "local"),
        ("auto", "http://127.0.0.1:8710", "simulator"),
        ("local", "http://127.0.0.1:8710", "local"),
        ("simulator", "http://127.0.0.1:8710", "simulator"),
    ],
)
def test_paper_fill_source(fills: str, root: str, source: str) -> None:
    settings = GatekeeperSettings(
        _env_file=None, mode="paper", paper_fills=fills, kite_api_root=root
    )
    assert settings.paper_source() == source
    assert settings.sends_to_broker() is (source == "simulator")


def test_paper_against_the_real_kite_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEKEEPER_MODE", "paper")
    monkeypatch.setenv("GATEKEEPER_PAPER_FILLS", "simulator")
    monkeypatch.setenv("GATEKEEPER_KITE_API_ROOT", "https://api.kite.trade")
    with pytest.raises(SettingsError, match="REAL Kite"):
        load_settings(GatekeeperSettings, _env_file=None)
