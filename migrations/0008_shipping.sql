-- 0008_shipping.sql - the shipping service: Sendcloud connections per tenant, and what
-- shipments need beyond 0001.

-- One Sendcloud connection per tenant. Keys are sealed (crypto_seal under ENCRYPTION_KEY),
-- never stored in clear; a disconnected connection keeps its settings but no keys.
CREATE TABLE sendcloud_connections (
    tenant_id              TEXT   NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    public_key_sealed      TEXT,
    secret_key_sealed      TEXT,
    webhook_secret_sealed  TEXT,
    api_version            TEXT   NOT NULL DEFAULT 'v3' CHECK (api_version IN ('v3', 'v2')),
    api_url                TEXT,
    sender_address_id      BIGINT,
    shipping_option_code   TEXT,
    shipping_method_id     BIGINT,
    status                 TEXT   NOT NULL DEFAULT 'CONNECTED'
        CHECK (status IN ('CONNECTED', 'DISCONNECTED')),
    connected_at           BIGINT,
    disconnected_at        BIGINT,
    last_reconciled_at     BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);

-- provider_parcel_id: the parcel a webhook names (v3 shipments have their own id).
-- api_version: the API the shipment was made with (reads and cancels use the same).
-- status_at: Sendcloud's timestamp of the status applied last; older webhooks are dropped.
-- attempts: provider calls tried for the pending action (create or cancel).
ALTER TABLE shipments ADD COLUMN provider_parcel_id TEXT;
ALTER TABLE shipments ADD COLUMN api_version TEXT;
ALTER TABLE shipments ADD COLUMN status_at BIGINT;
ALTER TABLE shipments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN cancelled_at BIGINT;
CREATE INDEX shipments_tenant_parcel_idx ON shipments (tenant_id, provider_parcel_id);
CREATE INDEX shipments_tenant_created_idx ON shipments (tenant_id, created_at, id);

-- Weight of one printed part, for parcel weights; NULL = unknown (the default weight is used).
ALTER TABLE assembly_parts ADD COLUMN weight_grams INTEGER
    CHECK (weight_grams IS NULL OR weight_grams >= 0);
