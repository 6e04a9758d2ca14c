"""How the server speaks HTTP: request bodies parsed by pydantic's JSON parser (off the event loop when
large), responses serialized from the engine's models without validating them again, every error as
``{"detail": ...}`` naming the field, and an OpenAPI document that still shows the request models.

FastAPI would parse bodies with the standard library and validate them itself; doing it here means every
malformed body, of any shape or encoding, gets the same clear 422, and big batches cost one fast parse.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from pydantic_core import ErrorDetails

from ..domain.errors import InvalidInputError
from ..domain.models import (
    ErrorResponse,
    FileUploadRequest,
    HashCheckRequest,
    JobConfig,
    JobIdsRequest,
    JobSimulationRequest,
    MethodArchiveRequest,
    MultiJobSimulationRequest,
    adapter,
)
from .guard import API_KEY_HEADER

#: Bodies and responses bigger than this are parsed and serialized in a worker thread, not on the loop.
OFFLOAD_BYTES = 256 << 10
OFFLOAD_ITEMS = 1000
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    JobConfig, JobSimulationRequest, MultiJobSimulationRequest, FileUploadRequest, HashCheckRequest,
    JobIdsRequest, MethodArchiveRequest,
)  # fmt: skip


T = TypeVar("T")
# --- errors ----------------------------------------------------------------------------------------------


def _where(loc: Sequence[int | str]) -> str:
    """``("body", "jobs", 3, "file_hash")`` -> ``jobs[3].file_hash``; query and path parameters say so."""
    parts = list(loc)
    prefix = ""
    if parts and parts[0] in ("query", "path", "header") and len(parts) > 1:
        prefix = f"{parts[0]} parameter "
        parts = parts[1:]
    elif parts and parts[0] == "body":
        parts = parts[1:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"{prefix}{text!r}" if prefix else text


def describe(errors: Sequence[ErrorDetails] | Sequence[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """A one-line detail naming the first problem, and the list of all of them (without the input echoed)."""
    listed = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    if not listed:
        return "request: invalid", listed
    first = listed[0]
    where = _where(first["loc"]) or "request body"
    more = f" (and {len(listed) - 1} more problem{'s' if len(listed) > 2 else ''})" if len(listed) > 1 else ""
    return f"{where}: {first['msg']}{more}", listed


def error_response(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> Response:
    return Response(
        ErrorResponse(detail=detail, errors=errors).model_dump_json(exclude_none=True),
        status_code=status,
        media_type="application/json",
    )


class BodyError(Exception):
    """A request body that does not parse into its model; answered 422 with every problem listed."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(str(error))
        self.detail, self.errors = describe(error.errors(include_input=False, include_context=False))


# --- bodies and responses ---------------------------------------------------------------------------------


async def parse_body(request: Request, kind: type[T]) -> T:
    """The request's JSON body as ``kind``: pydantic's parser reads bytes (any encoding problem is a 422)."""
    body = await request.body()
    codec = adapter(kind)
    try:
        if len(body) > OFFLOAD_BYTES:
            value: T = await anyio.to_thread.run_sync(codec.validate_json, body)
        else:
            value = codec.validate_json(body)
    except ValidationError as exc:
        raise BodyError(exc) from None
    return value


async def respond(kind: Any, value: Any, *, status_code: int = 200, large: bool = False) -> Response:
    """Serialize a model (or list of models) the engine built, without validating it again."""
    codec = adapter(kind)
    content = await anyio.to_thread.run_sync(codec.dump_json, value) if large else codec.dump_json(value)
    return Response(content, status_code=status_code, media_type="application/json")


def decode_base64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except ValueError as exc:
        raise InvalidInputError(f"{field}: not valid base64 ({exc})") from None


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def errors_doc(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse} for code in codes}


# --- the app ---------------------------------------------------------------------------------------------


class DocumentedApp(FastAPI):
    """FastAPI, plus the request models (parsed by hand, so FastAPI does not see them) and the API-key scheme
    in the OpenAPI document."""

    api_key_required = False
    #: Request models of routes added beside the core ones (the chunked uploads), documented the same way.
    extra_request_models: tuple[type[BaseModel], ...] = ()

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema:
            return self.openapi_schema
        schema = get_openapi(title=self.title, version=self.version, description=self.description, routes=self.routes)
        _, definitions = models_json_schema(
            [(model, "validation") for model in (*REQUEST_MODELS, *self.extra_request_models)],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {})
        known = components.setdefault("schemas", {})
        for name, definition in definitions.get("$defs", {}).items():
            known.setdefault(name, definition)
        if self.api_key_required:
            components["securitySchemes"] = {"APIKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}}
            for path, operations in schema.get("paths", {}).items():
                if path != "/health":
                    for operation in operations.values():
                        operation["security"] = [{"APIKey": []}]
        self.openapi_schema = schema
        return schema
