"""Operators over highway's ops functions: deploy (validate, render, apply, record, roll back), reconcile,
and app control. Each reads its inputs from its arguments or, when left None, from the run's params, and
leaves all work to ``highway.ops``; errors reach the task log as one line and fail the task.
"""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk import BaseOperator

ACTIONS = ("status", "stop", "start", "restart")


def _param(op: Any, context: Any, name: str) -> Any:
    value = getattr(op, name)
    return context["params"].get(name) if value is None else value


def _fail(message: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(message)


class _AppOperator(BaseOperator):
    """An operator about one app on one runtime (``runtime``: a kind, or empty for ``highway_runtime``)."""

    ui_color = "#d6eaf8"

    def __init__(self, *, app: str | None = None, runtime: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.runtime = runtime

    def execute(self, context: Any) -> Any:
        from highway.errors import HighwayError

        try:
            return self.run(context, str(_param(self, context, "app")))
        except HighwayError as exc:
            self.log.error("%s", exc)
            _fail(str(exc))

    def run(self, context: Any, app: str) -> Any:
        raise NotImplementedError

    def runtime_hook(self, context: Any) -> Any:
        from highway_airflow.hooks.highway import RuntimeHook

        return RuntimeHook(kind=_param(self, context, "runtime") or None)

    def release(self, context: Any, app: str) -> Any:
        from highway.ops.deploy import release

        return release(
            app, context["params"].get("image") or None, context["params"].get("overrides") or None
        )

    def records(self) -> Any:
        from highway_airflow.hooks.highway import HighwayHook

        return HighwayHook().records()


class ValidateOperator(_AppOperator):
    """Check the app, its overrides and image against the catalog's rules, and that the runtime answers."""

    def run(self, context: Any, app: str) -> Any:
        rel = self.release(context, app)
        runtime = self.runtime_hook(context)
        status = runtime.runtime().status(app)
        self.log.info(
            "valid: %s spec %s on runtime %s; now %s",
            app,
            rel.digest,
            runtime.settings()["kind"],
            status.line(),
        )
        return {"app": app, "digest": rel.digest, "image": rel.image, "state": status.state}


class RenderOperator(_AppOperator):
    """Log exactly what apply will hand to the runtime: the Kubernetes objects or the local catalog entry."""

    def run(self, context: Any, app: str) -> Any:
        import yaml

        rel = self.release(context, app)
        settings = self.runtime_hook(context).settings()
        if settings["kind"] == "kubernetes":
            from highway.core.k8s.apps import app_objects
            from highway.core.k8s.common import NAMESPACE

            objects = app_objects(rel.spec, rel.text, rel.image, str(settings.get("namespace") or NAMESPACE))
            self.log.info("objects to apply:\n%s", yaml.safe_dump_all(objects, sort_keys=False))
            return [f"{o['kind']}/{o['metadata']['name']}" for o in objects]
        self.log.info("catalog entry the local supervisor will run (spec %s):\n%s", rel.digest, rel.text)
        return [f"local supervisor: highway run {app} (spec {rel.digest})"]


class ApplyOperator(_AppOperator):
    """Record the release as current and apply it; an operator's deploy also clears a 'failed' mark."""

    def run(self, context: Any, app: str) -> Any:
        from highway.ops.deploy import apply
        from highway.ops.reconcile import clear_failed

        rel = self.release(context, app)
        records = self.records()
        status = apply(self.runtime_hook(context).runtime(), records, rel, time.time())
        deployed_at = time.time()
        clear_failed(records, rel.spec, f"deploy {rel.digest}")
        self.log.info("applied %s spec %s: %s", app, rel.digest, status.line())
        return {
            "app": app,
            "digest": rel.digest,
            "deployed_at": deployed_at,
            "status_prefix": rel.spec.status_prefix,
            "state": status.state,
        }


class RecordGoodOperator(_AppOperator):
    """The new spec made progress: remember it as the one to roll back to."""

    def run(self, context: Any, app: str) -> Any:
        from highway import catalog
        from highway.ops.deploy import mark_good

        good = mark_good(self.records(), catalog.get(app))
        self.log.info("%s: spec %s made progress; it is now the spec to roll back to", app, good["digest"])
        return good["digest"]


class RollbackOperator(_AppOperator):
    """Runs when the wait for progress failed: back to the last spec that made progress, then fail the run
    with the reason. Skips when nothing of this release was applied (validation failed first)."""

    def __init__(self, *, validate_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_task_id = validate_task_id

    def run(self, context: Any, app: str) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        from highway import catalog
        from highway.ops.deploy import rollback
        from highway.ops.observe import DEPLOYMENTS

        validated = context["ti"].xcom_pull(task_ids=self.validate_task_id)
        records = self.records()
        current = (records.read(catalog.get(app), DEPLOYMENTS) or {}).get("current") or {}
        if not validated or current.get("digest") != validated.get("digest"):
            raise AirflowSkipException(f"{app}: nothing of this release was applied; nothing to roll back")
        runtime = self.runtime_hook(context).runtime()
        status = runtime.status(app)
        last_log = next((ln for ln in reversed(runtime.logs(app, 40).splitlines()) if ln.strip()), "")
        timeout = context["params"].get("progress_timeout_seconds")
        why = f"spec {validated['digest']} made no progress within {timeout} s ({status.line()}"
        why += f"; last log line: {last_log.strip()[:300]})" if last_log else ")"
        message = rollback(runtime, records, app, why)
        self.log.error("%s", message)
        _fail(message)


class AppControlOperator(_AppOperator):
    """stop, start, restart or status of one app, by an operator; start/restart clear a 'failed' mark."""

    def __init__(self, *, action: str | None = None, timeout: float = 300.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.action = action
        self.timeout = timeout

    def run(self, context: Any, app: str) -> Any:
        from highway import catalog
        from highway.errors import ParamError
        from highway.ops.reconcile import clear_failed

        action = str(_param(self, context, "action"))
        if action not in ACTIONS:
            raise ParamError("action", action, ", ".join(ACTIONS))
        spec = catalog.get(app)
        runtime = self.runtime_hook(context).runtime()
        if action == "status":
            status = runtime.status(app)
        elif action == "stop":
            status = runtime.stop(app, self.timeout)
        elif action == "start":
            status = runtime.start(app)
        else:
            status = runtime.restart(app, self.timeout)
        if action in ("start", "restart") and clear_failed(self.records(), spec, f"{action} by an operator"):
            self.log.info("%s: cleared its 'failed' mark; reconcile looks after it again", app)
        self.log.info("%s %s -> %s", action, app, status.line())
        return {"app": app, "action": action, "state": status.state, "line": status.line()}


class ReconcileOperator(BaseOperator):
    """One reconcile cycle over every app in the catalog; the task fails if any app could not be handled."""

    ui_color = "#d5f5e3"

    def __init__(self, *, dry_run: bool | None = None, runtime: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dry_run = dry_run
        self.runtime = runtime

    def execute(self, context: Any) -> Any:
        from highway import catalog
        from highway.errors import HighwayError
        from highway.ops.reconcile import reconcile_all
        from highway_airflow.hooks.highway import HighwayHook, RuntimeHook

        dry_run = bool(_param(self, context, "dry_run"))
        started = time.monotonic()
        try:
            specs = list(catalog.load_all().values())
            runtime = RuntimeHook(kind=_param(self, context, "runtime") or None).runtime()
            outcomes = reconcile_all(runtime, HighwayHook().records(), specs, dry_run)
        except HighwayError as exc:
            self.log.error("%s", exc)
            _fail(str(exc))
        cycle = time.monotonic() - started
        for outcome in outcomes:
            (self.log.error if outcome.error else self.log.info)("%s", outcome.line())
        self.log.info(
            "reconcile cycle: %d apps in %.1f s%s", len(outcomes), cycle, " (dry run)" if dry_run else ""
        )
        errors = [o for o in outcomes if o.error]
        if errors:
            _fail("; ".join(f"{o.app}: {o.error}" for o in errors))
        return {
            "cycle_seconds": round(cycle, 3),
            "dry_run": dry_run,
            "apps": {
                o.app: {
                    "state": o.state,
                    "action": o.decision.action if o.decision else "error",
                    "acted": o.acted,
                    "reason": o.decision.reason if o.decision else o.error,
                }
                for o in outcomes
            },
        }
