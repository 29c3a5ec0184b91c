-- 0014_order_job_progress_error.sql - a failed job's error message in the orders service's
-- record of print jobs (0012).
--
-- Every line item of an order is given its status again from this record whenever one of
-- the order's jobs is handled, not only the item of that job: a line item's status can
-- change because another item's job was heard of (an item waits as PROCESSING until every
-- job of the order is known). A FAILED item carries the error of its failed job, so the
-- error has to be kept with the job rather than taken from the event being handled.
ALTER TABLE order_job_progress ADD COLUMN error_message TEXT;
