/*
 * f3test_child.h - a test that plays more than one process: it re-executes its own binary
 * with the first argument "child" (the test's main dispatches on it), captures the child's
 * stderr in a log file, reaps it with a bound, and the two sides signal each other through
 * marker files in a shared directory.
 */
#ifndef F3_TESTS_CHILD_H
#define F3_TESTS_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct f3test_child {
    pid_t pid;
    char log[1024]; /* the child's stderr */
} f3test_child;

/* Starts this test binary as `self child args...` (args NULL-terminated), its stderr
 * appended to log_path. 0, or -1 if it could not be started. */
int f3test_child_spawn(f3test_child *p, const char *log_path, const char *const *args);

/* Prints the child's log to the test's stderr, line by line (for a failing test). */
void f3test_child_print_log(const f3test_child *p);

/* Waits up to timeout_ms for the child to exit: its exit status (128 + signal when a
 * signal ended it), or -1 when the bound was hit (the child is then killed and reaped). */
int f3test_child_reap(f3test_child *p, int timeout_ms);

/* Creates the empty marker file dir/name. */
void f3test_touch(const char *dir, const char *name);

/* Waits up to timeout_ms for dir/name to exist; true if it does. */
bool f3test_wait_file(const char *dir, const char *name, int timeout_ms);

#endif
