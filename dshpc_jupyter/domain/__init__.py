"""The domain: what a file, method, config, job and batch are, their statuses, errors and hashes.

Everything else depends on this layer and it depends on nothing of the package. It stays importable with the
standard library alone where the runner needs it (``status``), so this file imports nothing.
"""
