/*
 * sim_cmd.c - `f3connect sim NAME ...`: picks the simulator named by the first argument
 * and hands it the rest. Each simulator's arguments are read in its own file
 * (sim_<name>_cmd.c); this file only knows their names.
 */
#include "app/commands.h"

#include <stdio.h>
#include <string.h>

typedef struct sim_entry {
    const char *name;
    int (*run)(int argc, char **argv);
} sim_entry;

static const sim_entry sims[] = {
    {"shopify", cmd_sim_shopify},
    {"simplyprint", cmd_sim_simplyprint},
    {"smtp", cmd_sim_smtp},
    {"sendcloud", cmd_sim_sendcloud},
};

int cmd_sim(int argc, char **argv)
{
    const char *name = argc >= 2 ? argv[1] : NULL;
    for (size_t i = 0; name && i < sizeof sims / sizeof sims[0]; i++)
        if (strcmp(name, sims[i].name) == 0)
            return sims[i].run(argc, argv);
    fputs("f3connect sim: which simulator? (", stderr);
    for (size_t i = 0; i < sizeof sims / sizeof sims[0]; i++)
        fprintf(stderr, "%s%s", i ? ", " : "", sims[i].name);
    fputs("); see 'f3connect sim --help'\n", stderr);
    return 2;
}
