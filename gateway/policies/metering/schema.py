"""Settings of the metering policy (environment: GATEWAY_METERING_* and GATEWAY_SPILL_*).

Redis down: events go to a per-worker spill file and are replayed when Redis is
back; past ``spill_max_events`` they are dropped and counted in
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
        "Longest time an event waits in memory before it is written (GATEWAY_METERING_FLUSH_MS).",
    )
    batch: int = setting(500, "Events per pipelined XADD round; a full batch flushes at once (GATEWAY_METERING_BATCH).")
    buffer_max: int = setting(
        20_000, "Events held in memory; beyond this the oldest go to the spill file (GATEWAY_METERING_BUFFER_MAX)."
    )
    spill_dir: str = setting("var/gateway/spill", "Directory of the per-worker spill files (GATEWAY_SPILL_DIR).")
    spill_max_events: int = setting(
        1_000_000, "Events a spill file may hold; beyond this they are dropped and counted (GATEWAY_SPILL_MAX_EVENTS)."
    )
    stream_maxlen: int = setting(
        0, "Approximate MAXLEN for the stream; 0 keeps everything for analytics to trim (GATEWAY_METERING_MAXLEN)."
    )

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
        )
