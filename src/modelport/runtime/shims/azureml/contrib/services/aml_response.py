"""modelport shim of ``azureml.contrib.services.aml_response``: ``AMLResponse``."""

import json

from werkzeug.wrappers import Response


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
