"""FirstProgressSensor: after a deploy, wait (deferred, in the triggerer) for the app's first heartbeat."""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk import BaseSensorOperator

from highway_airflow.triggers.progress import ProgressTrigger


class FirstProgressSensor(BaseSensorOperator):
    """Succeeds with the heartbeat once the app deployed by ``deploy_task_id`` reports progress; fails
    with the reason when ``progress_timeout`` seconds pass first. Always deferred: no worker slot is held."""

    template_fields = ("app", "progress_timeout")

    def __init__(
        self,
        *,
        app: str,
        deploy_task_id: str,
        progress_timeout: Any = 600,
        poll_seconds: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.deploy_task_id = deploy_task_id
        self.progress_timeout = progress_timeout
        self.poll_seconds = poll_seconds

    def execute(self, context: Any) -> Any:
        deployed = context["ti"].xcom_pull(task_ids=self.deploy_task_id)
        since = float(deployed["deployed_at"])
        deadline = since + float(self.progress_timeout)
        self.log.info(
            "waiting up to %.0f s for %s's first heartbeat after %s",
            deadline - time.time(),
            self.app,
            time.strftime("%H:%M:%S", time.gmtime(since)),
        )
        self.defer(
            trigger=ProgressTrigger(
                self.app,
                deployed["status_prefix"],
                since,
                deadline,
                self.poll_seconds,
                digest=deployed.get("digest"),
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        if not event or event.get("status") != "progress":
            raise AirflowFailException((event or {}).get("message", f"{self.app}: no event from the trigger"))
        hb = event["heartbeat"]
        self.log.info("%s made progress: batch %s, state %s", self.app, hb.get("batch_id"), hb.get("state"))
        return {"batch_id": hb.get("batch_id"), "written_at": hb.get("written_at"), "state": hb.get("state")}
