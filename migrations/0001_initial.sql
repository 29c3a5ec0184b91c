-- 0001_initial.sql - the initial f3connect schema, one text for SQLite and PostgreSQL.
--
-- Conventions (see docs and src/db/db.h):
--   ids are UUID text made by the application; no SERIAL/AUTOINCREMENT;
--   times are BIGINT epoch milliseconds in *_at columns;
--   money is BIGINT minor units (*_minor) plus a currency code, never floating point;
--   JSON documents are TEXT;
--   every business row carries tenant_id, and every secondary index starts with it
--   (the few cross-tenant lookups are named in tests/unit/test_db_schema.c);
--   statuses are CHECKed here and declared again in code.
-- Never edit this file once released: add 0002_... instead (applied checksums are verified).

-- Tenants and identity --------------------------------------------------------------------

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    slug        TEXT    NOT NULL UNIQUE,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- A user is global (one login, one e-mail address, stored lower-cased by the application)
-- and reaches tenants through memberships.
CREATE TABLE users (
    id              TEXT    NOT NULL PRIMARY KEY,
    email           TEXT    NOT NULL UNIQUE,
    name            TEXT,
    password_hash   TEXT    NOT NULL,
    is_super_admin  BOOLEAN NOT NULL DEFAULT FALSE,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    last_login_at   BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

-- Roles and their permissions are declared in code; a membership names one role.
CREATE TABLE tenant_memberships (
    tenant_id   TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT   NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
-- Login looks up a user's tenants before any tenant is known.
CREATE INDEX tenant_memberships_user_idx ON tenant_memberships (user_id);

-- A session is found by the hash of its cookie token; the token itself is never stored.
CREATE TABLE sessions (
    id_hash       TEXT   NOT NULL PRIMARY KEY,
    tenant_id     TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    ip            TEXT,
    user_agent    TEXT
);
CREATE INDEX sessions_tenant_user_idx ON sessions (tenant_id, user_id);
-- Revoking every session of a user (password change, disable) spans tenants.
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Catalogue ---------------------------------------------------------------------------------

CREATE TABLE product_mappings (
    id                     TEXT    NOT NULL PRIMARY KEY,
    tenant_id              TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sku                    TEXT    NOT NULL,
    shopify_product_id     TEXT,
    shopify_variant_id     TEXT,
    name                   TEXT    NOT NULL,
    description            TEXT,
    is_assembly            BOOLEAN NOT NULL DEFAULT FALSE,
    default_print_profile  TEXT,
    active                 BOOLEAN NOT NULL DEFAULT TRUE,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL,
    UNIQUE (tenant_id, sku)
);
CREATE INDEX product_mappings_shopify_idx
    ON product_mappings (tenant_id, shopify_product_id, shopify_variant_id);

-- The files printed for one unit of a mapped product (one part unless is_assembly).
CREATE TABLE assembly_parts (
    id                     TEXT    NOT NULL PRIMARY KEY,
    tenant_id              TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    product_mapping_id     TEXT    NOT NULL REFERENCES product_mappings (id) ON DELETE CASCADE,
    part_number            INTEGER NOT NULL DEFAULT 1 CHECK (part_number >= 1),
    part_name              TEXT    NOT NULL,
    simplyprint_file_id    TEXT    NOT NULL,
    simplyprint_file_name  TEXT,
    quantity_per_unit      INTEGER NOT NULL DEFAULT 1 CHECK (quantity_per_unit >= 1),
    print_profile          TEXT,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL,
    UNIQUE (tenant_id, product_mapping_id, part_number)
);

-- Orders ------------------------------------------------------------------------------------

CREATE TABLE orders (
    id                      TEXT   NOT NULL PRIMARY KEY,
    tenant_id               TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    shopify_order_id        TEXT   NOT NULL,
    shopify_order_number    TEXT   NOT NULL,
    status                  TEXT   NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'PROCESSING', 'PARTIALLY_COMPLETED', 'COMPLETED',
                          'FAILED', 'CANCELLED')),
    customer_name           TEXT   NOT NULL,
    customer_email          TEXT,
    shipping_address        TEXT   NOT NULL DEFAULT '{}',
    total_minor             BIGINT NOT NULL DEFAULT 0,
    currency                TEXT   NOT NULL DEFAULT 'EUR',
    financial_status        TEXT,
    shopify_fulfillment_id  TEXT,
    tracking_number         TEXT,
    tracking_url            TEXT,
    shipment_status         TEXT,
    -- Set when a cancellation found jobs already printing: an operator must decide.
    review_reason           TEXT,
    cancel_requested_at     BIGINT,
    cancelled_at            BIGINT,
    completed_at            BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    UNIQUE (tenant_id, shopify_order_id)
);
CREATE INDEX orders_tenant_status_idx ON orders (tenant_id, status, created_at);
CREATE INDEX orders_tenant_created_idx ON orders (tenant_id, created_at);
CREATE INDEX orders_tenant_number_idx ON orders (tenant_id, shopify_order_number);

CREATE TABLE line_items (
    id                    TEXT    NOT NULL PRIMARY KEY,
    tenant_id             TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    order_id              TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    shopify_line_item_id  TEXT    NOT NULL,
    sku                   TEXT,
    product_id            TEXT,
    variant_id            TEXT,
    title                 TEXT    NOT NULL,
    quantity              INTEGER NOT NULL CHECK (quantity >= 1),
    unit_price_minor      BIGINT  NOT NULL DEFAULT 0,
    product_mapping_id    TEXT    REFERENCES product_mappings (id) ON DELETE SET NULL,
    status                TEXT    NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    error_message         TEXT,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    UNIQUE (tenant_id, order_id, shopify_line_item_id)
);
CREATE INDEX line_items_tenant_sku_idx ON line_items (tenant_id, sku);

