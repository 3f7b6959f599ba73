"""Front-end benchmarks for local deployments, side by side in one run (see RESULTS.md).

1. latency the Envoy front end adds (key auth) versus calling the replica directly, wrk c=1,
   and Envoy's CPU per request;
2. deploy → Healthy for an environment that is already built (cached);
3. seconds from a load step to new replicas serving (autoscaling 1 → 3).

Run: ``.venv/bin/python benchmarks/frontend_bench.py`` (needs ``wrk``; no other load on the machine).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from modelport import AksWebservice, Environment, InferenceConfig, Model, Webservice, Workspace
from modelport.api import server

HERE = Path(__file__).parent
LUA = HERE.parent.parent / "shared" / "bench" / "tools" / "post.lua"
DURATION = os.environ.get("BENCH_DURATION", "10s")


def wrk(url: str, body: Path, headers: str = "", connections: int = 1) -> dict:
    env = {**os.environ, "PB_BODY": str(body), "PB_HEADERS": headers}
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{DURATION}", "-s", str(LUA), url], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(re.search(r"PBJSON (\{.*\})", out).group(1))


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="modelport-bench-"))
    ws = Workspace.create("bench", folder)
    weights = folder / "weights.txt"
    weights.write_text("0")
    model = Model.register(ws, weights, "bench-model")
    config = InferenceConfig("score.py", source_directory=HERE / "frontend_app", environment=Environment("bench-env"))
    results: dict = {}
    try:
        service = Model.deploy(ws, "bench-svc", [model], config, AksWebservice.deploy_configuration(num_replicas=1))
        service.wait_for_deployment(timeout_sec=600)  # builds the environment the first time
        started = time.monotonic()
        cached = Model.deploy(ws, "bench-cached", [model], config, AksWebservice.deploy_configuration(num_replicas=1))
        cached.wait_for_deployment(timeout_sec=600)
        results["deploy_to_healthy_cached_env_s"] = round(time.monotonic() - started, 2)
        cached.delete()

        body = folder / "body.json"
        body.write_text('{"data": [[1.0, 2.0]]}')
        routes = ws._dir.root / "replicas" / service.name
        state = json.loads(next(routes.glob("v*/replica-0.json")).read_text())
        direct = wrk(f"http://127.0.0.1:{state['port']}/score", body)
        envoy_pid = json.loads((ws._dir.root / "frontend" / "frontend.json").read_text())["pid"]
        before = cpu_ticks(envoy_pid)
        key = service.get_keys()[0]
        routed = wrk(service.scoring_uri, body, headers=f"Authorization: Bearer {key}")
        after = cpu_ticks(envoy_pid)
        results["direct_p50_ms"] = direct["p50_us"] / 1000
        results["front_end_p50_ms"] = routed["p50_us"] / 1000
        results["added_p50_ms"] = round((routed["p50_us"] - direct["p50_us"]) / 1000, 3)
        results["direct_rps_c1"] = round(direct["requests"] / (direct["duration_us"] / 1e6), 1)
        results["front_end_rps_c1"] = round(routed["requests"] / (routed["duration_us"] / 1e6), 1)
        results["envoy_cpu_us_per_request"] = round((after - before) * 1e6 / os.sysconf("SC_CLK_TCK")
                                                    / routed["requests"], 1)
        service.delete()

        scaled = Model.deploy(ws, "bench-scaled", [model], config, AksWebservice.deploy_configuration(
            autoscale_min_replicas=1, autoscale_max_replicas=3, autoscale_refresh_seconds=1, auth_enabled=False,
            max_request_wait_time=10000))
        scaled.wait_for_deployment(timeout_sec=600)
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                httpx.post(scaled.scoring_uri, json={"sleep": 0.05}, timeout=30)

        threads = [threading.Thread(target=load) for _ in range(8)]
        step = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            while Webservice(ws, "bench-scaled").serialize()["status"].get("ready_replicas", 0) < 3:
                time.sleep(0.1)
            results["load_step_to_3_replicas_serving_s"] = round(time.monotonic() - step, 2)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        scaled.delete()
    finally:
        for service in Webservice.list(ws):
            service.delete()
        server.stop(ws._dir)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
