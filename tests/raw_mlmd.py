"""Raw ml-metadata on a store this package opened: what tests use to check what is
stored, exactly as any other MLMD client reads it (the package itself never hands
out its MLMD object)."""

from __future__ import annotations

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from mlmd_exercise.store.address import Location, parse_location


def config(location) -> pb.ConnectionConfig:
    loc = location if isinstance(location, Location) else parse_location(str(location))
    c = pb.ConnectionConfig()
    if loc.is_sqlite:
        c.sqlite.filename_uri = str(loc.path)
        c.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE
    else:
        pg = c.postgresql
        pg.host, pg.port, pg.dbname = loc.host, str(loc.port), loc.dbname
        pg.user, pg.password = loc.user or "postgres", loc.password
        pg.skip_db_creation = True
    return c


def raw_mlmd(store) -> metadata_store.MetadataStore:
    """ml-metadata's own MetadataStore on the same store (an open Store, or an address)."""
    location = getattr(store, "location", store)
    return metadata_store.MetadataStore(config(location))
