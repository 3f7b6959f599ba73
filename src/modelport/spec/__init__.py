"""Desired state, typed: what should run, apart from the code that makes it run.

``State`` is the one set of states; ``Endpoint``/``EndpointVersion`` describe what to serve (a web
service is an endpoint with one version); ``traffic`` holds Azure ML's rules for versions and their
traffic. The store keeps these as dicts (``to_dict``/``from_dict``); the operations layer changes
them; the reconciler reads them and never writes them.
"""

from .endpoint import (
    DEFAULT_VERSION,
    ENDPOINT,
    LOCAL_TARGET,
    WEBSERVICE,
    Endpoint,
    EndpointVersion,
    ModelRef,
    TrafficAssignment,
)
from .state import TERMINAL, State

__all__ = ["DEFAULT_VERSION", "ENDPOINT", "LOCAL_TARGET", "TERMINAL", "WEBSERVICE", "Endpoint", "EndpointVersion",
           "ModelRef", "State", "TrafficAssignment"]
