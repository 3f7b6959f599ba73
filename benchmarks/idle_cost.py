"""Cost of idle services (issue 9, "Cost that does not grow with idle services"), printed as a Markdown table.

N trivial services at rest (``benchmarks/apps/trivial``, one replica each, fixed replica count, key auth, the
environment already built and cached) for N in ``BENCH_SERIES`` (default 0, 10, 25, 50). At each N, after the
services settled (``BENCH_SETTLE_S``, default 10 s) and the machine is quiet (1-minute load average below 1.5,
waited for at most ``BENCH_QUIET_WAIT_S``, default 60 s), over ``BENCH_REST_S`` seconds (default 30):

- control plane CPU, in cores: utime+stime of its pid (all threads) over the window divided by the window;
- all replicas' CPU, in cores (every process of every replica's process group), and per replica;
- Envoy's CPU, in cores; the rest of the machine (``other``: /proc/stat busy minus all of the above and this process);
- probes per replica per second: each replica's ``/metrics`` count of requests other than scoring (its
  ``route="other"``: readiness probes, ``/metrics``), read just before and after the window, less this script's
  own ``/metrics`` read. The duration of a reconcile pass is not reported: the control plane does not expose it;
- then the seconds to deploy one more service (``Model.deploy`` to ``wait_for_deployment`` returning Healthy),
  which stays: at N it is service N + 1.

Services beyond those are deployed one after the other (each to Healthy, times kept in the JSON). At the end every
service is deleted, one after the other, each timed (seconds per ``delete()``). The series stops early, and says so,
when less than 2 GiB of memory is available or the run has taken ``BENCH_BUDGET_S`` (default 660 s).

Run from the project root: ``.venv/bin/python benchmarks/idle_cost.py``. Raw numbers go to
``benchmarks/results/idle-<UTC time>.json``. Everything it starts (in a temporary workspace) is deleted at the end.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
from proc_cpu import TICK, group_ticks, machine_ticks, own_ticks, ticks, wait_quiet

from modelport import AksWebservice, Environment, InferenceConfig, Model, Webservice, Workspace
from modelport.api import server

HERE = Path(__file__).parent
APP = HERE / "apps" / "trivial"
RESULTS = HERE / "results"
SERIES = [int(n) for n in os.environ.get("BENCH_SERIES", "0,10,25,50").split(",")]
REST_S = float(os.environ.get("BENCH_REST_S", "30"))
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", "10"))
QUIET_WAIT_S = float(os.environ.get("BENCH_QUIET_WAIT_S", "60"))
BUDGET_S = float(os.environ.get("BENCH_BUDGET_S", "660"))
MIN_AVAILABLE_BYTES = 2 * 1024 ** 3
OTHER_REQUESTS = re.compile(r'^modelport_requests_total\{[^}]*route="other"[^}]*\}\s+([0-9.e+]+)', re.M)


def available_bytes() -> int:
    match = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return int(match.group(1)) * 1024


class Bench:
    def __init__(self, folder: Path):
        self.ws = Workspace.create("idle", folder)
        weights = folder / "weights.txt"
        weights.write_text("0")
        self.model = Model.register(self.ws, weights, "idle-model")
        self.config = InferenceConfig("score.py", source_directory=APP, environment=Environment("idle-env"))
        self.services: list[str] = []
        self.http = httpx.Client(timeout=5)

    def deploy(self, name: str) -> float:
        """Seconds from ``Model.deploy`` to ``wait_for_deployment`` returning (Healthy)."""
        started = time.monotonic()
        service = Model.deploy(self.ws, name, [self.model], self.config,
                               AksWebservice.deploy_configuration(num_replicas=1))
        service.wait_for_deployment(timeout_sec=300)
        return round(time.monotonic() - started, 3)

    def replicas(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in (self.ws._dir.root / "replicas").glob("*/*/replica-*.json")]

    def probe_counts(self, replicas: list[dict]) -> dict[int, tuple[float, float]]:
        """Non-scoring requests (probes, /metrics) each replica has answered so far, and when (by replica pid)."""
        counts = {}
        for replica in replicas:
            try:
                text = self.http.get(f"http://127.0.0.1:{replica['port']}/metrics").text
            except httpx.HTTPError:
                continue
            counts[replica["pid"]] = (time.monotonic(), sum(float(v) for v in OTHER_REQUESTS.findall(text)))
        return counts

    def at_rest(self) -> dict:
        """CPU of the control plane, the replicas and Envoy over REST_S seconds, in cores; probes per replica."""
        replicas = self.replicas()
        groups = {r["pid"] for r in replicas}
        control_plane = server.read_info(self.ws._dir)["pid"]
        frontend = self.ws._dir.root / "frontend" / "frontend.json"
        envoy = json.loads(frontend.read_text())["pid"] if frontend.exists() else None
        probes_before = self.probe_counts(replicas)
        before = (ticks(control_plane), group_ticks(groups), ticks(envoy), own_ticks(), machine_ticks())
        started = time.monotonic()
        time.sleep(REST_S)
        after = (ticks(control_plane), group_ticks(groups), ticks(envoy), own_ticks(), machine_ticks())
        elapsed = time.monotonic() - started
        probes_after = self.probe_counts(replicas)
        cp, reps, env, own, machine = ((a - b) / TICK / elapsed for a, b in zip(after, before, strict=True))
        rates = [(probes_after[pid][1] - probes_before[pid][1] - 1) / (probes_after[pid][0] - probes_before[pid][0])
                 for pid in probes_before if pid in probes_after]
        rate = statistics.mean(rates) if rates else None
        return {
            "replicas": len(replicas), "control_plane_cores": round(cp, 4), "replicas_cores": round(reps, 4),
            "per_replica_cores": round(reps / len(replicas), 5) if replicas else None,
            "envoy_cores": round(env, 4), "other_cores": round(machine - cp - reps - env - own, 3),
            "probes_per_replica_per_s": round(rate, 3) if rate is not None else None,
            "seconds": round(elapsed, 1)}


def dash(value) -> str:
    return "—" if value is None else str(value)


def source_version() -> dict:
    """The commit measured, and whether src/ had uncommitted changes (others work in the same tree)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "--short", "HEAD"), "src_modified": bool(git("status", "--porcelain", "src"))}


