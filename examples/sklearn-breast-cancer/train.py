"""Train the quickstart model on scikit-learn's bundled breast-cancer data (no download)."""

import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def train(target: Path) -> Path:
    x, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    target.mkdir(parents=True, exist_ok=True)
    path = target / "model.joblib"
    joblib.dump(model, path)
    return path


if __name__ == "__main__":
    print(train(Path(sys.argv[1] if len(sys.argv) > 1 else "model")))
