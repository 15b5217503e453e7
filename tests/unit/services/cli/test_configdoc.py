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
