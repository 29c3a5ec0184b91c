/*
 * config_keys.c - every setting of f3connect, as data.
 *
 * One row per key; config.c walks this table for loading, validation,
 * `config check` and the README reference. Only data here: no code, and a new
 * setting needs nothing but a new row (with a doc line a user can act on).
 */
#include "core/config.h"

#define KIB  ((int64_t)1024)
#define MIB  (1024 * KIB)
#define GIB  (1024 * MIB)
#define SEC  ((int64_t)1000)
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)

const config_key config_keys[] = {
    /* server */
    {"PORT", CONFIG_PORT, "3000", "server", "TCP port the HTTP server listens on.", NULL, 1, 65535,
     false},
    {"HOST", CONFIG_STRING, "0.0.0.0", "server",
     "Address the HTTP server binds to: `0.0.0.0` for every interface, `127.0.0.1` for this "
     "machine only.",
     NULL, 0, 0, false},
    {"APP_URL", CONFIG_URL, "http://localhost:3000", "server",
     "Public base URL of the dashboard and API, used to build links (emails, callbacks); an "
     "`https://` URL also marks session cookies Secure.",
     "http|https", 0, 0, false},
    {"LOG_LEVEL", CONFIG_ENUM, "info", "server",
     "Lowest level of log lines written (JSON lines on stderr).",
     "trace|debug|info|warn|error|fatal|silent", 0, 0, false},
    {"HTTP_THREADS", CONFIG_INT, "4", "server", "Worker threads that serve HTTP requests.", NULL, 1,
     256, false},
    {"HTTP_MAX_BODY", CONFIG_SIZE, "1m", "server",
     "Largest request body accepted; a bigger one is answered with 413.", NULL, 1 * KIB, 1 * GIB,
     false},
    {"HTTP_MAX_HEADER", CONFIG_SIZE, "16k", "server",
     "Largest total size of a request's headers; a request with more is rejected.", NULL, 1 * KIB,
     1 * MIB, false},
    {"HTTP_REQUEST_TIMEOUT", CONFIG_DURATION_MS, "30s", "server",
     "How long a client connection may stay idle or slow before it is closed.", NULL, 1 * SEC,
     1 * HOUR, false},
    {"SHUTDOWN_TIMEOUT", CONFIG_DURATION_MS, "10s", "server",
     "On SIGTERM, how long to let in-flight requests and jobs finish before exiting anyway.", NULL,
     0, 10 * MIN, false},

    /* storage */
    {"DATA_DIR", CONFIG_STRING, "./data", "storage",
     "Directory for local state, including the embedded SQLite database.", NULL, 0, 0, false},
    {"DATABASE_URL", CONFIG_URL, NULL, "storage",
     "Database to use: `postgres://user:password@host:5432/name` for PostgreSQL, or "
     "`sqlite:PATH`. Unset means the embedded database `sqlite:$DATA_DIR/f3connect.db`.",
     "postgres|postgresql|sqlite", 0, 0, false},
    {"DATABASE_POOL_SIZE", CONFIG_INT, "10", "storage",
     "Most database connections one process keeps open.", NULL, 1, 1000, false},
    {"REDIS_URL", CONFIG_URL, NULL, "storage",
     "Redis server carrying the event queues in distributed mode (`rediss://` for TLS). Unset in "
     "embedded mode, where the queues live in the database.",
     "redis|rediss", 0, 0, false},
    {"ENCRYPTION_KEY", CONFIG_KEY32, NULL, "storage",
     "Key that encrypts integration secrets (API keys, webhook secrets) at rest: 32 bytes as 64 "
     "hex characters or base64, e.g. from `openssl rand -hex 32`. Secrets stored under one key "
     "cannot be read with another.",
     NULL, 0, 0, true},

    /* security */
    {"INTERNAL_API_KEY", CONFIG_STRING, NULL, "security",
     "Shared key services present in the `X-Internal-Key` header to call each other's "
     "`/internal` routes in distributed mode.",
     NULL, 0, 0, true},
    {"SESSION_SECRET", CONFIG_STRING, NULL, "security",
     "Secret reserved for signing values handed to browsers. Dashboard sessions are opaque random "
     "ids kept server-side (hashed), so they do not depend on it.",
     NULL, 0, 0, true},
    {"SESSION_IDLE_TIMEOUT", CONFIG_DURATION_MS, "30m", "security",
     "A dashboard session not used for this long ends; the user logs in again.", NULL, 1 * SEC,
     24 * HOUR, false},
    {"SESSION_MAX_AGE", CONFIG_DURATION_MS, "24h", "security",
     "A dashboard session ends this long after login however much it is used (absolute "
     "timeout); the session cookie expires at the same time.",
     NULL, 1 * SEC, 30 * 24 * HOUR, false},
    {"RATE_LIMIT_IP_PER_MINUTE", CONFIG_INT, "600", "security",
     "Requests one client address may make per minute to any route outside `/internal` and the "
     "provider webhooks "
     "(token bucket: a burst of this size, refilled over a minute); beyond it 429 with "
     "`Retry-After`. 0 turns the limit off.",
     NULL, 0, 1000000, false},
    {"RATE_LIMIT_USER_PER_MINUTE", CONFIG_INT, "300", "security",
     "Requests one signed-in user may make per minute, whatever address they come from. 0 "
     "turns the limit off.",
     NULL, 0, 1000000, false},
    {"RATE_LIMIT_LOGIN_PER_MINUTE", CONFIG_INT, "10", "security",
     "Login attempts one client address may make per minute, successful or not. 0 turns the "
     "limit off.",
     NULL, 0, 10000, false},
    {"LOGIN_MAX_FAILURES_PER_HOUR", CONFIG_INT, "100", "security",
     "Failed logins allowed per account (per e-mail address, existing or not) in any hour; "
     "further attempts get 429 even with the right password. ASVS 2.2.1 asks for at most 100.",
     NULL, 2, 100, false},
    {"LOGIN_MAX_FAILURES_PER_HOUR_PER_IP", CONFIG_INT, "300", "security",
     "Failed logins allowed per client address in any hour, across all accounts (password "
     "spraying).",
     NULL, 2, 100000, false},

    /* notifications */
    {"NOTIFICATIONS_ENABLED", CONFIG_BOOL, "false", "notifications",
     "Send email notifications (operator alerts) through the SMTP server below.", NULL, 0, 0,
     false},
    {"OPERATOR_EMAIL", CONFIG_EMAIL, NULL, "notifications",
     "Address that receives operator alerts, such as orders that need attention.", NULL, 0, 0,
     false},
    {"ADMIN_EMAIL", CONFIG_EMAIL, NULL, "notifications",
     "Address of the platform administrator, for system notices.", NULL, 0, 0, false},
    {"SMTP_HOST", CONFIG_STRING, NULL, "notifications", "SMTP server that sends email.", NULL, 0, 0,
     false},
    {"SMTP_PORT", CONFIG_PORT, "587", "notifications",
     "Port of the SMTP server: usually 587 (STARTTLS), or 465 with `SMTP_SECURE=true`.", NULL, 1,
     65535, false},
    {"SMTP_USER", CONFIG_STRING, NULL, "notifications",
     "User name for SMTP authentication; unset to send without logging in.", NULL, 0, 0, false},
    {"SMTP_PASS", CONFIG_STRING, NULL, "notifications", "Password for SMTP authentication.", NULL,
     0, 0, true},
    {"SMTP_FROM", CONFIG_EMAIL, NULL, "notifications",
     "Sender address of the email f3connect sends.", NULL, 0, 0, false},
    {"SMTP_SECURE", CONFIG_BOOL, "false", "notifications",
     "Speak TLS from the first byte (implicit TLS, usually port 465); when false, the connection "
     "is upgraded with STARTTLS if the server offers it - and must be when `SMTP_USER` is set and "
     "the server is not this machine, so a password never travels in clear.",
     NULL, 0, 0, false},

    /* retry queue */
    {"RETRY_QUEUE_INTERVAL", CONFIG_DURATION_MS, "30s", "retry",
     "How often each service looks for due entries of the retry queue (failed fulfilments, "
     "print-job creations, cancellations and alert e-mails waiting for another attempt).",
     NULL, 1 * SEC, 1 * HOUR, false},

    /* services */
    {"GATEWAY_URL", CONFIG_URL, NULL, "services",
     "Base URL of the gateway service; used in distributed mode.", "http|https", 0, 0, false},
    {"ORDER_SERVICE_URL", CONFIG_URL, NULL, "services",
     "Base URL of the order service; used in distributed mode.", "http|https", 0, 0, false},
    {"PRINT_SERVICE_URL", CONFIG_URL, NULL, "services",
     "Base URL of the print service; used in distributed mode.", "http|https", 0, 0, false},
    {"SHIPPING_SERVICE_URL", CONFIG_URL, NULL, "services",
     "Base URL of the shipping service; used in distributed mode.", "http|https", 0, 0, false},
    {"GRIDFLOCK_SERVICE_URL", CONFIG_URL, NULL, "services",
     "Base URL of the GridFlock service; used in distributed mode.", "http|https", 0, 0, false},

    /* shopify */
    {"SHOPIFY_SHOP_DOMAIN", CONFIG_STRING, NULL, "shopify",
     "The store's `*.myshopify.com` domain, e.g. `example.myshopify.com`; Admin API calls go to "
     "`https://{domain}/admin/api/{version}/...`.",
     NULL, 0, 0, false},
    {"SHOPIFY_API_VERSION", CONFIG_STRING, "2025-10", "shopify",
     "Admin API version (`YYYY-MM`) named in every request path; Shopify serves the oldest "
     "supported version instead once this one is retired.",
     NULL, 0, 0, false},
    {"SHOPIFY_ACCESS_TOKEN", CONFIG_STRING, NULL, "shopify",
     "Admin API access token sent as `X-Shopify-Access-Token` (a permanent `shpat_` token of a "
     "custom app). Leave unset to obtain tokens with SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET.",
     NULL, 0, 0, true},
    {"SHOPIFY_CLIENT_ID", CONFIG_STRING, NULL, "shopify",
     "Client id of a Dev Dashboard app; with SHOPIFY_CLIENT_SECRET, f3connect exchanges them for "
     "an access token (client-credentials grant) and renews it before it expires.",
     NULL, 0, 0, false},
    {"SHOPIFY_CLIENT_SECRET", CONFIG_STRING, NULL, "shopify",
     "Client secret of that app, used only for the token exchange.", NULL, 0, 0, true},
    {"SHOPIFY_API_SECRET", CONFIG_STRING, NULL, "shopify",
     "App secret that signs webhooks (`X-Shopify-Hmac-Sha256`); deliveries whose signature does "
     "not match are refused with 401.",
     NULL, 0, 0, true},
    {"SHOPIFY_API_URL", CONFIG_URL, NULL, "shopify",
     "Base URL used instead of `https://{SHOPIFY_SHOP_DOMAIN}` for Admin API and token calls, "
     "e.g. `http://127.0.0.1:8081` for the Shopify simulator (`f3connect sim shopify`). Unset "
     "in production.",
     "http|https", 0, 0, false},
    {"SHOPIFY_RECONCILE_INTERVAL", CONFIG_DURATION_MS, "1h", "shopify",
     "How often the orders service asks Shopify for orders changed recently (since its last "
     "successful run, at most 7 days back) and imports any a webhook missed.",
     NULL, 1 * MIN, 24 * HOUR, false},
    /* simplyprint */
    {"SIMPLYPRINT_COMPANY_ID", CONFIG_STRING, NULL, "simplyprint",
     "SimplyPrint company (organisation) id, the number in panel URLs "
     "(`simplyprint.io/panel/{id}/...`); with SIMPLYPRINT_API_KEY it connects the default "
     "tenant at start. Tenants may also connect through `PUT /api/v1/integrations/simplyprint`.",
     NULL, 0, 0, false},
    {"SIMPLYPRINT_API_KEY", CONFIG_STRING, NULL, "simplyprint",
     "SimplyPrint API key (panel user settings > API), sent as `X-API-KEY`; checked against "
     "`account/Test` before it is stored (sealed).",
     NULL, 0, 0, true},
    {"SIMPLYPRINT_API_URL", CONFIG_URL, NULL, "simplyprint",
     "Base URL used instead of `https://api.simplyprint.io` for SimplyPrint calls, e.g. the "
     "SimplyPrint simulator. Unset in production.",
     "http|https", 0, 0, false},
    {"SIMPLYPRINT_WEBHOOK_SECRET", CONFIG_STRING, NULL, "simplyprint",
     "Secret configured on the SimplyPrint webhook; SimplyPrint sends it verbatim in "
     "`X-SP-Secret` (or `X-SP-Token`) and deliveries without it are refused.",
     NULL, 0, 0, true},
    {"SIMPLYPRINT_ORDER_FIELD_ID", CONFIG_STRING, NULL, "simplyprint",
     "Id of a SimplyPrint queue custom field; when set, every queued file carries the order id "
     "in it, so people in the SimplyPrint panel see which order a file belongs to.",
     NULL, 0, 0, false},
    {"SIMPLYPRINT_RECONCILE_INTERVAL", CONFIG_DURATION_MS, "2m", "simplyprint",
     "How often the print service asks SimplyPrint about every print job that is not finished "
     "(queue item, then the job history) and applies status changes a webhook missed.",
     NULL, 10 * SEC, 24 * HOUR, false},
    /* sendcloud (shipping service) */
    {"SENDCLOUD_PUBLIC_KEY", CONFIG_STRING, NULL, "sendcloud",
     "Public key of the Sendcloud API integration (Basic-auth user); with "
     "`SENDCLOUD_SECRET_KEY` it connects the default tenant at start. Connections can also be "
     "made at runtime with `PUT /api/v1/integrations/sendcloud`.",
     NULL, 0, 0, false},
    {"SENDCLOUD_SECRET_KEY", CONFIG_STRING, NULL, "sendcloud",
     "Secret key of the Sendcloud API integration (Basic-auth password); it also signs "
     "Sendcloud webhooks unless `SENDCLOUD_WEBHOOK_SECRET` is set. Stored sealed.",
     NULL, 0, 0, true},
    {"SENDCLOUD_WEBHOOK_SECRET", CONFIG_STRING, NULL, "sendcloud",
     "Key that signs Sendcloud webhooks (`Sendcloud-Signature`) when it is not the secret key "
     "(integrations other than the API one have a separate webhook signature key).",
     NULL, 0, 0, true},
    {"SENDCLOUD_API_URL", CONFIG_URL, "https://panel.sendcloud.sc", "sendcloud",
     "Base URL of the Sendcloud API, e.g. `http://127.0.0.1:8082` for the Sendcloud simulator "
     "(`f3connect sim sendcloud`).",
     "http|https", 0, 0, false},
    {"SENDCLOUD_API_VERSION", CONFIG_ENUM, "v3", "sendcloud",
     "Sendcloud API used to create shipments: `v3` (shipments) or `v2` (parcels, only for "
     "accounts created before 2026-04-13).",
     "v3|v2", 0, 0, false},
    {"SENDCLOUD_SENDER_ADDRESS_ID", CONFIG_INT, NULL, "sendcloud",
     "Sender address id of the Sendcloud account labels are shipped from; unset = the "
     "account's default sender address.",
     NULL, 1, INT64_C(9007199254740991), false},
    {"SENDCLOUD_SHIPPING_OPTION_CODE", CONFIG_STRING, NULL, "sendcloud",
     "v3 shipping option code labels are made with, e.g. `postnl:standard`; unset = "
     "Sendcloud's default for the route.",
     NULL, 0, 0, false},
    {"SENDCLOUD_SHIPPING_METHOD_ID", CONFIG_INT, NULL, "sendcloud",
     "v2 shipping method id labels are made with; unset = Sendcloud's default.", NULL, 1,
     INT64_C(9007199254740991), false},
    {"SENDCLOUD_RECONCILE_INTERVAL", CONFIG_DURATION_MS, "5m", "sendcloud",
     "How often the shipping service asks Sendcloud for the status of every shipment not yet "
     "delivered or cancelled, to catch status changes whose webhook was lost.",
     NULL, 1 * SEC, 24 * HOUR, false},
    {"SENDCLOUD_RETRY_BASE", CONFIG_DURATION_MS, "1s", "sendcloud",
     "First delay before a Sendcloud call that failed transiently (timeout, 429, 5xx) is "
     "tried again; it doubles on every attempt (capped at 1 h) and a longer `Retry-After` "
     "wins.",
     NULL, 10, 1 * HOUR, false},
    {"SENDCLOUD_MAX_ATTEMPTS", CONFIG_INT, "8", "sendcloud",
     "Tries of one Sendcloud call (creating or cancelling a shipment) before it is given up, "
     "the shipment marked FAILED and an operator alerted.",
     NULL, 1, 50, false},
    {"SENDCLOUD_TIMEOUT", CONFIG_DURATION_MS, "30s", "sendcloud",
     "How long one Sendcloud API request may take before it counts as a (transient) timeout.", NULL,
     100, 5 * MIN, false},
    {"SHIPPING_DEFAULT_WEIGHT_GRAMS", CONFIG_INT, "500", "sendcloud",
     "Parcel weight in grams used when the order's mapped print files do not give one.", NULL, 1,
     1000000, false},
};

const size_t config_key_count = sizeof config_keys / sizeof config_keys[0];
