"""Settings of the metering policy (environment: GATEWAY_METERING_* and GATEWAY_SPILL_*).

Redis down: events go to a per-worker spill file and are replayed when Redis is
back; past ``spill_max_events`` they are dropped and counted in
tollway_gateway_metering_dropped_total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.exceptions import ConfigError
from gateway.pipeline import setting


@dataclass(frozen=True)
class MeteringSettings:
    flush_s: float = setting(
        0.2, "Longest time an event waits in memory before it is written (GATEWAY_METERING_FLUSH_MS)."
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
    def from_config(cls, config: GatewayConfig, env: Mapping[str, str]) -> MeteringSettings:
        raw = env.get("GATEWAY_METERING_MAXLEN") or "0"
        try:
            maxlen = int(raw)
        except ValueError as exc:
            raise ConfigError(f"GATEWAY_METERING_MAXLEN={raw!r} is not an integer") from exc
        return cls(
            flush_s=config.metering_flush_s,
            batch=config.metering_batch,
            buffer_max=config.metering_buffer_max,
            spill_dir=config.spill_dir,
            spill_max_events=config.spill_max_events,
            stream_maxlen=max(0, maxlen),
        )
