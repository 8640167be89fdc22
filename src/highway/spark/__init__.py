"""Spark side of highway: session, sources, sinks, progress listener, apps."""
