-- 0001: the warehouse schema, the migration record, the shop events table and the batch ledger.
-- Applied by highway.adapters.postgres.migrate in one transaction together with its schema_migrations row.

CREATE SCHEMA IF NOT EXISTS warehouse;

CREATE TABLE IF NOT EXISTS warehouse.schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- one row per distinct event id; a replayed or re-sent event updates its row
CREATE TABLE IF NOT EXISTS warehouse.shop_events (
    event_id        text PRIMARY KEY,
    event_type      text,
    event_time      timestamptz,
    user_id         text,
    session_id      text,
    product_id      text,
    order_id        text,
    quantity        int,
    price           double precision,
    amount          double precision,
    currency        text,
    payment_method  text,
    page            text,
    kafka_partition int,
    kafka_offset    bigint,
    loaded_at       timestamptz NOT NULL DEFAULT now()
);

-- one row per (app, micro-batch, table) committed together with the batch's rows: a replay finds it
CREATE TABLE IF NOT EXISTS warehouse.batch_ledger (
    app          text NOT NULL,
    batch_id     bigint NOT NULL,
    table_name   text NOT NULL,
    rows         int NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, batch_id, table_name)
);
