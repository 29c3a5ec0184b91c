/*
 * store.h - opening the configured database for the CLI verbs.
 */
#ifndef F3_APP_STORE_H
#define F3_APP_STORE_H

#include "core/config.h"
#include "core/err.h"
#include "db/db.h"

/* Resolves DATABASE_URL (unset = SQLite at $DATA_DIR/f3connect.db), creates the
 * SQLite file's directory when needed and opens the store. Caller closes with db_close(). */
int store_open(const config *c, db **out, err *e);

#endif
