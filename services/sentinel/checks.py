"""Pre-market checks and the HALT/RESUME decision (pure).

Every check has a name (also the `check` label of tradealgo_premarket_check) and either passes or
fails with a reason. The system is HALTED until every check passes. A check that has not run yet
counts as failed: a freshly started Sentinel halts first and resumes once it has seen everything
pass.

The Sentinel owns only its own halts: a HALT written by someone else (the CLI's `tradealgo halt`,
source != "sentinel") is never lifted by passing checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

CHECK_NAMES = ("token", "instruments", "static_ip", "redis", "clickhouse")
SENTINEL_SOURCE = "sentinel"
NOT_RUN = "not checked yet"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # "ok", why it failed, or why it was skipped

    @classmethod
    def passed(cls, name: str, detail: str = "ok") -> CheckResult:
        return cls(name, True, detail)

    @classmethod
    def failed(cls, name: str, detail: str) -> CheckResult:
        return cls(name, False, detail)


def halt_reasons(results: Mapping[str, CheckResult]) -> list[str]:
    """One "name: reason" line per failing (or not yet run) check, in CHECK_NAMES order."""
    reasons = []
    for name in CHECK_NAMES:
        result = results.get(name)
        if result is None:
            reasons.append(f"{name}: {NOT_RUN}")
        elif not result.ok:
            reasons.append(f"{name}: {result.detail}")
    return reasons


def static_ip_check(public_ip: str | None, static_ip: str, error: str = "") -> CheckResult:
    """The public IP must equal the registered static IP; skipped (passes) when none is set."""
    if not static_ip:
        return CheckResult.passed("static_ip", "skipped: no static IP configured")
    if public_ip is None:
        return CheckResult.failed("static_ip", f"public IP unknown: {error or 'lookup failed'}")
    if public_ip.strip() != static_ip.strip():
        return CheckResult.failed(
            "static_ip",
            f"public IP {public_ip.strip()} is not the registered static IP {static_ip.strip()} "
            "(orders would be rejected)",
        )
    return CheckResult.passed("static_ip", f"public IP {static_ip.strip()} matches")


def instruments_check(
    loaded_at: datetime | None, rows: int, now: datetime, max_age_h: float, error: str = ""
) -> CheckResult:
    """Today's instruments dump must be loaded, non-empty and fresh."""
    if error:
        return CheckResult.failed("instruments", f"instruments dump failed: {error}")
    if loaded_at is None or rows == 0:
        return CheckResult.failed("instruments", "instruments not loaded yet")
    age_h = (now - loaded_at).total_seconds() / 3600.0
    if age_h > max_age_h:
        return CheckResult.failed(
            "instruments", f"instruments dump is {age_h:.1f} h old (max {max_age_h:g} h)"
        )
    return CheckResult.passed("instruments", f"{rows} instruments loaded")


@dataclass(frozen=True, slots=True)
class HaltState:
    """The HALT_KEY hash as read from Redis."""

    halted: bool = False
    source: str = ""
    reasons: tuple[str, ...] = ()
    since: str = ""

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> HaltState:
        """Parse the hash (missing or unreadable fields read as not halted / empty)."""
        try:
            reasons = tuple(str(r) for r in json.loads(fields.get("reasons") or "[]"))
        except (ValueError, TypeError):
            reasons = (str(fields.get("reasons")),)
        return cls(
            halted=fields.get("halted") == "1",
            source=fields.get("source", ""),
            reasons=reasons,
            since=fields.get("since", ""),
        )


HaltAction = Literal["HALT", "RESUME", "UPDATE", "NONE"]


@dataclass(frozen=True, slots=True)
class HaltDecision:
    action: HaltAction
    reasons: tuple[str, ...]
    why: str  # for the log line


def decide_halt(current: HaltState, failing: Iterable[str]) -> HaltDecision:
    """What the Sentinel does with the HALT state given the failing checks' reasons."""
    reasons = tuple(failing)
    mine = current.source == SENTINEL_SOURCE
    if reasons:
        if not current.halted:
            return HaltDecision("HALT", reasons, "pre-market checks failing")
        if not mine:
            return HaltDecision(
                "NONE", reasons, f"already halted by {current.source or 'unknown'}; checks failing"
            )
        if current.reasons != reasons:
            return HaltDecision("UPDATE", reasons, "halt reasons changed")
        return HaltDecision("NONE", reasons, "still halted, same reasons")
    if current.halted and mine:
        return HaltDecision("RESUME", (), "every pre-market check passes")
    if current.halted:
        return HaltDecision(
            "NONE", (), f"checks pass but the halt belongs to {current.source or 'unknown'}"
        )
    return HaltDecision("NONE", (), "running, every check passes")


def halt_hash(
    halted: bool, reasons: Iterable[str], since: datetime, updated: datetime
) -> dict[str, str]:
    """The HALT_KEY hash fields the Sentinel writes (read by every service and the CLI)."""
    return {
        "halted": "1" if halted else "0",
        "reasons": json.dumps(list(reasons)),
        "since": since.isoformat(),
        "source": SENTINEL_SOURCE,
        "updated": updated.isoformat(),
    }


def checks_hash(results: Mapping[str, CheckResult]) -> dict[str, str]:
    """The CHECKS_KEY hash: check name -> "ok" or the failure reason."""
    out = {}
    for name in CHECK_NAMES:
        result = results.get(name)
        out[name] = NOT_RUN if result is None else ("ok" if result.ok else result.detail)
    return out
