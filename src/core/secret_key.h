/*
 * secret_key.h - the one key that seals secrets at rest (crypto_seal): provider
 * credentials, webhook secrets, access tokens of every service.
 *
 * ENCRYPTION_KEY when it is set; else a key generated once into
 * $DATA_DIR/encryption.key (random, mode 0600, the directory made if needed, created
 * exclusively so two processes starting together agree on one key) and read from there
 * afterwards. Nothing here logs the key or puts it into a message.
 */
#ifndef F3_CORE_SECRET_KEY_H
#define F3_CORE_SECRET_KEY_H

#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"

#include <stdint.h>

#define SECRET_KEY_FILE_NAME "encryption.key"

/* Loads (or makes) the key. 0, or F3_EINVAL / F3_EIO with e saying why (never the key).
 * A new key file is logged as created (its path only). */
int secret_key_load(const config *c, uint8_t key[CRYPTO_KEY_LEN], err *e);

#endif
