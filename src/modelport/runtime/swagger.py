"""Swagger 2 and OpenAPI 3 / 3.1 documents for ``GET /swagger.json``, as azmlinfsrv generates them.

Input and output schemas come from inference-schema's decorators on ``run()``; an undecorated
``run()`` gets empty object schemas. A ``swagger.json``/``swagger2.json``/``swagger3.json`` file
in the app root replaces the generated document for its version.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("modelport.swagger")

VERSION_ALIASES = {"2": "2", "2.0": "2", "3": "3", "3.0": "3", "3.1": "3.1"}
EMPTY_SCHEMA = {"type": "object", "example": {}}
ERROR_SCHEMA = {"type": "object", "properties": {"message": {"type": "string"}}}
HEALTH_DESCRIPTION = "If service is up and running, this response will be returned with the content 'Healthy'"
ERROR_DESCRIPTION = "The service failed to execute due to an error."
SCORE_DESCRIPTION = "Run web service's model and get the prediction output"
INPUT_DESCRIPTION = "The input payload for executing the real-time machine learning service."
OUTPUT_DESCRIPTION = "The service processed the input correctly and provided a result prediction, if applicable."
BEARER = {"type": "apiKey", "name": "Authorization", "in": "header", "description": "For example: Bearer abc123"}


class SwaggerNotFound(Exception):
    """The requested swagger version is unknown or unavailable for this script."""


class SwaggerDocuments:
    """The swagger documents of one entry script, built once at start-up."""

    def __init__(self, run: Any, app_root: Path, title: str, version: str, path_prefix: str = ""):
        input_schema, output_schema, supported = _schemas(run)
        prefix = f"/{path_prefix.strip('/')}" if path_prefix.strip("/") else ""
        info = {"title": title, "description": f"API specification for the Azure Machine Learning service {title}",
                "version": version}
        builders = {
            "2": lambda: _swagger2(info, prefix, input_schema, output_schema),
            "3": lambda: _openapi3(info, prefix, input_schema, output_schema, "3.0.3"),
            "3.1": lambda: _openapi3(info, prefix, input_schema, output_schema, "3.1.0"),
        }
        user_files = {"2": ("swagger.json", "swagger2.json"), "3": ("swagger3.json",), "3.1": ("swagger3.json",)}
        self.documents: dict[str, bytes] = {}
        for key, build in builders.items():
            if not any(alias in supported for alias, target in VERSION_ALIASES.items() if target == key):
                continue
            document = _user_document(app_root, user_files[key]) or build()
            self.documents[key] = json.dumps(document).encode()
        logger.info("Swagger documents prepared for versions [%s].", ", ".join(self.documents))

    def get(self, requested: str | None) -> bytes:
        version = VERSION_ALIASES.get(requested or "2")
        supported = ", ".join(self.documents)
        if version is None:
            raise SwaggerNotFound(f"Swagger version [{requested}] is not valid. Supported versions: [{supported}].")
        if version not in self.documents:
            raise SwaggerNotFound(
                f"Swagger version [{requested}] is not supported for the scoring script. "
                f"Supported swagger versions: [{supported}]."
            )
        return self.documents[version]


def _schemas(run: Any) -> tuple[dict, dict, set[str]]:
    if "inference_schema" in sys.modules:
        from inference_schema.schema_util import (
            get_input_schema,
            get_output_schema,
            get_supported_versions,
            is_schema_decorated,
        )

        supported = set(get_supported_versions(run))
        if is_schema_decorated(run):
            return get_input_schema(run), get_output_schema(run), supported
        return EMPTY_SCHEMA, EMPTY_SCHEMA, supported
    return EMPTY_SCHEMA, EMPTY_SCHEMA, set(VERSION_ALIASES)


def _user_document(app_root: Path, names: tuple[str, ...]) -> dict | None:
    for name in names:
        path = app_root / name
        if path.is_file():
            logger.info("Using the swagger document %s from the app root.", path)
            return json.loads(path.read_text(encoding="utf-8"))
    return None


def _swagger2(info: dict, prefix: str, input_schema: dict, output_schema: dict) -> dict:
    error = {"description": ERROR_DESCRIPTION, "schema": {"$ref": "#/definitions/ErrorResponse"}}
    return {
        "swagger": "2.0",
        "info": info,
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": BEARER},
        "paths": {
            f"{prefix}/": {"get": {
                "operationId": "ServiceHealthCheck",
                "description": "Simple health check endpoint to ensure the service is up at any given point.",
                "responses": {
                    "200": {"description": HEALTH_DESCRIPTION, "schema": {"type": "string"},
                            "examples": {"application/json": "Healthy"}},
                    "default": error,
                },
            }},
            f"{prefix}/score": {"post": {
                "operationId": "RunMLService",
                "description": SCORE_DESCRIPTION,
                "security": [{"Bearer": []}],
                "parameters": [{"name": "serviceInputPayload", "in": "body", "description": INPUT_DESCRIPTION,
                                "schema": {"$ref": "#/definitions/ServiceInput"}}],
                "responses": {
                    "200": {"description": OUTPUT_DESCRIPTION, "schema": {"$ref": "#/definitions/ServiceOutput"}},
                    "default": error,
                },
            }},
            f"{prefix}/swagger.json": {"get": {
                "operationId": "GetSwaggerSpec",
                "description": "Get the Swagger specification.",
                "parameters": [{"name": "version", "in": "query", "required": False, "type": "integer",
                                "enum": [2, 3]}],
                "responses": {
                    "200": {"description": "The Swagger specification.", "schema": {"type": "string"}},
                    "default": error,
                },
            }},
        },
        "definitions": {"ServiceInput": input_schema, "ServiceOutput": output_schema, "ErrorResponse": ERROR_SCHEMA},
    }


def _openapi3(info: dict, prefix: str, input_schema: dict, output_schema: dict, openapi: str) -> dict:
    error = {"description": ERROR_DESCRIPTION,
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    return {
        "openapi": openapi,
        "info": info,
        "security": [{"Bearer": []}],
        "paths": {
            f"{prefix}/": {"get": {
                "operationId": "ServiceHealthCheck",
                "description": "Simple health check endpoint to ensure the service is up at any given point.",
                "responses": {
                    "200": {"description": HEALTH_DESCRIPTION,
                            "content": {"text/plain": {"schema": {"type": "string", "example": "Healthy"}}}},
                    "default": error,
                },
            }},
            f"{prefix}/score": {"post": {
                "operationId": "RunMLService",
                "description": SCORE_DESCRIPTION,
                "security": [{"Bearer": []}],
                "requestBody": {"description": INPUT_DESCRIPTION, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ServiceInput"}}}},
                "responses": {
                    "200": {"description": OUTPUT_DESCRIPTION, "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ServiceOutput"}}}},
                    "default": error,
                },
            }},
            f"{prefix}/swagger.json": {"get": {
                "operationId": "GetSwaggerSpec",
                "description": "Get the Swagger specification.",
                "parameters": [{"name": "version", "in": "query", "required": False,
                                "schema": {"type": "integer", "enum": [2, 3]}}],
                "responses": {
                    "200": {"description": "The Swagger specification.",
                            "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "default": error,
                },
            }},
        },
        "components": {
            "schemas": {"ServiceInput": input_schema, "ServiceOutput": output_schema, "ErrorResponse": ERROR_SCHEMA},
            "securitySchemes": {"Bearer": BEARER},
        },
    }
