"""Calling ``run()`` for one request: input decoding per mode, the call, and its result as a ``Reply``.

Everything here runs in a worker thread, never on the event loop. Nothing raised by the request,
the inference-schema decorators, ``run()`` or the encoding of its result leaves ``Scorer.__call__``
(not even a BaseException such as SystemExit), except ``RunTimedOut``, the run pool's own signal.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
from typing import Any

from .protocol import (
    HTML,
    INTERNAL_ERROR_MESSAGE,
    JSON,
    NESTING_LIMIT,
    RUN_FAILED_MESSAGE,
    HttpError,
    HttpRequest,
    NestingError,
    Reply,
    decode_json,
    encode_json,
    error_reply,
    headers_dict,
    query_to_json,
)
from .raw_http import build_request, is_http_response, response_to_reply
from .run_pool import RunTimedOut
from .user_script import InputMode, UserScript

logger = logging.getLogger("modelport.scoring")


class Scorer:
    """Turns an ``HttpRequest`` into a ``run()`` call and its result into a ``Reply``."""

    def __init__(self, script: UserScript):
        self.script = script
        self.mode = script.mode
        self.first_param = script.input_params[0].name

    def __call__(self, request: HttpRequest) -> Reply:
        try:
            kwargs = self._arguments(request)
        except HttpError as err:
            return err.reply()
        except NestingError as err:
            return error_reply(400, f"The request could not be decoded: {err}. Send flatter data.")
        if self.script.wants_headers:
            kwargs["request_headers"] = headers_dict(request.scope["headers"])
        started = time.perf_counter()
        try:
            result = self.script.run(**kwargs)
        except RunTimedOut:
            raise
        except BaseException as err:  # also SystemExit, KeyboardInterrupt, RecursionError: run() failed
            logger.error("run() raised %s", type(err).__name__, exc_info=True)
            return error_reply(500, RUN_FAILED_MESSAGE, run_failed=True)
        exec_ms = (time.perf_counter() - started) * 1000.0
        reply = self._render(result)
        if reply.status != 500 or reply.run_failed:  # not when the result could not be encoded
            reply.exec_ms = exec_ms
        return reply

    def _arguments(self, request: HttpRequest) -> dict[str, Any]:
        method = request.method
        if self.mode is InputMode.RAW_HTTP:
            return {self.first_param: build_request(request)}
        if method == "GET":
            params = query_to_json(request.scope["query_string"])
            if self.mode is InputMode.STRING:
                return {self.first_param: encode_json(params).decode()}
            return self._schema_arguments(params)
        if self.mode is InputMode.STRING:
            try:
                return {self.first_param: request.body.decode("utf-8")}
            except UnicodeDecodeError as err:
                raise HttpError(400, f"Input cannot be decoded as UTF-8: {err}") from None
        return self._schema_arguments(self._json_body(request))

    @staticmethod
    def _json_body(request: HttpRequest) -> Any:
        mime = request.content_type.split(";", 1)[0].strip().lower()
        if mime != "application/json" and not (mime.startswith("application/") and mime.endswith("+json")):
            raise HttpError(415, "Expects Content-Type to be application/json")
        if not request.body:
            raise HttpError(400, "POST body is empty. Expecting a JSON dictionary.")
        try:
            body = decode_json(request.body)
        except UnicodeDecodeError as err:
            raise HttpError(400, f"Input cannot be decoded as UTF-8: {err}") from None
        except NestingError as err:
            raise HttpError(400, f"POST body could not be decoded as JSON: {err}. Send flatter data.") from None
        except ValueError as err:
            raise HttpError(400, f"POST body could not be decoded as JSON: {err}") from None
        if not isinstance(body, dict):
            raise HttpError(400, "POST body should be a JSON dictionary.")
        return body

    def _schema_arguments(self, body: dict[str, Any]) -> dict[str, Any]:
        kwargs = {}
        for param in self.script.input_params:
            value = body.get(param.name, param.default)
            if value is inspect.Parameter.empty:
                raise HttpError(400, f"A value is not provided for the {param.name!r} parameter.")
            kwargs[param.name] = value
        return kwargs

    def _render(self, result: Any) -> Reply:
        """run()'s result as a reply; 500 with the reference's internal-error message when it cannot be sent."""
        try:
            if "werkzeug" in sys.modules and is_http_response(result):
                return response_to_reply(result)
            return Reply(200, [JSON], encode_json(result))
        except RunTimedOut:
            raise
        except NestingError:
            logger.error("run() returned a %s nested deeper than the JSON nesting limit of %d levels; "
                         "return flatter data", type(result).__name__, NESTING_LIMIT)
        except (TypeError, ValueError, OverflowError):
            logger.exception(
                "run() returned a %s that cannot be encoded as JSON; return lists, dicts, str or numbers "
                "(for numpy arrays call .tolist())",
                type(result).__name__,
            )
        except BaseException:
            logger.exception("run()'s %s could not be turned into a response", type(result).__name__)
        return error_reply(500, INTERNAL_ERROR_MESSAGE)


def options_reply() -> Reply:
    """``OPTIONS /score`` for scripts that are not ``@rawhttp``: an empty 200, as azmlinfsrv answers."""
    return Reply(200, [HTML])
