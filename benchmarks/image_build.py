"""Image builds for the Kubernetes target (issue 10), printed as a Markdown table.

With podman (``PodmanBuilder`` = ``builders.CliBuilder("podman")``) through ``ImageBuilds``, as the Kubernetes
backend builds, for a scikit-learn environment (``scikit-learn``, ``joblib``: the quickstart's) and the
``tests/fixtures/deploy_app`` score.py with a 1 MB model file:

- the environment image built cold, twice: with an empty uv cache (every wheel downloaded from PyPI) and with uv's
  cache warm; each split into the host install (uv, the build context) and the image build (podman);
- the same replica set again in a new ``ImageBuilds`` (a restarted control plane): both images found, nothing built;
- a new model version: only the app layer is built (the environment image is found);
- image sizes (podman's uncompressed size): the base image, what the environment adds, what the app layer adds.

The base image is the tests' Debian bookworm minbase with python3 (``tests/kubernetes/podman.py``, made with
debootstrap on first use), as the official ``python:3.11-slim-bookworm`` cannot be pulled here. Timed runs are
repeated ``BENCH_REPEAT`` times (default 3, the median reported); the empty-cache build once (it depends on the
network). Run from the project root: ``.venv/bin/python benchmarks/image_build.py``; raw numbers go to
``benchmarks/results/image-build-<UTC time>.json``. The images it builds are removed at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # the tests' podman set-up

from tests.kubernetes.podman import Podman, start_podman  # noqa: E402

from modelport.backends.kubernetes import images  # noqa: E402
from modelport.backends.kubernetes.image_builds import ImageBuilds  # noqa: E402
from modelport.reconcile.backend import Preparation, ReplicaSetSpec  # noqa: E402
from modelport.store.artifacts import LocalArtifactStore, put_tree  # noqa: E402

RESULTS = HERE / "results"
APP = HERE.parent / "tests" / "fixtures" / "deploy_app"
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
ENVIRONMENT = {"name": "bench-sklearn", "python": {"condaDependencies": {"dependencies": [
    "python=3.11", {"pip": ["scikit-learn", "joblib"]}]}}}
MODEL_BYTES = 1 << 20


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="image-bench-"))
    engine = start_podman(root / "podman")
    os.environ[images.BASE_IMAGE_VARIABLE] = engine.base_image
    store = LocalArtifactStore(root / "blobs")
    first, second = (spec(store, root, version) for version in (1, 2))
    environment_image = images.environment_image_name(ENVIRONMENT, None)
    made = [environment_image, images.app_image_for(first, None), images.app_image_for(second, None)]
    figures: dict[str, object] = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                  "base_image": engine.base_image, "repeat": REPEAT}
    try:
        remove(engine, made)
        with tempfile.TemporaryDirectory() as empty_cache:
            os.environ["UV_CACHE_DIR"] = empty_cache
            figures["cold_empty_cache"] = cold_build(engine, store, root, first)
            del os.environ["UV_CACHE_DIR"]
        cold = []
        for _ in range(REPEAT):
            remove(engine, made)
            cold.append(cold_build(engine, store, root, first))
        figures["cold_warm_cache"] = cold
        figures["cached_s"] = [prepare_s(engine, store, root, first) for _ in range(REPEAT)]
        app_only = []
        for _ in range(REPEAT):
            remove(engine, made[2:])
            app_only.append(prepare_s(engine, store, root, second))
        figures["new_model_version_s"] = app_only
        base, environment, app = (size(engine, image) for image in (engine.base_image, environment_image, made[2]))
        figures["sizes_bytes"] = {"base": base, "environment": environment, "app": app}
    finally:
        remove(engine, made)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"image-build-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(table(figures))
    print(f"\nraw: {out}")


def spec(store: LocalArtifactStore, root: Path, version: int) -> ReplicaSetSpec:
    snapshot, _ = put_tree(store, [("score.py", APP / "score.py")])
    weights = root / f"model-{version}.bin"
    weights.write_bytes(os.urandom(MODEL_BYTES))
    model = {"name": "echo-model", "version": version, "artifact_sha256": store.put_file(weights),
             "artifact_kind": "file", "artifact_name": "weights.txt"}
    return ReplicaSetSpec(service="bench", replica_set=f"default-{version}", environment=ENVIRONMENT,
                          snapshot=snapshot, models=(model,), entry_script="score.py", replicas=1)


def cold_build(engine: Podman, store: LocalArtifactStore, root: Path, replica_set: ReplicaSetSpec) -> dict:
    """Seconds for the environment image (host install, then image build) and the app image, built directly."""
    builder = engine.builder()
    environment_image = images.environment_image_name(ENVIRONMENT, None)
    with open(root / "bench.log", "a") as log:
        folder = Path(tempfile.mkdtemp(dir=root))
        started = time.monotonic()
        images.environment_context(ENVIRONMENT, folder, log)
        installed = time.monotonic()
        builder.build(folder, environment_image, log)
        built = time.monotonic()
        app_folder = Path(tempfile.mkdtemp(dir=root))
        images.app_context(replica_set, environment_image, store, app_folder)
        builder.build(app_folder, images.app_image_for(replica_set, None), log)
        done = time.monotonic()
    return {"install_s": round(installed - started, 2), "environment_build_s": round(built - installed, 2),
            "environment_s": round(built - started, 2), "app_s": round(done - built, 2)}


def prepare_s(engine: Podman, store: LocalArtifactStore, root: Path, replica_set: ReplicaSetSpec) -> float:
    """Seconds from a new ImageBuilds' first ``prepare`` to READY (polled every 0.05 s)."""
    builds = ImageBuilds(engine.builder(), store, root / "logs", root / "work")
    started = time.monotonic()
    while (state := builds.prepare(replica_set).state) is Preparation.PREPARING:
        time.sleep(0.05)
    assert state is Preparation.READY, builds.prepare(replica_set).reason
    builds.close()
    return round(time.monotonic() - started, 2)


