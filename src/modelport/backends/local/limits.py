"""Resource settings of a local replica, applied where the OS allows, and said plainly where not.

- memory limit: ``RLIMIT_AS`` (address space) of the replica process;
- CPU limit: CPU affinity to ``ceil(cpu_cores_limit)`` cores (a cap, not a share);
- GPUs: ``CUDA_VISIBLE_DEVICES`` with the GPUs assigned; none present is an error.
CPU and memory *requests* have no local meaning (nothing else is scheduled here).
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import subprocess

from ...errors import InvalidInput


def describe(cpu_limit: float | None, memory_limit_gb: float | None) -> list[str]:
    """How each setting is applied on this machine, for the service's status."""
    notes = []
    if memory_limit_gb:
        notes.append(f"memory limit {memory_limit_gb} GB applied as RLIMIT_AS")
    if cpu_limit:
        cores = min(os.cpu_count() or 1, math.ceil(cpu_limit))
        notes.append(f"cpu limit {cpu_limit} applied as CPU affinity to {cores} core(s)")
    return notes


def preexec(cpu_limit: float | None, memory_limit_gb: float | None):
    """A ``preexec_fn`` applying the limits in the child before it runs Python."""
    def apply() -> None:
        os.setsid()
        if memory_limit_gb:
            limit = int(memory_limit_gb * (1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if cpu_limit:
            cores = sorted(os.sched_getaffinity(0))[: max(1, math.ceil(cpu_limit))]
            os.sched_setaffinity(0, cores)

    return apply


def gpu_ids(count: int) -> tuple[str, ...]:
    """The first ``count`` GPUs of this machine (nvidia-smi), or a clear error."""
    if count <= 0:
        return ()
    found: list[str] = []
    if shutil.which("nvidia-smi"):
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        found = [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]
    if len(found) < count:
        raise InvalidInput(f"gpu_cores={count} but this machine has {len(found)} GPU(s) visible to nvidia-smi; "
                           "deploy with gpu_cores=0 or on a machine with GPUs")
    return tuple(found[:count])
