"""Studio: the workspace's web UI, served by the control plane."""
