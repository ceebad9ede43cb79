"""A background loop that dies anyway is logged, counted and restarted with backoff, and
/_tollway/ready turns 503 once a task has stayed down for more than READY_DOWN_S
(gateway/tasks.py; the supervisor and a real Gateway object, in process)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from gateway import tasks
from gateway.app import Gateway
from gateway.config import load_config


def test_a_task_that_dies_is_restarted_and_counts_as_up_again(caplog):
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise RuntimeError(f"boom #{len(runs)}")
        while True:
            tasks.beat("flaky")
            await asyncio.sleep(0.05)

    async def scenario() -> tuple[str, float]:
        task = tasks.spawn("flaky", flaky)
        await asyncio.sleep(0.05)
        down_while_failing = tasks.longest_down()
        await asyncio.sleep(0.5 + tasks.HEALTHY_AFTER_S)  # backoff 0.1 + 0.2, then a healthy run
        assert tasks.longest_down() == ("", 0.0)
        assert tasks.all_up()
        await tasks.stop(task, "flaky")
        return down_while_failing

    with caplog.at_level(logging.ERROR, logger="gateway.tasks"):
        name, seconds = asyncio.run(scenario())
    assert name == "flaky"
    assert seconds > 0
    assert len(runs) == 3
    assert "background task flaky died (RuntimeError: boom #1)" in caplog.text
    assert "boom #2" in caplog.text
    assert caplog.text.count("Traceback") == 2  # each new error once with its traceback


def test_ready_turns_503_when_a_task_stays_down(gw_redis, tmp_path):
    config = load_config({
        "GATEWAY_REDIS_URL": gw_redis.url,
        "GATEWAY_KEY_HASH_SECRET": "x" * 32,
        "GATEWAY_WORKERS": "1",
        "GATEWAY_SNAPSHOT_PATH": str(tmp_path / "snapshot.json"),
        "GATEWAY_SPILL_DIR": str(tmp_path / "spill"),
    })

    async def always_dies() -> None:
        raise ValueError("never works")

    async def scenario() -> list[tuple[int, dict[str, str]]]:
        gateway = Gateway(config)
        gateway.state.ready = True  # configuration loaded; only the task is wrong
        seen = [(gateway.builtin(None, "/_tollway/ready").status, {})]  # type: ignore[arg-type]
        task = tasks.spawn("doomed", always_dies)
        await asyncio.sleep(tasks.READY_DOWN_S + 0.5)
        response = gateway.builtin(None, "/_tollway/ready")  # type: ignore[arg-type]
        assert response.body is not None
        seen.append((response.status, json.loads(bytes(response.body))))  # type: ignore[arg-type]
        await tasks.stop(task, "doomed")
        seen.append((gateway.builtin(None, "/_tollway/ready").status, {}))  # type: ignore[arg-type]
        await gateway.redis.close()
        await gateway.metering_redis.close()
        return seen

    before, during, after = asyncio.run(scenario())
    assert before[0] == 200
    assert during[0] == 503
    assert "doomed has been down" in during[1]["detail"]
    assert after[0] == 200  # a task stopped on purpose is no longer watched


@pytest.fixture(autouse=True)
def _no_leftover_tasks():
    yield
    for name in ("flaky", "doomed"):
        tasks.forget(name)
