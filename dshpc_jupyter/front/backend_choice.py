"""Choosing and building the backend: ``connect_async()`` gives the async ``Backend`` for a URL (the HTTP
client) or a home directory (the embedded engine), with the keyword options checked against the typed options
of the backend chosen, so a misspelt option, or one of another backend (``slots=`` with a URL), is refused by
name rather than ignored or failing as a ``TypeError`` further down.
"""

from __future__ import annotations

import os
from typing import Any

from ..backends.base import URL_ENV, Backend
from ..backends.embedded import EmbeddedBackend
from ..domain.errors import InvalidInputError
from ..service.factory import build_engine, option_names, options_from, scheduler_option_names, scheduler_options
from .progress_bars import progress_bar


def connect_async(
    url: str | None = None,
    *,
    api_key: str | None = None,
    token: str | None = None,
    home: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    **options: Any,
) -> Backend:
    """The async ``Backend``: a remote service at ``url`` (or ``$DSHPC_URL``), else the embedded engine
    with its store under ``home`` (or ``$DSHPC_HOME``) and jobs on ``scheduler`` ("local", the default, or
    "slurm"). A server has its own home and scheduler: ``home`` or ``scheduler`` with a URL is refused.
    ``token`` is a server user's token (``dshpc-jupyter users add``); ``api_key`` the server's single key: the
    same header carries either, so give one.

    ``options`` are those of the backend chosen: the HTTP client's (:class:`~..backends.http.HttpOptions`:
    ``timeout``, ``retries``, ``max_configs``) or the scheduler's (:class:`~..schedulers.local.LocalOptions`:
    ``slots``, ``idle_timeout``; :class:`~..schedulers.slurm.SlurmOptions`: ``partition``, ``account``,
    ``sbatch_args``, ``workdir``, ``pack``, ...). Any other is an ``InvalidInputError`` naming it."""
    url = url or os.environ.get(URL_ENV)
    if token is not None:
        if api_key is not None:
            raise InvalidInputError("token: give a user's token or the server's api_key, not both")
        api_key = token
    if url:
        for name, value in (("home", home), ("scheduler", scheduler)):
            if value is not None:
                raise InvalidInputError(
                    f"{name}: does not apply to the HTTP backend at {url} (a server has its own home and scheduler)"
                )
        from ..backends.http import HttpBackend, HttpOptions  # httpx only for those who use it

        typed = options_from(
            HttpOptions, options, backend=f"the HTTP backend at {url}", others=scheduler_option_names()
        )
        return HttpBackend(url, api_key=api_key, options=typed, progress=progress_bar)
    foreign = _http_option_names() if set(options) - scheduler_option_names() else ()
    return EmbeddedBackend(build_engine(home, scheduler_options(scheduler or "local", options, others=foreign)))


def _http_option_names() -> tuple[str, ...]:
    """The HTTP client's options, for naming them in an error (imports httpx, so only when needed)."""
    from ..backends.http import HttpOptions

    return option_names(HttpOptions)
