"""Errors as the control plane answers them and as its OpenAPI document declares them.

Every error answer, whatever raised it, is a JSON ``{"code", "message"}`` (``ErrorBody``) with the status
of its ``ModelportError`` class: a request that does not match the document is a 400 ``InvalidInput``
(never FastAPI's 422), an unknown path a 404 ``NotFound``, and a known path asked with another method a 405
``MethodNotAllowed`` whose ``Allow`` header lists every method of that path. A route declares the errors it
can answer with ``errors(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from ..errors import InvalidInput, MethodNotAllowed, ModelportError, NotFound, Unauthorized


class ErrorBody(BaseModel):
    """The JSON body of every error answer: ``code`` names the error class (``errors.BY_CODE``), ``message``
    says what was wrong and what to do."""

    code: str
    message: str


def errors(*kinds: type[ModelportError], body: bool = True) -> dict[int | str, dict[str, Any]]:
    """A route's (or router's) ``responses=``: the statuses of the error classes it can answer, each with
    their codes and meanings and, unless ``body`` is False (HEAD), the ErrorBody model."""
    declared: dict[int | str, dict[str, Any]] = {}
    for kind in kinds:
        meaning = f"{kind.code}: {' '.join((kind.__doc__ or '').split())}"
        response = declared.setdefault(kind.status, {"description": "", **({"model": ErrorBody} if body else {})})
        response["description"] = f"{response['description']} {meaning}".strip()
    return declared


def answer_errors_as_declared(app: FastAPI) -> None:
    """Give every error of ``app`` the ErrorBody shape, and make its document say 400 where FastAPI says 422."""
    app.add_exception_handler(ModelportError, _modelport_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.openapi = _with_400_for_422(app)


def _answer(err: ModelportError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": err.code, "message": str(err)}, status_code=err.status, headers=headers)


async def _modelport_error(_request: Request, err: ModelportError) -> JSONResponse:
    return _answer(err, {"WWW-Authenticate": "Bearer"} if isinstance(err, Unauthorized) else None)


async def _invalid_request(_request: Request, err: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
    return _answer(InvalidInput(f"invalid request: {problems}"))


async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
    """Starlette's own errors (no route for the path, or not with this method) in the ErrorBody shape."""
    if err.status_code == 405:
        allowed = _documented_methods(request) or (err.headers or {}).get("Allow", "").split(", ")
        return _answer(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}; use "
                                        f"{' or '.join(allowed)}"), {"Allow": ", ".join(allowed)})
    if err.status_code == 404:
        return _answer(NotFound(f"no API path {request.url.path}; see /docs for the paths"))
    return JSONResponse({"code": ModelportError.code, "message": str(err.detail)}, status_code=err.status_code,
                        headers=err.headers)


def _documented_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document gives the request's path (Starlette's 405 names only one route's)."""
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(request.url.path):
            return sorted(method.upper() for method in operations)
    return []


def _with_400_for_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` whose document declares request validation as it is answered: 400 with ErrorBody (see
    ``_invalid_request``) where FastAPI declares 422 with its own body, which the app never sends."""
    generate = app.openapi
    invalid = errors(InvalidInput)[InvalidInput.status]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for operations in document["paths"].values():
            for operation in operations.values():
                if operation["responses"].pop("422", None) is not None:
                    operation["responses"].setdefault("400", {
                        "description": invalid["description"],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                    })
        schemas = document["components"]["schemas"]
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
        return document

    return openapi
