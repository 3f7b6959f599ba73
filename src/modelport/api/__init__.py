"""The control plane: an HTTP API (FastAPI) over the workspace store, its server process and its client."""
