"""The local front end: one Envoy process for all services of a workspace, configured from files."""
