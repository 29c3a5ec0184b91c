/*
 * err.h - the error out-parameter: a status code plus a message for a human.
 *
 * Functions return 0 or a negative F3_E* code; where a caller needs to know
 * why, they also fill an `err` given by the caller (which may be NULL).
 * Messages name the thing that was wrong ("DATABASE_URL: unknown scheme 'mysql'")
 * and never contain secrets.
 */
#ifndef F3_CORE_ERR_H
#define F3_CORE_ERR_H

#define F3_OK         0
#define F3_EINVAL     (-1) /* bad input from outside: config, request, payload */
#define F3_ENOMEM     (-2)
#define F3_EIO        (-3) /* file, socket or database I/O failed */
#define F3_ENOTFOUND  (-4)
#define F3_ECONFLICT  (-5) /* uniqueness or state conflict */
#define F3_EBUSY      (-6) /* locked / try again */
#define F3_ETRANSIENT (-7) /* remote failure worth retrying */
#define F3_EPERMANENT (-8) /* remote failure not worth retrying */
#define F3_ETOOBIG    (-9)

#define ERR_MSG_MAX 512

typedef struct err {
    int code;
    char msg[ERR_MSG_MAX];
} err;

/* Records code and message in e (if e is not NULL) and returns code, so that
 * `return err_set(e, F3_EINVAL, "PORT: not a number: %s", v);` reads naturally. The
 * message is kept valid UTF-8 (bytes that are not become '?', a cut never splits a
 * character), so it can go into JSON whatever it quotes. */
int err_set(err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clears e (if not NULL). */
void err_clear(err *e);

/* A short name for a code ("invalid input", "not found", ...). */
const char *err_name(int code);

#endif
