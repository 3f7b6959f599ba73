"""``@rawhttp`` support: an ASGI request as a werkzeug ``AMLRequest``, a werkzeug response as a ``Reply``."""

from __future__ import annotations

import io
import sys
from typing import Any

from .protocol import HttpRequest, Reply


def build_request(request: HttpRequest) -> Any:
    """The shims' ``AMLRequest`` (a werkzeug request) over this ASGI request, whichever path the script
    imported it from (a real azureml ``AMLRequest`` cannot wrap an environ; this one is a werkzeug one)."""
    from .aml_http import AMLRequest

    return AMLRequest(_environ(request))


def _environ(request: HttpRequest) -> dict[str, Any]:
    scope = request.scope
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope["path"],
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.input_terminated": True,  # the whole body is in memory, chunked or not
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def is_http_response(value: Any) -> bool:
    from werkzeug.wrappers import Response

    return isinstance(value, Response)


def response_to_reply(response: Any) -> Reply:
    """Status, headers and body (or a chunk stream) of a werkzeug/Flask/AMLResponse.

    ``x-ms-run-function-failed`` is True when the response says so or its status is 5xx;
    the runtime writes that header and Content-Length itself.
    """
    status = response.status_code
    headers = []
    failed = status >= 500
    for name, value in response.headers.to_wsgi_list():
        key = name.lower()
        if key == "x-ms-run-function-failed":
            failed = failed or value == "True"
        elif key != "content-length":
            headers.append((key.encode("latin-1"), value.encode("latin-1")))
    if response.is_streamed:
        return Reply(status, headers, stream=iter(response.iter_encoded()), run_failed=failed)
    return Reply(status, headers, response.get_data(), run_failed=failed)
