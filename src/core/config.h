/*
 * config.h - the settings of f3connect: one table of documented keys, read from
 * command-line flags, the environment, a .env file and defaults.
 *
 * Every setting is a row of config_keys[] (config_keys.c): name, type, default,
 * group and a one-line doc. The same table drives validation, `f3connect config
 * check` (config_describe) and the README's reference (config_reference_markdown),
 * so adding a setting is adding a row. A value comes from, in order of precedence:
 *     flag (--port 8080)  >  environment (PORT=8080)  >  .env file  >  default
 * An empty value from any source counts as unset, so `PORT=` falls back to the
 * next source. A config is filled at start-up and read-only afterwards, so it may
 * be read from any thread once loaded. Nothing here logs a value; secrets are
 * masked wherever a value is shown.
 */
#ifndef F3_CORE_CONFIG_H
#define F3_CORE_CONFIG_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum config_type {
    CONFIG_STRING,      /* any text */
    CONFIG_INT,         /* decimal integer within [min, max] */
    CONFIG_BOOL,        /* true/false, 1/0, yes/no, on/off */
    CONFIG_URL,         /* scheme://host...; `choices` lists the schemes ("http|https" if NULL) */
    CONFIG_EMAIL,       /* a plain address: local@domain.tld */
    CONFIG_ENUM,        /* one of `choices` ("a|b|c"), case-sensitive */
    CONFIG_PORT,        /* integer 1..65535 */
    CONFIG_SIZE,        /* bytes: "1048576", "512k", "1m", "1g" (binary multiples) */
    CONFIG_DURATION_MS, /* "1500", "1500ms", "30s", "5m", "1h"; read as milliseconds */
    CONFIG_KEY32,       /* a 32-byte key as 64 hex characters or base64 */
} config_type;

typedef struct config_key {
    const char *name; /* environment name, e.g. "DATABASE_URL"; flag --database-url */
    config_type type;
    const char *def;     /* default as text, or NULL for none */
    const char *group;   /* section of the reference, e.g. "server" */
    const char *doc;     /* one sentence for the reference and `config check` */
    const char *choices; /* ENUM: "a|b|c"; URL: allowed schemes; NULL otherwise */
    int64_t min, max;    /* INT/PORT/SIZE/DURATION_MS bounds (bytes, ms); 0,0 = none */
    bool secret;         /* never shown: "****" */
} config_key;

extern const config_key config_keys[];
extern const size_t config_key_count;

typedef struct config config;

/* An empty config (every key at its default). NULL if out of memory.
 * Caller frees with config_free. */
config *config_new(void);
void config_free(config *c);

/* The row for an environment name ("PORT"), or NULL if there is none. */
const config_key *config_key_find(const char *name);

/* Reads a .env file: KEY=VALUE lines, blank lines and # comments, an optional
 * `export ` prefix, 'single-quoted' (literal) and "double-quoted" values (with
 * \n \r \t \" \\ escapes), and ` # comments` after unquoted values. Unknown keys
 * are ignored with a warning (a .env is often shared with other tools). A missing
 * file is fine unless must_exist. 0, or F3_EINVAL naming file:line for a
 * malformed line, F3_ENOTFOUND / F3_EIO for an unreadable file, F3_ENOMEM. */
int config_load_env_file(config *c, const char *path, bool must_exist, err *e);

/* Takes the known keys from envp ("NAME=VALUE" strings, NULL-terminated; NULL
 * means the process environment) and ignores the rest. 0 or F3_ENOMEM. */
int config_load_environ(config *c, char **envp);

/* Sets the key behind a command-line flag: "port" -> PORT, "database-url" ->
 * DATABASE_URL. 0, or F3_EINVAL "unknown option --x" / for a NULL value, F3_ENOMEM. */
int config_set_flag(config *c, const char *flag, const char *value, err *e);

/* Checks every effective value against its key's type and bounds; stops at the
 * first bad one (in table order), e.g.
 *     "PORT: must be an integer between 1 and 65535, got 'abc'"
 * Secret values are shown as '****' and URL passwords masked. 0 or F3_EINVAL. */
int config_validate(const config *c, err *e);

/* The effective value (flag > environment > .env > default), or NULL if unset
 * with no default. Borrowed until config_free. `key` must be a name from the
 * table; anything else is a programming error (asserted). */
const char *config_get(const config *c, const char *key);

/* The value of an INT/PORT/SIZE (bytes)/DURATION_MS (ms) key. Call after
 * config_validate: an invalid value reads as the default's value, or 0. */
int64_t config_get_int(const config *c, const char *key);

/* The value of a BOOL key. Call after config_validate: an invalid value reads as
 * the default's value, or false. */
bool config_get_bool(const config *c, const char *key);

/* Where the effective value comes from: "flag", "env", ".env", "default", "unset". */
const char *config_source(const config *c, const char *key);

/* Appends the database URL to use: DATABASE_URL if set (postgres://,
 * postgresql:// or sqlite:PATH), else "sqlite:" DATA_DIR "/f3connect.db".
 * 0, F3_EINVAL naming DATABASE_URL for any other form, F3_ETOOBIG / F3_ENOMEM. */
int config_database_url(const config *c, buf *out, err *e);

/* Appends one line per key, in table order, for `f3connect config check`:
 *     PORT=3000 (default)
 *     SESSION_SECRET=**** (env)
 *     REDIS_URL= (unset)
 *     HTTP_THREADS=0 (flag) INVALID: must be an integer between 1 and 256
 * Secrets show as "****"; passwords inside URLs are masked. 0, F3_ETOOBIG, F3_ENOMEM. */
int config_describe(const config *c, buf *out);

/* Appends the configuration reference in Markdown: per group, in table order, a
 * heading and a table of key, default and description. Same output every time.
 * 0, F3_ETOOBIG, F3_ENOMEM. */
int config_reference_markdown(buf *out);

#endif
