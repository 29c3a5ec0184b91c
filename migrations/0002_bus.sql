-- 0002_bus.sql - the durable job queues of the event backbone (src/bus/queue_sql.c),
-- one text for SQLite and PostgreSQL.
--
-- These are infrastructure tables, not tenant business data: a job carries an event
-- envelope whose tenantId is inside `data`, and queues are shared by every tenant. So
-- they carry no tenant_id and their indexes serve the queue engine's own lookups
-- (tests/unit/test_db_schema.c lists them as exempt).
--
-- A job's state column holds only what a job *is* doing: waiting, active, completed,
-- failed. BullMQ's "delayed" (waiting with run_at > now) and "prioritized" (waiting with
-- priority > 0) are derived at read time, so no job ever has to be moved when its delay
-- runs out. Times are BIGINT epoch milliseconds; JSON is TEXT.

CREATE TABLE bus_jobs (
    queue             TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    data              TEXT    NOT NULL,
    state             TEXT    NOT NULL DEFAULT 'waiting'
        CHECK (state IN ('waiting', 'active', 'completed', 'failed')),
    -- 0 = none (runs before every prioritized job, as BullMQ's wait list), 1 = highest.
    priority          INTEGER NOT NULL DEFAULT 0 CHECK (priority >= 0 AND priority <= 2097151),
    -- UUID v7 text: ties between jobs due at the same millisecond run in order of adding.
    order_key         TEXT    NOT NULL,
    run_at            BIGINT  NOT NULL,
    attempts_made     INTEGER NOT NULL DEFAULT 0 CHECK (attempts_made >= 0),
    attempts_started  INTEGER NOT NULL DEFAULT 0 CHECK (attempts_started >= 0),
    max_attempts      INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    backoff_type      TEXT    NOT NULL DEFAULT 'exponential'
        CHECK (backoff_type IN ('exponential', 'fixed')),
    backoff_delay     BIGINT  NOT NULL DEFAULT 1000 CHECK (backoff_delay >= 0),
    stalled_count     INTEGER NOT NULL DEFAULT 0,
    created_at        BIGINT  NOT NULL,
    processed_at      BIGINT,
    finished_at       BIGINT,
    failed_reason     TEXT,
    errors            TEXT    NOT NULL DEFAULT '[]',
    return_value      TEXT,
    lock_token        TEXT,
    lock_until        BIGINT,
    PRIMARY KEY (queue, id)
);
-- Claim: the due waiting jobs of one queue, unprioritized first, in (run_at, order_key) order.
CREATE INDEX bus_jobs_claim_idx ON bus_jobs (queue, state, priority, run_at, order_key);
-- Stalled scan: active jobs whose lease ended, across queues.
CREATE INDEX bus_jobs_lease_idx ON bus_jobs (state, lock_until);
-- Retention and listing of finished jobs, newest first.
CREATE INDEX bus_jobs_finished_idx ON bus_jobs (queue, state, finished_at);

-- Settings of a queue; a queue without a row has the defaults (0 = default) and runs.
CREATE TABLE bus_queues (
    name            TEXT    NOT NULL PRIMARY KEY,
    paused          BOOLEAN NOT NULL DEFAULT FALSE,
    keep_completed  INTEGER NOT NULL DEFAULT 0 CHECK (keep_completed >= 0),
    keep_failed     INTEGER NOT NULL DEFAULT 0 CHECK (keep_failed >= 0),
    max_stalled     INTEGER NOT NULL DEFAULT 0 CHECK (max_stalled >= 0)
);

-- Repeatable jobs: every_ms > 0 or a 5-field cron expression (UTC). Each tick enqueues
-- the job "<repeat_id>:<tick ms>" into `queue`, so instances racing on a tick add one job.
CREATE TABLE bus_repeatables (
    queue        TEXT   NOT NULL,
    repeat_id    TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    data         TEXT   NOT NULL,
    every_ms     BIGINT NOT NULL DEFAULT 0 CHECK (every_ms >= 0),
    cron         TEXT,
    next_run_at  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (queue, repeat_id),
    CHECK ((every_ms > 0 AND cron IS NULL) OR (every_ms = 0 AND cron IS NOT NULL))
);
CREATE INDEX bus_repeatables_due_idx ON bus_repeatables (next_run_at);

-- Idempotent consumers: the eventIds a consumer has handled, written in the handler's
-- transaction, so a redelivered event is acknowledged without effect.
CREATE TABLE bus_inbox (
    consumer    TEXT   NOT NULL,
    event_id    TEXT   NOT NULL,
    handled_at  BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
-- Pruning old entries.
CREATE INDEX bus_inbox_handled_idx ON bus_inbox (handled_at);
