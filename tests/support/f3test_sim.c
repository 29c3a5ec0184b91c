/*
 * f3test_sim.c - simulator processes, webhook receivers and control calls for the
 * simulator tests (see f3test_sim.h).
 */
#include "support/f3test_sim.h"

#include "core/buf.h"
#include "http/client.h"
#include "http/response.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGS_MAX 48

/* Tries to start the simulator on a fresh port. 0 once it answers; 1 when it exited
 * first (its port may have gone to another test between the pick and its bind: try
 * again); -1 otherwise. */
static int sim_try_start(f3test_sim *s, const char **argv, size_t n, const char *ready_path)
{
    char port[16];
    s->port = f3test_free_port();
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    argv[n] = "--port";
    argv[n + 1] = port;
    argv[n + 2] = NULL;
    const char *envp[] = {"LOG_LEVEL=warn", NULL};
    if (f3test_proc_start(&s->proc, s->dir, argv, envp)) {
        fprintf(stderr, "cannot start the %s simulator\n", argv[1]);
        return -1;
    }
    if (f3test_wait_http_ok(s->port, ready_path, &s->proc, 30000) == 0)
        return 0;
    if (!f3test_proc_wait(&s->proc, 0)) {
        char *out = f3test_slurp(s->proc.out_path);
        fprintf(stderr, "the %s simulator on port %d is running but did not answer %s: %s\n",
                argv[1], s->port, ready_path, out);
        free(out);
        return -1;
    }
    char *out = f3test_slurp(s->proc.out_path);
    fprintf(stderr, "the %s simulator exited (%d) on port %d: %s\n", argv[1], s->proc.status,
            s->port, out);
    free(out);
    return 1;
}

int f3test_sim_start(f3test_sim *s, const char *const *args, const char *ready_path)
{
    const char *argv[ARGS_MAX + 4];
    size_t n = 0;
    argv[n++] = "sim";
    for (size_t i = 0; args[i] && n < ARGS_MAX; i++)
        argv[n++] = args[i];
    s->dir = f3test_tmpdir();
    if (!s->dir)
        return -1;
    int rc = 1;
    for (int attempt = 0; rc == 1 && attempt < 3; attempt++)
        rc = sim_try_start(s, argv, n, ready_path);
    return rc == 0 ? 0 : -1;
}

int f3test_sim_stop(f3test_sim *s)
{
    int rc = 0;
    if (s->proc.pid > 0) {
        f3test_proc_signal(&s->proc, SIGTERM);
        if (!f3test_proc_wait(&s->proc, 10000) || s->proc.status != 0) {
            char *text = f3test_slurp(s->proc.err_path);
            fprintf(stderr, "simulator did not exit cleanly on SIGTERM (%d): %s\n", s->proc.status,
                    text);
            free(text);
            rc = -1;
        }
        f3test_proc_kill(&s->proc);
    }
    if (s->dir)
        f3test_rmtree(s->dir);
    free(s->dir);
    s->dir = NULL;
    return rc;
}

json_t *f3test_sim_call(const f3test_sim *s, const char *method, const char *path, json_t *body,
                        long want)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    json_t *out = NULL;
    http_client_response rs;
    err e;
    err_clear(&e);
    http_client_json(method, url, NULL, body, 5000, &out, &rs, &e);
    json_decref(body);
    if (want ? rs.status != want : rs.status < 200 || rs.status > 299) {
        long got = rs.status;
        char text[512];
        snprintf(text, sizeof text, "%s", rs.body.data ? buf_cstr(&rs.body) : e.msg);
        http_client_response_free(&rs);
        json_decref(out);
        fail_msg("%s %s: %ld, wanted %ld: %s", method, path, got, want, text);
    }
    http_client_response_free(&rs);
    return out;
}

int f3test_receiver_start(f3test_receiver *r, const char *path, http_handler handler, void *records,
                          size_t record_size, size_t max)
{
    err e;
    err_clear(&e);
    *r = (f3test_receiver){.records = records, .record_size = record_size, .max = max};
    pthread_mutex_init(&r->lock, NULL);
    const http_route route = {"POST", path, handler, r, HTTP_ACCESS_PUBLIC};
    http_server_opts so = {.host = "127.0.0.1", .port = 0, .threads = 4};
    r->router = http_router_new();
    if (!r->router || http_router_add(r->router, &route, 1, &e) ||
        !(r->server = http_server_start(r->router, &so, &e))) {
        fprintf(stderr, "webhook receiver: %s\n", e.msg);
        return -1;
    }
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d%s", http_server_port(r->server), path);
    return 0;
}

void f3test_receiver_stop(f3test_receiver *r)
{
    http_server_stop(r->server);
    http_router_free(r->router);
    r->server = NULL;
    r->router = NULL;
}

int f3test_receiver_status(f3test_receiver *r)
{
    pthread_mutex_lock(&r->lock);
    int status = r->fail_next > 0 ? 500 : 200;
    if (r->fail_next > 0)
        r->fail_next--;
    long delay = r->delay_ms;
    if (++r->inflight > r->max_inflight)
        r->max_inflight = r->inflight;
    pthread_mutex_unlock(&r->lock);
    f3test_sleep_ms(delay);
    pthread_mutex_lock(&r->lock);
    r->inflight--;
    pthread_mutex_unlock(&r->lock);
    return status;
}

void f3test_receiver_keep(f3test_receiver *r, const void *record)
{
    pthread_mutex_lock(&r->lock);
    if ((size_t)r->n < r->max)
        memcpy((char *)r->records + (size_t)r->n++ * r->record_size, record, r->record_size);
    pthread_mutex_unlock(&r->lock);
}

int f3test_receiver_reply(http_response *res, int status)
{
    if (status != 200)
        return http_res_error(res, status, "receiver told to fail");
    return http_res_json(res, 200, json_pack("{s:b}", "ok", 1));
}

void f3test_receiver_reset(f3test_receiver *r, int fail_next)
{
    pthread_mutex_lock(&r->lock);
    r->n = 0;
    r->fail_next = fail_next;
    r->delay_ms = 0;
    r->max_inflight = 0;
    pthread_mutex_unlock(&r->lock);
}

int f3test_receiver_wait(f3test_receiver *r, int n, int timeout_ms)
{
    int got = 0;
    for (int waited = 0;; waited += 20) {
        pthread_mutex_lock(&r->lock);
        got = r->n;
        pthread_mutex_unlock(&r->lock);
        if (got >= n || waited >= timeout_ms)
            return got;
        f3test_sleep_ms(20);
    }
}

int f3test_sim_env_stop(f3test_sim_env *env)
{
    int rc = f3test_sim_stop(&env->sim);
    f3test_receiver_stop(&env->hook);
    return rc;
}
