"""`./dev up` keeps its processes running: a crashed one is restarted with backoff, one that keeps
crashing at start stops everything (dcportal/dev.py Supervisor over dcportal/processes.py)."""

import signal
import sys

import pytest

from dcportal.dev import Supervisor
from dcportal.processes import Process
from tests.conftest import wait_until


class Quick(Supervisor):
    BACKOFF_MIN, BACKOFF_MAX = 0.2, 0.4


def sleeper(tmp_path, name="sleeper"):
    return Process(name, [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)


def test_it_restarts_a_killed_process_after_a_backoff_and_says_so(tmp_path, capsys):
    proc, other = sleeper(tmp_path), sleeper(tmp_path, "other")
    supervisor = Quick({"sleeper": proc, "other": other})
    try:
        first_pid, other_pid = proc.proc.pid, other.proc.pid
        proc.kill(signal.SIGKILL)

        assert supervisor.tend() is None
        assert not proc.alive()  # not at once: after the backoff
        wait_until(lambda: supervisor.tend() is None and proc.alive(), timeout=10, message="the restart")

        assert proc.proc.pid != first_pid
        assert other.proc.pid == other_pid and other.alive()  # the others are left alone
        err = capsys.readouterr().err
        assert "sleeper exited with -9" in err and "restarting in" in err and "sleeper: starting again" in err
    finally:
        supervisor.stop()
    assert not proc.alive() and not other.alive()


def test_it_doubles_the_backoff_up_to_its_maximum(tmp_path):
    proc = sleeper(tmp_path)
    supervisor = Quick({"sleeper": proc})
    state = supervisor.state["sleeper"]
    try:
        waited = []
        for _ in range(3):
            proc.kill(signal.SIGKILL)
            state["started"] -= 20  # it ran long enough not to count as a crash at start
            supervisor.tend()
            waited.append(round(state["due"] - state["started"] - 20, 1))
            wait_until(lambda: supervisor.tend() is None and proc.alive(), timeout=10, message="the restart")
        assert waited == pytest.approx([0.2, 0.4, 0.4], abs=0.1)
    finally:
        supervisor.stop()


def test_it_gives_up_on_a_process_that_keeps_exiting_at_start(tmp_path):
    failing = Process("failing", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path)
    supervisor = Quick({"failing": failing})
    reason = wait_until(supervisor.tend, timeout=30, interval=0.05, message="giving up")
    assert "failing keeps exiting at start (3)" in reason
    assert failing.proc.returncode == 3
