"""The UNMODIFIED official KiteTicker against the simulator's WebSocket (root= only).

The Twisted reactor is process-global and cannot be restarted: TickerHarness starts it once,
talks to it from its own thread, and tests close their sockets with ticker.close().
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from tests.sim_fixtures import KiteSim, TickerHarness
from tests.support import eventually, eventually_sync

pytestmark = pytest.mark.e2e

NIFTY, BANKNIFTY = 256265, 260105
CALL = "NFO:NIFTY2482224650CE"


def token_of(sim: KiteSim, key: str) -> int:
    return sim.runner.call(lambda server: server.sim.universe.by_key[key].instrument_token)


def epoch_of(naive_local: datetime) -> int:
    """The client turns packet times into naive host-local datetimes; undo that."""
    return int(naive_local.timestamp())


def replayed_price(sim: KiteSim, token: int, epoch: int) -> float:
    """What the simulator's replay says the price was at that second (first tick of it)."""

    def lookup(server: Any) -> float:
        replay = server.sim.replay
        minute = epoch - epoch % 60
        index = replay._minutes.index(float(minute))
        slot = int((epoch - minute) // (60 / replay.ticks_per_minute))
        return float(replay.path(token, index)[slot] / 100)

    return sim.runner.call(lookup)


def test_ticks_decode_to_the_replayed_prices_in_every_mode(kite_sim: KiteSim) -> None:
    option = token_of(kite_sim, CALL)
    harness = TickerHarness.open(
        kite_sim, kite_sim.login(), [NIFTY, BANKNIFTY, option], mode="full"
    )
    try:
        eventually_sync(lambda: harness.connects == 1, timeout=10, message="ticker connected")
        eventually_sync(lambda: harness.tick_count() >= 3, timeout=10, message="ticks on subscribe")
        kite_sim.control.step(30)
        eventually_sync(
            lambda: (
                sum(
                    t["mode"] == "full" and t["instrument_token"] == NIFTY
                    for t in harness.snapshot()
                )
                >= 31
            ),
            timeout=10,
        )
        ticks = harness.snapshot()
        full_index = [
            t for t in ticks if t["mode"] == "full" and t["instrument_token"] in (NIFTY, BANKNIFTY)
        ]
        assert full_index
        for tick in full_index:
            expected = replayed_price(
                kite_sim, tick["instrument_token"], epoch_of(tick["exchange_timestamp"])
            )
            assert tick["last_price"] == expected
            assert tick["tradable"] is False
        last_option = [t for t in ticks if t["instrument_token"] == option][-1]
        served = kite_sim.runner.call(
            lambda server: server.sim.market.snapshot(server.sim.universe.by_token[option])
        )
        assert served is not None
        assert last_option["last_price"] == served.last_price
        assert last_option["volume_traded"] == served.volume
        assert [d["price"] for d in last_option["depth"]["sell"]] == [a.price for a in served.asks]
        assert last_option["tradable"] is True and last_option["oi"] == served.oi
    finally:
        harness.close()


def test_the_client_reconnects_and_resubscribes_after_a_dropped_connection(
    kite_sim: KiteSim,
) -> None:
    harness = TickerHarness.open(kite_sim, kite_sim.login(), [NIFTY], mode="full")
    try:
        eventually_sync(lambda: harness.connects == 1 and harness.tick_count() >= 1, timeout=10)
        dropped_at = harness.tick_count()
        kite_sim.control.faults(drop_websocket=True)
        eventually_sync(lambda: harness.connects == 2, timeout=20, message="reconnected")
        eventually_sync(lambda: kite_sim.control.state()["connections"] == 1, timeout=10)
        # The re-sent subscribe brings a quote-mode snapshot, the re-sent mode a full one: count
        # from after the full one (counting earlier raced the two).
        eventually_sync(
            lambda: any(t["mode"] == "full" for t in harness.snapshot()[dropped_at:]),
            timeout=10,
            message="the full-mode snapshot after the reconnect",
        )
        before = harness.tick_count()
        kite_sim.control.step(5)
        eventually_sync(
            lambda: harness.tick_count() >= before + 5, timeout=10, message="ticks after reconnect"
        )
        # The client re-sent subscribe and mode: ticks come back in full mode, once per moment.
        after = harness.snapshot()[before:]
        assert {t["mode"] for t in after} == {"full"}
        stamps = [epoch_of(t["exchange_timestamp"]) for t in after if "exchange_timestamp" in t]
        assert len(stamps) == len(set(stamps))
        assert harness.closes  # the drop was seen as a close
    finally:
        harness.close()


def test_a_wrong_or_expired_token_is_refused_at_the_handshake(kite_sim: KiteSim) -> None:
    stranger = TickerHarness.open(kite_sim, "not-a-token", [NIFTY])
    good = TickerHarness.open(kite_sim, kite_sim.login(), [NIFTY])
    try:
        eventually_sync(lambda: stranger.errors, timeout=10, message="handshake refused")
        assert stranger.connects == 0 and stranger.tick_count() == 0
        assert any("403" in reason for _, reason in stranger.errors)
        eventually_sync(lambda: good.connects == 1, timeout=10)
        kite_sim.control.faults(expire_token=True)
        eventually_sync(lambda: any("403" in reason for _, reason in good.errors), timeout=20)
        assert good.connects == 1  # the reconnect with the dead token never got in
    finally:
        stranger.close()
        good.close()


def test_order_updates_arrive_as_text_messages_with_kites_checksum(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    harness = TickerHarness.open(kite_sim, kite.access_token, [NIFTY])
    try:
        eventually_sync(lambda: harness.connects == 1, timeout=10)
        order_id = kite.place_order(
            "regular",
            "NFO",
            CALL.split(":")[1],
            "BUY",
            25,
            "MIS",
            "MARKET",
            market_protection=-1,
            tag="wsupdate",
        )
        eventually_sync(lambda: len(harness.order_updates) >= 2, timeout=10)
        statuses = [u["status"] for u in harness.order_updates]
        assert statuses == ["OPEN", "COMPLETE"]
        update = harness.order_updates[-1]
        assert update["order_id"] == order_id and update["tag"] == "wsupdate"
        digest = hashlib.sha256(
            (order_id + update["order_timestamp"] + kite_sim.api_secret).encode()
        )
        assert update["checksum"] == digest.hexdigest()
    finally:
        harness.close()


def test_stalled_ticks_stop_while_the_socket_stays_open(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    harness = TickerHarness.open(kite_sim, kite.access_token, [NIFTY], mode="ltp")
    try:
        eventually_sync(lambda: harness.connects == 1 and harness.tick_count() >= 1, timeout=10)
        before = harness.tick_count()
        kite_sim.control.faults(stall_ticks_s=60)
        kite_sim.control.step(10)
        kite.place_order(
            "regular", "NFO", CALL.split(":")[1], "BUY", 25, "MIS", "MARKET", market_protection=-1
        )
        # The order update travels the same socket after the stepped (dropped) ticks.
        eventually_sync(lambda: len(harness.order_updates) >= 2, timeout=10)
        assert harness.tick_count() == before and not harness.closes
        kite_sim.control.faults(clear=True)
        kite_sim.control.step(3)
        eventually_sync(
            lambda: harness.tick_count() >= before + 3, timeout=10, message="ticks resumed"
        )
    finally:
        harness.close()


def packets_of(frame: bytes) -> list[tuple[int, int]]:
    """(token, length) of every packet of a frame."""
    (count,) = struct.unpack_from(">H", frame, 0)
    out, offset = [], 2
    for _ in range(count):
        (length,) = struct.unpack_from(">H", frame, offset)
        (token,) = struct.unpack_from(">I", frame, offset + 2)
        out.append((token, length))
        offset += 2 + length
    return out


async def test_heartbeats_when_idle_and_duplicate_subscriptions_are_harmless(
    kite_sim: KiteSim,
) -> None:
    token = kite_sim.login()
    url = f"{kite_sim.ws_root}/?api_key={kite_sim.api_key}&access_token={token}"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        heartbeat = await ws.receive(timeout=5)
        assert (heartbeat.type, heartbeat.data) == (aiohttp.WSMsgType.BINARY, b"\x00")
        for _ in range(2):  # what a reconnecting client sends again
            await ws.send_str(json.dumps({"a": "subscribe", "v": [NIFTY]}))
            await ws.send_str(json.dumps({"a": "mode", "v": ["full", [NIFTY]]}))
        packets: list[tuple[int, int]] = []

        def collector(target: int) -> Any:
            async def collect() -> bool:
                message = await ws.receive(timeout=5)
                if message.type == aiohttp.WSMsgType.BINARY and len(message.data) > 1:
                    packets.extend(packets_of(message.data))
                return len(packets) >= target

            return collect

        # One quote tick for the new subscription, one full tick for the mode change; repeats
        # of the same messages change nothing and send nothing.
        await eventually(collector(2), timeout=10)
        assert packets == [(NIFTY, 28), (NIFTY, 32)]
        packets.clear()
        kite_sim.control.step(3)
        await eventually(collector(3), timeout=10)
        assert packets == [(NIFTY, 32)] * 3  # one full packet per replayed second
        await ws.send_str("not json")
        error = await ws.receive(timeout=5)
        while error.type == aiohttp.WSMsgType.BINARY:
            error = await ws.receive(timeout=5)
        assert json.loads(error.data)["type"] == "error"


def test_periodic_drops_from_settings_make_the_client_reconnect(
    kite_sim_factory: Callable[..., KiteSim],
) -> None:
    sim = kite_sim_factory(fault_drop_websocket_every_s=1.0)
    harness = TickerHarness.open(sim, sim.login(), [NIFTY], mode="ltp")
    try:
        eventually_sync(
            lambda: harness.connects >= 2, timeout=30, message="dropped and reconnected"
        )
        assert harness.closes
    finally:
        harness.close()


def test_a_long_step_delivers_every_tick_even_one_packet_per_frame(
    kite_sim_factory: Callable[..., KiteSim],
) -> None:
    sim = kite_sim_factory(max_packets_per_frame=1)  # 1,800 frames: far more than a queue holds
    harness = TickerHarness.open(sim, sim.login(), [NIFTY], mode="ltp")
    try:
        eventually_sync(lambda: harness.connects == 1 and harness.tick_count() >= 2, timeout=10)
        before = harness.tick_count()
        sim.control.step(1800)
        eventually_sync(lambda: harness.tick_count() >= before + 1800, timeout=60)
        assert harness.tick_count() == before + 1800
    finally:
        harness.close()
