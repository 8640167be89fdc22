"""``python -m highway.cli``: the ``highway`` command (the local runtime starts drivers this way)."""

from highway.cli import main

main()
