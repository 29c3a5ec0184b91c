/*
 * f3test.h - helpers shared by the test programs.
 */
#ifndef F3_TESTS_SUPPORT_H
#define F3_TESTS_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* Makes a fresh temporary directory for one test; caller frees the string. */
char *f3test_tmpdir(void);

/* Removes a directory tree made by f3test_tmpdir. */
void f3test_rmtree(const char *path);

/* Sleeps ms milliseconds, resuming after interruptions. */
void f3test_sleep_ms(long ms);

#endif
