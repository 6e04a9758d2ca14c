"""The front: what notebooks and scripts hold: the blocking ``Connection``, ``Batch`` and its views, sweeps."""
