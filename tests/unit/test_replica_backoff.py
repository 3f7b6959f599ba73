"""The local backend's restart back-off (Kubernetes' CrashLoopBackOff) and its reset after a stable run."""

from __future__ import annotations

import pytest

from modelport.backends.local.backend import MAX_BACKOFF_S, STABLE_READY_S, crashes_before_restart, restart_at


def exited(crashes: int, *, started: float = 1000.0, ready_at: float | None = None, exited_at: float = 1010.0):
    return {"crashes": crashes, "started": started, "ready_at": ready_at, "exited_at": exited_at}


@pytest.mark.parametrize(("crashes", "delay"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, MAX_BACKOFF_S),
                                                (40, MAX_BACKOFF_S)])
def test_each_crash_in_a_row_doubles_the_wait_up_to_the_cap(crashes, delay):
    state = exited(crashes)
    assert crashes_before_restart(state) == crashes + 1
    assert restart_at(state) == pytest.approx(1010.0 + delay)


def test_a_replica_ready_for_a_while_before_it_crashed_restarts_at_once_again():
    stable = exited(9, ready_at=1000.0, exited_at=1000.0 + STABLE_READY_S)
    assert crashes_before_restart(stable) == 1
    assert restart_at(stable) == pytest.approx(1000.0 + STABLE_READY_S + 0.5)


def test_a_replica_that_crashed_soon_after_becoming_ready_keeps_backing_off():
    flapping = exited(4, ready_at=1005.0, exited_at=1010.0)
    assert crashes_before_restart(flapping) == 5
    assert restart_at(flapping) == pytest.approx(1010.0 + 8.0)


def test_a_replica_never_ready_keeps_backing_off():
    assert crashes_before_restart(exited(2, ready_at=None, exited_at=5000.0)) == 3


def test_a_replica_log_over_the_limit_moves_to_dot_1_and_starts_empty(tmp_path, monkeypatch):
    from modelport.backends.local import backend

    monkeypatch.setattr(backend, "MAX_LOG_BYTES", 100)
    log = tmp_path / "replica-0.log"
    log.write_bytes(b"old line\n" * 10)  # 90 bytes: kept
    backend._rotate(log)
    assert log.read_bytes() == b"old line\n" * 10 and not (tmp_path / "replica-0.log.1").exists()
    with open(log, "ab") as writer:  # the replica's own append-mode handle
        writer.write(b"more\n" * 5)
        writer.flush()
        backend._rotate(log)
        writer.write(b"after\n")
    assert (tmp_path / "replica-0.log.1").read_bytes() == b"old line\n" * 10 + b"more\n" * 5
    assert log.read_bytes() == b"after\n"
