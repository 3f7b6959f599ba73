"""modelport shim of ``azureml.core``: only what an entry script needs inside a replica."""

from .model import Model

__all__ = ["Model"]
