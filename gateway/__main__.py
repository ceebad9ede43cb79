"""``python -m gateway``: a master process and GATEWAY_WORKERS worker processes.

Each worker runs its own event loop (uvloop) and binds the port with
SO_REUSEPORT; the master only supervises: it restarts a worker that dies and
passes SIGTERM/SIGINT on for a graceful stop. Workers ask the kernel to
SIGTERM them if the master dies, so no orphan keeps the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess

from gateway.config import GatewayConfig, load_config
from gateway.exceptions import ConfigError
from tollway.env import EnvError, read_choice, read_str
from tollway.redis_url import check_certificate

log = logging.getLogger("gateway")
RESTART_BACKOFF_S = 1.0
STOP_GRACE_S = 10.0

GC_YOUNG_THRESHOLD = 50_000  # allocations between young-generation collections (CPython: 700)


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_worker(config: GatewayConfig, worker_index: int) -> None:
    if worker_index >= 0 and config.workers > 1:
        _die_with_parent()
    import uvloop

    from gateway.app import serve

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, worker_index=worker_index, stop=stop)

    # Everything imported so far lives as long as the worker: out of the collector's way,
    # so that a full collection walks only what requests allocate (it walked the modules
    # too: ~40 ms pauses, about 20 µs per request, docs/performance.md).
    gc.freeze()
    # A young-generation collection every 700 allocations (the default) walked the requests
    # in flight over and over: 4% of a worker's CPU in perf. Requests leave no cycles
    # (refcounting frees them), so collecting a hundred times less often costs little memory
    # and took 6-9% off the CPU per request (docs/performance.md, "Garbage collection").
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    uvloop.run(main())


def _check_port(config: GatewayConfig) -> None:
    """Fail in the master, with a clear message, if the port is taken."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc}") from exc


def _metrics_dir(configured: str) -> str:
    # Must be set before anything imports prometheus_client: gateway.metrics does, and
    # load_config imports every policy, which import it.
    path = configured or tempfile.mkdtemp(prefix="tollway-gateway-metrics-")
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def supervise(config: GatewayConfig) -> int:
    ctx = multiprocessing.get_context("fork")
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def spawn(index: int) -> BaseProcess:
        proc = ctx.Process(target=run_worker, args=(config, index), name=f"gateway-worker-{index}", daemon=False)
        proc.start()
        return proc

    workers: dict[int, BaseProcess] = {i: spawn(i) for i in range(config.workers)}
    log.info("gateway master %d: %d workers on %s:%d", os.getpid(), config.workers, config.host, config.port)
    while not stopping:
        time.sleep(0.2)
        for index, proc in list(workers.items()):
            if proc.is_alive() or stopping:
                continue
            from gateway import metrics

            if proc.pid is not None:
                metrics.worker_exited(proc.pid)
            log.error("worker %d (pid %s) exited with %s; restarting", index, proc.pid, proc.exitcode)
            time.sleep(RESTART_BACKOFF_S)
            workers[index] = spawn(index)
    for proc in workers.values():
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in workers.values():
        proc.join(max(0.1, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(1)
    return 0


def main() -> int:
    try:
        level = read_choice("GATEWAY_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
        configured_metrics_dir = read_str("GATEWAY_METRICS_DIR", "")
    except EnvError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    metrics_dir = _metrics_dir(configured_metrics_dir)
    try:
        try:
            config = load_config()
            _check_port(config)
            try:
                # A wrong CA is a configuration error: stop here, not in a crash loop.
                check_certificate(config.redis, timeout=max(1.0, config.redis_timeout_s * 20))
            except EnvError as exc:
                raise ConfigError(str(exc)) from exc
            if config.workers > 1 and config.port == 0:
                raise ConfigError("GATEWAY_PORT=0 works only with GATEWAY_WORKERS=1: workers must share one port")
        except ConfigError as exc:
            print(f"gateway: configuration error: {exc}", file=sys.stderr)
            return 2
        from gateway.policies import registry  # already imported by load_config; not at the top, as above

        log.info("policies: %s", registry.describe_enabled(registry.resolve(config.policies)))
        if config.workers == 1:
            run_worker(config, 0)
            return 0
        return supervise(config)
    finally:
        if not configured_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
