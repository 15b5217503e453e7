"""`tradealgo halt`, `resume` and `kill-switch release`: steer trading, always with a reason."""

from __future__ import annotations

import argparse
import getpass
import uuid
from collections.abc import Callable
from typing import Any

from redis.exceptions import WatchError

from services.cli import connections, control_rules
from services.cli.errors import OK, PROBLEM, USAGE, CliError
from services.cli.metrics_text import metric_sum, parse_samples
from services.cli.output import format_rupees
from services.cli.settings import CliSettings, load_cli_settings
from services.gatekeeper.risk.kill_switch import KillSwitchState, loss_breach
from services.gatekeeper.settings import GatekeeperSettings
from services.sentinel.checks import HaltState
from shared import constants as c
from shared.clock import SystemClock
from shared.messages import Control, RiskEvent
from shared.settings import load_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    halt = commands.add_parser(
        "halt",
        help="stop new orders everywhere (exits still run), with a reason",
        description="Publishes HALT on ta:control and records it in the halt state; the Sentinel "
        "never lifts an operator's halt: only `tradealgo resume` does.",
    )
    halt.add_argument("--reason", required=True, help="why (recorded with who halted)")
    halt.set_defaults(func=run_halt)

    resume = commands.add_parser(
        "resume",
        help="lift a halt, with a reason (refused while checks fail or the kill switch is tripped)",
    )
    resume.add_argument("--reason", required=True, help="why (recorded with who resumed)")
    resume.set_defaults(func=run_resume)

    kill = commands.add_parser("kill-switch", help="the Gatekeeper's loss kill switch")
    actions = kill.add_subparsers(dest="action", metavar="ACTION", required=True)
    release = actions.add_parser(
        "release",
        help="release a tripped kill switch (the only way to), with a reason",
        description="Trading stays halted afterwards until `tradealgo resume`.",
    )
    release.add_argument("--reason", required=True, help="why (recorded with who released it)")
    release.set_defaults(func=run_release)


def _operator(settings: CliSettings) -> str:
    return settings.operator or getpass.getuser()


def _reason(args: argparse.Namespace) -> str:
    problem = control_rules.reason_problem(args.reason)
    if problem:
        raise CliError(problem, USAGE)
    return str(args.reason).strip()


WATCH_ATTEMPTS = 5


def _transact(client: Any, keys: tuple[str, ...], decide: Callable[[Any], Any]) -> Any:
    """Read, decide and write atomically: `decide(pipe)` reads through the pipeline (the keys
    are WATCHed) and queues its writes after `pipe.multi()`; a concurrent change of a watched key
    (the Sentinel re-deciding the halt, the Gatekeeper tripping the kill switch) makes us read
    and decide again, so a decision is never made on stale state."""
    for _ in range(WATCH_ATTEMPTS):
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(*keys)
                result = decide(pipe)
                pipe.execute()
                return result
            except WatchError:
                continue
    raise CliError("the halt state kept changing while deciding; try again", PROBLEM)


def _hash(pipe: Any, key: str) -> dict[str, str]:
    return connections.hash_of(pipe, key)


def run_halt(args: argparse.Namespace) -> int:
    reason = _reason(args)
    settings = load_cli_settings()
    source = control_rules.cli_source(_operator(settings))
    now = SystemClock().now()

    def decide(pipe: Any) -> HaltState:
        current = HaltState.from_hash(_hash(pipe, c.HALT_KEY))
        fields = control_rules.halted_fields(current, reason, source, now)
        pipe.multi()
        pipe.delete(c.HALT_KEY)
        pipe.hset(c.HALT_KEY, mapping=fields)
        return current

    client = connections.redis_client(settings)
    try:
        current = _transact(client, (c.HALT_KEY,), decide)
        control = Control(command="HALT", reason=reason, source=source, ts=now)
        entry = connections.publish(client, c.CONTROL, control)
    finally:
        client.close()
    already = f" (it was already halted by {current.source})" if current.halted else ""
    print(f"HALT published ({c.CONTROL} {entry}) by {source}: {reason}{already}")
    print("New entries stop; exits and the position monitor keep running.")
    print('Lift it with: tradealgo resume --reason "..."')
    return OK


