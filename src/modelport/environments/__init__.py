"""Environments: the Azure ML environment spec, its content hash, and local builds (venv + uv)."""
