"""Backends run the replicas of service versions: ``local`` (processes on this machine), later ``kubernetes``."""
