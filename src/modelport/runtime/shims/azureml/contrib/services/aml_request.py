"""modelport shim of ``azureml.contrib.services.aml_request``: ``rawhttp`` and ``AMLRequest``.

``AMLRequest`` is a werkzeug (Flask) request, as in Azure ML, so entry scripts can use
``request.method``, ``request.args``, ``request.headers``, ``request.get_data()``,
``request.get_json()``, ``request.files`` and the rest unchanged.
"""

from werkzeug.wrappers import Request

# Set when any run() is decorated with @rawhttp; the runtime reads it, as azmlinfsrv does.
_rawHttpRequested = False


def rawhttp(func):
    """Mark ``run()`` as wanting the raw HTTP request instead of the decoded body."""
    global _rawHttpRequested
    _rawHttpRequested = True
    return func


class AMLRequest(Request):
    """The raw HTTP request handed to a ``@rawhttp`` ``run()``."""

    _modelport_shim = True  # the runtime builds its requests from this class when it is ours
