"""The ``AMLRequest`` and ``AMLResponse`` classes behind every ``@rawhttp`` import path the shims offer.

``azureml.contrib.services.aml_request`` / ``aml_response`` (Azure ML v1 samples) and
``azureml_inference_server_http.api.aml_request`` / ``aml_response`` (newer samples) give an
entry script the same two classes, so ``isinstance`` checks and the runtime agree whichever
path a script imports. Each ``aml_request`` shim keeps its own ``rawhttp`` and
``_rawHttpRequested`` flag, as the real modules do; ``user_script`` reads both flags.
"""

from __future__ import annotations

import json

from werkzeug.wrappers import Request, Response


class AMLRequest(Request):
    """The raw HTTP request handed to a ``@rawhttp`` ``run()``: a werkzeug (Flask) request, as in Azure ML,
    so ``request.method``, ``args``, ``headers``, ``get_data()``, ``get_json()``, ``files`` work unchanged."""

    _modelport_shim = True  # the runtime builds its requests from this class when a script uses a shim


class AMLResponse(Response):
    """A response a ``@rawhttp`` ``run()`` returns to control status, headers and body.

    ``message`` may be str, bytes or an iterable of chunks (streamed); ``None`` sends ``{}``.
    A header value with commas becomes one header per comma-separated part.
    """

    default_mimetype = "text/html"

    def __init__(self, message, status_code, response_headers=None, json_str=False, run_function_failed=False):
        response_headers = response_headers or {}
        if message is None:
            super().__init__(json.dumps({}), status=status_code, mimetype="application/json")
        elif json_str:
            super().__init__(json.dumps(message), status=status_code, mimetype="application/json")
        else:
            super().__init__(message, status=status_code)
            if any(name.lower() == "content-type" for name in response_headers):
                self.headers.remove("Content-Type")
        self.headers["x-ms-run-function-failed"] = str(run_function_failed)
        for header, value in response_headers.items():
            for part in str(value).split(","):
                self.headers.add_header(header, part.strip())
