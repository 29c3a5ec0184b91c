/*
 * sandbox_child.c - the platform process of the sandbox: `f3connect serve` started from
 * this very binary with the sandbox's environment, its output going to a log file,
 * waited for until it answers /health/ready, stopped with SIGTERM - or killed with
 * SIGKILL and started again by the chaos mode.
 *
 * The platform runs in a process of its own so that killing it is a real crash: the
 * simulators, the order generator and the checker (in the sandbox process) live on.
 * Every reap goes through wait4 so that the platform's peak memory over all its starts
 * can be reported (bench/loop). Nothing here talks to the platform beyond /health/ready.
 */
#include "app/sandbox_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "http/client.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The process environment with the sandbox's settings in place of any the caller had.
 * Caller frees the array (not the strings: they belong to environ and to env). */
static char **child_environ(const sandbox_env *env)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **out = calloc(n + env->count + 1, sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t name_len = strcspn(environ[i], "=");
        bool overridden = false;
        for (size_t j = 0; j < env->count && !overridden; j++)
            overridden = strncmp(env->vars[j], environ[i], name_len + 1) == 0;
        if (!overridden)
            out[k++] = environ[i];
    }
    for (size_t j = 0; j < env->count; j++)
        out[k++] = env->vars[j];
    return out;
}

int sandbox_child_start(sandbox_child *ch, const sandbox_env *env, err *e)
{
    char **envp = child_environ(env);
    if (!envp)
        return err_set(e, F3_ENOMEM, "out of memory");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, ch->log_path,
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    char *argv[] = {ch->binary, (char *)"serve", NULL};
    int rc = posix_spawn(&ch->pid, ch->binary, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    if (rc != 0) {
        ch->pid = 0;
        return err_set(e, F3_EIO, "cannot start %s serve: %s", ch->binary, strerror(rc));
    }
    ch->starts++;
    return 0;
}

/* waitpid that also keeps the largest ru_maxrss (kB on Linux) of the reaped runs. */
static pid_t reap(sandbox_child *ch, int *status, int options)
{
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t r = wait4(ch->pid, status, options, &ru);
    if (r == ch->pid && ru.ru_maxrss > ch->peak_rss_kb)
        ch->peak_rss_kb = ru.ru_maxrss;
    return r;
}

/* True once the child exited (reaped, pid cleared). */
static bool child_exited(sandbox_child *ch, int *status)
{
    if (ch->pid <= 0)
        return true;
    pid_t r = reap(ch, status, WNOHANG);
    if (r == ch->pid || (r < 0 && errno == ECHILD)) {
        ch->pid = 0;
        return true;
    }
    return false;
}

int sandbox_child_wait_ready(sandbox_child *ch, const char *url, int timeout_ms, err *e)
{
    int64_t deadline = clock_now_ms() + timeout_ms;
    while (clock_now_ms() < deadline) {
        int status = 0;
        if (child_exited(ch, &status))
            return err_set(e, F3_EIO, "the platform exited during start-up (status %d); see %s",
                           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                           ch->log_path);
        http_client_request rq = {.method = "GET", .url = url, .timeout_ms = 1000};
        err ignored;
        if (http_client_send(&rq, NULL, &ignored) == 0)
            return 0;
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    return err_set(e, F3_ETRANSIENT, "the platform did not become ready within %d ms; see %s",
                   timeout_ms, ch->log_path);
}

void sandbox_child_kill(sandbox_child *ch)
{
    if (ch->pid <= 0)
        return;
    kill(ch->pid, SIGKILL);
    int status = 0;
    while (reap(ch, &status, 0) < 0 && errno == EINTR) {
    }
    ch->pid = 0;
    ch->kills++;
}

int sandbox_child_stop(sandbox_child *ch, int timeout_ms)
{
    if (ch->pid <= 0)
        return 0;
    kill(ch->pid, SIGTERM);
    int64_t deadline = clock_now_ms() + timeout_ms;
    int status = 0;
    while (!child_exited(ch, &status)) {
        if (clock_now_ms() >= deadline) {
            log_warn("the platform did not stop in time; killed", "logFile", ch->log_path);
            sandbox_child_kill(ch);
            return F3_ETRANSIENT;
        }
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : F3_EIO;
}

/* VmHWM of a running process in kB, from /proc/<pid>/status; 0 when it cannot be read. */
static long running_peak_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long kb = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb > 0 ? kb : 0;
}

long sandbox_child_peak_rss_kb(const sandbox_child *ch)
{
    long now = ch->pid > 0 ? running_peak_kb(ch->pid) : 0;
    return now > ch->peak_rss_kb ? now : ch->peak_rss_kb;
}
