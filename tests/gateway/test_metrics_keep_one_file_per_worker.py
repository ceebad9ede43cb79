"""gateway/metrics.py keeps the process id for prometheus_client's multiprocess mode
(asking it is a system call per sample) and refreshes it in a forked child: each worker
still writes its own files, and a scrape sums every worker's samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, multiprocessing, os
import gateway.metrics as metrics

def child():
    metrics.LIMITER_DECISIONS.labels("allowed").inc()
    metrics.LIMITER_DECISIONS.labels("allowed").inc()
    metrics.LATENCY.observe(0.001)

metrics.LIMITER_DECISIONS.labels("allowed").inc()
worker = multiprocessing.get_context("fork").Process(target=child)
worker.start()
worker.join()
metrics.LIMITER_DECISIONS.labels("allowed").inc()
metrics.LATENCY.observe(0.001)
files = sorted(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
print(json.dumps({"parent": os.getpid(), "child": worker.pid, "files": files, "text": metrics.render().decode()}))
"""


def test_a_forked_worker_writes_its_own_files_and_a_scrape_sums_them(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    result = json.loads(out.stdout)
    assert f"counter_{result['parent']}.db" in result["files"]
    assert f"counter_{result['child']}.db" in result["files"]
    assert f"histogram_{result['child']}.db" in result["files"]
    lines = result["text"].splitlines()
    assert 'tollway_gateway_limiter_decisions_total{decision="allowed"} 4.0' in lines
    assert "tollway_gateway_request_duration_seconds_count 2.0" in lines
