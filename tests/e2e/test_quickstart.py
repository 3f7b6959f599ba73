"""The README's main job runs end to end: train, register, deploy with key auth, score, clean up."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)  # the first run builds the example's environment (scikit-learn)
def test_quickstart_deploys_and_scores_the_example_model():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True,
                            text=True, timeout=900, env=dict(os.environ))
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "without a key: HTTP 401" in output
    assert "with the key:  [0, 0]" in output
    assert "Scoring URL: http://127.0.0.1:" in output
    assert "-H 'Authorization: Bearer " in output
    assert "Service deleted and control plane stopped." in output
