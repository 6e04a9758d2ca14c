"""The routes of pipelines (docs/design.md section 10): submit one, look at it, cancel it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..backends.base import Backend
from ..domain.pipeline_models import PipelineDetail, PipelineRequest
from .wire import body_doc, parse_body, respond

PIPELINE_REQUEST_MODELS = (PipelineRequest,)


def pipeline_routes(backend: Backend, documented: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["pipelines"], responses=documented)

    @router.post("/pipelines", response_model=PipelineDetail, openapi_extra=body_doc(PipelineRequest))
    async def submit_pipeline(request: Request) -> Response:
        """Check and record a pipeline, release the steps that depend on nothing. A refused pipeline is a 422
        naming the step and the reference, and records nothing."""
        payload = await parse_body(request, PipelineRequest)
        return await respond(PipelineDetail, await backend.submit_pipeline(payload.steps))

    @router.get("/pipelines/{pipeline_id}", response_model=PipelineDetail)
    async def get_pipeline(pipeline_id: str) -> Response:
        """Each step's state now; looking releases the steps whose upstream has completed."""
        return await respond(PipelineDetail, await backend.pipeline(pipeline_id))

    @router.post("/pipelines/{pipeline_id}/cancel", response_model=PipelineDetail)
    async def cancel_pipeline(pipeline_id: str) -> Response:
        """Cancel the waiting steps and the jobs of the released ones."""
        return await respond(PipelineDetail, await backend.cancel_pipeline(pipeline_id))

    return router
