"""Settings of the metering policy (environment: GATEWAY_METERING_* and GATEWAY_SPILL_*).
The partition count and the node id in batch ids are gateway-wide (gateway/config.py:
METERING_PARTITIONS, GATEWAY_NODE_ID).

Redis down: batches go to a per-worker spill file, each with its id, and are replayed
when Redis is back; past ``spill_max_events`` whole batches are dropped and counted in
tollway_gateway_metering_dropped_total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.pipeline import PolicySettings, setting
from tollway.env import read_int, read_str

DEFAULT_FLUSH_MS = 200


@dataclass(frozen=True)
class MeteringSettings(PolicySettings):
    flush_s: float = setting(
        DEFAULT_FLUSH_MS / 1000,
        "Longest time a record waits in memory before its batch is sealed and sent (GATEWAY_METERING_FLUSH_MS).",
    )
    batch: int = setting(
        500, "Most requests in one batch, one stream entry; a full buffer is sent at once (GATEWAY_METERING_BATCH)."
    )
    buffer_max: int = setting(
        20_000,
        "Requests held in memory; beyond this a partition is sealed and spilled at once (GATEWAY_METERING_BUFFER_MAX).",
    )
    spill_dir: str = setting(
        "var/gateway/spill", "Directory of the per-worker journals and spill files (GATEWAY_SPILL_DIR)."
    )
    spill_max_events: int = setting(
        1_000_000,
        "Requests a spill file may hold; a batch beyond this is dropped and counted (GATEWAY_SPILL_MAX_EVENTS).",
    )
    stream_maxlen: int = setting(
        0, "Approximate MAXLEN per partition stream, in entries (batches); 0 leaves trimming to analytics, "
        "which trims only what it acknowledged (GATEWAY_METERING_MAXLEN).",
    )
    wait_replicas: int = setting(
        0, "Replicas that must hold a batch (WAIT) before it counts as sent, else it is spilled and replayed; "
        "default 1 on Sentinel, where a failover drops what only the old master took, else 0 "
        "(GATEWAY_METERING_WAIT_REPLICAS).",
    )
    wait_ms: int = setting(25, "How long WAIT waits for those replicas: half GATEWAY_REDIS_TIMEOUT_MS.")

    @classmethod
    def from_env(cls, env: Mapping[str, str], config: GatewayConfig) -> MeteringSettings:
        defaults = cls()
        return cls(
            flush_s=read_int("GATEWAY_METERING_FLUSH_MS", DEFAULT_FLUSH_MS, env, minimum=1) / 1000,
            batch=read_int("GATEWAY_METERING_BATCH", defaults.batch, env, minimum=1),
            buffer_max=read_int("GATEWAY_METERING_BUFFER_MAX", defaults.buffer_max, env, minimum=1),
            spill_dir=read_str("GATEWAY_SPILL_DIR", defaults.spill_dir, env),
            spill_max_events=read_int("GATEWAY_SPILL_MAX_EVENTS", defaults.spill_max_events, env, minimum=0),
            stream_maxlen=read_int("GATEWAY_METERING_MAXLEN", defaults.stream_maxlen, env, minimum=0),
            wait_replicas=read_int(
                "GATEWAY_METERING_WAIT_REPLICAS", 1 if config.redis.kind == "sentinel" else 0, env, minimum=0
            ),
            # Within the handle's own timeout, which would otherwise cut WAIT off first.
            wait_ms=max(1, int(config.redis_timeout_s * 1000) // 2),
        )
