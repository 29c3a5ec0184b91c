/*
 * cli.h - the f3connect command line: verb dispatch and per-verb help.
 */
#ifndef F3_APP_CLI_H
#define F3_APP_CLI_H

/* Runs the command named by argv[1]; returns the process exit status
 * (0 ok, 1 runtime failure, 2 misuse). */
int cli_main(int argc, char **argv);

#endif
