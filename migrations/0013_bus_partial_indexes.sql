-- 0013_bus_partial_indexes.sql - the job indexes of 0002 cover only the state they serve.
--
-- Each index of 0002 held every job and had `state` in its key, so every state change of
-- a job (waiting -> active -> completed) rewrote an entry in all three. Partial indexes hold
-- a job only while it is in the state they are for: a claim moves a job from the claim index
-- to the lease index, a completion from the lease index to the completed index, and no
-- index is touched for a state it does not serve. Queries name the state as a literal so
-- both SQLite and PostgreSQL can use them.
DROP INDEX bus_jobs_claim_idx;
DROP INDEX bus_jobs_lease_idx;
DROP INDEX bus_jobs_finished_idx;
-- Claim: due waiting jobs of one queue, unprioritized first, in (run_at, order_key) order.
CREATE INDEX bus_jobs_waiting_idx ON bus_jobs (queue, priority, run_at, order_key)
    WHERE state = 'waiting';
-- Listing and counting the active jobs of a queue; the stalled scan across queues reads it
-- whole (active jobs are few: concurrency and prefetch of the running instances).
CREATE INDEX bus_jobs_active_idx ON bus_jobs (queue, lock_until) WHERE state = 'active';
-- Retention and listing of finished jobs, newest first.
CREATE INDEX bus_jobs_completed_idx ON bus_jobs (queue, finished_at) WHERE state = 'completed';
CREATE INDEX bus_jobs_failed_idx ON bus_jobs (queue, finished_at) WHERE state = 'failed';
