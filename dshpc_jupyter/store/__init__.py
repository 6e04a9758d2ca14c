"""The store: the SQLite file holding files, method versions, jobs and batches (the only code speaking SQL)."""
