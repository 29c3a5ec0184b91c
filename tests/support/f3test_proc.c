/*
 * f3test_proc.c - spawning and supervising the f3connect binary in tests.
 */
#include "support/f3test_proc.h"

#include "support/f3test_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void child_exec(const char *cwd, const char *const *argv, const char *const *env,
                       const f3test_proc *p)
{
    if (chdir(cwd) != 0)
        _exit(126);
    int out = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int errfd = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || errfd < 0)
        _exit(126);
    dup2(out, 1);
    dup2(errfd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
        dup2(devnull, 0);
    for (const char *const *e = env; e && *e; e++)
        putenv((char *)*e);
    const char *args[64];
    int n = 0;
    args[n++] = F3_BINARY;
    for (const char *const *a = argv; a && *a && n < 63; a++)
        args[n++] = *a;
    args[n] = NULL;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(F3_BINARY, (char *const *)args);
    _exit(127);
}

int f3test_proc_start(f3test_proc *p, const char *cwd, const char *const *argv,
                      const char *const *env)
{
    static int seq;
    seq++;
    /* p is an out-parameter: callers may hand in an uninitialised struct. */
    // cppcheck-suppress ctuuninitvar
    snprintf(p->out_path, sizeof p->out_path, "%s/proc%d.out", cwd, seq);
    snprintf(p->err_path, sizeof p->err_path, "%s/proc%d.err", cwd, seq);
    p->status = -1;
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0)
        child_exec(cwd, argv, env, p);
    return 0;
}

static void record_status(f3test_proc *p, int ws)
{
    p->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    p->pid = 0;
}

bool f3test_proc_wait(f3test_proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return true;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        int ws;
        pid_t r = waitpid(p->pid, &ws, WNOHANG);
        if (r == p->pid) {
            record_status(p, ws);
            return true;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

void f3test_proc_signal(f3test_proc *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

void f3test_proc_kill(f3test_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    int ws;
    if (waitpid(p->pid, &ws, 0) == p->pid)
        record_status(p, ws);
}

int f3test_run(const char *cwd, const char *const *argv, const char *const *env, int timeout_ms,
               f3test_proc *p)
{
    if (f3test_proc_start(p, cwd, argv, env) != 0)
        return -1;
    if (!f3test_proc_wait(p, timeout_ms))
        f3test_proc_kill(p);
    return p->status;
}

char *f3test_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc(n > 0 ? (size_t)n + 1 : 1);
    size_t got = n > 0 ? fread(s, 1, (size_t)n, f) : 0;
    s[got] = '\0';
    fclose(f);
    return s;
}

/* The low end of the kernel's ephemeral port range (bind to port 0 hands those out). */
static int ephemeral_low(void)
{
    long low = 0;
    char line[64];
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fgets(line, sizeof line, f))
            low = strtol(line, NULL, 10);
        fclose(f);
    }
    return low > 12000 && low < 65536 ? (int)low : 32768;
}

/* A random port below the ephemeral range, free when tried: a port the kernel picked for
 * a bind to port 0 and we let go could go to the next such bind (the simulators' servers,
 * other tests) before the platform takes it; below the range only an explicit pick can. */
int f3test_free_port(void)
{
    static _Thread_local unsigned int seed;
    if (!seed)
        seed = (unsigned int)getpid() * 2654435761u ^ (unsigned int)time(NULL);
    int low = 10000, span = ephemeral_low() - low;
    for (int tries = 0; tries < 200; tries++) {
        int port = low + (int)(rand_r(&seed) % (unsigned int)span);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return port;
    }
    return -1;
}

int f3test_wait_http_ok(int port, const char *path, f3test_proc *p, int timeout_ms)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        f3test_http_response r = {0};
        int ok = f3test_http_request(port, req, &r) == 0 && r.status == 200;
        f3test_http_response_free(&r);
        if (ok)
            return 0;
        if (p && f3test_proc_wait(p, 0))
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (p) {
        char *text = f3test_slurp(p->err_path);
        fprintf(stderr, "process did not answer %s on port %d: %s\n", path, port, text);
        free(text);
    }
    return -1;
}
