"""Prometheus metrics, exported at /_tollway/metrics.

With several workers the master points PROMETHEUS_MULTIPROC_DIR at a private
directory before anything imports prometheus_client, so every worker writes its
samples to shared files and any worker can answer a scrape for all of them.
Label values are bounded: an unknown API is counted under api="" so that random
paths cannot grow the series without end.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client import values as prom_values

if getattr(prom_values.ValueClass, "_multiprocess", False):
    # In multiprocess mode every inc() and observe() asks the process id, to notice a fork:
    # os.getpid() is a system call, several per request. The id is kept here instead and
    # refreshed in a forked child (the workers are forked) before its first sample.
    _pid = os.getpid()

    def _forked() -> None:
        global _pid
        _pid = os.getpid()

    os.register_at_fork(after_in_child=_forked)
    prom_values.ValueClass = prom_values.MultiProcessValue(lambda: _pid)  # type: ignore[no-untyped-call]

REQUESTS = Counter(
    "tollway_gateway_requests_total", "Requests handled, by API, version and status.", ["api", "version", "status"]
)
LATENCY = Histogram(
    "tollway_gateway_request_duration_seconds",
    "Time from request head received to response sent.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LIMITER_DECISIONS = Counter(
    "tollway_gateway_limiter_decisions_total", "Rate limit and quota decisions.", ["decision"]
)
LIMITER_LEASE_WAITS = Counter(
    "tollway_gateway_limiter_lease_waits_total",
    "Refusals that waited for other workers' admission leases to end and asked Redis once more.",
)
REDIS_ERRORS = Counter("tollway_gateway_redis_errors_total", "Redis calls that failed or timed out.")
REQUEST_VALIDATION = Counter(
    "tollway_gateway_request_validation_failures_total",
    "Requests that failed their version's OpenAPI document, by mode (report, enforce) and where: path, method, "
    "query, header, body; 'unavailable' when the document could not be loaded.",
    ["mode", "location"],
)
INVALIDATIONS = Counter("tollway_gateway_invalidations_total", "Invalidations applied, by kind.", ["kind"])
SNAPSHOT_LOADS = Counter("tollway_gateway_snapshot_loads_total", "Start-ups served from the on-disk snapshot.")
UPSTREAM_ERRORS = Counter("tollway_gateway_upstream_errors_total", "Upstream failures, by kind.", ["kind"])
UPSTREAM_HEALTHY = Gauge(
    "tollway_gateway_upstream_healthy",
    "1 while an upstream target of a version with upstream_health is in the rotation, 0 while it is out "
    "(the lowest over the live workers).",
    ["api", "version", "target"],
    multiprocess_mode="livemin",
)
UPSTREAM_EJECTIONS = Counter(
    "tollway_gateway_upstream_ejections_total", "Targets ejected by passive health checks.", ["api", "version"]
)
METERING_BUFFER = Gauge(
    "tollway_gateway_metering_buffer_events", "Metering events waiting in memory.", multiprocess_mode="livesum"
)
METERING_WRITTEN = Counter(
    "tollway_gateway_metering_written_total", "Metering events (requests) written to the streams, in batches."
)
METERING_UNREPLICATED = Counter(
    "tollway_gateway_metering_unreplicated_total",
    "Metering events Redis took but too few replicas confirmed (GATEWAY_METERING_WAIT_REPLICAS): spilled, replayed.",
)
METERING_SPILLED = Counter("tollway_gateway_metering_spilled_total", "Metering events spilled to the local file.")
METERING_REPLAYED = Counter("tollway_gateway_metering_replayed_total", "Spilled events replayed into the stream.")
METERING_DROPPED = Counter(
    "tollway_gateway_metering_dropped_total", "Metering events dropped because the spill file was full."
)
METERING_RECOVERED = Counter(
    "tollway_gateway_metering_recovered_total",
    "Requests recovered from a dead worker's journal: in a sealed batch, admitted with outcome unknown, "
    "or refused (complete).",
    ["kind"],
)
METERING_SPILL_PENDING = Gauge(
    "tollway_gateway_metering_spill_pending_events",
    "Events in spill files awaiting replay.",
    multiprocess_mode="livesum",
)
TASK_RESTARTS = Counter(
    "tollway_gateway_task_restarts_total", "Background tasks that died and were restarted, by task.", ["task"]
)
TASK_LAST_ALIVE = Gauge(
    "tollway_gateway_task_last_alive_seconds",
    "Unix time a background task last went round its loop (the oldest over the live workers).",
    ["task"],
    multiprocess_mode="livemin",
)
BAD_MESSAGES = Counter(
    "tollway_gateway_bad_messages_total",
    "Malformed messages or values on internal channels, ignored, by source.",
    ["source"],
)
FLEET_WORKERS = Gauge(
    "tollway_gateway_fleet_workers",
    "Workers of every live gateway node, as last read from Redis (fail_open divides the plan's rate by it).",
    multiprocess_mode="livemax",
)
FLEET_NODES = Gauge(
    "tollway_gateway_fleet_nodes", "Live gateway nodes, as last read from Redis.", multiprocess_mode="livemax"
)

POLICY_ENABLED = Gauge(
    "tollway_gateway_policy_enabled",
    "Policies in the pipeline (1); required_by names the configured policies that switched one on.",
    ["policy", "required_by"],
    multiprocess_mode="max",
)

_request_children: dict[tuple[str, str, int], Counter] = {}


def count_request(api: str, version: str, status: int, seconds: float) -> None:
    key = (api, version, status)
    child = _request_children.get(key)
    if child is None:
        child = REQUESTS.labels(api, version, str(status))
        if len(_request_children) < 10_000:
            _request_children[key] = child
    child.inc()
    LATENCY.observe(seconds)


def render() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


def worker_exited(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prom_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