-- Printing ----------------------------------------------------------------------------------

-- One job per printed copy: (line item, part, unit of the quantity, copy of the part).
-- part_key is the assembly part id, or '' for a job without one: a NULL would make the
-- UNIQUE constraint useless, because NULLs never compare equal.
CREATE TABLE print_jobs (
    id                         TEXT    NOT NULL PRIMARY KEY,
    tenant_id                  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    order_id                   TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_item_id               TEXT    NOT NULL REFERENCES line_items (id) ON DELETE CASCADE,
    assembly_part_id           TEXT    REFERENCES assembly_parts (id) ON DELETE SET NULL,
    part_key                   TEXT    NOT NULL DEFAULT '',
    unit_index                 INTEGER NOT NULL DEFAULT 0 CHECK (unit_index >= 0),
    copy_index                 INTEGER NOT NULL DEFAULT 0 CHECK (copy_index >= 0),
    simplyprint_job_id         TEXT,
    simplyprint_queue_item_id  TEXT,
    status                     TEXT    NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'QUEUED', 'ASSIGNED', 'PRINTING', 'COMPLETED', 'FAILED',
                          'CANCELLED')),
    printer_id                 TEXT,
    printer_name               TEXT,
    file_id                    TEXT,
    file_name                  TEXT,
    started_at                 BIGINT,
    completed_at               BIGINT,
    error_message              TEXT,
    retry_count                INTEGER NOT NULL DEFAULT 0,
    created_at                 BIGINT  NOT NULL,
    updated_at                 BIGINT  NOT NULL,
    UNIQUE (tenant_id, line_item_id, part_key, unit_index, copy_index)
);
CREATE INDEX print_jobs_tenant_order_idx ON print_jobs (tenant_id, order_id);
CREATE INDEX print_jobs_tenant_status_idx ON print_jobs (tenant_id, status);
CREATE UNIQUE INDEX print_jobs_tenant_sp_job_idx ON print_jobs (tenant_id, simplyprint_job_id);
CREATE INDEX print_jobs_tenant_sp_queue_idx ON print_jobs (tenant_id, simplyprint_queue_item_id);

-- Shipping ----------------------------------------------------------------------------------

-- Shipment statuses follow the provider and are mapped in code, so they are not CHECKed.
CREATE TABLE shipments (
    id                    TEXT    NOT NULL PRIMARY KEY,
    tenant_id             TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    order_id              TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    provider              TEXT    NOT NULL DEFAULT 'sendcloud',
    provider_shipment_id  TEXT,
    provider_reference    TEXT,
    status                TEXT    NOT NULL DEFAULT 'PENDING',
    status_message        TEXT,
    carrier               TEXT,
    shipping_method       TEXT,
    tracking_number       TEXT,
    tracking_url          TEXT,
    label_url             TEXT,
    weight_grams          INTEGER CHECK (weight_grams IS NULL OR weight_grams >= 0),
    error_message         TEXT,
    shipped_at            BIGINT,
    delivered_at          BIGINT,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    UNIQUE (tenant_id, order_id)
);
CREATE INDEX shipments_tenant_provider_idx ON shipments (tenant_id, provider_shipment_id);
CREATE INDEX shipments_tenant_status_idx ON shipments (tenant_id, status);

-- Label documents apart from shipments, so listing shipments never reads them. The content
-- is base64 text: one column type that means the same on both databases.
CREATE TABLE shipment_labels (
    shipment_id   TEXT   NOT NULL PRIMARY KEY REFERENCES shipments (id) ON DELETE CASCADE,
    tenant_id     TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    content_type  TEXT   NOT NULL DEFAULT 'application/pdf',
    data_base64   TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Audit trail and retries -------------------------------------------------------------------

-- order_id / print_job_id are plain references, not foreign keys: the trail outlives rows.
CREATE TABLE event_log (
    id            TEXT   NOT NULL PRIMARY KEY,
    tenant_id     TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    order_id      TEXT,
    print_job_id  TEXT,
    user_id       TEXT,
    event_type    TEXT   NOT NULL,
    severity      TEXT   NOT NULL DEFAULT 'INFO' CHECK (severity IN ('INFO', 'WARNING', 'ERROR')),
    message       TEXT   NOT NULL,
    metadata      TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX event_log_tenant_order_idx ON event_log (tenant_id, order_id, created_at);
CREATE INDEX event_log_tenant_created_idx ON event_log (tenant_id, created_at);
CREATE INDEX event_log_tenant_job_idx ON event_log (tenant_id, print_job_id);

CREATE TABLE retry_queue (
    id               TEXT    NOT NULL PRIMARY KEY,
    tenant_id        TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job_type         TEXT    NOT NULL
        CHECK (job_type IN ('FULFILLMENT', 'PRINT_JOB_CREATION', 'CANCELLATION', 'NOTIFICATION')),
    payload          TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    next_attempt_at  BIGINT  NOT NULL,
    last_error       TEXT,
    status           TEXT    NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')),
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX retry_queue_tenant_status_idx ON retry_queue (tenant_id, status, next_attempt_at);
-- The retry processor picks due jobs of every tenant.
CREATE INDEX retry_queue_due_idx ON retry_queue (status, next_attempt_at);
