-- 0002: the gold app's tables: windowed aggregates, the late events, and each app's watermark.
-- A gold batch updates all three in one transaction together with its batch_ledger row.

-- one row per (event-time window, product): counts add up as the window's orders arrive
CREATE TABLE IF NOT EXISTS warehouse.product_hourly (
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    product_id   text NOT NULL,
    orders       bigint NOT NULL,
    units        bigint NOT NULL,
    revenue      double precision NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, product_id)
);

-- events that arrived after their app's watermark had passed their event time: kept, not aggregated
CREATE TABLE IF NOT EXISTS warehouse.late_events (
    app         text NOT NULL,
    event_id    text NOT NULL,
    event_type  text,
    event_time  timestamptz NOT NULL,
    group_key   text,
    amount      double precision,
    watermark   timestamptz NOT NULL,
    batch_id    bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, event_id)
);

-- the event-time watermark of each windowing app: latest event time seen minus the allowed delay
CREATE TABLE IF NOT EXISTS warehouse.app_watermarks (
    app        text PRIMARY KEY,
    watermark  timestamptz NOT NULL,
    batch_id   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