def table(points: list[dict], deletions: list[float]) -> str:
    lines = ["| N at rest | control plane cores | replicas cores (all) | per replica cores | Envoy cores "
             "| probes/replica/s | deploy one more → Healthy s | other cores | load avg |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        lines.append(f"| {p['n']} | {p['control_plane_cores']} | {p['replicas_cores']} "
                     f"| {dash(p['per_replica_cores'])} | {p['envoy_cores']} | {dash(p['probes_per_replica_per_s'])} "
                     f"| {p['deploy_one_more_s']} | {p['other_cores']} "
                     f"| {p['loadavg']}{'' if p['quiet'] else ' (not quiet)'} |")
    if deletions:
        lines.append("")
        lines.append(f"Deleting {len(deletions)} services one after the other: {sum(deletions):.1f} s in all, "
                     f"{statistics.mean(deletions):.2f} s per deletion (median {statistics.median(deletions):.2f}, "
                     f"max {max(deletions):.2f}).")
    return "\n".join(lines)


def main() -> None:
    started_at, started, source = datetime.now(timezone.utc), time.monotonic(), source_version()
    bench = Bench(Path(tempfile.mkdtemp(prefix="modelport-idle-bench-")))
    points: list[dict] = []
    burst: list[dict] = []
    deletions: list[float] = []
    stopped = None
    try:
        build = bench.deploy("warmup")  # builds the environment; every later deploy finds it cached
        Webservice(bench.ws, "warmup").delete()
        for n in SERIES:
            while len(bench.services) < n:
                if available_bytes() < MIN_AVAILABLE_BYTES or time.monotonic() - started > BUDGET_S:
                    stopped = (f"stopped before N = {n} at {len(bench.services)} services: "
                               f"{available_bytes() / 1024 ** 3:.1f} GiB available, "
                               f"{time.monotonic() - started:.0f} s elapsed")
                    break
                name = f"idle-{len(bench.services) + 1:03d}"
                burst.append({"service": len(bench.services) + 1, "deploy_s": bench.deploy(name)})
                bench.services.append(name)
            if stopped:
                break
            time.sleep(SETTLE_S)
            quiet = wait_quiet(QUIET_WAIT_S)
            point = {"n": n, **quiet, **bench.at_rest()}
            name = f"idle-{len(bench.services) + 1:03d}"
            point["deploy_one_more_s"] = bench.deploy(name)
            bench.services.append(name)
            points.append(point)
            print(json.dumps(point), flush=True)
        for name in list(bench.services):
            t = time.monotonic()
            Webservice(bench.ws, name).delete()
            deletions.append(round(time.monotonic() - t, 3))
            bench.services.remove(name)
    finally:
        for service in Webservice.list(bench.ws):
            service.delete()
        server.stop(bench.ws._dir)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"idle-{started_at:%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({
        "started_utc": started_at.isoformat(timespec="seconds"), **source, "cpus": os.cpu_count(), "rest_s": REST_S,
        "first_deploy_with_build_s": build, "points": points, "deploys_between_points": burst,
        "deletions_s": deletions, "stopped": stopped, "total_s": round(time.monotonic() - started, 1)}, indent=1)
        + "\n")
    print(f"\nRun {started_at:%Y-%m-%d %H:%M} UTC at {source['commit']}"
          f"{' (src/ modified)' if source['src_modified'] else ''}, {REST_S:g} s at rest per row, "
          f"{time.monotonic() - started:.0f} s in all; raw numbers: {out}\n")
    print(table(points, deletions))
    if stopped:
        print(f"\nThe series {stopped}.")


if __name__ == "__main__":
    main()
