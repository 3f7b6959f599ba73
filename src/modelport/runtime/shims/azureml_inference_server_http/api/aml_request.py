"""modelport shim of ``azureml_inference_server_http.api.aml_request``: ``rawhttp`` and ``AMLRequest``.

``AMLRequest`` is a werkzeug (Flask) request, as in Azure ML (see ``modelport.runtime.aml_http``).
"""

from modelport.runtime.aml_http import AMLRequest

__all__ = ["AMLRequest", "rawhttp"]

# Set when any run() is decorated with @rawhttp; the runtime reads it, as azmlinfsrv does.
_rawHttpRequested = False


def rawhttp(func):
    """Mark ``run()`` as wanting the raw HTTP request instead of the decoded body."""
    global _rawHttpRequested
    _rawHttpRequested = True
    return func
