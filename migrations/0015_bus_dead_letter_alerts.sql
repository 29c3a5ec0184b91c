-- 0015_bus_dead_letter_alerts.sql - the failed bus jobs the dead-letter watch has dealt
-- with (services/common/deadletter.c).
--
-- One row per job and failure: a job retried and failed again has a new finished_at and
-- is dealt with again. Written in the same transaction as the alert, so instances
-- scanning at once deal with each failure once. kind says how:
--   ALERTED  an alert of its own was raised
--   HELD     the tenant's hourly allowance of alerts was used up: waits for a storm alert
--   STORM    counted in a storm alert (alerted_at = when that alert was raised)
--   SKIPPED  no tenant to alert (the job named none, or an unknown one): logged only
-- tenant_id is the tenant named by the job's event, NULL when none. The bus tables are
-- shared by every tenant, and so is this one. Rows older than a week are deleted.
CREATE TABLE bus_dead_letter_alerts (
    queue        TEXT   NOT NULL,
    job_id       TEXT   NOT NULL,
    finished_at  BIGINT NOT NULL,
    tenant_id    TEXT,
    kind         TEXT   NOT NULL CHECK (kind IN ('ALERTED', 'HELD', 'STORM', 'SKIPPED')),
    alerted_at   BIGINT NOT NULL,
    PRIMARY KEY (queue, job_id, finished_at)
);
CREATE INDEX bus_dead_letter_alerts_tenant_idx
    ON bus_dead_letter_alerts (tenant_id, kind, alerted_at);
CREATE INDEX bus_dead_letter_alerts_age_idx ON bus_dead_letter_alerts (alerted_at);
