"""The local backend: replicas are runtime processes on this machine."""

from .backend import LocalBackend

__all__ = ["LocalBackend"]
