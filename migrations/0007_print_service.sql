-- 0007_print_service.sql - the print service's SimplyPrint connection per tenant, and what
-- the status machine needs beyond 0001's print_jobs.
--
-- simplyprint_connections: one row per tenant. The API key and the webhook secret are sealed
-- (crypto_seal under the encryption key), never stored in clear. updated_at changes on every
-- connect/disconnect: a process compares it with the one its cached client was made from, so
-- a change made by another process is seen without a restart.
CREATE TABLE simplyprint_connections (
    tenant_id              TEXT   NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    company_id             TEXT   NOT NULL,
    api_key_sealed         TEXT   NOT NULL,
    api_url                TEXT,
    webhook_secret_sealed  TEXT,
    status                 TEXT   NOT NULL DEFAULT 'CONNECTED'
        CHECK (status IN ('CONNECTED', 'DISCONNECTED')),
    connected_at           BIGINT,
    disconnected_at        BIGINT,
    last_reconciled_at     BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);

-- When SimplyPrint last reported on a job (the report's own time, epoch ms): a report older
-- than the one applied last is stale and ignored (webhooks arrive out of order).
ALTER TABLE print_jobs ADD COLUMN provider_reported_at BIGINT;
-- The queue group the job was submitted to (the mapping's queue_group_id at creation).
ALTER TABLE print_jobs ADD COLUMN queue_group_id TEXT;
-- A submission in progress holds the job until then (epoch ms), so two workers (the
-- order.created handler, the sweep, a requeue) never add one job to the SimplyPrint queue
-- twice.
ALTER TABLE print_jobs ADD COLUMN submit_lease_until BIGINT;
