-- 0003: the batch ledger keys a batch by its checkpoint lineage (Spark's query id) too, and records the
-- batch's source offsets (where it began and ended, JSON). A new checkpoint restarts batch ids at 0:
-- under (app, batch_id) alone its batches were taken for replays and skipped; under (app, lineage,
-- batch_id) they are new batches. A checkpoint can be rebuilt from the recorded offsets.
ALTER TABLE warehouse.batch_ledger ADD COLUMN IF NOT EXISTS lineage text NOT NULL DEFAULT '';
ALTER TABLE warehouse.batch_ledger ADD COLUMN IF NOT EXISTS sources text;
ALTER TABLE warehouse.batch_ledger DROP CONSTRAINT IF EXISTS batch_ledger_pkey;
ALTER TABLE warehouse.batch_ledger ADD PRIMARY KEY (app, lineage, batch_id, table_name);
CREATE INDEX IF NOT EXISTS batch_ledger_newest ON warehouse.batch_ledger (app, committed_at DESC);
