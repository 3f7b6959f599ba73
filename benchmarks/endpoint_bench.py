"""Endpoint benchmarks (issue 9, "Benchmarks"), side by side in one run, printed as a Markdown table.

Three endpoints of the trivial app (``benchmarks/apps/trivial``, ``run()`` returns ``[0]``, so the front end's
cost shows), one replica per version, key auth, all deployed at once, measured one after the other:

- ``one``: one version;
- ``three``: three weighted versions (blue 50 default, green 30, red 20);
- ``mirror``: the same three plus a fourth, ``shadow``, with ``mirror_percentile=50``;
- ``direct`` (reference): one replica called on its own port, no front end.

For each, at concurrency 1 and 8 (``BENCH_SECONDS`` seconds each, default 10, after 1 s of warm-up):
latency p50/p99 in milliseconds and requests per second seen by the client; Envoy's CPU per request in
microseconds (``/proc/<envoy pid>/stat`` utime+stime over the run divided by the requests answered); the
replicas' CPU per request in microseconds; the observed split (``x-ms-model-version`` response header).

Then the weight change: on ``three``, a sampler keeps 4 connections busy while ``update_version("green",
traffic_percentile=...)`` moves green between 30 % and 0 % (``BENCH_TRIALS`` times, default 6). For each change:
the seconds the call took, and the seconds from the call returning until the split seen in 200 consecutive
requests is within ±5 points of the new shares (``window_done``: when the last of those 200 answered; ``window_start``:
when the first of them was sent, negative if before the call returned), and the last request sent after the call
returned that still reached green at 0 % (``stale_s``, None when none did).

The load generator is a small asyncio HTTP/1.1 keep-alive client (uvloop when installed) in this process; its
CPU (``client cores``) and the CPU of everything else on the machine (``other cores``, /proc/stat minus Envoy, the
replicas, the control plane and this process) are reported so a saturated or contaminated run shows. Before each
measurement the script waits (at most ``BENCH_QUIET_WAIT_S``, default 120 s) until the 1-minute load average is
below 1.5.

Run from the project root: ``.venv/bin/python benchmarks/endpoint_bench.py``. Raw numbers go to
``benchmarks/results/endpoint-<UTC time>.json``. Everything it starts (in a temporary workspace) is deleted at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from proc_cpu import TICK, group_ticks, machine_ticks, own_ticks, ticks, wait_quiet

from modelport import AksEndpoint, Environment, InferenceConfig, Model, Webservice, Workspace
from modelport.api import server

HERE = Path(__file__).parent
APP = HERE / "apps" / "trivial"
RESULTS = HERE / "results"
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
TRIALS = int(os.environ.get("BENCH_TRIALS", "6"))
QUIET_WAIT_S = float(os.environ.get("BENCH_QUIET_WAIT_S", "120"))
BODY = b'{"data": [[1.0, 2.0]]}'
WINDOW = 200
TOLERANCE = 5.0  # percentage points
VARIANTS = {  # endpoint name -> versions: (name, traffic_percentile, mirror_percentile)
    "one": [("blue", 100, None)],
    "three": [("blue", 50, None), ("green", 30, None), ("red", 20, None)],
    "mirror": [("blue", 50, None), ("green", 30, None), ("red", 20, None), ("shadow", None, 50)],
}


# --- CPU accounting ---------------------------------------------------------------------------------------------

class CpuMeter:
    """CPU seconds of Envoy, the replicas, the control plane, this process and the rest of the machine."""

    def __init__(self, envoy: int, control_plane: int, replica_groups: set[int]):
        self.envoy, self.control_plane, self.groups = envoy, control_plane, replica_groups

    def read(self) -> dict[str, int]:
        return {"envoy": ticks(self.envoy), "control_plane": ticks(self.control_plane),
                "replicas": group_ticks(self.groups), "client": own_ticks(), "machine": machine_ticks()}

    @staticmethod
    def seconds(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
        spent = {k: (after[k] - before[k]) / TICK for k in before}
        spent["other"] = spent["machine"] - sum(v for k, v in spent.items() if k != "machine")
        return spent


# --- load generator ---------------------------------------------------------------------------------------------

async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return
    await reader.readexactly(int(headers.get("content-length", "0")))


async def _connection(url: str, key: str | None, until: float, out: list, stop: asyncio.Event | None) -> None:
    parts = urlsplit(url)
    request = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(BODY)}\r\n" + (f"Authorization: Bearer {key}\r\n" if key else "")
               + "\r\n").encode() + BODY
    reader = writer = None
    while time.perf_counter() < until and not (stop and stop.is_set()):
        if writer is None:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        sent = time.perf_counter()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            await _read_body(reader, headers)
        except (asyncio.IncompleteReadError, ConnectionError):
            out.append((sent, time.perf_counter(), 0, ""))
            writer.close()
            writer = None
            continue
        out.append((sent, time.perf_counter(), int(lines[0].split()[1]), headers.get("x-ms-model-version", "")))
        if headers.get("connection") == "close":
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def load(url: str, key: str | None, connections: int, seconds: float,
               stop: asyncio.Event | None = None) -> list[tuple]:
    """Keep ``connections`` connections busy for ``seconds`` (or until ``stop``); one (sent, answered, status,
    x-ms-model-version) per request, times from ``time.perf_counter``, status 0 for a broken connection."""
    out: list[tuple] = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_connection(url, key, until, out, stop) for _ in range(connections)))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def split_of(samples: list[tuple]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for sample in samples:
        counts[sample[3]] = counts.get(sample[3], 0) + 1
    return {name: round(100 * n / len(samples), 1) for name, n in sorted(counts.items())}


# --- the run ----------------------------------------------------------------------------------------------------

def measure(name: str, url: str, key: str | None, connections: int, meter: CpuMeter) -> dict:
    quiet = wait_quiet(QUIET_WAIT_S)
    asyncio.run(load(url, key, connections, 1.0))  # warm-up: connections, Envoy's and the replicas' caches
    started, before = time.monotonic(), meter.read()
    samples = asyncio.run(load(url, key, connections, SECONDS))
    elapsed, cpu = time.monotonic() - started, CpuMeter.seconds(before, meter.read())
    ok = [s for s in samples if s[2] == 200]
    latencies = [(s[1] - s[0]) * 1000 for s in ok]
    return {
        "variant": name, "connections": connections, "requests": len(ok), "errors": len(samples) - len(ok),
        "rps": round(len(ok) / elapsed, 1), "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "envoy_cpu_us_per_request": round(cpu["envoy"] * 1e6 / len(ok), 1) if name != "direct" else None,
        "replica_cpu_us_per_request": round(cpu["replicas"] * 1e6 / len(ok), 1),
        "client_cores": round(cpu["client"] / elapsed, 2), "other_cores": round(cpu["other"] / elapsed, 2),
        "control_plane_cores": round(cpu["control_plane"] / elapsed, 3),
        "split": split_of(ok) if name != "direct" else None, "seconds": round(elapsed, 2), **quiet,
    }


def weight_change(endpoint: AksEndpoint, key: str) -> list[dict]:
    """Move green between 30 % and 0 % TRIALS times under a sampler of 4 connections; see the module docstring."""
    shares = {30: {"blue": 50, "green": 30, "red": 20}, 0: {"blue": 80, "green": 0, "red": 20}}

    async def run() -> tuple[list[tuple], list[tuple]]:
        stop = asyncio.Event()
        sampler = asyncio.create_task(load(endpoint.scoring_uri, key, 4, 3600, stop))
        changes = []
        await asyncio.sleep(2)
        for trial in range(TRIALS):
            target = 0 if trial % 2 == 0 else 30
            called = time.perf_counter()
            await asyncio.to_thread(endpoint.update_version, "green", traffic_percentile=target)
            changes.append((called, time.perf_counter(), target))
            await asyncio.sleep(3)
        stop.set()
        return await sampler, changes

    samples, changes = asyncio.run(run())
    samples.sort()
    trials = []
    for index, (called, returned, target) in enumerate(changes):
        end = changes[index + 1][0] if index + 1 < len(changes) else float("inf")
        after = [s for s in samples if called <= s[0] < end and s[2] == 200]
        want = shares[target]
        match = _first_window(after, want)
        stale = [s[0] - returned for s in after if s[0] >= returned and want.get(s[3]) == 0]
        trials.append({
            "green_to": target, "call_s": round(returned - called, 3),
            "window_done_s": round(max(s[1] for s in match) - returned, 3) if match else None,
            "window_start_s": round(match[0][0] - returned, 3) if match else None,
            "stale_s": round(max(stale), 3) if stale else None,
            "requests": len(after), "errors": sum(1 for s in samples if called <= s[0] < end and s[2] != 200)})
    return trials


def _first_window(samples: list[tuple], want: dict[str, float]) -> list[tuple] | None:
    """The first WINDOW consecutive samples whose split is within TOLERANCE points of ``want``, or None."""
    counts: dict[str, int] = {}
    for index, sample in enumerate(samples):
        counts[sample[3]] = counts.get(sample[3], 0) + 1
        if index >= WINDOW:
            counts[samples[index - WINDOW][3]] -= 1
        if index >= WINDOW - 1 and all(abs(100 * counts.get(v, 0) / WINDOW - share) <= TOLERANCE
                                       for v, share in want.items()):
            return samples[index - WINDOW + 1:index + 1]
    return None


def deploy(ws: Workspace, model: Model, config: InferenceConfig) -> dict[str, AksEndpoint]:
    endpoints = {}
    for name, versions in VARIANTS.items():
        first, percent, _ = versions[0]
        endpoint = Model.deploy(ws, name, [model], config, AksEndpoint.deploy_configuration(
            version_name=first, traffic_percentile=percent, num_replicas=1))
        endpoint.wait_for_deployment(timeout_sec=600)
        for version, percent, mirror in versions[1:]:
            endpoint.create_version(version, traffic_percentile=percent, mirror_percentile=mirror)
        endpoint.wait_for_deployment(timeout_sec=600)
        endpoints[name] = endpoint
    return endpoints


def replica_groups(ws: Workspace, service: str | None = None) -> set[int]:
    root = ws._dir.root / "replicas"
    pattern = f"{service}/*/replica-*.json" if service else "*/*/replica-*.json"
    return {json.loads(p.read_text())["pid"] for p in root.glob(pattern)}


def source_version() -> dict:
    """The commit measured, and whether src/ had uncommitted changes (others work in the same tree)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "--short", "HEAD"), "src_modified": bool(git("status", "--porcelain", "src"))}


