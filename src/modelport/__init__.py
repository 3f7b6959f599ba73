"""modelport: deploy Azure ML v1 style models (score.py with init()/run()) as web services."""

__version__ = "0.1.0"
