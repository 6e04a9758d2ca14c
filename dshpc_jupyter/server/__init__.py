"""The HTTP server: the seed-compatible API over any ``Backend`` (``app``), how it is run (``run``)."""

from .app import create_app
from .run import run_server, serve

__all__ = ["create_app", "run_server", "serve"]
