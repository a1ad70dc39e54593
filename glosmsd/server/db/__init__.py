"""The reference server's store: the only place in the server that speaks SQL.

A package of parts (see `base`): `schema` (migrations), `records` (value objects), `base`
(connection, transactions, settings), `accounts`, `files`, `messages`, and `store`
(`ServerStore`, the whole, with the event log's reads).
"""

from glosmsd.core.wire import MAX_CHUNK, SHA256, clean_file_name
from glosmsd.server.db.base import E164, EXTENSION, normalize_number
from glosmsd.server.db.files import DEFAULT_UPLOAD_MAX_AGE, DEFAULT_UPLOAD_QUOTA
from glosmsd.server.db.records import (
    DEFAULT_CARRIER_REASON,
    CarrierMode,
    FileInfo,
    Outbound,
    Sent,
    SyncBatch,
)
from glosmsd.server.db.schema import SCHEMA, SCHEMA_VERSION
from glosmsd.server.db.store import ServerStore

__all__ = [
    "DEFAULT_CARRIER_REASON",
    "DEFAULT_UPLOAD_MAX_AGE",
    "DEFAULT_UPLOAD_QUOTA",
    "E164",
    "EXTENSION",
    "MAX_CHUNK",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SHA256",
    "CarrierMode",
    "FileInfo",
    "Outbound",
    "Sent",
    "ServerStore",
    "SyncBatch",
    "clean_file_name",
    "normalize_number",
]
