-- 0015_bus_dead_letter_alerts.sql - the bus jobs operators have been alerted of
-- (services/common/deadletter.c).
--
-- One row per job and failure: a job retried and failed again has a new finished_at and
-- is alerted again. Written in the alert's transaction, so instances scanning at once
-- alert each failure once. Rows older than a week are deleted by the scan.
CREATE TABLE bus_dead_letter_alerts (
    queue        TEXT   NOT NULL,
    job_id       TEXT   NOT NULL,
    finished_at  BIGINT NOT NULL,
    alerted_at   BIGINT NOT NULL,
    PRIMARY KEY (queue, job_id, finished_at)
);
CREATE INDEX bus_dead_letter_alerts_age_idx ON bus_dead_letter_alerts (alerted_at);
