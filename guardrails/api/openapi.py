"""The OpenAPI document (``/openapi.json``) says what the endpoints really take and answer.

The request bodies are read by the proxy itself (size limits, UTF-8 and JSON errors of its own), not by FastAPI,
so FastAPI cannot see them: routes declare them with :func:`json_body` and their error responses with
:func:`errors`, and :func:`install_openapi` adds the request models (guardrails/api/schemas.py), the request limits
and the API-key schemes to the generated document. Every error is OpenAI's shape (:class:`ErrorResponse`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

SCHEMAS = "#/components/schemas/"
STATUS_TEXT = {
    400: "Invalid request (the message names the parameter), or input blocked by the policy (code content_filter)",
    401: "No API key, or an invalid one",
    403: "The API key may not call this endpoint, model or policy",
    404: "The upstream has no such model",
    413: "The body, or its list of messages or texts, is larger than the proxy's limits",
    429: "Rate limit reached (see Retry-After)",
    500: "Unexpected failure; nothing was sent to the model or returned unchecked",
    502: "The upstream failed or answered something invalid",
    503: "Not ready (models loading; see Retry-After), or a check failed and its policy blocks on errors",
    504: "The upstream timed out",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow", title="Error")

    message: str = Field(description="what went wrong, naming the parameter where there is one")
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, rate_limit_error, "
                                  "or server_error")
    param: str | None = Field(description="the offending parameter, e.g. messages[0].content")
    code: str | None = Field(description="e.g. invalid_json, unknown_parameter, content_filter, not_ready")
    innererror: dict[str, Any] | None = Field(None, description="content_filter only: which checks fired")


class ErrorResponse(BaseModel):
    """OpenAI's error shape, which the openai clients parse."""

    error: ErrorDetail


def json_body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """``openapi_extra`` of a route whose JSON body is ``model`` (its schema is added by :func:`install_openapi`)."""
    body = {"required": True, "content": {"application/json": {"schema": {"$ref": SCHEMAS + model.__name__}}}}
    return {"requestBody": {**body, **({"description": description} if description else {})}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` of a route: each status with its meaning, and any other as well, all as an ErrorResponse
    (always JSON, whatever the route's own media type)."""
    content = {"application/json": {"schema": {"$ref": SCHEMAS + ErrorResponse.__name__}}}
    responses: dict[int | str, dict[str, Any]] = {
        status: {"content": content, "description": STATUS_TEXT[status],
                 **({"headers": RETRY_AFTER} if status in (429, 503) else {})} for status in statuses}
    responses["default"] = {"content": content, "description": "Any other error (e.g. an upstream's own 4xx)"}
    return responses


def install_openapi(app: FastAPI, models: Sequence[type[BaseModel]], *, max_items: int, keys: bool) -> None:
    """Make ``app.openapi()`` add the request ``models`` (lists limited to ``max_items``) and, when API keys are
    configured (``keys``), the bearer and ``api-key`` schemes on every route that can answer 401."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            every = [*models, ErrorResponse]
            _, definitions = models_json_schema([(m, "validation") for m in every], ref_template=SCHEMAS + "{model}")
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(definitions.get("$defs", {}))
            _limit_lists(schemas, max_items)
            if keys:
                _require_keys(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document


def _limit_lists(schemas: dict[str, Any], max_items: int) -> None:
    """The proxy's limit on messages / inputs / texts (413 past it)."""
    for model, field in (("ChatRequest", "messages"), ("ModerationRequest", "input"), ("CheckRequest", "text")):
        schema = schemas.get(model, {}).get("properties", {}).get(field)
        if schema is None:
            continue
        for option in [schema, *schema.get("anyOf", [])]:
            if option.get("type") == "array":
                option["maxItems"] = max_items


def _require_keys(document: dict[str, Any]) -> None:
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
        "api-key": {"type": "apiKey", "in": "header", "name": "api-key", "description": "Azure OpenAI's header"},
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{"bearer": []}, {"api-key": []}]
