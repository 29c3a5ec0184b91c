/*
 * cli.c - verb dispatch for the f3connect binary.
 *
 * Every verb is a row in cli_verbs; `f3connect help VERB` and `VERB --help`
 * print the same usage text. Exit codes: 0 ok, 1 runtime failure, 2 misuse.
 */
#include "app/cli.h"

#include "app/commands.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const cli_verb cli_verbs[] = {
    {"serve", cmd_serve, "start the platform (HTTP API, workers) on the configured store",
     "usage: f3connect serve [--env-file PATH] [--KEY-NAME VALUE ...]\n"
     "\n"
     "Starts f3connect. With no DATABASE_URL it runs embedded: one SQLite file at\n"
     "$DATA_DIR/f3connect.db (created on first start). Pending migrations are applied\n"
     "first. SIGTERM or SIGINT stops it gracefully: no new connections, in-flight\n"
     "requests finish within SHUTDOWN_TIMEOUT, then it exits 0.\n"
     "Any configuration key can be given as a flag: --port 8080, --log-level debug.\n"},
    {"migrate", cmd_migrate, "apply pending database migrations, or show their status",
     "usage: f3connect migrate [--status] [--env-file PATH] [--KEY-NAME VALUE ...]\n"
     "\n"
     "Applies every pending migration, each in its own transaction, and prints how\n"
     "many were applied. Safe to run again and concurrently. --status lists applied\n"
     "and pending migrations without changing anything.\n"},
    {"config", cmd_config, "check the configuration, or print its reference",
     "usage: f3connect config check [--env-file PATH] [--KEY-NAME VALUE ...]\n"
     "       f3connect config reference\n"
     "\n"
     "check:     validates every setting (environment, .env file, flags) and prints the\n"
     "           effective values and where each came from; secrets are masked.\n"
     "           Exits 1 if a value is invalid.\n"
     "reference: prints every configuration key with its default and meaning (markdown).\n"},
    {"events", cmd_events, "print the event catalog (markdown or AsyncAPI)",
     "usage: f3connect events catalog [--format markdown|asyncapi] [--output FILE]\n"
     "\n"
     "Prints every event of f3connect as declared in src/bus/catalog.c: markdown (the\n"
     "default; docs/events.md) or an AsyncAPI 3.0.0 document (docs/asyncapi.json).\n"
     "--output FILE writes the file instead of standard output.\n"},
    {"queues", cmd_queues, "inspect and operate the job queues (counts, jobs, retry, clean)",
     "usage: f3connect queues list\n"
     "       f3connect queues show QUEUE\n"
     "       f3connect queues jobs QUEUE [--state S] [--offset N] [--limit N]\n"
     "       f3connect queues job QUEUE ID\n"
     "       f3connect queues retry QUEUE (ID | --all)\n"
     "       f3connect queues remove QUEUE ID\n"
     "       f3connect queues clean QUEUE --state S --older-than DURATION [--limit N]\n"
     "       f3connect queues pause QUEUE | resume QUEUE\n"
     "       (each also takes --json, --env-file PATH and --KEY-NAME VALUE)\n"
     "\n"
     "Works directly on the configured database (DATABASE_URL, else the embedded SQLite\n"
     "file). Queues are named <eventType>@<service>. States: waiting, prioritized,\n"
     "delayed, active, completed, failed (the dead-letter set). jobs lists --limit jobs\n"
     "(default 50, at most 500) of --state (default waiting), newest first for completed\n"
     "and failed. retry moves a failed (or completed) job, or with --all every failed\n"
     "job, back to waiting with fresh attempts. remove refuses an active job. clean\n"
     "deletes jobs of a state finished (or created) more than DURATION ago (90000 = ms,\n"
     "500ms, 30s, 15m, 2h, 7d), at most --limit (default all). --json prints the JSON of\n"
     "the /admin/queues API instead of tables.\n"
     "Exit status: 0 ok, 1 not found or refused, 2 misuse.\n"},
    {"user", cmd_user, "add, list and remove dashboard users, change passwords",
     "usage: f3connect user add --email E --role admin|operator|viewer [--tenant T] "
     "[--super-admin]\n"
     "       f3connect user passwd --email E\n"
     "       f3connect user list [--tenant T]\n"
     "       f3connect user remove --email E [--tenant T]\n"
     "\n"
     "The password is read as one line from stdin when stdin is not a terminal;\n"
     "otherwise a random one is generated and printed once. --tenant takes a tenant id\n"
     "or slug (add creates a missing one); without it, add uses the default tenant and\n"
     "remove deletes the user from every tenant. passwd and remove end the user's sessions.\n"},
    {"sim", cmd_sim,
     "run a provider simulator (Shopify, SimplyPrint, Sendcloud, SMTP sink) for tests and the "
     "sandbox",
     "usage: f3connect sim shopify --secret S --token T [--port P] [--host H]\n"
     "                          [--webhook-url URL] [--retry-base-ms MS] [--max-retries N]\n"
     "                          [--client-id ID] [--shop DOMAIN] [--api-version V]\n"
     "                          [--bucket-size N] [--leak-rate N]\n"
     "\n"
     "Serves the Shopify Admin API subset f3connect uses (orders, fulfillment orders,\n"
     "fulfillments, token exchange) on 127.0.0.1:P, checking X-Shopify-Access-Token = T\n"
     "and rate limiting like Shopify (bucket 40, 2/s). Webhooks go to --webhook-url,\n"
     "signed with S, retried 8 times with backoff starting at --retry-base-ms (60000).\n"
     "Control endpoints under /_sim/ (see sim/shopify/README.md). Runs until SIGTERM.\n"
     "\n"
     "usage: f3connect sim simplyprint --api-key K [--company ID] [--port P] [--host H]\n"
     "                          [--webhook-url URL] [--webhook-secret S] [--printers N]\n"
     "                          [--print-ms MS] [--fail-rate P] [--cancel-rate P]\n"
     "                          [--latency-ms MS] [--seed N] [--retry-base-ms MS]\n"
     "                          [--max-retries N] [--drop-rate P] [--duplicate-rate P]\n"
     "\n"
     "Serves the SimplyPrint API subset f3connect uses (account/Test, queue, printers,\n"
     "job history, webhooks) under /ID/ (default 1000) on 127.0.0.1:P, checking\n"
     "X-API-KEY = K. N printers (default 2) print queue items copy by copy, each in\n"
     "--print-ms (default 30000; 0 = at once), failing or cancelled with the given\n"
     "probabilities. job.* webhooks go to --webhook-url with S in X-SP-Secret, some\n"
     "dropped or sent twice with the given probabilities.\n"
     "Control endpoints under /_sim/ (see sim/simplyprint/README.md). Runs until SIGTERM.\n"
     "\n"
     "usage: f3connect sim smtp [--port P] [--http-port P] [--host H] [--dir DIR]\n"
     "                          [--user U --pass P] [--mode accept|tempfail|refuse]\n"
     "\n"
     "An SMTP sink on H:P (plain TCP; EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA) that keeps\n"
     "every message in memory and, with --dir, as DIR/<id>.eml. With --user/--pass AUTH is\n"
     "required. Recipients @reject.invalid get 550; --mode tempfail answers 451, refuse\n"
     "closes the port. HTTP on --http-port: GET /_sim/messages, GET /_sim/messages/:id,\n"
     "DELETE /_sim/messages, POST /_sim/mode {\"mode\":...} (see sim/smtp/README.md).\n"
     "\n"
     "usage: f3connect sim sendcloud --public-key K --secret-key S [--port P] [--host H]\n"
     "                          [--webhook-url URL] [--webhook-secret W] [--step-ms MS]\n"
     "                          [--retry-base-ms MS] [--max-retries N]\n"
     "\n"
     "Serves the Sendcloud API subset f3connect uses (v3 shipments, v2 parcels, labels,\n"
     "cancel, statuses) with Basic auth K:S. Parcels move on every --step-ms (5000; -1 =\n"
     "only when told) and each change is sent to --webhook-url, signed with W (default S).\n"
     "Control endpoints under /_sim/ (see sim/sendcloud/README.md). Runs until SIGTERM.\n"},
    {"sandbox", cmd_sandbox,
     "run the whole loop on simulated Shopify, SimplyPrint, Sendcloud and SMTP with demo orders",
     "usage: f3connect sandbox [--orders N] [--rate R] [--until-done] [--print-ms MS]\n"
     "                         [--print-fail-rate P] [--cancel-rate P] [--unmapped-rate P]\n"
     "                         [--provider-faults P] [--duplicate-rate P] [--drop-rate P]\n"
     "                         [--kills N] [--timeout S] [--seed N]\n"
     "                         [--data-dir DIR] [--port P] [--database-url URL]\n"
     "                         [--summary-json FILE]\n"
     "\n"
     "Starts the platform (on PORT, default 3000) wired to simulators of Shopify, SimplyPrint,\n"
     "Sendcloud and an SMTP sink, creates a demo catalog and a demo user, and places demo\n"
     "orders (R per second; default 0.25, with --until-done 20): multi-item, some with unmapped\n"
     "SKUs (--unmapped-rate, 0.1), some cancelled soon after (--cancel-rate, 0.1). Printers\n"
     "take --print-ms per copy (3000; 300 with --until-done) and fail with --print-fail-rate\n"
     "(0.05); the demo operator reprints failed jobs. --provider-faults P: each second, with\n"
     "probability P, a provider answers its next calls with 429 or 5xx. --duplicate-rate and\n"
     "--drop-rate: shares of webhooks delivered twice or never (reconciliation heals those,\n"
     "within about a minute). --kills N: the\n"
     "platform is killed with SIGKILL N times at random moments and restarted.\n"
     "Everything lives in --data-dir (./sandbox-data; its database is new every run) or in\n"
     "--database-url (an empty PostgreSQL database).\n"
     "Without --until-done it runs until Ctrl-C, printing what the orders are doing. With\n"
     "--until-done --orders N it places N orders, waits until each has settled, checks the\n"
     "invariants (every order in its right final state, one fulfilment per fulfilled order, no\n"
     "print job or shipment twice, nothing queued or stuck, the event log complete), prints a\n"
     "summary and exits 0 only when every invariant holds (1 otherwise; --timeout S, 600).\n"
     "The summary includes fulfilled orders per second (first placed to last fulfilled) and\n"
     "the platform's peak RSS; --summary-json FILE also writes it as one JSON line.\n"},
    {"shopify", cmd_shopify, "import Shopify orders missed while f3connect was down",
     "usage: f3connect shopify backfill --since DATE [--env-file PATH] [--KEY-NAME VALUE ...]\n"
     "\n"
     "Imports every order of the configured shop (SHOPIFY_SHOP_DOMAIN, SHOPIFY_API_SECRET,\n"
     "SHOPIFY_ACCESS_TOKEN) updated since DATE (ISO-8601, e.g. 2026-11-01) through the\n"
     "Admin API, the way the orders service stores webhooks: new orders are stored and\n"
     "announced once, known ones updated or left alone, so running it again is safe.\n"
     "Prints the counts (fetched, created, updated, unchanged); shows progress on a\n"
     "terminal.\n"},
    {"version", cmd_version, "print the version", "usage: f3connect version\n"},
    {"help", cmd_help, "show help for a command", "usage: f3connect help [COMMAND]\n"},
};

