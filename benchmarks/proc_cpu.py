"""What the benchmarks share: CPU time from /proc (per process, per process group, the whole machine, this
process), in clock ticks (``TICK`` per second), and waiting for a quiet machine before a measurement."""

from __future__ import annotations

import os
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
QUIET_LOAD = 1.5  # 1-minute load average under which the machine counts as quiet


def ticks(pid: int | None) -> int:
    """utime+stime of one process (all its threads), in clock ticks (0 when it is gone or None)."""
    if pid is None:
        return 0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])


def group_ticks(pgids: set[int]) -> int:
    """utime+stime of every process in these process groups (each replica leads its own), in clock ticks."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) in pgids:
            total += int(fields[11]) + int(fields[12])
    return total


def machine_ticks() -> int:
    """Busy clock ticks of the whole machine (all CPUs), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4]  # minus idle and iowait


def own_ticks() -> int:
    """utime+stime of this process, in clock ticks."""
    times = os.times()
    return round((times.user + times.system) * TICK)


def wait_quiet(max_wait_s: float) -> dict:
    """Wait until the 1-minute load average is below ``QUIET_LOAD``, at most ``max_wait_s`` seconds; what was seen."""
    started = time.monotonic()
    while True:
        load = float(Path("/proc/loadavg").read_text().split()[0])
        waited = time.monotonic() - started
        if load < QUIET_LOAD or waited >= max_wait_s:
            return {"loadavg": load, "waited_s": round(waited, 1), "quiet": load < QUIET_LOAD}
        time.sleep(2)
