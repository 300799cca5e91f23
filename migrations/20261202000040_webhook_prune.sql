-- Finished webhook deliveries are deleted once older than PORTCULLIS_WEBHOOK_RETENTION_DAYS
-- (the sender's hourly pass); this index finds them without reading the whole log.
CREATE INDEX webhook_deliveries_finished_idx
    ON webhook_deliveries ((coalesce(delivered_at, gave_up_at)))
    WHERE next_attempt_at IS NULL;
