/*
 * user_cmd.c - `f3connect user add|passwd|list|remove`: managing dashboard
 * users from the machine itself.
 *
 * A password is read as one line from stdin when stdin is not a terminal
 * (scripts: `echo "$PW" | f3connect user add ...`), otherwise generated and
 * printed once on stdout. Passwords never reach the logger.
 */
#include "app/commands.h"
#include "app/store.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "services/gateway/accounts.h"
#include "services/gateway/session_store.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct user_args {
    const char *email;
    const char *role;
    const char *tenant;
    bool super_admin;
    bool generated; /* the password was made here and must be shown */
} user_args;

/* Fills pw from stdin (one line) or, on a terminal, with a new random password. */
static int read_password(buf *pw, user_args *u)
{
    if (isatty(STDIN_FILENO)) {
        u->generated = true;
        return crypto_random_token(pw, 18);
    }
    char line[ACCOUNT_PASSWORD_MAX + 2];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "f3connect user: expected the password as one line on stdin\n");
        return F3_EINVAL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    int rc = buf_puts(pw, line);
    crypto_wipe(line, sizeof line);
    return rc;
}

static int revoke_sessions(db *store, const char *user_id, const char *tenant_id, err *e)
{
    session_limits none = {1, 1};
    session_store *s = session_store_db_new(store, &none);
    if (!s)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc = session_revoke_user(s, user_id, tenant_id, clock_now_ms(), NULL, e);
    session_store_free(s);
    return rc;
}

static int user_add(db *store, user_args *u, err *e)
{
    char tenant[65];
    buf pw;
    buf_init(&pw, 0);
    int rc = u->tenant ? account_tenant_resolve(store, u->tenant, true, tenant, e)
                       : account_default_tenant(store, tenant, e);
    if (rc == 0 && (rc = read_password(&pw, u)) != 0)
        rc = err_set(e, rc, "no password");
    account acc;
    rc = rc ? rc
            : account_create(store, tenant, u->email, u->role, buf_cstr(&pw), u->super_admin, &acc,
                             e);
    if (rc == 0) {
        printf("created user %s (%s) role %s in tenant %s\n", acc.email, acc.id, acc.role,
               acc.tenant_id);
        if (u->generated)
            printf("password: %s\n(shown only now)\n", buf_cstr(&pw));
    }
    if (pw.data)
        crypto_wipe(pw.data, pw.len);
    buf_free(&pw);
    return rc;
}

static int user_passwd(db *store, user_args *u, err *e)
{
    account acc;
    buf pw;
    buf_init(&pw, 0);
    int rc = account_find_login(store, u->email, NULL, &acc, e);
    if (rc == F3_ENOTFOUND)
        err_set(e, rc, "no user with email %s", u->email);
    if (rc == 0 && (rc = read_password(&pw, u)) != 0)
        rc = err_set(e, rc, "no password");
    rc = rc ? rc : account_set_password(store, acc.id, buf_cstr(&pw), e);
    rc = rc ? rc : revoke_sessions(store, acc.id, NULL, e);
    if (rc == 0) {
        printf("password changed for %s; its sessions were ended\n", acc.email);
        if (u->generated)
            printf("password: %s\n(shown only now)\n", buf_cstr(&pw));
    }
    crypto_wipe(acc.password_hash, sizeof acc.password_hash);
    if (pw.data)
        crypto_wipe(pw.data, pw.len);
    buf_free(&pw);
    return rc;
}

