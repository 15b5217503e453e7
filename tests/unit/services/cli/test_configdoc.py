"""README and .env.example document every setting of every service, generated from the classes."""

from __future__ import annotations

from pathlib import Path

from services.cli import configdoc

ROOT = Path(__file__).resolve().parents[4]


def test_every_settings_class_is_documented_with_a_description_for_each_field() -> None:
    undocumented = [
        f"{title}: {doc.env}"
        for title, docs in configdoc.sections()
        for doc in docs
        if not doc.description
    ]
    assert undocumented == []


def test_readme_settings_tables_are_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert configdoc.with_settings_table(readme) == readme, "run: tradealgo config --write"


def test_env_example_is_current() -> None:
    assert (ROOT / ".env.example").read_text() == configdoc.env_example()


def test_env_example_names_every_variable_once() -> None:
    names = [doc.env for _, docs in configdoc.sections() for doc in docs]
    assert len(names) == len(set(names))
    text = (ROOT / ".env.example").read_text()
    assert all(f"# {name}=" in text for name in names)


def test_a_field_read_through_aliases_is_documented_under_its_first_name_with_the_others() -> None:
    from services.sentinel.settings import SentinelSettings

    docs = {doc.env: doc for doc in configdoc.settings_of(SentinelSettings, shared=False)}
    assert docs["SENTINEL_API_ROOT"].fallbacks == ("KITE_API_ROOT",)
    assert "SENTINEL_KITE_API_ROOT" not in docs
    assert docs["SENTINEL_API_SECRET"].secret


def test_settings_a_class_does_not_use_are_not_documented_for_it() -> None:
    from services.cli.settings import CliSettings

    names = {doc.env for doc in configdoc.settings_of(CliSettings, shared=False)}
    assert "CLI_METRICS_PORT" not in names
    assert "CLI_OPERATOR" in names
