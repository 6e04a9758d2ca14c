"""Schedulers: the protocol (``base``) and one short module per backend that runs jobs (local, Slurm).

This file imports nothing, so ``python -m dshpc_jupyter.schedulers.runner`` on a compute node loads only the
standard library.
"""