def run_resume(args: argparse.Namespace) -> int:
    reason = _reason(args)
    settings = load_cli_settings()
    source = control_rules.cli_source(_operator(settings))
    now = SystemClock().now()

    def decide(pipe: Any) -> HaltState | None:
        halt = HaltState.from_hash(_hash(pipe, c.HALT_KEY))
        kill = _hash(pipe, c.KILL_SWITCH_KEY)
        kill_switch = KillSwitchState.from_fields(kill) if kill else KillSwitchState()
        refusal = control_rules.resume_refusal(halt, _hash(pipe, c.CHECKS_KEY), kill_switch)
        if refusal:
            raise CliError(refusal, PROBLEM)
        if not halt.halted:
            return None
        pipe.multi()
        pipe.delete(c.HALT_KEY)
        pipe.hset(c.HALT_KEY, mapping=control_rules.resumed_fields(source, now))
        return halt

    client = connections.redis_client(settings)
    try:
        halt = _transact(client, (c.HALT_KEY, c.CHECKS_KEY, c.KILL_SWITCH_KEY), decide)
        if halt is None:
            print("trading is not halted: nothing to resume")
            return OK
        control = Control(command="RESUME", reason=reason, source=source, ts=now)
        entry = connections.publish(client, c.CONTROL, control)
    finally:
        client.close()
    print(f"RESUME published ({c.CONTROL} {entry}) by {source}: {reason}")
    print(f"(the halt by {halt.source or 'unknown'} was: {'; '.join(halt.reasons) or '-'})")
    return OK


def run_release(args: argparse.Namespace) -> int:
    reason = _reason(args)
    settings = load_cli_settings()
    gatekeeper = load_settings(GatekeeperSettings)
    by = control_rules.cli_source(_operator(settings))
    now = SystemClock().now()

    def decide(pipe: Any) -> KillSwitchState:
        raw = _hash(pipe, c.KILL_SWITCH_KEY)
        state = KillSwitchState.from_fields(raw) if raw else KillSwitchState()
        new_state, refusal = control_rules.released_state(
            state, gatekeeper.kill_switch_loss_pct, reason, by, now
        )
        if refusal:
            raise CliError(refusal, PROBLEM)
        pipe.multi()
        pipe.hset(c.KILL_SWITCH_KEY, mapping=new_state.to_fields())
        return state

    client = connections.redis_client(settings)
    try:
        state = _transact(client, (c.KILL_SWITCH_KEY,), decide)
        event = RiskEvent(
            event_id=uuid.uuid4().hex,
            kind="KILL_SWITCH_RELEASED",
            reason=reason,
            ts=now,
            details={"by": by, "tripped_reason": state.reason},
        )
        connections.publish(client, c.RISK_EVENTS, event)
        halt = HaltState.from_hash(connections.hash_of(client, c.HALT_KEY))
    finally:
        client.close()
    print(f"kill switch released by {by}: {reason}")
    print(f"(it tripped at {state.tripped_at or '?'}: {state.reason})")
    _warn_if_still_breached(settings, gatekeeper)
    if halt.halted:
        print('Trading is still halted: resume with `tradealgo resume --reason "..."`.')
    return OK


def _warn_if_still_breached(settings: CliSettings, gatekeeper: GatekeeperSettings) -> None:
    answer = connections.http_get(f"{settings.gatekeeper_url}/metrics", settings.http_timeout_s)
    mtm = metric_sum(parse_samples(answer.body), "tradealgo_pnl_rupees", {"kind": "mtm"})
    if mtm is None:
        print("(the Gatekeeper's P&L could not be read: it re-checks the loss limit itself)")
        return
    breach = loss_breach(mtm, gatekeeper.capital, gatekeeper.kill_switch_loss_pct)
    if breach:
        print(
            f"warning: today's MTM is {format_rupees(mtm)}: {breach}. The kill switch trips "
            "again at the Gatekeeper's next check unless the loss recovers or a new session starts."
        )
