"""The PostgreSQL warehouse's shape: versioned migration files and the tables they create.

Migrations live next to this module as ``migrations/NNNN_name.sql``, numbered 1, 2, 3... without gaps;
``highway.adapters.postgres.migrate`` applies the pending ones, each in its own transaction. A file,
once released, is never edited: change the schema with a new file.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from highway.core.events import EVENT_FIELDS
from highway.core.warehouse import Migration, parse_migration_filename

SCHEMA = "warehouse"
MIGRATIONS_TABLE = "warehouse.schema_migrations"
LEDGER_TABLE = "warehouse.batch_ledger"
WATERMARKS_TABLE = "warehouse.app_watermarks"
WINDOWS_TABLE = "warehouse.product_hourly"  # the shape of a gold app's window table
LATE_EVENTS_TABLE = "warehouse.late_events"  # the shape of a gold app's late-events table
LATE_EVENTS_COLUMNS = (
    "app",
    "event_id",
    "event_type",
    "event_time",
    "group_key",
    "amount",
    "watermark",
    "batch_id",
)
WINDOW_MEASURES = ("orders", "units", "revenue")  # after window_start, window_end and the group column
WINDOW_SUMS = ("orders", "units", "revenue")

SHOP_EVENTS_TABLE = "warehouse.shop_events"
SHOP_EVENTS_KEY = ("event_id",)
# the columns a sink writes, in COPY order (``loaded_at`` is the database's own)
SHOP_EVENTS_COLUMNS = (*EVENT_FIELDS, "kafka_partition", "kafka_offset")


def _migrations_dir() -> Traversable:
    return resources.files(__name__) / "migrations"


def available_migrations() -> list[Migration]:
    """``(version, name)`` of every migration file shipped with highway, in version order."""
    files = [p.name for p in _migrations_dir().iterdir() if p.name.endswith(".sql")]
    return sorted(parse_migration_filename(name) for name in files)


def migration_sql(migration: Migration) -> str:
    """The SQL text of one migration file."""
    version, name = migration
    return (_migrations_dir() / f"{version:04d}_{name}.sql").read_text(encoding="utf-8")
