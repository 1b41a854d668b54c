"""The ml-metadata backend: Google's MLMD library behind the package's `Backend` interface.

`backend.py` (MlmdBackend), `protos.py` (protos <-> records), `filters.py` (a Query as MLMD's
filter language), `guard.py` (every call looked at for strings ml-metadata would quote wrongly)
and `connect.py` (an address -> ConnectionConfig -> MlmdBackend) are the only code that imports
`ml_metadata` or touches a proto. Nothing is imported here: ml-metadata takes a third of a
second to import, paid only where a store is opened with it.
"""
