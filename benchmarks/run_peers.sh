#!/usr/bin/env bash
# Side-by-side benchmark of the modelport scoring runtime against the peer servers, in one run.
#
#   benchmarks/run_peers.sh [bench_peers.sh options...]     e.g. --servers const,fastapi,azureml --workers 1,2
#
# The candidate runs from benchmarks/.venv: modelport plus the same scikit-learn/numpy/joblib
# pins as the peers' venvs and nothing else, as a deployment's environment would be (the test
# venv also has pandas, which scikit-learn imports when present: +30 MB per process).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
HARNESS="${PEERBENCH:-$ROOT/../shared/bench}"
VENV="$HERE/.venv"

if [ ! -x "$VENV/bin/modelport" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -e "$ROOT" scikit-learn==1.9.1 numpy==2.4.6 joblib==1.6.0
fi

exec "$HARNESS/bench_peers.sh" \
  --candidate-name modelport \
  --candidate-url 'http://127.0.0.1:9000/score' \
  --candidate-cmd "exec $VENV/bin/modelport serve --entry-script {score_py} --model-dir {model_dir} --port 9000 --workers {workers}" \
  "$@"
