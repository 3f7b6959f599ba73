"""Studio's cost (issue 11): the endpoint page's weight, and the control plane's CPU with one Studio page open.

Endpoint ``three`` of the trivial app (``benchmarks/apps/trivial``): blue 50 (default), green 30, red 20, one replica
each, key auth, in a temporary workspace. Everything below comes from one run:

1. Page weight: a fresh headless chromium (``tests/studio/browser.py``; new profile, empty cache) opens the one-time
   link of ``modelport studio --no-browser`` with ``next`` = the endpoint page, until the plots are drawn and the first
   history answer arrived; bytes per resource as ``Browser.transferred_bytes()`` counts them (``encodedDataLength``:
   compressed, with headers; the sign-in link's 303 from its redirectResponse); then a reload (warm cache).
2. Control-plane CPU (utime+stime of its pid, in cores) over ``--seconds`` per phase (default 60), each after waiting
   (at most ``BENCH_QUIET_WAIT_S``, default 120 s) for a 1-minute load average below 1.5: a) load, no page (the
   browser on about:blank); b) load, the endpoint page open (it polls the history every 5 s); a, b, a, b; then c)
   idle, page open; d) idle, no page. Load: 4 keep-alive httpx connections paced to ``--rate`` requests per second in
   all (default 200, a tenth of what two cores answer). Also per phase: answered requests per second, the history
   polls and their bytes, the CPU of the browser (chromedriver's descendants), Envoy + replicas, this script, the rest.
3. The history endpoint itself: control-plane CPU per request over 200 back-to-back polls (``?since=`` 5 s ago, as the
   page asks) and 50 full-history requests (a page's first load), and the full history's size raw and gzipped.

Run from the project root: ``.venv/bin/python benchmarks/studio_bench.py [--seconds 60] [--rate 200]``. Raw numbers go
to ``benchmarks/results/studio-<UTC time>.json``. Everything it starts is deleted at the end, also when interrupted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from proc_cpu import TICK, group_ticks, machine_ticks, own_ticks, ticks, wait_quiet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.studio.browser
from tests.studio.browser import Browser  # noqa: E402

from modelport import AksEndpoint, Environment, InferenceConfig, Model, Webservice, Workspace  # noqa: E402
from modelport.api import server  # noqa: E402

HERE = Path(__file__).parent
APP, RESULTS = HERE / "apps" / "trivial", HERE / "results"
QUIET_WAIT_S = float(os.environ.get("BENCH_QUIET_WAIT_S", "120"))
CONNECTIONS, PLOTTED = 4, '[data-plot="rps"] canvas'
PHASES = [("a1", False, True), ("b1", True, True), ("a2", False, True), ("b2", True, True),
          ("c", True, False), ("d", False, False)]  # label, page open, under load


def network(browser: Browser) -> list[dict]:
    """Requests finished since the last call (the performance log): url, status, content-encoding, bytes."""
    seen, done = {}, []
    for entry in browser.driver.get_log("performance"):
        event = json.loads(entry["message"])["message"]
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent" and params.get("redirectResponse"):
            r = params["redirectResponse"]
            done.append({"url": r["url"], "status": r["status"], "encoding": "", "bytes": r["encodedDataLength"]})
        elif method == "Network.responseReceived":
            r = params["response"]
            encoding = {k.lower(): v for k, v in r["headers"].items()}.get("content-encoding", "")
            seen[params["requestId"]] = {"url": r["url"], "status": r["status"], "encoding": encoding}
        elif method == "Network.loadingFinished" and params["requestId"] in seen:
            done.append({**seen.pop(params["requestId"]), "bytes": int(params["encodedDataLength"])})
    return done


def load_page(browser: Browser, go) -> list[dict]:
    """``go()`` (a navigation), then wait for the plots and a finished history answer; the requests seen."""
    go()
    browser.wait_for(lambda d: d.find_elements("css selector", PLOTTED), timeout_s=30, message="plots drawn")
    requests, deadline = [], time.monotonic() + 15
    while not any("/history" in r["url"] for r in requests) and time.monotonic() < deadline:
        requests += network(browser)
        time.sleep(0.2)
    time.sleep(1)
    return requests + network(browser)


class Load:
    """CONNECTIONS threads, each posting to the endpoint at rate / CONNECTIONS requests per second, while open."""

    def __init__(self, url: str, key: str, rate: float):
        self.url, self.key, self.interval = url, key, CONNECTIONS / rate
        self.answered, self.errors = [0] * CONNECTIONS, [0] * CONNECTIONS
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CONNECTIONS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def _run(self, i: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {self.key}"}, timeout=10) as client:
            due = time.monotonic()
            while not self.stop.is_set():
                try:
                    ok = client.post(self.url, json={"data": [[1.0, 2.0]]}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.answered[i], self.errors[i] = self.answered[i] + ok, self.errors[i] + (not ok)
                due = max(due + self.interval, time.monotonic() - self.interval)  # no burst to catch up
                self.stop.wait(due - time.monotonic())


def descendants(pid: int) -> set[int]:
    """The processes below ``pid`` now (below chromedriver: the browser's)."""
    parents = {}
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit():
                parents[int(entry.name)] = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cpu(pids: dict) -> dict:
    """Clock ticks so far: the browser's per process (they come and go), the others' in all."""
    return {"control_plane": ticks(pids["control_plane"]), "envoy_replicas": ticks(pids["envoy"])
            + group_ticks(pids["replicas"]), "client": own_ticks(), "machine": machine_ticks(),
            "browser": {pid: ticks(pid) for pid in descendants(pids["chromedriver"])}}


def phase(label: str, seconds: float, pids: dict, browser: Browser, page: str | None, load) -> dict:
    """The page open (``page``) or about:blank, under a new ``load()`` or idle (None), for ``seconds``."""
    browser.open(page or "about:blank")
    if page:
        browser.wait_for(lambda d: d.find_elements("css selector", PLOTTED), timeout_s=30, message="plots drawn")
    quiet = wait_quiet(QUIET_WAIT_S)
    network(browser)  # count this phase's polls only
    with load() if load else nullcontext() as running:
        if running:
            time.sleep(3)  # warm-up: connections open
        answered, started, before = sum(running.answered) if running else 0, time.monotonic(), cpu(pids)
        time.sleep(seconds)
        after, elapsed = cpu(pids), time.monotonic() - started
        answered = sum(running.answered) - answered if running else 0
    before["browser"] = sum(before["browser"].get(pid, 0) for pid in after["browser"])  # a process gone: not counted
    after["browser"] = sum(after["browser"].values())
    cores = {k: (after[k] - before[k]) / TICK / elapsed for k in before}
    cores["other"] = cores["machine"] - sum(v for k, v in cores.items() if k != "machine")
    polls = [r["bytes"] for r in network(browser) if "/history" in r["url"]]
    return {"phase": label, "page_open": bool(page), "load": bool(load), "rps": round(answered / elapsed, 1),
            "errors": sum(running.errors) if running else 0, "polls": len(polls),
            "poll_bytes": round(sum(polls) / len(polls)) if polls else None,
            **{f"{k}_cores": round(v, 4 if k == "control_plane" else 3) for k, v in cores.items()},
            "seconds": round(elapsed, 1), **quiet}


def server_costs(browser: Browser, page: str, pids: dict, token: str) -> dict:
    """The control plane's CPU per request (ms): history polls, full histories, the endpoint page, and /metrics (the
    collector each history sample runs); the sizes of the full history and of the page, raw and gzipped."""
    browser.open(page)  # the session cookie is read on the page's origin
    base = page.split("/studio/")[0]
    history = base + "/studio/api/services/three/history"
    cookies = {c["name"]: c["value"] for c in browser.driver.get_cookies()}
    out = {}
    with httpx.Client(cookies=cookies, timeout=10) as client:
        for name, url in (("history", history), ("page", page)):
            body = client.get(url).raise_for_status().content
            out |= {f"{name}_bytes": len(body), f"{name}_gzip_bytes": len(gzip.compress(body))}
        out["history_points"] = len(client.get(history).json()["points"])
        token_header = {"Authorization": f"Bearer {token}"}
        for name, n, url, params, headers in (
                ("poll", 200, history, lambda: {"since": time.time() - 5}, {}), ("full_history", 50, history, dict, {}),
                ("page", 50, page, dict, {}), ("metrics", 50, base + "/metrics", dict, token_header)):
            before = ticks(pids["control_plane"])
            for _ in range(n):
                client.get(url, params=params(), headers=headers).raise_for_status()
            out[f"{name}_cpu_ms"] = round((ticks(pids["control_plane"]) - before) / TICK / n * 1000, 2)
    return out


def deploy(ws: Workspace, folder: Path) -> AksEndpoint:
    (folder / "weights.txt").write_text("0")
    model = Model.register(ws, folder / "weights.txt", "bench-model")
    config = InferenceConfig("score.py", source_directory=APP, environment=Environment("bench-env"))
    endpoint = Model.deploy(ws, "three", [model], config, AksEndpoint.deploy_configuration(
        version_name="blue", traffic_percentile=50, num_replicas=1))
    endpoint.wait_for_deployment(timeout_sec=600)
    endpoint.create_version("green", traffic_percentile=30)
    endpoint.create_version("red", traffic_percentile=20)
    endpoint.wait_for_deployment(timeout_sec=600)
    return endpoint


def sign_in_link(ws: Workspace) -> str:
    printed = subprocess.run([sys.executable, "-m", "modelport.cli.main", "studio", "--no-browser"],
                             cwd=ws._dir.root.parent, capture_output=True, text=True, timeout=60, check=True).stdout
    return re.search(r"(http://\S+/studio/login\?code=\S+)", printed).group(1)


def table(weight: dict, runs: list[dict]) -> str:
    rows: dict[str, list] = {}
    for when in ("cold", "warm"):
        for r in weight[when]:
            name = urlsplit(r["url"]).path + (" (303, the sign-in link)" if r["status"] == 303 else "")
            rows.setdefault(name, [r["encoding"] or "none", 0, 0])[1 if when == "cold" else 2] += r["bytes"]
    lines = ["| resource | content-encoding | cold bytes | warm reload bytes |", "|---|---|---|---|"]
    lines += [f"| `{name}` | {enc} | {cold} | {warm} |" for name, (enc, cold, warm) in rows.items()]
    lines += [f"| **total** | | **{sum(r['bytes'] for r in weight['cold'])}** "
              f"| **{sum(r['bytes'] for r in weight['warm'])}** |", "",
              "| phase | load req/s (errors) | page | control plane cores | % of a core | history polls × bytes "
              "| browser cores | Envoy + replicas cores | client cores | other cores | load avg |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        load = f"{r['rps']} ({r['errors']})" if r["load"] else "idle"
        lines.append(f"| {r['phase']} | {load} "
                     f"| {'open' if r['page_open'] else '—'} | {r['control_plane_cores']} "
                     f"| {100 * r['control_plane_cores']:.2f} | {r['polls']} × {r['poll_bytes'] or '—'} "
                     f"| {r['browser_cores']} | {r['envoy_replicas_cores']} | {r['client_cores']} "
                     f"| {r['other_cores']} | {r['loadavg']}{'' if r['quiet'] else ' (not quiet)'} |")
    return "\n".join(lines)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of each CPU phase (default 60)")
    parser.add_argument("--rate", type=float, default=200, help="requests per second under load (default 200)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    folder = Path(tempfile.mkdtemp(prefix="modelport-studio-bench-"))
    ws = Workspace.create("studio", folder)
    started_at = datetime.now(timezone.utc)
    source = {"commit": git("rev-parse", "--short", "HEAD"), "src_modified": bool(git("status", "--porcelain", "src"))}
    browser = None
    try:
        endpoint = deploy(ws, folder)
        key = endpoint.get_keys()[0]
        pids = {"control_plane": server.read_info(ws._dir)["pid"],
                "envoy": json.loads((ws._dir.root / "frontend" / "frontend.json").read_text())["pid"],
                "replicas": {json.loads(p.read_text())["pid"] for p in ws._dir.root.glob("replicas/three/*/*.json")}}
        browser = Browser(folder / "screenshots")
        pids["chromedriver"] = browser.driver.service.process.pid
        link = sign_in_link(ws)
        page = link.split("/studio/")[0] + "/studio/services/three"
        network(browser)
        weight = {"cold": load_page(browser, lambda: browser.open(link + "&next=/studio/services/three")),
                  "warm": load_page(browser, browser.driver.refresh)}
        runs = []
        for label, page_open, loaded in PHASES:
            runs.append(phase(label, args.seconds, pids, browser, page if page_open else None,
                              (lambda: Load(endpoint.scoring_uri, key, args.rate)) if loaded else None))
            print(json.dumps(runs[-1]), flush=True)
        history = server_costs(browser, page, pids, ws._dir.token())
    finally:
        if browser is not None:
            browser.close()
        for service in Webservice.list(ws):
            service.delete()
        server.stop(ws._dir)
    by = {r["phase"]: r["control_plane_cores"] for r in runs}
    summary = {"page_under_load_cores": [round(by["b1"] - by["a1"], 4), round(by["b2"] - by["a2"], 4)],
               "page_idle_cores": round(by["c"] - by["d"], 4), "server": history}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"studio-{started_at:%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"started_utc": started_at.isoformat(timespec="seconds"), **source,
                               "cpus": os.cpu_count(), "seconds_per_phase": args.seconds, "rate": args.rate,
                               "page_weight": weight,
                               "phases": runs, **summary}, indent=1) + "\n")
    print(f"\nRun {started_at:%Y-%m-%d %H:%M} UTC at {source['commit']}"
          f"{' (src/ modified)' * source['src_modified']}, "
          f"{args.seconds:g} s per phase, {args.rate:g} req/s under load; raw numbers: {out}\n")
    print(table(weight, runs))
    print(f"\n{json.dumps(summary)}")


if __name__ == "__main__":
    main()
