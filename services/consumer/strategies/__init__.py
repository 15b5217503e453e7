"""The strategies, by kind, and how a configured one is built (parameters validated on the way)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.consumer.strategies.base import Strategy, StrategyParams, UniverseStrategy
from services.consumer.strategies.ema_crossover import EmaCrossover
from services.consumer.strategies.momentum import MomentumScanner
from services.consumer.strategies.rsi_reversal import RsiReversal
from services.consumer.strategies.straddle import StraddleManager
from services.consumer.strategies.trend_option_seller import TrendOptionSeller

AnyStrategy = Strategy[Any, Any] | UniverseStrategy[Any, Any]

STRATEGY_KINDS: dict[str, type[Strategy[Any, Any]] | type[UniverseStrategy[Any, Any]]] = {
    EmaCrossover.kind: EmaCrossover,
    RsiReversal.kind: RsiReversal,
    MomentumScanner.kind: MomentumScanner,
    TrendOptionSeller.kind: TrendOptionSeller,
    StraddleManager.kind: StraddleManager,
}
OPTION_STRATEGY_KINDS = frozenset({TrendOptionSeller.kind, StraddleManager.kind})


class StrategyConfig(BaseModel):
    """One configured strategy: its kind, the symbols it runs on and parameter overrides.

    `name` identifies the instance (signal ids derive from it): give two instances of one kind
    different names, e.g. "ema_crossover" and "ema_crossover_5_13".
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    symbols: tuple[str, ...] = Field(min_length=1)
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class StrategyConfigError(ValueError):
    """A configured strategy that cannot be built; the message says which and why."""


def build_strategy(config: StrategyConfig) -> AnyStrategy:
    """The strategy of a config, its parameters validated against the kind's model."""
    cls = STRATEGY_KINDS.get(config.kind)
    if cls is None:
        raise StrategyConfigError(
            f"unknown strategy kind {config.kind!r} (known: {', '.join(sorted(STRATEGY_KINDS))})"
        )
    overrides = dict(config.params)
    if issubclass(cls, UniverseStrategy):
        overrides.setdefault("universe", config.symbols)
    try:
        params = cls.params_model.model_validate(overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        raise StrategyConfigError(f"strategy {config.name or config.kind}: {problems}") from None
    try:
        return cls(params, name=config.name)
    except ValueError as exc:
        raise StrategyConfigError(f"strategy {config.name or config.kind}: {exc}") from None


__all__ = [
    "OPTION_STRATEGY_KINDS",
    "STRATEGY_KINDS",
    "AnyStrategy",
    "EmaCrossover",
    "MomentumScanner",
    "RsiReversal",
    "StraddleManager",
    "Strategy",
    "StrategyConfig",
    "StrategyConfigError",
    "StrategyParams",
    "TrendOptionSeller",
    "UniverseStrategy",
    "build_strategy",
]
