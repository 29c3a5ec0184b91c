/*
 * connections.h - the Shopify shops the orders service is connected to (table
 * shop_connections), their sealed secrets, and the key that seals them.
 *
 * A webhook names only its shop; the connection with that shop domain says which tenant
 * it belongs to and holds the secret its signature is checked with. The API secret and
 * access token are sealed with crypto_seal under ENCRYPTION_KEY (or, when that is unset, a
 * key generated once into $DATA_DIR/encryption.key) and opened only in memory; nothing
 * here logs a secret or the key. The orders service owns the table.
 */
#ifndef F3_ORDERS_CONNECTIONS_H
#define F3_ORDERS_CONNECTIONS_H

#include "core/config.h"
#include "core/crypto.h"
#include "core/secret_key.h"
#include "core/err.h"
#include "db/db.h"
#include "integrations/shopify/client.h"
#include "integrations/shopify/webhook.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHOP_PROVIDER_SHOPIFY "shopify"
#define SHOP_TENANT_ID_MAX    64

/* One connection, secrets opened. Clear with shop_conn_clear (wipes the secrets). */
typedef struct shop_conn {
    char tenant_id[SHOP_TENANT_ID_MAX + 1];
    char shop_domain[SHOPIFY_DOMAIN_MAX + 1]; /* lower case */
    bool connected;
    char *api_secret;           /* the webhook signing secret */
    char *access_token;         /* NULL when none is stored */
    char *api_version;          /* NULL = the client's default */
    char *api_url;              /* NULL = https://{shop_domain} */
    int64_t last_reconciled_at; /* epoch ms; 0 = never */
} shop_conn;

void shop_conn_clear(shop_conn *c);

/* The default tenant: the one with slug "default", else the oldest; one named "Default"
 * is created when there is no tenant at all. tenant_id gets its id. 0 or a db error. */
int shop_default_tenant(db *d, char tenant_id[SHOP_TENANT_ID_MAX + 1], err *e);

/* Creates or refreshes the connection configured by SHOPIFY_SHOP_DOMAIN,
 * SHOPIFY_API_SECRET, SHOPIFY_ACCESS_TOKEN, SHOPIFY_API_VERSION and SHOPIFY_API_URL for
 * tenant_id. Nothing happens (and *configured is false) when the domain or the secret is
 * unset. A disconnected connection is connected again only when the configured access
 * token differs from the stored one (an uninstall revokes the old token). F3_EINVAL for
 * a malformed domain, F3_ECONFLICT when the domain belongs to another tenant. */
int shop_conn_bootstrap(db *d, const uint8_t key[CRYPTO_KEY_LEN], const config *c,
                        const char *tenant_id, bool *configured, err *e);

/* Reads the connection of shop_domain (any case) on c, secrets opened. F3_ENOTFOUND when
 * there is none; F3_EINVAL when a sealed secret does not open under key. */
int shop_conn_find(db_conn *c, const uint8_t key[CRYPTO_KEY_LEN], const char *shop_domain,
                   shop_conn *out, err *e);

/* The first connected shop of tenant_id. F3_ENOTFOUND when it has none. */
int shop_conn_of_tenant(db *d, const uint8_t key[CRYPTO_KEY_LEN], const char *tenant_id,
                        shop_conn *out, err *e);

/* The domains of every connected shop (all tenants), for the reconciliation job.
 * Caller frees with shop_domains_free. */
int shop_conn_connected_domains(db *d, char ***domains, size_t *n, err *e);
void shop_domains_free(char **domains, size_t n);

/* Marks the connection disconnected inside tx (app/uninstalled). *changed (may be NULL)
 * says whether it was connected until now. */
int shop_conn_disconnect(db_conn *tx, const char *tenant_id, const char *shop_domain, bool *changed,
                         err *e);

/* Records a successful reconciliation run that started at at_ms. */
int shop_conn_mark_reconciled(db *d, const char *shop_domain, int64_t at_ms, err *e);

/* An Admin API client for the connection. NULL with e set when it has no access token
 * or the options are unusable. Caller frees with shopify_client_free. */
shopify_client *shop_conn_client(const shop_conn *c, err *e);

#endif
