-- 0010_fulfillment.sql - Shopify fulfilment and order cancellation in the orders service.
--   order_fulfillments      one row per order that was asked to be fulfilled: the claim that
--                           makes sure Shopify is called for it at most once at a time and
--                           never again once done, plus the tracking to send and the outcome
--   order_cancellations     the result of an order's cancellation, answered again verbatim
--                           when the cancellation is repeated
--   tenant_integrations     the orders service's view of the integrations a tenant has
--                           connected, fed by the integration.*-changed events
--   orders.fulfilled_at / orders.shipment_delivered_at

-- state: PENDING (asked, not tried or not fulfillable yet), CLAIMED (a worker is calling
-- Shopify; claim_token names it, claimed_at lets a crashed worker's claim expire), RETRY
-- (a transient failure; a retry job is scheduled), DONE, FAILED (permanent failure or
-- retries exhausted; only an operator's request tries again).
CREATE TABLE order_fulfillments (
    tenant_id               TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    order_id                TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    state                   TEXT    NOT NULL DEFAULT 'PENDING'
        CHECK (state IN ('PENDING', 'CLAIMED', 'RETRY', 'DONE', 'FAILED')),
    claim_token             TEXT,
    claimed_at              BIGINT,
    attempts                INTEGER NOT NULL DEFAULT 0,
    tracking_number         TEXT,
    tracking_url            TEXT,
    tracking_company        TEXT,
    shipment_id             TEXT,
    shopify_fulfillment_id  TEXT,
    last_error              TEXT,
    forced_by               TEXT,
    created_at              BIGINT  NOT NULL,
    updated_at              BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX order_fulfillments_tenant_state_idx ON order_fulfillments (tenant_id, state);

CREATE TABLE order_cancellations (
    tenant_id     TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    order_id      TEXT   NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    source        TEXT   NOT NULL,
    result        TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
);

CREATE TABLE tenant_integrations (
    tenant_id     TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider      TEXT   NOT NULL CHECK (provider IN ('sendcloud', 'simplyprint')),
    status        TEXT   NOT NULL CHECK (status IN ('CONNECTED', 'DISCONNECTED')),
    changed_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider)
);

ALTER TABLE orders ADD COLUMN fulfilled_at BIGINT;
ALTER TABLE orders ADD COLUMN shipment_delivered_at BIGINT;
