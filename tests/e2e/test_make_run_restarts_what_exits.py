"""Under `make run` a process that exits is started again (bin/respawn, a prefix on each
Procfile line) instead of honcho stopping the whole stack, and Ctrl-C still stops
everything. Real processes, real signals; every wait is bounded.

The children are small Python programs that append their pid to a file on start, so the
test sees each (re)start; one of them ignores SIGTERM, to prove the wrapper's 4 s kill.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, wait_for

RESPAWN = str(ROOT / "bin" / "respawn")
HONCHO = str(Path(sys.executable).parent / "honcho")


def sleeper(pids: Path, *, ignore_term: bool = False, exit_code: int | None = None) -> list[str]:
    """A child that records its pid, then sleeps (or exits with ``exit_code``)."""
    lines = ["import os, signal, sys, time", f"open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')"]
    if ignore_term:
        lines.append("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    lines.append(f"sys.exit({exit_code})" if exit_code is not None else "time.sleep(120)")
    return [sys.executable, "-c", "; ".join(lines)]


def started(pids: Path) -> list[int]:
    return [int(line) for line in pids.read_text().split()] if pids.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (its parent, the wrapper or honcho, may be gone).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def respawn(argv: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([RESPAWN, *argv], cwd=ROOT, stdout=(tmp / "respawn.log").open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def cleanup() -> list[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs  # type: ignore[misc]
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_a_killed_child_is_started_again(tmp_path: Path, cleanup: list[subprocess.Popen[bytes]]) -> None:
    pids = tmp_path / "pids"
    wrapper = respawn(sleeper(pids), tmp_path)
    cleanup.append(wrapper)
    first = wait_for(lambda: started(pids), timeout=10, message="the child never started")[0]

    os.kill(first, signal.SIGKILL)

    # First restart after 1 s.
    second = wait_for(lambda: started(pids)[1:], timeout=5, message="the child was not restarted")[0]
    assert second != first
    assert alive(second)
    assert wrapper.poll() is None
    assert "killed by SIGKILL; restarting in 1 s" in (tmp_path / "respawn.log").read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_wrapper_and_its_child(sig: signal.Signals, tmp_path: Path,
                                                   cleanup: list[subprocess.Popen[bytes]]) -> None:
    pids = tmp_path / "pids"
    wrapper = respawn(sleeper(pids), tmp_path)
    cleanup.append(wrapper)
    child = wait_for(lambda: started(pids), timeout=10, message="the child never started")[0]

    began = time.monotonic()
    wrapper.send_signal(sig)
    assert wrapper.wait(timeout=10) == 0
    assert time.monotonic() - began < 3  # the child obeys at once: no 4 s kill needed
    wait_for(lambda: not alive(child), timeout=2, message="the child outlived the wrapper")
    assert started(pids) == [child]  # stopped, not restarted


def test_a_child_that_ignores_sigterm_is_killed_within_the_bound(tmp_path: Path,
                                                                 cleanup: list[subprocess.Popen[bytes]]) -> None:
    pids = tmp_path / "pids"
    wrapper = respawn(sleeper(pids, ignore_term=True), tmp_path)
    cleanup.append(wrapper)
    child = wait_for(lambda: started(pids), timeout=10, message="the child never started")[0]
    time.sleep(0.3)  # let it install its SIG_IGN

    began = time.monotonic()
    wrapper.terminate()
    assert wrapper.wait(timeout=10) == 0
    # 4 s after SIGTERM the wrapper kills the child's group: inside honcho's 5 s.
    assert 3.5 < time.monotonic() - began < 5
    wait_for(lambda: not alive(child), timeout=2, message="the child survived SIGKILL")


def test_a_configuration_error_is_not_restarted(tmp_path: Path, cleanup: list[subprocess.Popen[bytes]]) -> None:
    pids = tmp_path / "pids"
    wrapper = respawn(sleeper(pids, exit_code=2), tmp_path)
    cleanup.append(wrapper)

    assert wrapper.wait(timeout=10) == 2
    assert len(started(pids)) == 1
    assert "a configuration error): not restarting" in (tmp_path / "respawn.log").read_text()


def test_under_honcho_an_exit_stops_nothing_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """The Procfile's shape: each line prefixed with bin/respawn. One process keeps
    crashing, the others keep running; then SIGINT (Ctrl-C) to honcho stops them all,
    the one that ignores SIGTERM included, before honcho's own SIGKILL."""
    def line(name: str, argv: list[str]) -> str:
        return f"{name}: {RESPAWN} {shlex.join(argv)}"

    crashes, steady, stubborn = tmp_path / "crashes", tmp_path / "steady", tmp_path / "stubborn"
    procfile = tmp_path / "Procfile"
    procfile.write_text("\n".join([
        line("crashy", sleeper(crashes, exit_code=1)),
        line("steady", sleeper(steady)),
        line("stubborn", sleeper(stubborn, ignore_term=True)),
    ]) + "\n")
    honcho = subprocess.Popen([HONCHO, "-f", str(procfile), "-d", str(ROOT), "start"], cwd=ROOT,
                              stdout=(tmp_path / "honcho.log").open("ab"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        wait_for(lambda: len(started(crashes)) >= 2, timeout=15, message="the crashing process was not restarted")
        assert honcho.poll() is None, (tmp_path / "honcho.log").read_text()
        children = [*started(steady), *started(stubborn), *started(crashes)[-1:]]
        # Never restarted: they never exited.
        assert len(started(steady)) == 1
        assert len(started(stubborn)) == 1
        assert all(alive(pid) for pid in children[:2])

        honcho.send_signal(signal.SIGINT)
        assert honcho.wait(timeout=15) is not None
        log = (tmp_path / "honcho.log").read_text()
        assert "sending SIGKILL" not in log, log  # everything had stopped within honcho's 5 s
        wait_for(lambda: not any(alive(pid) for pid in children), timeout=3,
                 message=lambda: f"left running: {[p for p in children if alive(p)]}\n{log}")
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait(timeout=10)
