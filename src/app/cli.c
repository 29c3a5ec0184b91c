/*
 * cli.c - verb dispatch for the f3connect binary.
 */
#include "app/cli.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int cli_main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "f3connect: libsodium failed to initialise\n");
        return 1;
    }
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        printf("f3connect %s\n", F3_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: f3connect <command>\n");
    return 2;
}
