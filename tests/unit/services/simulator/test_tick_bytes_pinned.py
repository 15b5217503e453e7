"""The ticker's exact bytes and the quotes' exact values are pinned for fixed replay windows.

The replay is a pure function of the seed and the data, and the Producer/Consumer/backtester parity
tests depend on it: a speed-up of the hot path (Market.snapshot, the pricing model, the packet
packer, the shell's `_play`/`_flush`) must not change a single byte. Each window plays through the
real shell loop into recording connections, hashes every frame in order, and hashes the repr of the
snapshots the quote endpoint would show (repr pins every float exactly, beyond the paise of the
packets). The digests were taken from the code before any optimisation; a change of them is a
change of the simulated market, never a refactoring.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pytest

from services.simulator.instruments import Instrument
from services.simulator.service import SimulatorServer
from services.simulator.settings import SimulatorSettings
from services.simulator.ticker_packets import TickMode
from shared.calendar import load_calendar
from shared.clock import IST

MODES: tuple[TickMode, ...] = ("ltp", "quote", "full")


class RecordingConnection:
    """Stands in for a ticker connection: fixed subscriptions, every frame kept."""

    def __init__(self, subscribed: list[tuple[Instrument, TickMode]]) -> None:
        self.groups: dict[int, list[tuple[int, TickMode]]] = {}
        for instrument, mode in subscribed:
            self.groups.setdefault(instrument.underlying_token, []).append(
                (instrument.instrument_token, mode)
            )
        self.frames: list[bytes] = []

    def tokens_by_underlying(self) -> dict[int, list[tuple[int, TickMode]]]:
        return self.groups

    async def put(self, frame: bytes | str) -> None:
        assert isinstance(frame, bytes)
        self.frames.append(frame)

    def offer(self, frame: bytes | str) -> bool:
        assert isinstance(frame, bytes)
        self.frames.append(frame)
        return True


def at(hh: int, mm: int, ss: int = 0) -> float:
    return datetime(2024, 8, 20, hh, mm, ss, tzinfo=IST).timestamp()


def digest(frames: list[bytes]) -> str:
    h = hashlib.sha256()
    for frame in frames:
        h.update(len(frame).to_bytes(4, "big"))
        h.update(frame)
    return h.hexdigest()[:16]


def server() -> SimulatorServer:
    settings = SimulatorSettings(paused=True, speed=0, start_time="09:14")
    return SimulatorServer(settings, load_calendar())


def connections(sim_server: SimulatorServer) -> tuple[RecordingConnection, RecordingConnection]:
    """One client with every instrument in full mode, one with a mix of modes and a subset."""
    instruments = sorted(
        sim_server.sim.universe.by_token.values(), key=lambda i: i.instrument_token
    )
    everything = RecordingConnection([(i, "full") for i in instruments])
    mixed = RecordingConnection(
        [(i, MODES[n % 3]) for n, i in enumerate(reversed(instruments)) if n % 4 != 1]
    )
    for connection in (everything, mixed):
        sim_server.connections.add(connection)  # type: ignore[arg-type]
    return everything, mixed


def quotes(sim_server: SimulatorServer) -> str:
    """What the quote endpoint shows for every 7th instrument right now, exactly."""
    market, universe = sim_server.sim.market, sim_server.sim.universe
    tokens = sorted(universe.by_token)[::7]
    text = "\n".join(repr(market.snapshot(universe.by_token[t])) for t in tokens)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# (seek to, play until, frames of the full client, frames of the mixed client, quotes after)
WINDOWS = [
    pytest.param(
        None,
        at(9, 15, 25),
        "ee6497791ea3b4a6",
        "9d3759eaa59579ed",
        "bb7ccf25b08bd8b7",
        id="the-open",
    ),
    pytest.param(
        at(12, 0),
        at(12, 0, 15),
        "6349d12eeea9d861",
        "e0b81ab206f213d7",
        "e19f5619141aa5dd",
        id="midday-after-a-seek",
    ),
    pytest.param(
        at(15, 29, 50),
        at(15, 31),
        "634391d4350bab46",
        "a45a99aea93c8bdd",
        "7b68598411f6f7d9",
        id="the-close",
    ),
]


@pytest.mark.parametrize(
    ("seek", "until", "everything_digest", "mixed_digest", "quotes_digest"), WINDOWS
)
async def test_a_replay_window_sends_exactly_the_pinned_bytes(
    seek: float | None, until: float, everything_digest: str, mixed_digest: str, quotes_digest: str
) -> None:
    sim_server = server()
    sim = sim_server.sim
    sim.replay.advance_to(sim_server.now())  # history before the start, as `start` plays it
    if seek is not None:
        sim.replay.seek(seek)
        sim.market.reset()
    everything, mixed = connections(sim_server)
    played = await sim_server._play(until, None, jump_clock=False, wait=True)
    assert played > 0
    assert (digest(everything.frames), digest(mixed.frames), quotes(sim_server)) == (
        everything_digest,
        mixed_digest,
        quotes_digest,
    )
