"""Every Redis stream, consumer group and key name in one place (arq's constants.py)."""

from __future__ import annotations

import zlib

PREFIX = "ta"

# Streams: one message model per stream (see shared.messages.STREAM_MODELS).
TICKS = f"{PREFIX}:ticks"  # partitioned by instrument: ta:ticks:{p}
CANDLES = f"{PREFIX}:candles"
SIGNALS = f"{PREFIX}:signals"
INTENTS = f"{PREFIX}:intents"
ORDER_EVENTS = f"{PREFIX}:order_events"
RISK_EVENTS = f"{PREFIX}:risk_events"
SESSION_EVENTS = f"{PREFIX}:session_events"
CONTROL = f"{PREFIX}:control"
DEAD_LETTERS = f"{PREFIX}:dead_letters"

# Consumer groups: one per reading service.
GROUP_CONSUMER = "consumer"
GROUP_GATEKEEPER = "gatekeeper"
GROUP_GATEKEEPER_TICKS = "gatekeeper-ticks"

# Keys.
ACCESS_TOKEN_KEY = (
    f"{PREFIX}:session:access_token"  # the Kite access token, services only, TTL to 06:00 IST
)
SESSION_INFO_KEY = f"{PREFIX}:session:info"  # hash: user_id, login_time, expires_at, fingerprint
HALT_KEY = f"{PREFIX}:control:halt"  # hash: halted (0/1), reasons (JSON), since, source
CHECKS_KEY = f"{PREFIX}:sentinel:checks"  # hash: check name -> "ok" | failure reason
INSTRUMENTS_KEY = f"{PREFIX}:instruments"  # hash: "EXCHANGE:TRADINGSYMBOL" -> JSON instrument row
INSTRUMENT_TOKENS_KEY = f"{PREFIX}:instrument_tokens"  # hash: token -> "EXCHANGE:TRADINGSYMBOL"
KILL_SWITCH_KEY = f"{PREFIX}:gatekeeper:kill_switch"  # hash: tripped, reason, at, mtm
PARTITION_LEASE_KEY = f"{PREFIX}:consumer:partition:{{p}}"  # owner lease of a tick partition
# The Consumer's per-partition checkpoint (hash: "_entry" = last committed tick entry id,
# "_stored:<stream>" = last entry whose ClickHouse rows are flushed, token -> builder states).
CONSUMER_CHECKPOINT_KEY = f"{PREFIX}:consumer:checkpoint:{{p}}"
CONSUMER_REPLICAS_KEY = f"{PREFIX}:consumer:replicas"  # zset: replica -> registration expiry (ms)
INTENT_ONCE_KEY = f"{PREFIX}:consumer:intent:{{signal_id}}"  # set once an intent is published
HEARTBEAT_KEY = f"{PREFIX}:heartbeat:{{service}}"  # liveness for `tradealgo status`
# The Gatekeeper's durable order records (written BEFORE anything is sent) and decided intents.
GATEKEEPER_ORDERS_KEY = f"{PREFIX}:gatekeeper:orders:{{day}}"  # hash: our order id -> JSON record
GATEKEEPER_DECIDED_KEY = f"{PREFIX}:gatekeeper:decided:{{day}}"  # set: decided intent ids
GATEKEEPER_QUEUED_KEY = f"{PREFIX}:gatekeeper:queued"  # hash: intent id -> intent waiting for rate


def partition_of(key: str | int, partitions: int) -> int:
    """Stable shard for an instrument (crc32; Python's hash() differs per process)."""
    if partitions <= 1:
        return 0
    return zlib.crc32(str(key).encode()) % partitions


def partitioned(stream: str, partition: int) -> str:
    """The name of one shard of a partitioned stream."""
    return f"{stream}:{partition}"