#define CLI_VERB_COUNT (sizeof cli_verbs / sizeof cli_verbs[0])

static const cli_verb *cli_find(const char *name)
{
    for (size_t i = 0; i < CLI_VERB_COUNT; i++)
        if (strcmp(cli_verbs[i].name, name) == 0)
            return &cli_verbs[i];
    return NULL;
}

static void cli_print_overview(FILE *out)
{
    fprintf(out, "f3connect %s - Shopify to SimplyPrint to Sendcloud order automation\n\n",
            F3_VERSION);
    fprintf(out, "usage: f3connect <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < CLI_VERB_COUNT; i++)
        fprintf(out, "  %-10s %s\n", cli_verbs[i].name, cli_verbs[i].summary);
    fprintf(out, "\nRun 'f3connect help <command>' or 'f3connect <command> --help' for details.\n");
}

void cli_usage(const char *verb, FILE *out)
{
    const cli_verb *v = cli_find(verb);
    if (v)
        fputs(v->usage, out);
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        cli_print_overview(stdout);
        return 0;
    }
    if (argc > 2) {
        fprintf(stderr, "f3connect help: expected at most one command name\n");
        return 2;
    }
    const cli_verb *v = cli_find(argv[1]);
    if (!v) {
        fprintf(stderr, "f3connect help: unknown command '%s'\n", argv[1]);
        return 2;
    }
    fputs(v->usage, stdout);
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "f3connect version: takes no arguments\n");
        return 2;
    }
    printf("f3connect %s\n", F3_VERSION);
    return 0;
}

int cli_main(int argc, char **argv)
{
    /* Everything we create (the SQLite file, its WAL, data directories) holds
     * customer data and secrets: private to the owner. */
    umask(0077);
    if (sodium_init() < 0) {
        fprintf(stderr, "f3connect: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2) {
        cli_print_overview(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        cli_print_overview(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0)
        name = "version";
    const cli_verb *v = cli_find(name);
    if (!v) {
        fprintf(stderr, "f3connect: unknown command '%s' (see 'f3connect help')\n", name);
        return 2;
    }
    if (v->run != cmd_help && cli_wants_help(argc - 1, argv + 1)) {
        fputs(v->usage, stdout);
        return 0;
    }
    return v->run(argc - 1, argv + 1);
}
