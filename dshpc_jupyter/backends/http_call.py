"""What the HTTP client's mixins (:mod:`.http_logs`, :mod:`.http_pipelines`) need of the backend they join: its
decoding ``_call``, declared once here and written in :class:`.http.HttpBackend`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HttpCaller:
    """A part of :class:`.http.HttpBackend` that calls the server through the backend's ``_call``."""

    async def _call(
        self, method: str, path: str, kind: Any, *, body: Any = None, params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:  # fmt: skip
        """A call decoded as ``kind`` (the backend's)."""
        raise NotImplementedError
