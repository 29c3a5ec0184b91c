-- 0012_order_job_progress.sql - the print jobs of each order as the orders service last
-- saw them (services/orders/orchestration.c).
--
-- The orders service reads print jobs only through the print service's read calls (one job,
-- or the tally of an order), so to give each line item a status it keeps, per job it has
-- heard of, the job's line item and status as stored when the event was handled. A row is
-- replaced only by a reading at least as new (job_updated_at), so an event handled late
-- never puts an older status back. Owned and written by the orders service only.
CREATE TABLE order_job_progress (
    tenant_id       TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    print_job_id    TEXT   NOT NULL,
    order_id        TEXT   NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_item_id    TEXT   NOT NULL REFERENCES line_items (id) ON DELETE CASCADE,
    status          TEXT   NOT NULL
        CHECK (status IN ('PENDING', 'QUEUED', 'ASSIGNED', 'PRINTING', 'COMPLETED', 'FAILED',
                          'CANCELLED')),
    job_updated_at  BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, print_job_id)
);
CREATE INDEX order_job_progress_order_idx ON order_job_progress (tenant_id, order_id);
CREATE INDEX order_job_progress_item_idx ON order_job_progress (tenant_id, line_item_id);
