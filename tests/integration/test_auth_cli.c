/*
 * test_auth_cli.c - the real binary: `f3connect user add|passwd|list|remove`
 * (password from stdin, or generated and shown once on a terminal), and the
 * first start of `serve`, which creates an admin whose password appears on
 * stdout only, never in the log, and works for logging in.
 */
#include "support/f3test.h"
#include "support/f3test_http.h"
#include "support/f3test_proc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct run {
    int status; /* exit status */
    char *out;  /* stdout */
    char *err;  /* stderr */
} run;

static char *dir;
static char db_env[600];

/* Reads fd to EOF into a new string. */
static char *read_all(int fd)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    ssize_t n;
    while (s && (n = read(fd, s + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            char *bigger = realloc(s, cap * 2);
            if (!bigger)
                break;
            s = bigger;
            cap *= 2;
        }
    }
    if (s)
        s[len] = '\0';
    return s;
}

/* Runs `f3connect user ...` with `input` on stdin (a pipe), or with a terminal
 * on stdin when input is NULL. */
static void user_cmd(const char *input, const char *const *args, run *r)
{
    int in[2] = {-1, -1}, out[2], err[2];
    int master = -1;
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    if (input) {
        assert_int_equal(pipe(in), 0);
    } else {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        assert_true(master >= 0);
        assert_int_equal(grantpt(master), 0);
        assert_int_equal(unlockpt(master), 0);
    }
    const char *slave = input ? NULL : ptsname(master);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd0 = input ? in[0] : open(slave, O_RDWR);
        dup2(fd0, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        if (chdir(dir) != 0)
            _exit(126);
        putenv(db_env);
        putenv((char *)"LOG_LEVEL=debug");
        const char *argv[16] = {F3_BINARY, "user"};
        int n = 2;
        for (const char *const *a = args; *a && n < 15; a++)
            argv[n++] = *a;
        argv[n] = NULL;
        execv(F3_BINARY, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    if (input) {
        close(in[0]);
        assert_true(write(in[1], input, strlen(input)) == (ssize_t)strlen(input));
        close(in[1]);
    }
    r->out = read_all(out[0]);
    r->err = read_all(err[0]);
    close(out[0]);
    close(err[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (master >= 0)
        close(master);
}

static void run_free(run *r)
{
    free(r->out);
    free(r->err);
}

static int setup(void **state)
{
    (void)state;
    dir = f3test_tmpdir();
    snprintf(db_env, sizeof db_env, "DATABASE_URL=sqlite:%s/users.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    f3test_rmtree(dir);
    free(dir);
    return 0;
}

static void test_add_list_passwd_remove(void **state)
{
    (void)state;
    run r;
    const char *add[] = {"add",      "--email",  "Op@Shop.example", "--role",
                         "operator", "--tenant", "shop-two",        NULL};
    user_cmd("a long enough password\n", add, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "created user op@shop.example"));
    assert_null(strstr(r.out, "a long enough password"));
    assert_null(strstr(r.err, "a long enough password"));
    run_free(&r);

    user_cmd("a long enough password\n", add, &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "already exists"));
    run_free(&r);

    const char *list[] = {"list", NULL};
    user_cmd("", list, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "op@shop.example"));
    assert_non_null(strstr(r.out, "operator"));
    assert_null(strstr(r.out, "argon2"));
    run_free(&r);

    const char *passwd[] = {"passwd", "--email", "op@shop.example", NULL};
    user_cmd("short\n", passwd, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "password must have"));
    run_free(&r);
    user_cmd("another long password\n", passwd, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "password changed"));
    assert_null(strstr(r.err, "another long password"));
    run_free(&r);

    const char *remove[] = {"remove", "--email", "op@shop.example", NULL};
    user_cmd("", remove, &r);
    assert_int_equal(r.status, 0);
    run_free(&r);
    user_cmd("", list, &r);
    assert_null(strstr(r.out, "op@shop.example"));
    run_free(&r);
    user_cmd("", remove, &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no user"));
    run_free(&r);
}

static void test_generated_password_is_shown_once_on_a_terminal(void **state)
{
    (void)state;
    run r;
    const char *add[] = {"add", "--email", "viewer@shop.example", "--role", "viewer", NULL};
    user_cmd(NULL, add, &r);
    assert_int_equal(r.status, 0);
    const char *p = strstr(r.out, "password: ");
    assert_non_null(p);
    char pw[64];
    assert_int_equal(sscanf(p, "password: %63s", pw), 1);
    assert_true(strlen(pw) >= 20);
    assert_null(strstr(r.err, pw)); /* never in the log */
    run_free(&r);
}

static void test_misuse(void **state)
{
    (void)state;
    run r;
    const char *no_email[] = {"add", "--role", "viewer", NULL};
    user_cmd("a long enough password\n", no_email, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--email is required"));
    run_free(&r);
    const char *bad_role[] = {"add", "--email", "x@shop.example", "--role", "root", NULL};
    user_cmd("a long enough password\n", bad_role, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "role"));
    run_free(&r);
    const char *bad_email[] = {"add", "--email", "not-an-address", "--role", "viewer", NULL};
    user_cmd("a long enough password\n", bad_email, &r);
    assert_int_equal(r.status, 2);
    run_free(&r);
    const char *verb[] = {"promote", NULL};
    user_cmd("", verb, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "expected add, passwd, list or remove"));
    run_free(&r);
    const char *help[] = {"--help", NULL};
    user_cmd("", help, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "f3connect user add"));
    run_free(&r);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_first_start_creates_an_admin_shown_on_stdout_only(void **state)
{
    (void)state;
    char *d = f3test_tmpdir();
    int port = f3test_free_port();
    char port_env[32];
    snprintf(port_env, sizeof port_env, "PORT=%d", port);
    const char *argv[] = {"serve", NULL};
    const char *env[] = {port_env,
                         "HOST=127.0.0.1",
                         "LOG_LEVEL=trace",
                         "DATABASE_URL=",
                         "DATA_DIR=./data",
                         "ADMIN_EMAIL=boss@shop.example",
                         "APP_URL=http://app.test",
                         NULL};
    f3test_proc p;
    assert_int_equal(f3test_proc_start(&p, d, argv, env), 0);
    char *out = NULL, *pw_line = NULL;
    for (int waited = 0; waited < 15000 && !pw_line; waited += 50) {
        sleep_ms(50);
        free(out);
        out = f3test_slurp(p.out_path);
        pw_line = strstr(out, "password: ");
    }
    assert_non_null(pw_line);
    char pw[64];
    assert_int_equal(sscanf(pw_line, "password: %63s", pw), 1);
    assert_non_null(strstr(out, "boss@shop.example"));
    /* it works */
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        char body[200], req[512];
        snprintf(body, sizeof body, "{\"email\":\"boss@shop.example\",\"password\":\"%s\"}", pw);
        snprintf(req, sizeof req,
                 "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(body), body);
        f3test_http_response r = {0};
        if (f3test_http_request(port, req, &r) == 0)
            status = r.status;
        f3test_http_response_free(&r);
        if (status != 200)
            sleep_ms(50);
    }
    assert_int_equal(status, 200);
    f3test_proc_signal(&p, SIGTERM);
    assert_true(f3test_proc_wait(&p, 10000));
    char *log = f3test_slurp(p.err_path);
    assert_non_null(strstr(log, "first administrator created"));
    assert_null(strstr(log, pw));
    free(log);
    free(out);
    f3test_rmtree(d);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_list_passwd_remove),
        cmocka_unit_test(test_generated_password_is_shown_once_on_a_terminal),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_first_start_creates_an_admin_shown_on_stdout_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
