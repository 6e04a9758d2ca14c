"""Backends: the ``Backend`` protocol and its implementations, the embedded engine and the HTTP client."""