def table(runs: list[dict], trials: list[dict]) -> str:
    lines = ["| endpoint | c | rps | p50 ms | p99 ms | Envoy CPU µs/req | replicas CPU µs/req | observed split % "
             "| errors | client cores | other cores |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        split = ", ".join(f"{k} {v}" for k, v in (r["split"] or {}).items()) or "—"
        envoy = "—" if r["envoy_cpu_us_per_request"] is None else r["envoy_cpu_us_per_request"]
        lines.append(f"| {r['variant']} | {r['connections']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {envoy} "
                     f"| {r['replica_cpu_us_per_request']} | {split} | {r['errors']} | {r['client_cores']} "
                     f"| {r['other_cores']} |")
    lines += ["", "| weight change | call s | to split (200-request window done) s | window's first request s "
              "| last stale request s | requests | errors |", "|---|---|---|---|---|---|---|"]
    for t in trials:
        lines.append(f"| green → {t['green_to']} % | {t['call_s']} | {t['window_done_s']} | {t['window_start_s']} "
                     f"| {'—' if t['stale_s'] is None else t['stale_s']} | {t['requests']} | {t['errors']} |")
    return "\n".join(lines)


def main() -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    folder = Path(tempfile.mkdtemp(prefix="modelport-endpoint-bench-"))
    ws = Workspace.create("bench", folder)
    weights = folder / "weights.txt"
    weights.write_text("0")
    model = Model.register(ws, weights, "bench-model")
    config = InferenceConfig("score.py", source_directory=APP, environment=Environment("bench-env"))
    started_at, source = datetime.now(timezone.utc), source_version()
    try:
        endpoints = deploy(ws, model, config)
        keys = {name: e.get_keys()[0] for name, e in endpoints.items()}
        envoy = json.loads((ws._dir.root / "frontend" / "frontend.json").read_text())["pid"]
        control_plane = server.read_info(ws._dir)["pid"]
        direct_port = json.loads(next((ws._dir.root / "replicas" / "one").glob("*/replica-0.json")).read_text())["port"]
        targets = {"direct": (f"http://127.0.0.1:{direct_port}/score", None, replica_groups(ws, "one"))}
        for name, endpoint in endpoints.items():
            targets[name] = (endpoint.scoring_uri, keys[name], replica_groups(ws, name))
        runs = []
        for connections in (1, 8):
            for name, (url, key, groups) in targets.items():
                runs.append(measure(name, url, key, connections, CpuMeter(envoy, control_plane, groups)))
                print(json.dumps(runs[-1]), flush=True)
        wait_quiet(QUIET_WAIT_S)
        trials = weight_change(endpoints["three"], keys["three"])
    finally:
        for service in Webservice.list(ws):
            service.delete()
        server.stop(ws._dir)
    done = [t["window_done_s"] for t in trials if t["window_done_s"] is not None]
    summary = {"weight_change_to_split_s_median": round(statistics.median(done), 3) if done else None,
               "weight_change_to_split_s_max": max(done) if done else None,
               "weight_changes_without_match": sum(1 for t in trials if t["window_done_s"] is None)}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"endpoint-{started_at:%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"started_utc": started_at.isoformat(timespec="seconds"), **source,
                               "seconds_per_run": SECONDS, "cpus": os.cpu_count(), "runs": runs,
                               "weight_changes": trials, **summary}, indent=1) + "\n")
    print(f"\nRun {started_at:%Y-%m-%d %H:%M} UTC at {source['commit']}"
          f"{' (src/ modified)' if source['src_modified'] else ''}, {SECONDS:g} s per row; raw numbers: {out}\n")
    print(table(runs, trials))
    print(f"\n{json.dumps(summary)}")


if __name__ == "__main__":
    main()
