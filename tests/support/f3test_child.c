/*
 * f3test_child.c - child processes of a test's own binary (see f3test_child.h).
 */
#include "support/f3test_child.h"

#include "support/f3test.h"

#include "core/clock.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CHILD_ARGS_MAX 16

int f3test_child_spawn(f3test_child *p, const char *log_path, const char *const *args)
{
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    snprintf(p->log, sizeof p->log, "%s", log_path);
    char role[] = "child";
    char *argv[CHILD_ARGS_MAX + 3] = {self, role};
    size_t k = 2;
    for (size_t i = 0; args && args[i]; i++) {
        if (i == CHILD_ARGS_MAX)
            return -1;
        argv[k++] = (char *)args[i];
    }
    argv[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, p->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int rc = posix_spawn(&p->pid, self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? 0 : -1;
}

void f3test_child_print_log(const f3test_child *p)
{
    FILE *fp = fopen(p->log, "r");
    if (!fp)
        return;
    char line[512];
    while (fgets(line, sizeof line, fp))
        fprintf(stderr, "child: %s", line);
    fclose(fp);
}

int f3test_child_reap(f3test_child *p, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (clock_mono_ms() >= end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            return -1;
        }
        f3test_sleep_ms(20);
    }
}

void f3test_touch(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0)
        close(fd);
}

bool f3test_wait_file(const char *dir, const char *name, int timeout_ms)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int64_t end = clock_mono_ms() + timeout_ms;
    struct stat st;
    while (stat(path, &st) != 0) {
        if (clock_mono_ms() >= end)
            return false;
        f3test_sleep_ms(10);
    }
    return true;
}
