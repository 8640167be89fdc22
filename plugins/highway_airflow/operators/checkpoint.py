"""The checkpoint doctor from Airflow: inspect, back up, restore or recover one app's checkpoint.

restore and recover stop the app when it runs, act under its checkpoint lease, and start it again; every
step (the findings, the plan, the backup, the audit entry) goes to the task log.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from highway_airflow.operators.apps import _AppOperator, _fail, _param

CHECKPOINT_ACTIONS = ("inspect", "backup", "restore", "recover")


class CheckpointOperator(_AppOperator):
    """One checkpoint action on one app; params ``action``, ``mode``, ``backup``, ``reason``, ``dry_run``."""

    ui_color = "#fdebd0"

    def __init__(self, *, action: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.action = action

    def run(self, context: Any, app: str) -> Any:
        from highway import catalog
        from highway.errors import ParamError
        from highway.ops import checkpoints
        from highway_airflow.hooks.highway import HighwayHook

        action = str(_param(self, context, "action"))
        if action not in CHECKPOINT_ACTIONS:
            raise ParamError("action", action, ", ".join(CHECKPOINT_ACTIONS))
        spec = catalog.get(app)
        conn = HighwayHook().connection()
        if action == "inspect":
            return self._report(checkpoints.examine(conn, spec).to_dict())
        if action == "backup":
            ident, files = checkpoints.backup(conn, spec)
            self.log.info("%s: backup %s (%d files)", app, ident, files)
            return {"app": app, "backup": ident, "files": files}
        return self._while_stopped(context, spec, conn, action)

    def _report(self, report: dict[str, Any]) -> dict[str, Any]:
        sinks = report["sinks"] or {}
        self.log.info(
            "%s: checkpoint %s: lineage %s, last committed batch %s, in flight %s; sinks at batch %s (%s)",
            report["app"], report["checkpoint"], report["lineage"], report["last_committed_batch"],
            report["batch_in_flight"], sinks.get("batch_id"), sinks.get("lineage"),
        )  # fmt: skip
        for finding in report["findings"]:
            self.log.info("  %s %s: %s", finding["severity"], finding["code"], finding["message"])
        self.log.info("%s: %s", report["app"], "may start" if report["ok"] else "a finding blocks its start")
        return report

    def _while_stopped(self, context: Any, spec: Any, conn: Any, action: str) -> dict[str, Any]:
        from highway.core.recovery import MODES
        from highway.errors import ParamError
        from highway.ops import checkpoints

        params = context["params"]
        hook = self.runtime_hook(context)
        settings = hook.settings()
        home = settings.get("home") if settings.get("kind") == "local" else None
        given = params.get("reason")
        reason = str(given or "").strip()
        if action == "restore":
            ident = str(params.get("backup") or "")

            def act() -> Any:
                return checkpoints.restore(conn, spec, ident)
        else:
            mode, dry_run = str(params.get("mode") or ""), bool(params.get("dry_run"))
            if mode not in MODES:
                raise ParamError("mode", mode, ", ".join(MODES))
            if not reason:
                raise ParamError("reason", given, "a non-empty text saying why (it goes to the audit entry)")
            to = str(params.get("target") or "").strip() or None
            checkpoints.check_reset_target(mode, to, "target")
            who = f"airflow {context['dag'].dag_id} run {context['run_id']}"

            def act() -> Any:
                return checkpoints.recover(conn, spec, mode, reason, dry_run=dry_run, who=who, to=to)

        from pathlib import Path

        result, after = checkpoints.while_stopped(hook.runtime(), spec, Path(home) if home else None, act)
        if after is not None:
            from highway.ops.reconcile import clear_failed

            if clear_failed(self.records(), spec, f"checkpoint {action} by an operator"):
                self.log.info("%s: cleared its 'failed' mark; reconcile looks after it again", spec.name)
        return self._done(spec.name, action, result, after)

    def _done(self, app: str, action: str, result: Any, after: Any) -> dict[str, Any]:
        from highway.errors import TerminalError

        restarted = after.line() if after is not None else "not running before: left stopped"
        if action == "restore":
            self.log.info("%s: restored (%d files); %s", app, result, restarted)
            return {"app": app, "files": result, "after": restarted}
        for line in result.plan.lines():
            self.log.info("%s", line)
        if result.plan.refused:
            raise TerminalError(result.plan.lines()[0])
        findings = [f.to_dict() for f in result.after.findings] if result.after is not None else []
        for finding in findings:
            self.log.info("  after: %s %s: %s", finding["severity"], finding["code"], finding["message"])
        self.log.info("%s: %s; backup %s; %s", app, result.plan.mode, result.backup_id, restarted)
        return {"app": app, "mode": result.plan.mode, "backup": result.backup_id, "findings": findings,
                "after": restarted}  # fmt: skip


class CheckpointBackupsOperator(BaseOperator):
    """A backup of every catalog app's checkpoint (running or not: Spark writes each checkpoint file once,
    commits after offsets, so a copy listed at one time is a consistent, possibly older, checkpoint); each
    app keeps its catalog's ``recovery.keep_backups``. One app's failure is logged; the task then fails."""

    ui_color = "#fdebd0"

    def execute(self, context: Any) -> Any:
        from highway import catalog
        from highway.errors import HighwayError
        from highway.ops import checkpoints
        from highway_airflow.hooks.highway import HighwayHook

        conn = HighwayHook().connection()
        done: dict[str, Any] = {}
        failed: list[str] = []
        for name, spec in sorted(catalog.load_all().items()):
            try:
                if not checkpoints.examine(conn, spec, kafka=False).view.exists:
                    self.log.info("%s: no checkpoint yet", name)
                    done[name] = None
                    continue
                ident, files = checkpoints.backup(conn, spec)
            except HighwayError as exc:
                self.log.error("%s: %s", name, exc)
                failed.append(f"{name}: {exc}")
                continue
            self.log.info("%s: backup %s (%d files)", name, ident, files)
            done[name] = {"backup": ident, "files": files}
        if failed:
            _fail("; ".join(failed))
        return done