def size(engine: Podman, image: str) -> int:
    return int(engine.run("image", "inspect", "--format", "{{.Size}}", image).stdout)


def remove(engine: Podman, made: list[str]) -> None:
    for image in made:
        engine.run("rmi", "--force", image, check=False)


def table(figures: dict) -> str:
    def median(key: str, field: str | None = None) -> float:
        runs = figures[key]
        return statistics.median(run[field] if field else run for run in runs)

    empty = figures["cold_empty_cache"]
    sizes = {key: value / 1e6 for key, value in figures["sizes_bytes"].items()}
    rows = [
        "| what | seconds |", "|---|---|",
        f"| environment image, cold, empty uv cache: host install + image build | {empty['install_s']} + "
        f"{empty['environment_build_s']} = {empty['environment_s']} |",
        f"| environment image, cold, warm uv cache (median of {len(figures['cold_warm_cache'])}) | "
        f"{median('cold_warm_cache', 'install_s')} + {median('cold_warm_cache', 'environment_build_s')} = "
        f"{median('cold_warm_cache', 'environment_s')} |",
        f"| app image on it (1 MB model) | {median('cold_warm_cache', 'app_s')} |",
        f"| same replica set, restarted control plane (both found, nothing built) | {median('cached_s')} |",
        f"| new model version: app layer only, prepare → READY | {median('new_model_version_s')} |",
        "", "| image | size (MB, uncompressed) |", "|---|---|",
        f"| base (bookworm minbase + python3) | {sizes['base']:.0f} |",
        f"| + environment (scikit-learn, joblib, runtime) | {sizes['environment'] - sizes['base']:.0f} "
        f"(total {sizes['environment']:.0f}) |",
        f"| + app layer (modelport package, score.py, 1 MB model) | {sizes['app'] - sizes['environment']:.1f} "
        f"(total {sizes['app']:.0f}) |",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
