"""Reconcilers: converge the desired state in the workspace store to running replicas, and record what was seen."""
