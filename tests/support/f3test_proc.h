/*
 * f3test_proc.h - run the real f3connect binary from a test: spawn with extra
 * environment, capture its output to files, signal it, wait with a bound.
 */
#ifndef F3_TESTS_PROC_H
#define F3_TESTS_PROC_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct f3test_proc {
    pid_t pid;
    char out_path[512]; /* stdout captured here */
    char err_path[512]; /* stderr captured here */
    int status;         /* exit status once reaped (-1 before; 128+sig if killed) */
} f3test_proc;

/* Starts F3_BINARY with argv (NULL-terminated, without argv[0]) in directory cwd,
 * environment = the test's own plus env ("KEY=value" strings, NULL-terminated).
 * Output files go into cwd. 0 on success. */
int f3test_proc_start(f3test_proc *p, const char *cwd, const char *const *argv,
                      const char *const *env);

/* Waits up to timeout_ms for exit; true if it exited (p->status set). */
bool f3test_proc_wait(f3test_proc *p, int timeout_ms);

/* Sends sig. */
void f3test_proc_signal(f3test_proc *p, int sig);

/* Kills (SIGKILL) and reaps if still running. */
void f3test_proc_kill(f3test_proc *p);

/* Runs to completion (bounded by timeout_ms, then killed); returns the exit status. */
int f3test_run(const char *cwd, const char *const *argv, const char *const *env, int timeout_ms,
               f3test_proc *p);

/* Contents of a captured file; caller frees. Never NULL ("" if unreadable). */
char *f3test_slurp(const char *path);

/* Polls GET path on 127.0.0.1:port until it answers 200, for at most timeout_ms.
 * 0 once it does; -1 if it never did or p (may be NULL) exited first, after printing
 * p's stderr so the test log says why. */
int f3test_wait_http_ok(int port, const char *path, f3test_proc *p, int timeout_ms);

/* A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range; -1 if
 * none was found. */
int f3test_free_port(void);

#endif
