-- The event log names the line item an entry is about and the correlation id of the
-- request or event that caused it, so one customer order can be traced end to end.
ALTER TABLE event_log ADD COLUMN line_item_id TEXT;
ALTER TABLE event_log ADD COLUMN correlation_id TEXT;
CREATE INDEX event_log_tenant_type_idx ON event_log (tenant_id, event_type, created_at);
