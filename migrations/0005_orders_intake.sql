-- 0005_orders_intake.sql - Shopify order intake: shop connections, webhook deliveries,
-- line items that need a product mapping, and the Shopify revision of each order.

-- One row per connected Shopify shop. The shop domain is the key: a webhook names only its
-- shop, so the tenant is found through it before any tenant is known. Secrets are sealed
-- (crypto_seal under ENCRYPTION_KEY), never stored in clear.
CREATE TABLE shop_connections (
    shop_domain          TEXT   NOT NULL PRIMARY KEY,
    tenant_id            TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider             TEXT   NOT NULL DEFAULT 'shopify' CHECK (provider IN ('shopify')),
    api_secret_sealed    TEXT   NOT NULL,
    access_token_sealed  TEXT,
    api_version          TEXT,
    api_url              TEXT,
    status               TEXT   NOT NULL DEFAULT 'CONNECTED'
        CHECK (status IN ('CONNECTED', 'DISCONNECTED')),
    disconnected_at      BIGINT,
    last_reconciled_at   BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX shop_connections_tenant_idx ON shop_connections (tenant_id, provider);

-- Every accepted webhook delivery, deduplicated by the provider's delivery id (Shopify:
-- X-Shopify-Event-Id, else X-Shopify-Webhook-Id) within its topic: one merchant action can
-- fan out to several topics under one event id, and each of those must be handled. The
-- work is done from the queue, which finds the body here.
CREATE TABLE webhook_deliveries (
    id             TEXT   NOT NULL PRIMARY KEY,
    tenant_id      TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider       TEXT   NOT NULL,
    delivery_id    TEXT   NOT NULL,
    topic          TEXT   NOT NULL,
    shop_domain    TEXT   NOT NULL,
    received_at    BIGINT NOT NULL,
    body           TEXT   NOT NULL,
    status         TEXT   NOT NULL DEFAULT 'RECEIVED'
        CHECK (status IN ('RECEIVED', 'PROCESSED', 'IGNORED')),
    processed_at   BIGINT,
    UNIQUE (tenant_id, provider, topic, delivery_id)
);
CREATE INDEX webhook_deliveries_tenant_received_idx ON webhook_deliveries (tenant_id, received_at);

-- A line item without a SKU, or whose SKU has no product mapping, cannot be printed until
-- an operator maps it.
ALTER TABLE line_items ADD COLUMN needs_mapping BOOLEAN NOT NULL DEFAULT FALSE;

-- Shopify's updated_at of the revision stored, so an older delivery never overwrites a
-- newer one.
ALTER TABLE orders ADD COLUMN shopify_updated_at BIGINT;
