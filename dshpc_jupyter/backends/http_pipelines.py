"""The HTTP client's pipeline operations (docs/design.md section 10.3): ``POST /pipelines``,
``GET /pipelines/{id}`` and ``POST /pipelines/{id}/cancel``, over the backend's ``_call``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..domain.pipeline_models import PipelineDetail
from .http_call import HttpCaller


class HttpPipelines(HttpCaller):
    """The pipeline operations of :class:`.http.HttpBackend`."""

    async def submit_pipeline(self, steps: Mapping[str, Any]) -> PipelineDetail:
        """Not retried once sent: a second try would record a second pipeline."""
        body = {"steps": dict(steps)}
        detail: PipelineDetail = await self._call("POST", "/pipelines", PipelineDetail, body=body, idempotent=False)
        return detail

    async def pipeline(self, pipeline_id: str) -> PipelineDetail:
        detail: PipelineDetail = await self._call("GET", f"/pipelines/{quote(pipeline_id, safe='')}", PipelineDetail)
        return detail

    async def cancel_pipeline(self, pipeline_id: str) -> PipelineDetail:
        path = f"/pipelines/{quote(pipeline_id, safe='')}/cancel"
        detail: PipelineDetail = await self._call("POST", path, PipelineDetail)
        return detail
