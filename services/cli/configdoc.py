"""Every setting of every service, as a Markdown table and as `.env.example` lines.

The README's configuration table and `.env.example` are generated from the settings classes
themselves (`tradealgo config --markdown` / `--env`), and a test keeps both files in step.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from shared.settings import ServiceSettings

# (section title, "module:Class") in the order the README shows them.
SETTINGS_CLASSES: tuple[tuple[str, str], ...] = (
    (
        "Shared infrastructure (any service; a service prefix overrides)",
        "shared.settings:ServiceSettings",
    ),
    (
        "Sentinel: daily login, token, pre-market checks",
        "services.sentinel.settings:SentinelSettings",
    ),
    ("Producer: KiteTicker to Redis Streams", "services.producer.settings:ProducerSettings"),
    (
        "Consumer: candles, strategies, intents (and the backtester)",
        "services.consumer.settings:ConsumerSettings",
    ),
    (
        "Gatekeeper: risk, orders, positions, modes",
        "services.gatekeeper.settings:GatekeeperSettings",
    ),
    (
        "Kite simulator (`tradealgo sim`; CLI flags override)",
        "services.simulator.settings:SimulatorSettings",
    ),
    ("`tradealgo run` (`make run`): the local stack", "services.cli.settings:RunSettings"),
    ("`tradealgo` CLI: where it finds the running system", "services.cli.settings:CliSettings"),
    (
        "docker compose only (deploy/docker-compose.yml): passwords and published ports",
        "services.cli.deploy_settings:DeploySettings",
    ),
)


@dataclass(frozen=True)
class SettingDoc:
    env: str
    default: str
    description: str
    secret: bool
    fallbacks: tuple[str, ...] = ()  # other variables read when `env` is unset


def env_names(cls: type[ServiceSettings], name: str) -> tuple[str, ...]:
    """The variables a field is read from, first one first (its alias choices, or PREFIX_NAME)."""
    alias = cls.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        names = tuple(choice for choice in alias.choices if isinstance(choice, str))
        if names:
            return names
    if isinstance(alias, str):
        return (alias,)
    return (cls.env_name(name),)


def load_class(path: str) -> type[ServiceSettings]:
    module, name = path.split(":")
    cls: type[ServiceSettings] = getattr(importlib.import_module(module), name)
    return cls


def _default(field: FieldInfo) -> tuple[str, bool]:
    value: Any = field.default
    if value is PydanticUndefined:
        value = field.default_factory() if field.default_factory else ""  # type: ignore[call-arg]
    if isinstance(value, SecretStr):  # a default is never a real secret: show it
        return value.get_secret_value(), True
    if isinstance(value, bool):
        return str(value).lower(), False
    if isinstance(value, list | tuple | set | frozenset | dict | BaseModel):
        # pydantic-settings reads complex values as JSON
        return json.dumps(to_jsonable_python(value), separators=(",", ":")), False
    return ("" if value is None else str(value)), False


def settings_of(cls: type[ServiceSettings], *, shared: bool) -> list[SettingDoc]:
    """The shared infra settings (`shared=True`) or a service's own ones, with their env names."""
    docs = []
    unused = getattr(cls, "UNUSED_SETTINGS", ())  # inherited fields a class does not use
    for name, field in cls.model_fields.items():
        if (name in ServiceSettings.SHARED_FIELDS) != shared or name in unused:
            continue
        names = (name.upper(),) if shared else env_names(cls, name)
        default, secret = _default(field)
        secret = secret or field.annotation is SecretStr
        description = (field.description or "").strip()
        docs.append(SettingDoc(names[0], default, description, secret, names[1:]))
    return docs


def sections() -> list[tuple[str, list[SettingDoc]]]:
    out = []
    for title, path in SETTINGS_CLASSES:
        cls = load_class(path)
        out.append((title, settings_of(cls, shared=cls is ServiceSettings)))
    return out


def markdown() -> str:
    lines = []
    for title, docs in sections():
        lines += [f"#### {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for doc in docs:
            default = f"`{doc.default}`" if doc.default else ""
            if doc.secret:
                default = f"{default} (secret)".strip()
            also = f" (or `{'`, `'.join(doc.fallbacks)}`)" if doc.fallbacks else ""
            lines.append(f"| `{doc.env}` | {default} | {doc.description}{also} |")
        lines.append("")
    return "\n".join(lines)


def env_example() -> str:
    lines = [
        "# TradeAlgo settings: one shared .env for every service (copy to .env and edit).",
        "# Generated by `tradealgo config --env`; every variable and its default is listed.",
        "# Every line shows the default, commented out: uncomment what you change.",
        "# Secrets are never committed: put real ones only in your own .env (chmod 600).",
        "",
    ]
    for title, docs in sections():
        lines.append(f"## {title}")
        for doc in docs:
            if doc.description:
                also = f" (or {', '.join(doc.fallbacks)})" if doc.fallbacks else ""
                lines.append(f"# {doc.description}{also}")
            lines.append(f"# {doc.env}={doc.default}")
        lines.append("")
    return "\n".join(lines)


BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def with_settings_table(readme: str) -> str:
    """The README text with the generated settings tables between the markers."""
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown()}{END}{tail}"
