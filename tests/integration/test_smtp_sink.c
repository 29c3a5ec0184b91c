/*
 * test_smtp_sink.c - the SMTP sink run as its own process (`f3connect sim smtp`): mail sent
 * with the SMTP client (AUTH required, several recipients) is listed and served raw by the
 * HTTP control API and written as .eml files; wrong credentials are refused; the tempfail
 * and refuse modes fail sends transiently until mode accept; DELETE forgets the mail;
 * bad control requests get 400.
 */
#include "support/f3test.h"
#include "support/f3test_proc.h"

#include "core/json.h"
#include "http/client.h"
#include "integrations/mail/smtp.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    char *dir;
    char mail_dir[600];
    f3test_proc proc;
    int smtp_port, http_port;
    char base[64];
} env;

static int start(void **state)
{
    (void)state;
    env.dir = f3test_tmpdir();
    snprintf(env.mail_dir, sizeof env.mail_dir, "%s/mail", env.dir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", env.mail_dir);
    assert_int_equal(system(cmd), 0);
    env.smtp_port = f3test_free_port();
    env.http_port = f3test_free_port();
    char sp[16], hp[16];
    snprintf(sp, sizeof sp, "%d", env.smtp_port);
    snprintf(hp, sizeof hp, "%d", env.http_port);
    const char *argv[] = {"sim",        "smtp",   "--port", sp,       "--http-port", hp,  "--dir",
                          env.mail_dir, "--user", "mailer", "--pass", "s3cret",      NULL};
    assert_int_equal(f3test_proc_start(&env.proc, env.dir, argv, NULL), 0);
    snprintf(env.base, sizeof env.base, "http://127.0.0.1:%d", env.http_port);
    return f3test_wait_http_ok(env.http_port, "/_sim/messages", &env.proc, 15000);
}

static int stop(void **state)
{
    (void)state;
    f3test_proc_signal(&env.proc, SIGTERM);
    bool exited = f3test_proc_wait(&env.proc, 15000);
    f3test_proc_kill(&env.proc);
    f3test_rmtree(env.dir);
    free(env.dir);
    return exited && env.proc.status == 0 ? 0 : -1;
}

/* Calls the control API; returns the parsed answer (NULL for none) and the status. */
static json_t *control(const char *method, const char *path, json_t *body, long *status)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", env.base, path);
    json_t *out = NULL;
    http_client_response rs;
    err e = {0};
    http_client_json(method, url, NULL, body, 5000, &out, &rs, &e);
    *status = rs.status;
    http_client_response_free(&rs);
    json_decref(body);
    return out;
}

static int send_one(const char *user, const char *pass, const char *subject, err *e)
{
    static const char *const rcpts[] = {"ops@example.com", "boss@example.org", NULL};
    mail_message m = {.from = "f3@example.com",
                      .to = rcpts,
                      .subject = subject,
                      .text = "Hello from the test\n.leading dot\n",
                      .html = "<p>Hello</p>"};
    mail_smtp_opts o = {.host = "127.0.0.1",
                        .port = env.smtp_port,
                        .user = user,
                        .pass = pass,
                        .timeout_ms = 10000};
    return mail_send(&o, &m, e);
}

static void test_mail_is_listed_served_and_stored(void **state)
{
    (void)state;
    err e = {0};
    assert_int_equal(send_one("mailer", "s3cret", "Bestelling ✓", &e), 0);
    long status = 0;
    json_t *list = control("GET", "/_sim/messages", NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_array_size(list), 1);
    json_t *m = json_array_get(list, 0);
    const char *id = json_string_value(json_object_get(m, "id"));
    assert_non_null(id);
    assert_string_equal(json_string_value(json_object_get(m, "from")), "f3@example.com");
    assert_int_equal(json_array_size(json_object_get(m, "to")), 2);
    assert_string_equal(json_string_value(json_object_get(m, "authUser")), "mailer");
    assert_true(strncmp(json_string_value(json_object_get(m, "subject")), "=?UTF-8?B?", 10) == 0);

    char url[256];
    snprintf(url, sizeof url, "%s/_sim/messages/%s", env.base, id);
    http_client_request rq = {.method = "GET", .url = url};
    http_client_response rs;
    assert_int_equal(http_client_send(&rq, &rs, &e), 0);
    assert_string_equal(http_client_header(&rs, "Content-Type"), "message/rfc822");
    assert_non_null(strstr(buf_cstr(&rs.body), "\r\n.leading dot\r\n"));
    assert_non_null(strstr(buf_cstr(&rs.body), "MIME-Version: 1.0\r\n"));
    http_client_response_free(&rs);

    char path[700];
    snprintf(path, sizeof path, "%s/%s.eml", env.mail_dir, id);
    char *file = f3test_slurp(path);
    assert_non_null(strstr(file, "Hello from the test"));
    free(file);
    json_decref(list);

    json_decref(control("GET", "/_sim/messages/999", NULL, &status));
    assert_int_equal(status, 404);
    json_decref(control("DELETE", "/_sim/messages", NULL, &status));
    assert_int_equal(status, 204);
    list = control("GET", "/_sim/messages", NULL, &status);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void test_auth_is_required_and_checked(void **state)
{
    (void)state;
    err e = {0};
    assert_int_equal(send_one("mailer", "wrong", "x", &e), F3_EPERMANENT);
    assert_int_equal(send_one(NULL, NULL, "x", &e), F3_EPERMANENT); /* 530 */
    long status = 0;
    json_t *list = control("GET", "/_sim/messages", NULL, &status);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void test_failure_modes(void **state)
{
    (void)state;
    long status = 0;
    err e = {0};
    json_decref(control("POST", "/_sim/mode", json_pack("{s:s}", "mode", "tempfail"), &status));
    assert_int_equal(status, 200);
    assert_int_equal(send_one("mailer", "s3cret", "x", &e), F3_ETRANSIENT);
    json_decref(control("POST", "/_sim/mode", json_pack("{s:s}", "mode", "refuse"), &status));
    assert_int_equal(status, 200);
    assert_int_equal(send_one("mailer", "s3cret", "x", &e), F3_ETRANSIENT);
    assert_non_null(strstr(e.msg, "onnect")); /* "Couldn't connect" / "Failed to connect" */
    json_decref(control("POST", "/_sim/mode", json_pack("{s:s}", "mode", "sideways"), &status));
    assert_int_equal(status, 400);
    json_decref(control("POST", "/_sim/mode", json_pack("{s:s}", "mode", "accept"), &status));
    assert_int_equal(status, 200);
    assert_int_equal(send_one("mailer", "s3cret", "back", &e), 0);
    json_t *list = control("GET", "/_sim/messages", NULL, &status);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    json_decref(control("DELETE", "/_sim/messages", NULL, &status));
}

int main(void)
{
    http_client_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mail_is_listed_served_and_stored),
        cmocka_unit_test(test_auth_is_required_and_checked),
        cmocka_unit_test(test_failure_modes),
    };
    int rc = cmocka_run_group_tests(tests, start, stop);
    http_client_cleanup();
    return rc;
}
