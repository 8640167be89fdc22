"""A failed query is reported as one line: Spark's error and its root cause, never the whole trace."""

from __future__ import annotations

from highway.core.progress import failure_summary

SPARK_TEXT = """[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: [FOREACH_BATCH_ERROR]
An error occurred in the user provided function in foreach batch sink.
Traceback (most recent call last):
  File "x.py", line 1, in call
py4j.protocol.Py4JJavaError: An error occurred while calling o1.save.
\tat org.apache.hadoop.fs.s3a.Invoker.once(Invoker.java:1)
Caused by: org.apache.hadoop.fs.s3a.AWSClientIOException: put on s3a://lake/x: Unable to execute HTTP request
\tat x.y(Z.java:1)
Caused by: java.net.ConnectException: Connection refused
"""


def test_root_cause_and_head_only() -> None:
    line = failure_summary(SPARK_TEXT)
    assert line.startswith("[STREAM_FAILED] Query [id = 1")
    assert line.endswith("(root cause: java.net.ConnectException: Connection refused)")
    assert "\n" not in line
    assert "Traceback" not in line


def test_without_cause_falls_back_to_exception_lines_or_head() -> None:
    assert failure_summary("boom\nValueError: bad thing") == "boom (root cause: ValueError: bad thing)"
    assert failure_summary("just one line") == "just one line"
    assert failure_summary("") == "unknown error"