static int user_list(db *store, user_args *u, err *e)
{
    char tenant[65];
    json_t *arr = NULL;
    int rc = u->tenant ? account_tenant_resolve(store, u->tenant, false, tenant, e) : 0;
    rc = rc ? rc : account_list(store, u->tenant ? tenant : NULL, &arr, e);
    if (rc)
        return rc;
    printf("%-36s  %-32s  %-8s  %-36s  %s\n", "ID", "EMAIL", "ROLE", "TENANT", "SUPER-ADMIN");
    size_t i;
    json_t *row;
    json_array_foreach(arr, i, row)
    {
        printf("%-36s  %-32s  %-8s  %-36s  %s\n", json_string_value(json_object_get(row, "id")),
               json_string_value(json_object_get(row, "email")),
               json_string_value(json_object_get(row, "role")),
               json_string_value(json_object_get(row, "tenantId")),
               json_is_true(json_object_get(row, "isSuperAdmin")) ? "yes" : "no");
    }
    json_decref(arr);
    return 0;
}

static int user_remove(db *store, user_args *u, err *e)
{
    char tenant[65];
    account acc;
    memset(&acc, 0, sizeof acc);
    int rc = account_find_login(store, u->email, NULL, &acc, e);
    if (rc == F3_ENOTFOUND)
        err_set(e, rc, "no user with email %s", u->email);
    crypto_wipe(acc.password_hash, sizeof acc.password_hash);
    if (rc == 0 && u->tenant)
        rc = account_tenant_resolve(store, u->tenant, false, tenant, e);
    rc = rc ? rc : revoke_sessions(store, acc.id, u->tenant ? tenant : NULL, e);
    rc = rc ? rc : account_remove(store, u->tenant ? tenant : NULL, acc.id, e);
    if (rc == F3_ENOTFOUND && u->tenant && *acc.id)
        err_set(e, rc, "%s is not a member of tenant %s", u->email, u->tenant);
    if (rc == 0)
        printf("removed %s%s%s\n", acc.email, u->tenant ? " from tenant " : "",
               u->tenant ? u->tenant : "");
    return rc;
}

typedef struct user_action {
    const char *name;
    int (*run)(db *store, user_args *u, err *e);
    bool needs_email;
    bool needs_role;
} user_action;

static const user_action user_actions[] = {
    {"add", user_add, true, true},
    {"passwd", user_passwd, true, false},
    {"list", user_list, false, false},
    {"remove", user_remove, true, false},
};

static int user_run(const config *c, const user_action *act, user_args *u)
{
    db *store = NULL;
    err e;
    err_clear(&e);
    int rc = store_open(c, &store, &e);
    rc = rc ? rc : db_migrate(store, NULL, &e);
    rc = rc ? rc : act->run(store, u, &e);
    if (rc)
        fprintf(stderr, "f3connect user %s: %s\n", act->name, e.msg);
    db_close(store);
    return rc == F3_EINVAL ? 2 : rc ? 1 : 0;
}

int cmd_user(int argc, char **argv)
{
    user_args u = {0};
    const cli_switch switches[] = {{"super-admin", &u.super_admin}, {NULL, NULL}};
    const cli_option options[] = {
        {"email", &u.email}, {"role", &u.role}, {"tenant", &u.tenant}, {NULL, NULL}};
    const char *words[1];
    int nwords = 0, code;
    config *c = cli_load_config("user", argc, argv, switches, options, words, 1, &nwords, &code);
    if (!c)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c, "LOG_LEVEL")));
    const user_action *act = NULL;
    for (size_t i = 0; nwords == 1 && i < sizeof user_actions / sizeof user_actions[0]; i++)
        if (strcmp(user_actions[i].name, words[0]) == 0)
            act = &user_actions[i];
    code = 2;
    if (!act)
        fprintf(stderr, "f3connect user: expected add, passwd, list or remove\n");
    else if (act->needs_email && !u.email)
        fprintf(stderr, "f3connect user %s: --email is required\n", act->name);
    else if (act->needs_role && !u.role)
        fprintf(stderr, "f3connect user %s: --role is required (admin, operator or viewer)\n",
                act->name);
    else
        code = user_run(c, act, &u);
    if (code == 2 && (!act || (act->needs_email && !u.email) || (act->needs_role && !u.role)))
        fprintf(stderr, "Run 'f3connect user --help' for usage.\n");
    config_free(c);
    return code;
}
