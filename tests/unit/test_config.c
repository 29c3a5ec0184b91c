/*
 * test_config.c - the settings table, sources and precedence, validation of
 * every type, .env parsing, database URL resolution and the generated texts.
 */
#include "support/f3test.h"

#include "core/config.h"
#include "core/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char test_key_hex[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/* Writes text to a fresh file in a fresh directory; returns its path (caller frees
 * with free(); the directory is removed by remove_env_file). */
static char *write_env_file(const char *text)
{
    char *dir = f3test_tmpdir();
    assert_non_null(dir);
    size_t n = strlen(dir) + 16;
    char *path = malloc(n);
    snprintf(path, n, "%s/.env", dir);
    free(dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return path;
}

static void remove_env_file(char *path)
{
    char *slash = strrchr(path, '/');
    *slash = '\0';
    f3test_rmtree(path);
    free(path);
}

/* Loads text as a .env file into a new config; returns the load status. */
static int load_text(config *c, const char *text, err *e)
{
    char *path = write_env_file(text);
    int rc = config_load_env_file(c, path, true, e);
    remove_env_file(path);
    return rc;
}

/* Calls config_load_environ with copies of the NULL-terminated vars (envp
 * entries are mutable strings, literals are not). */
static int load_environ(config *c, const char *const *vars)
{
    size_t n = 0;
    while (vars[n])
        n++;
    char **envp = calloc(n + 1, sizeof *envp);
    for (size_t i = 0; i < n; i++)
        envp[i] = strdup(vars[i]);
    int rc = config_load_environ(c, envp);
    for (size_t i = 0; i < n; i++)
        free(envp[i]);
    free(envp);
    return rc;
}

static void test_table_is_sane(void **state)
{
    (void)state;
    assert_true(config_key_count >= 30);
    for (size_t i = 0; i < config_key_count; i++) {
        const config_key *k = &config_keys[i];
        assert_non_null(k->name);
        assert_int_equal(strspn(k->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"), strlen(k->name));
        assert_non_null(k->group);
        assert_true(*k->group);
        assert_non_null(k->doc);
        assert_true(strlen(k->doc) > 10);
        assert_int_equal(k->doc[strlen(k->doc) - 1], '.');
        assert_true(k->min <= k->max);
        if (k->type == CONFIG_ENUM)
            assert_non_null(k->choices);
        if (k->secret)
            assert_null(k->def); /* a secret with a default is no secret */
        assert_ptr_equal(config_key_find(k->name), k);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(config_keys[j].name, k->name);
    }
    assert_null(config_key_find("NOT_A_KEY"));
    assert_null(config_key_find(NULL));
}

static void test_defaults_are_valid_for_their_types(void **state)
{
    (void)state;
    config *c = config_new();
    err e;
    err_clear(&e);
    if (config_validate(c, &e) != 0)
        fail_msg("default fails validation: %s", e.msg);
    assert_string_equal(config_get(c, "PORT"), "3000");
    assert_int_equal(config_get_int(c, "PORT"), 3000);
    assert_string_equal(config_get(c, "HOST"), "0.0.0.0");
    assert_string_equal(config_get(c, "APP_URL"), "http://localhost:3000");
    assert_string_equal(config_get(c, "LOG_LEVEL"), "info");
    assert_int_equal(config_get_int(c, "HTTP_THREADS"), 4);
    assert_int_equal(config_get_int(c, "HTTP_MAX_BODY"), 1024 * 1024);
    assert_int_equal(config_get_int(c, "HTTP_MAX_HEADER"), 16 * 1024);
    assert_int_equal(config_get_int(c, "HTTP_REQUEST_TIMEOUT"), 30000);
    assert_int_equal(config_get_int(c, "SHUTDOWN_TIMEOUT"), 10000);
    assert_string_equal(config_get(c, "DATA_DIR"), "./data");
    assert_int_equal(config_get_int(c, "DATABASE_POOL_SIZE"), 10);
    assert_false(config_get_bool(c, "NOTIFICATIONS_ENABLED"));
    assert_int_equal(config_get_int(c, "SMTP_PORT"), 587);
    assert_false(config_get_bool(c, "SMTP_SECURE"));
    assert_null(config_get(c, "DATABASE_URL"));
    assert_null(config_get(c, "ENCRYPTION_KEY"));
    assert_string_equal(config_source(c, "PORT"), "default");
    assert_string_equal(config_source(c, "REDIS_URL"), "unset");
    config_free(c);
}

static void test_precedence_flag_env_dotenv_default(void **state)
{
    (void)state;
    config *c = config_new();
    err e;
    assert_string_equal(config_source(c, "PORT"), "default");

    assert_int_equal(load_text(c, "PORT=4000\nSMTP_HOST=file.example\n", &e), 0);
    assert_string_equal(config_get(c, "PORT"), "4000");
    assert_string_equal(config_source(c, "PORT"), ".env");

    const char *const envp[] = {"PORT=5000", "SMTP_HOST=", NULL};
    assert_int_equal(load_environ(c, envp), 0);
    assert_string_equal(config_get(c, "PORT"), "5000");
    assert_string_equal(config_source(c, "PORT"), "env");
    /* An empty environment value counts as unset: the .env value shows through. */
    assert_string_equal(config_get(c, "SMTP_HOST"), "file.example");
    assert_string_equal(config_source(c, "SMTP_HOST"), ".env");

    assert_int_equal(config_set_flag(c, "port", "6000", &e), 0);
    assert_string_equal(config_get(c, "PORT"), "6000");
    assert_string_equal(config_source(c, "PORT"), "flag");
    assert_int_equal(config_get_int(c, "PORT"), 6000);

    /* Loading a lower source later does not override a higher one. */
    assert_int_equal(load_text(c, "PORT=4001\n", &e), 0);
    assert_string_equal(config_get(c, "PORT"), "6000");
    config_free(c);
}

static void test_environ_takes_only_known_keys(void **state)
{
    (void)state;
    config *c = config_new();
    const char *const envp[] = {"HOME=/root",     "PATH=/bin",          "PORTX=1",
                                "PORT",           "LOG_LEVEL=debug",    "=weird",
                                "HTTP_THREADS=8", "DATA_DIR=/srv/f3=x", NULL};
    assert_int_equal(load_environ(c, envp), 0);
    assert_string_equal(config_get(c, "LOG_LEVEL"), "debug");
    assert_int_equal(config_get_int(c, "HTTP_THREADS"), 8);
    assert_string_equal(config_get(c, "DATA_DIR"), "/srv/f3=x"); /* only the first = splits */
    assert_string_equal(config_source(c, "PORT"), "default");
    config_free(c);

    /* NULL means the process environment. */
    setenv("SMTP_USER", "from-process", 1);
    c = config_new();
    assert_int_equal(config_load_environ(c, NULL), 0);
    assert_string_equal(config_get(c, "SMTP_USER"), "from-process");
    unsetenv("SMTP_USER");
    config_free(c);
}

static void test_flags_map_to_keys(void **state)
{
    (void)state;
    config *c = config_new();
    err e;
    assert_int_equal(config_set_flag(c, "database-url", "postgres://h/db", &e), 0);
    assert_string_equal(config_get(c, "DATABASE_URL"), "postgres://h/db");
    assert_int_equal(config_set_flag(c, "--http-max-body", "2m", &e), 0);
    assert_int_equal(config_get_int(c, "HTTP_MAX_BODY"), 2 * 1024 * 1024);

    assert_int_equal(config_set_flag(c, "nope", "1", &e), F3_EINVAL);
    assert_string_equal(e.msg, "unknown option --nope");
    assert_int_equal(config_set_flag(c, "--no-such-thing", "1", &e), F3_EINVAL);
    assert_string_equal(e.msg, "unknown option --no-such-thing");
    assert_int_equal(config_set_flag(c, "Port", "1", &e), F3_EINVAL);
    assert_int_equal(config_set_flag(c, "", "1", &e), F3_EINVAL);
    assert_int_equal(config_set_flag(c, "port=80", "1", &e), F3_EINVAL);
    assert_int_equal(config_set_flag(c, NULL, "1", &e), F3_EINVAL);
    assert_int_equal(config_set_flag(c, "port", NULL, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "--port"));
    assert_string_equal(config_source(c, "PORT"), "default");
    config_free(c);
}

static void test_good_values_of_every_type(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value;
        int64_t number; /* -1: not a number */
    } good[] = {
        {"PORT", "1", 1},
        {"PORT", "65535", 65535},
        {"HTTP_THREADS", "256", 256},
        {"HTTP_MAX_BODY", "1048576", 1048576},
        {"HTTP_MAX_BODY", "512k", 512 * 1024},
        {"HTTP_MAX_BODY", "512KB", 512 * 1024},
        {"HTTP_MAX_BODY", "1m", 1024 * 1024},
        {"HTTP_MAX_BODY", "3MB", 3 * 1024 * 1024},
        {"HTTP_MAX_BODY", "1g", 1024 * 1024 * 1024},
        {"HTTP_MAX_BODY", "4096b", 4096},
        {"HTTP_REQUEST_TIMEOUT", "1500", 1500},
        {"HTTP_REQUEST_TIMEOUT", "1500ms", 1500},
        {"HTTP_REQUEST_TIMEOUT", "30s", 30000},
        {"HTTP_REQUEST_TIMEOUT", "5m", 300000},
        {"HTTP_REQUEST_TIMEOUT", "1h", 3600000},
        {"HTTP_REQUEST_TIMEOUT", "2S", 2000},
        {"SHUTDOWN_TIMEOUT", "0", 0},
        {"NOTIFICATIONS_ENABLED", "yes", -1},
        {"APP_URL", "https://shop.example.com", -1},
        {"APP_URL", "http://127.0.0.1:8080/base?x=1", -1},
        {"GATEWAY_URL", "http://user:pw@gateway:3000", -1},
        {"REDIS_URL", "redis://localhost:6379/0", -1},
        {"REDIS_URL", "rediss://:secret@cache.example:6380", -1},
        {"DATABASE_URL", "postgres://f3:pw@db:5432/f3", -1},
        {"DATABASE_URL", "postgresql:///f3?host=/run/postgresql", -1},
        {"DATABASE_URL", "sqlite:/var/lib/f3/f3.db", -1},
        {"OPERATOR_EMAIL", "operator@forma3d.be", -1},
        {"SMTP_FROM", "no-reply+orders@mail.forma3d.co.uk", -1},
        {"LOG_LEVEL", "trace", -1},
        {"LOG_LEVEL", "silent", -1},
        {"ENCRYPTION_KEY", test_key_hex, -1},
        {"ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", -1},
        {"SESSION_SECRET", "anything at all", -1},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        config *c = config_new();
        err e;
        char entry[256];
        snprintf(entry, sizeof entry, "%s=%s", good[i].key, good[i].value);
        const char *const envp[] = {entry, NULL};
        assert_int_equal(load_environ(c, envp), 0);
        if (config_validate(c, &e) != 0)
            fail_msg("%s=%s rejected: %s", good[i].key, good[i].value, e.msg);
        if (good[i].number >= 0)
            assert_int_equal(config_get_int(c, good[i].key), good[i].number);
        config_free(c);
    }
}

static void test_bad_values_name_the_key(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value, *want; /* want: a part of the message */
    } bad[] = {
        {"PORT", "abc", "PORT: must be an integer between 1 and 65535, got 'abc'"},
        {"PORT", "0", "between 1 and 65535"},
        {"PORT", "65536", "got '65536'"},
        {"PORT", "80.5", "got '80.5'"},
        {"SMTP_PORT", " 25", "SMTP_PORT: must be an integer"},
        {"HTTP_THREADS", "0", "HTTP_THREADS: must be an integer between 1 and 256, got '0'"},
        {"HTTP_THREADS", "257", "between 1 and 256"},
        {"HTTP_THREADS", "-1", "got '-1'"},
        {"DATABASE_POOL_SIZE", "ten", "DATABASE_POOL_SIZE: must be an integer between 1 and 1000"},
        {"HTTP_MAX_BODY", "1x", "HTTP_MAX_BODY: must be a size between 1k and 1g"},
        {"HTTP_MAX_BODY", "-1m", "got '-1m'"},
        {"HTTP_MAX_BODY", "10", "got '10'"},
        {"HTTP_MAX_BODY", "2g", "got '2g'"},
        {"HTTP_MAX_BODY", "1 m", "got '1 m'"},
        {"HTTP_MAX_BODY", "m", "got 'm'"},
        {"HTTP_MAX_BODY", "99999999999999999999k", "HTTP_MAX_BODY: must be a size"},
        {"HTTP_MAX_HEADER", "8589934592g", "HTTP_MAX_HEADER: must be a size"}, /* overflows */
        {"HTTP_REQUEST_TIMEOUT", "5d",
         "HTTP_REQUEST_TIMEOUT: must be a duration between 1s and 1h"},
        {"HTTP_REQUEST_TIMEOUT", "30 s", "got '30 s'"},
        {"HTTP_REQUEST_TIMEOUT", "500ms", "got '500ms'"},
        {"SHUTDOWN_TIMEOUT", "1.5s", "SHUTDOWN_TIMEOUT: must be a duration between 0 and 10m"},
        {"NOTIFICATIONS_ENABLED", "maybe",
         "NOTIFICATIONS_ENABLED: must be true or false (or 1/0, yes/no, on/off), got 'maybe'"},
        {"SMTP_SECURE", "tls", "SMTP_SECURE: must be true or false"},
        {"APP_URL", "localhost:3000",
         "APP_URL: must be a URL starting with http:// or https://, got 'localhost:3000'"},
        {"APP_URL", "ftp://files.example", "APP_URL: must be a URL"},
        {"APP_URL", "http://", "got 'http://'"},
        {"APP_URL", "http:///path", "got 'http:///path'"},
        {"APP_URL", "http://:3000", "got 'http://:3000'"},
        {"APP_URL", "http://exa mple.com", "APP_URL: must be a URL"},
        {"PRINT_SERVICE_URL", "print:3002", "PRINT_SERVICE_URL: must be a URL"},
        {"REDIS_URL", "http://localhost:6379",
         "REDIS_URL: must be a URL starting with redis:// or rediss://"},
        {"DATABASE_URL", "mysql://db/f3",
         "DATABASE_URL: must be a URL starting with postgres://, postgresql:// or sqlite:"},
        {"DATABASE_URL", "sqlite:", "got 'sqlite:'"},
        {"DATABASE_URL", "postgres://", "got 'postgres://'"},
        {"OPERATOR_EMAIL", "nope",
         "OPERATOR_EMAIL: must be an email address such as name@example.com, got 'nope'"},
        {"OPERATOR_EMAIL", "a@b", "got 'a@b'"},
        {"ADMIN_EMAIL", "a@@b.c", "ADMIN_EMAIL: must be an email"},
        {"ADMIN_EMAIL", "a b@c.de", "ADMIN_EMAIL: must be an email"},
        {"ADMIN_EMAIL", ".a@b.cd", "ADMIN_EMAIL: must be an email"},
        {"ADMIN_EMAIL", "a..b@c.de", "ADMIN_EMAIL: must be an email"},
        {"ADMIN_EMAIL", "a@-b.cd", "ADMIN_EMAIL: must be an email"},
        {"ADMIN_EMAIL", "a@b..cd", "ADMIN_EMAIL: must be an email"},
        {"SMTP_FROM", "Shop <shop@x.com>", "SMTP_FROM: must be an email"},
        {"LOG_LEVEL", "verbose",
         "LOG_LEVEL: must be one of trace, debug, info, warn, error, fatal or silent, got "
         "'verbose'"},
        {"LOG_LEVEL", "INFO", "got 'INFO'"},
        {"ENCRYPTION_KEY", "short",
         "ENCRYPTION_KEY: must be a 32-byte key written as 64 hex characters or base64, got "
         "'****'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config *c = config_new();
        err e;
        err_clear(&e);
        char flag[64];
        size_t n = 0;
        for (const char *p = bad[i].key; *p; p++)
            flag[n++] = *p == '_' ? '-' : (char)(*p - 'A' + 'a' < 'a' ? *p : *p - 'A' + 'a');
        flag[n] = '\0';
        assert_int_equal(config_set_flag(c, flag, bad[i].value, &e), 0);
        assert_int_equal(config_validate(c, &e), F3_EINVAL);
        if (!strstr(e.msg, bad[i].want))
            fail_msg("%s=%s: message '%s' lacks '%s'", bad[i].key, bad[i].value, e.msg,
                     bad[i].want);
        assert_true(strncmp(e.msg, bad[i].key, strlen(bad[i].key)) == 0);
        config_free(c);
    }
}

static void test_validation_masks_secrets_and_url_passwords(void **state)
{
    (void)state;
    config *c = config_new();
    err e;
    config_set_flag(c, "encryption-key", "hunter2-is-not-a-key", &e);
    assert_int_equal(config_validate(c, &e), F3_EINVAL);
    assert_null(strstr(e.msg, "hunter2"));
    assert_non_null(strstr(e.msg, "'****'"));
    config_free(c);

    c = config_new();
    config_set_flag(c, "database-url", "mysql://f3:topsecret@db:3306/f3", &e);
    assert_int_equal(config_validate(c, &e), F3_EINVAL);
    assert_null(strstr(e.msg, "topsecret"));
    assert_non_null(strstr(e.msg, "'mysql://f3:****@db:3306/f3'"));
    config_free(c);
}

static void test_empty_values_count_as_unset(void **state)
{
    (void)state;
    config *c = config_new();
    err e;
    const char *const envp[] = {"PORT=", "REDIS_URL=", NULL};
    assert_int_equal(load_environ(c, envp), 0);
    assert_string_equal(config_get(c, "PORT"), "3000");
    assert_string_equal(config_source(c, "PORT"), "default");
    assert_null(config_get(c, "REDIS_URL"));
    assert_int_equal(config_set_flag(c, "smtp-host", "", &e), 0);
    assert_string_equal(config_source(c, "SMTP_HOST"), "unset");
    assert_int_equal(load_text(c, "DATA_DIR=\n", &e), 0);
    assert_string_equal(config_get(c, "DATA_DIR"), "./data");
    assert_int_equal(config_validate(c, &e), 0);
    config_free(c);
}

static void test_env_file_syntax(void **state)
{
    (void)state;
    config *c = config_new();
    err e;
    err_clear(&e);
    const char *text = "\xef\xbb\xbf# a comment line\n"
                       "\n"
                       "   # indented comment\n"
                       "PORT=4000\n"
                       "export HOST=127.0.0.1\n"
                       "  LOG_LEVEL = debug   # trailing comment\n"
                       "SMTP_HOST=mail#not-a-comment\n"
                       "SMTP_USER='user with # and \"quotes\"'  # comment\n"
                       "SMTP_PASS=\"line1\\nline2\\t\\\"q\\\" \\\\ \\x\"\n"
                       "SMTP_FROM=shop@example.com\r\n"
                       "APP_URL=  https://shop.example  \n"
                       "DATA_DIR=/first\n"
                       "DATA_DIR=/second\n"
                       "OPERATOR_EMAIL=''\n"
                       "INTERNAL_API_KEY=abc=def==\n"
                       "\tSESSION_SECRET=\"quoted # not comment\"\n"
                       "HTTP_THREADS=8"; /* no final newline */
    assert_int_equal(load_text(c, text, &e), 0);
    assert_string_equal(config_get(c, "PORT"), "4000");
    assert_string_equal(config_get(c, "HOST"), "127.0.0.1");
    assert_string_equal(config_get(c, "LOG_LEVEL"), "debug");
    assert_string_equal(config_get(c, "SMTP_HOST"), "mail#not-a-comment");
    assert_string_equal(config_get(c, "SMTP_USER"), "user with # and \"quotes\"");
    assert_string_equal(config_get(c, "SMTP_PASS"), "line1\nline2\t\"q\" \\ \\x");
    assert_string_equal(config_get(c, "SMTP_FROM"), "shop@example.com");
    assert_string_equal(config_get(c, "APP_URL"), "https://shop.example");
    assert_string_equal(config_get(c, "DATA_DIR"), "/second");
    assert_null(config_get(c, "OPERATOR_EMAIL"));
    assert_string_equal(config_get(c, "INTERNAL_API_KEY"), "abc=def==");
    assert_string_equal(config_get(c, "SESSION_SECRET"), "quoted # not comment");
    assert_string_equal(config_get(c, "HTTP_THREADS"), "8");
    assert_int_equal(config_validate(c, &e), 0);
    config_free(c);
}

static void test_env_file_unknown_keys_warn_without_values(void **state)
{
    (void)state;
    FILE *logf = tmpfile();
    assert_non_null(logf);
    log_set_stream(logf);
    config *c = config_new();
    err e;
    assert_int_equal(load_text(c, "NODE_ENV=production\nSHOPIFY_TOKEN=shpat_secret\nPORT=1\n", &e),
                     0);
    log_set_stream(NULL);
    assert_string_equal(config_get(c, "PORT"), "1");
    char out[4096] = {0};
    rewind(logf);
    size_t n = fread(out, 1, sizeof out - 1, logf);
    fclose(logf);
    out[n] = '\0';
    assert_non_null(strstr(out, "\"key\":\"NODE_ENV\""));
    assert_non_null(strstr(out, "\"key\":\"SHOPIFY_TOKEN\""));
    assert_non_null(strstr(out, "\"line\":\"2\""));
    assert_null(strstr(out, "shpat_secret"));
    assert_null(strstr(out, "production"));
    config_free(c);
}

static void test_env_file_malformed_lines(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"PORT=1\n# ok\nJUSTTEXT\n", ":3: expected KEY=VALUE"},
        {"1PORT=2\n", ":1: expected KEY=VALUE"},
        {"=value\n", ":1: expected KEY=VALUE"},
        {"PORT 3000\n", ":1: expected KEY=VALUE"},
        {"PORT-X=1\n", ":1: expected KEY=VALUE"},
        {"export\n", ":1: expected KEY=VALUE"},
        {"\n\nSMTP_PASS=\"unterminated\n", ":3: unterminated double-quoted value"},
        {"SMTP_PASS='unterminated\n", ":1: unterminated single-quoted value"},
        {"SMTP_PASS='x' y\n", ":1: unexpected text after the closing quote"},
        {"SMTP_PASS=\"x\"y\n", ":1: unexpected text after the closing quote"},
        {"SMTP_PASS=\"ends with backslash\\\"\n", ":1: unterminated double-quoted value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config *c = config_new();
        err e;
        err_clear(&e);
        char *path = write_env_file(bad[i].text);
        assert_int_equal(config_load_env_file(c, path, true, &e), F3_EINVAL);
        if (!strstr(e.msg, bad[i].want) || strncmp(e.msg, path, strlen(path)) != 0)
            fail_msg("for %s got '%s', want '%s'", bad[i].text, e.msg, bad[i].want);
        remove_env_file(path);
        config_free(c);
    }
    /* A NUL byte in the file is an error too. */
    char *path = write_env_file("PORT=1\n");
    FILE *f = fopen(path, "ab");
    fwrite("HOST=a\0b\n", 1, 9, f);
    fclose(f);
    config *c = config_new();
    err e;
    assert_int_equal(config_load_env_file(c, path, true, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, ":2: line contains a NUL byte"));
    remove_env_file(path);
    config_free(c);
}

static void test_env_file_missing_or_unreadable(void **state)
{
    (void)state;
    config *c = config_new();
    err e;
    char *dir = f3test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/absent.env", dir);
    assert_int_equal(config_load_env_file(c, path, false, &e), 0);
    assert_int_equal(config_load_env_file(c, path, true, &e), F3_ENOTFOUND);
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(config_load_env_file(c, dir, true, &e), F3_EIO); /* a directory */
    assert_non_null(strstr(e.msg, dir));
    assert_int_equal(config_load_env_file(c, NULL, false, &e), F3_EINVAL);
    f3test_rmtree(dir);
    free(dir);
    config_free(c);
}

static void test_database_url_resolution(void **state)
{
    (void)state;
    static const struct {
        const char *data_dir, *url, *want;
    } cases[] = {
        {NULL, NULL, "sqlite:./data/f3connect.db"},
        {"/var/lib/f3", NULL, "sqlite:/var/lib/f3/f3connect.db"},
        {"/var/lib/f3//", NULL, "sqlite:/var/lib/f3/f3connect.db"},
        {"/", NULL, "sqlite:/f3connect.db"},
        {"/ignored", "postgres://f3:pw@db:5432/f3", "postgres://f3:pw@db:5432/f3"},
        {NULL, "postgresql://db/f3", "postgresql://db/f3"},
        {NULL, "sqlite:/tmp/x.db", "sqlite:/tmp/x.db"},
        {NULL, "sqlite:relative.db", "sqlite:relative.db"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config *c = config_new();
        err e;
        buf out;
        buf_init(&out, 0);
        if (cases[i].data_dir)
            config_set_flag(c, "data-dir", cases[i].data_dir, &e);
        if (cases[i].url)
            config_set_flag(c, "database-url", cases[i].url, &e);
        assert_int_equal(config_database_url(c, &out, &e), 0);
        assert_string_equal(buf_cstr(&out), cases[i].want);
        buf_free(&out);
        config_free(c);
    }
    static const char *bad[] = {"mysql://db/f3", "sqlite:", "file:/x.db", "/plain/path.db",
                                "postgres:/db"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config *c = config_new();
        err e;
        buf out;
        buf_init(&out, 0);
        buf_puts(&out, "keep");
        config_set_flag(c, "database-url", bad[i], &e);
        assert_int_equal(config_database_url(c, &out, &e), F3_EINVAL);
        assert_true(strncmp(e.msg, "DATABASE_URL: ", 14) == 0);
        assert_string_equal(buf_cstr(&out), "keep");
        buf_free(&out);
        config_free(c);
    }
}

static void test_typed_getters_fall_back_when_invalid(void **state)
{
    (void)state;
    config *c = config_new();
    err e;
    config_set_flag(c, "smtp-secure", "on", &e);
    config_set_flag(c, "notifications-enabled", "TRUE", &e);
    assert_true(config_get_bool(c, "SMTP_SECURE"));
    assert_true(config_get_bool(c, "NOTIFICATIONS_ENABLED"));
    config_set_flag(c, "smtp-secure", "perhaps", &e);
    assert_false(config_get_bool(c, "SMTP_SECURE")); /* the default */
    config_set_flag(c, "http-threads", "lots", &e);
    assert_int_equal(config_get_int(c, "HTTP_THREADS"), 4);
    config_set_flag(c, "http-threads", "999", &e); /* out of bounds */
    assert_int_equal(config_get_int(c, "HTTP_THREADS"), 4);
    config_free(c);
}

static void test_describe(void **state)
{
    (void)state;
    config *c = config_new();
    err e;
    const char *const envp[] = {"SESSION_SECRET=very-secret-value",
                                "REDIS_URL=redis://:redispw@cache:6379", "SMTP_USER=multi\nline",
                                "HTTP_THREADS=0", NULL};
    load_environ(c, envp);
    config_set_flag(c, "port", "8080", &e);
    buf out;
    buf_init(&out, 0);
    buf_puts(&out, "> ");
    assert_int_equal(config_describe(c, &out), 0);
    const char *s = buf_cstr(&out);
    assert_true(strncmp(s, "> PORT=8080 (flag)\n", 19) == 0);
    assert_non_null(strstr(s, "\nHOST=0.0.0.0 (default)\n"));
    assert_non_null(strstr(s, "\nSESSION_SECRET=**** (env)\n"));
    assert_non_null(strstr(s, "\nINTERNAL_API_KEY= (unset)\n"));
    assert_non_null(strstr(s, "\nENCRYPTION_KEY= (unset)\n"));
    assert_non_null(strstr(s, "\nREDIS_URL=redis://:****@cache:6379 (env)\n"));
    assert_non_null(strstr(s, "\nSMTP_USER=multi\\nline (env)\n"));
    assert_non_null(strstr(s, "\nDATABASE_URL= (unset; using sqlite:./data/f3connect.db)\n"));
    assert_non_null(
        strstr(s, "\nHTTP_THREADS=0 (env) INVALID: must be an integer between 1 and 256\n"));
    assert_null(strstr(s, "very-secret-value"));
    assert_null(strstr(s, "redispw"));
    /* One line per key. */
    size_t lines = 0;
    for (const char *p = s; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, config_key_count);
    buf_free(&out);
    config_free(c);
}

static void test_reference_markdown(void **state)
{
    (void)state;
    buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    assert_int_equal(config_reference_markdown(&a), 0);
    assert_int_equal(config_reference_markdown(&b), 0);
    assert_string_equal(buf_cstr(&a), buf_cstr(&b));
    const char *s = buf_cstr(&a);
    assert_true(strncmp(s, "### Server\n\n| Key | Default | Description |\n| --- | --- | --- |\n",
                        63) == 0);
    const char *groups[] = {"### Server", "### Storage", "### Security", "### Notifications",
                            "### Services"};
    const char *prev = s;
    for (size_t i = 0; i < 5; i++) {
        const char *g = strstr(s, groups[i]);
        assert_non_null(g);
        assert_true(g >= prev); /* in table order */
        prev = g;
    }
    assert_non_null(strstr(s, "| `PORT` | `3000` | TCP port"));
    assert_non_null(strstr(s, "| `REDIS_URL` | (none) |"));
    assert_non_null(strstr(s, "One of `trace`, `debug`, `info`, `warn`, `error`, `fatal` or "
                              "`silent`."));
    assert_non_null(strstr(s, "Secret: never logged or shown."));
    for (size_t i = 0; i < config_key_count; i++) {
        char cell[80];
        snprintf(cell, sizeof cell, "| `%s` |", config_keys[i].name);
        const char *hit = strstr(s, cell);
        assert_non_null(hit);
        assert_null(strstr(hit + 1, cell)); /* exactly once */
    }
    /* Every table row has exactly four unescaped pipes. */
    for (const char *line = s; *line;) {
        const char *nl = strchr(line, '\n');
        if (strncmp(line, "| `", 3) == 0) {
            int pipes = 0;
            for (const char *p = line; p < nl; p++)
                pipes += *p == '|' && p[-1] != '\\';
            assert_int_equal(pipes, 4);
        }
        line = nl + 1;
    }
    buf_free(&a);
    buf_free(&b);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_sane),
        cmocka_unit_test(test_defaults_are_valid_for_their_types),
        cmocka_unit_test(test_precedence_flag_env_dotenv_default),
        cmocka_unit_test(test_environ_takes_only_known_keys),
        cmocka_unit_test(test_flags_map_to_keys),
        cmocka_unit_test(test_good_values_of_every_type),
        cmocka_unit_test(test_bad_values_name_the_key),
        cmocka_unit_test(test_validation_masks_secrets_and_url_passwords),
        cmocka_unit_test(test_empty_values_count_as_unset),
        cmocka_unit_test(test_env_file_syntax),
        cmocka_unit_test(test_env_file_unknown_keys_warn_without_values),
        cmocka_unit_test(test_env_file_malformed_lines),
        cmocka_unit_test(test_env_file_missing_or_unreadable),
        cmocka_unit_test(test_database_url_resolution),
        cmocka_unit_test(test_typed_getters_fall_back_when_invalid),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_reference_markdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
