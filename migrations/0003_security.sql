-- 0003_security.sql - the gateway's security audit log.
--
-- One row per security-relevant event of a tenant: logins and their failures,
-- throttled logins, logouts, revoked sessions, password changes, permission
-- denials and changes to users. A failed login for an e-mail address that has no
-- account belongs to no tenant and is only logged, never stored here. Sessions
-- live in the sessions table of 0001; login-failure counters live with the rate
-- limiter (memory in embedded mode, Redis in distributed mode), not here.

CREATE TABLE security_audit (
    id          TEXT   NOT NULL PRIMARY KEY,
    tenant_id   TEXT   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     TEXT,
    email       TEXT,
    event       TEXT   NOT NULL,
    ip          TEXT,
    detail      TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX security_audit_tenant_created_idx ON security_audit (tenant_id, created_at);
