"""Is a SQL statement read-only? Decided from Spark's own parsed and analyzed plan, never from its text.

``highway sql`` first refuses what its text shows (``highway.sql_cli.check_read_only``, before Spark
starts); text can hide things (a raw string literal ``r'\\'`` ends where a regex thinks it goes on), so
the statement is then parsed and analyzed by the session that would run it, and its plan walked: every
relation it reads must be one of the registered lake views, no node may be a command (bar SHOW, DESCRIBE
and EXPLAIN, whose targets are checked the same way) and no expression may call Java by reflection.
Analysis runs Spark's rules only; nothing is executed. ``spark.sql.runSQLOnFiles`` is off in that session,
so a path such as ``text.`file:///etc/shadow``` is never even resolved.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_LOGICAL = "org.apache.spark.sql.catalyst.plans.logical."
_EXPRESSIONS = "org.apache.spark.sql.catalyst.expressions."
# leaves that read nothing: a single row, literal rows, a number range, a reference to a CTE of the query
PURE_LEAVES = frozenset({"OneRowRelation", "LocalRelation", "Range", "CTERelationRef", "ResolvedNamespace"})
READ_ONLY_COMMANDS = frozenset({
    "ShowTables", "ShowTablesExtended", "ShowViews", "ShowColumns", "ShowFunctions", "DescribeRelation",
    "DescribeColumn", "DescribeFunction", "DescribeQueryCommand", "ExplainCommand", "ShowTablesCommand",
    "ShowViewsCommand", "ShowColumnsCommand", "DescribeTableCommand", "DescribeColumnCommand",
    "DescribeFunctionCommand", "ShowFunctionsCommand",
})  # fmt: skip


def session_read_only(spark: SparkSession) -> None:
    """What the session of ``highway sql`` must not do whatever the statement: query files by path."""
    spark.conf.set("spark.sql.runSQLOnFiles", "false")


def _seq(scala_seq: Any) -> Iterator[Any]:
    it = scala_seq.iterator()
    while it.hasNext():
        yield it.next()


def _name(node: Any) -> str:
    return str(node.getClass().getSimpleName())


def refusal(spark: SparkSession, query: str, views: set[str]) -> str | None:
    """Why ``query`` is not a read of the ``views`` only, or None. A statement Spark cannot parse or
    resolve raises Spark's own error (the caller reports it as for any query)."""
    jvm = spark._jvm
    assert jvm is not None
    state = spark._jsparkSession.sessionState()
    klass = jvm.java.lang.Class
    kinds = {
        "plan": klass.forName(_LOGICAL + "LogicalPlan"),
        "command": klass.forName(_LOGICAL + "Command"),
        "subquery": klass.forName(_EXPRESSIONS + "SubqueryExpression"),
        "reflection": klass.forName(_EXPRESSIONS + "CallMethodViaReflection"),
    }
    parsed = state.sqlParser().parsePlan(query)
    analyzed = state.analyzer().execute(parsed)
    if not analyzed.resolved():  # an unknown table, column or function: Spark's own error, as for a query
        state.analyzer().checkAnalysis(analyzed)
        return "Spark could not resolve it"
    return _walk(analyzed, state, kinds, views)


def _walk(root: Any, state: Any, kinds: dict[str, Any], views: set[str]) -> str | None:
    stack = [root]
    while stack:
        node = stack.pop()
        step = _plan_step if kinds["plan"].isInstance(node) else _expression_step
        why = step(node, stack, state, kinds, views)
        if why is not None:
            return why
    return None


def _expression_step(
    node: Any, stack: list[Any], state: Any, kinds: dict[str, Any], views: set[str]
) -> str | None:
    if kinds["reflection"].isInstance(node):
        return "it calls Java by reflection (reflect, java_method)"
    if kinds["subquery"].isInstance(node):
        stack.append(node.plan())
    stack.extend(_seq(node.children()))
    return None


def _plan_step(node: Any, stack: list[Any], state: Any, kinds: dict[str, Any], views: set[str]) -> str | None:
    name = _name(node)
    if name == "View" and node.isTempView() and str(node.desc().identifier().table()) in views:
        return None  # a registered lake view: what it reads is known
    if name == "ResolvedTempView":
        known = str(node.identifier().name())
        return None if known in views else f"it names {known}, which is not one of the lake views"
    command = kinds["command"].isInstance(node)
    if command and name not in READ_ONLY_COMMANDS:
        return f"it is a {name}, not a query"
    if name == "ExplainCommand":  # the plan it explains is a field, not a child
        stack.append(state.analyzer().execute(node.logicalPlan()))
    children = list(_seq(node.children()))
    if not children and not command and name not in PURE_LEAVES:
        return f"it reads {_describe(node)}, which is not one of the lake views"
    stack.extend(children)
    stack.extend(_seq(node.expressions()))
    return None


def _describe(leaf: Any) -> str:
    text = str(leaf.simpleString(1)).strip()
    return text if len(text) <= 120 else text[:117] + "..."
