"""The running query's checkpoint lineage, as every sink commit records it.

The lineage is Spark's query id, kept in the checkpoint's ``metadata``: the same for every run on one
checkpoint, new for a new checkpoint. Sinks key their idempotence on (app, lineage, batch id), so the
batch ids of a new checkpoint (from 0 again) are never taken for replays of the old one's.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from highway.connection import Connection
from highway.core.checkpoint import commit_metadata
from highway.errors import TerminalError

BIND_TIMEOUT = 120.0


class Lineage:
    """Bound to the query id once the query has started; batch functions wait for it (the first batch may
    begin before ``start()`` returns)."""

    def __init__(self, conn: Connection, app: str, checkpoint: str) -> None:
        self.conn = conn
        self.app = app
        self.checkpoint = checkpoint
        self._id: str | None = None
        self._bound = threading.Event()
        self._s3: Any = None
        self._last: tuple[int, dict[str, Any]] | None = None  # one read per batch, however many sinks

    def bind(self, query_id: str) -> None:
        self._id = str(query_id)
        self._bound.set()

    @property
    def id(self) -> str:
        if not self._bound.wait(BIND_TIMEOUT) or self._id is None:
            raise TerminalError(f"app {self.app}: the query's id was not bound within {BIND_TIMEOUT:g} s")
        return self._id

    def txn_app_id(self) -> str:
        """Delta's ``txnAppId``: a replay of a batch of this lineage is skipped, another lineage's is not."""
        return f"{self.app}:{self.id}"

    def position(self, batch_id: int) -> dict[str, Any]:
        """Spark's offsets of the batch (its end and start per source), to record with every commit.

        Every batch function asks for it before its first commit: a driver that lost its checkpoint lease
        (``highway.spark.guard.check_lease``) stops there."""
        from highway.adapters import checkpoint, s3
        from highway.spark.guard import check_lease

        check_lease()
        if self._last is not None and self._last[0] == batch_id:
            return self._last[1]
        if self._s3 is None:
            self._s3 = s3.client(self.conn)
        found = checkpoint.batch_position(self._s3, self.conn.lake_bucket, self.checkpoint, batch_id)
        if found is None:
            raise TerminalError(f"app {self.app}: offsets/{batch_id} of {self.checkpoint} is not readable")
        self._last = (batch_id, found)
        return found

    def position_json(self, batch_id: int) -> str:
        return json.dumps(self.position(batch_id), sort_keys=True, separators=(",", ":"))

    def metadata(self, batch_id: int, table: str, **extra: Any) -> str:
        doc = commit_metadata(self.app, self.id, batch_id, table, self.position(batch_id), **extra)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))
