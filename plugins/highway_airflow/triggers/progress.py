"""ProgressTrigger: waits in the triggerer (no worker slot held) for an app's first heartbeat after a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class ProgressTrigger(BaseTrigger):
    """Fires ``{"status": "progress", "heartbeat": {...}}`` when the app at ``status_prefix`` writes a
    heartbeat (a batch or an idle tick) after ``since``, or ``{"status": "timeout", ...}`` at ``deadline``.
    Only ids and numbers are serialized: the S3 credentials are read from the connections when it runs."""

    def __init__(
        self,
        app: str,
        status_prefix: str,
        since: float,
        deadline: float,
        poll_seconds: float = 5.0,
        digest: str | None = None,
    ):
        super().__init__()
        self.digest = digest  # only a heartbeat of this spec counts (not the old driver's last ones)
        self.app = app
        self.status_prefix = status_prefix
        self.since = since
        self.deadline = deadline
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "highway_airflow.triggers.progress.ProgressTrigger",
            {
                "app": self.app,
                "status_prefix": self.status_prefix,
                "since": self.since,
                "deadline": self.deadline,
                "poll_seconds": self.poll_seconds,
                "digest": self.digest,
            },
        )

    async def _records(self) -> Any:
        from airflow.sdk import BaseHook

        from highway.ops import connections as ids
        from highway.ops.observe import Records
        from highway_airflow.hooks.highway import as_dict

        found = {cid: as_dict(await BaseHook.aget_connection(cid)) for cid in ids.CONNECTION_IDS}
        return await asyncio.to_thread(lambda: Records(ids.from_airflow(found)))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from highway.errors import HighwayError
        from highway.ops.deploy import progress_since

        records = await self._records()
        last_error = ""
        while True:
            try:
                hb = await asyncio.to_thread(
                    progress_since, records, self.status_prefix, self.since, self.digest
                )
            except HighwayError as exc:  # S3 briefly away: keep waiting until the deadline
                hb, last_error = None, str(exc)
            if hb is not None:
                yield TriggerEvent({"status": "progress", "heartbeat": hb, "at": time.time()})
                return
            if time.time() >= self.deadline:
                waited = self.deadline - self.since
                detail = f" (last error: {last_error})" if last_error else ""
                which = f" running spec {self.digest}" if self.digest else ""
                message = f"{self.app} wrote no heartbeat{which} within {waited:.0f} s of its deploy{detail}"
                yield TriggerEvent({"status": "timeout", "message": message})
                return
            await asyncio.sleep(self.poll_seconds)
