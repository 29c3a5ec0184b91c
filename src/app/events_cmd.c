/*
 * events_cmd.c - `f3connect events catalog`: prints the event catalog generated from
 * src/bus/catalog.c, as markdown (docs/events.md) or AsyncAPI 3.0.0 (docs/asyncapi.json).
 *
 * It reads no configuration and touches no store: the output depends only on the
 * catalog, so the committed docs can be checked against it.
 */
#include "app/commands.h"

#include "bus/catalog_doc.h"
#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVENTS_USAGE_HINT "see 'f3connect events --help'"

typedef enum doc_format { DOC_MARKDOWN, DOC_ASYNCAPI } doc_format;

typedef struct catalog_args {
    doc_format format;
    const char *output; /* NULL = stdout */
} catalog_args;

/* Value of `--name value` or `--name=value` at argv[*i]; advances *i past a separate
 * value. NULL when argv[*i] is not this option; sets *missing when the value is absent. */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (!a || strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* 0 on success; 2 (after printing why) on misuse. argv[0] is "catalog". */
static int parse_catalog_args(int argc, char **argv, catalog_args *a)
{
    a->format = DOC_MARKDOWN;
    a->output = NULL;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = option_value(argc, argv, &i, "--format", &missing)) != NULL) {
            if (strcmp(v, "markdown") == 0) {
                a->format = DOC_MARKDOWN;
            } else if (strcmp(v, "asyncapi") == 0) {
                a->format = DOC_ASYNCAPI;
            } else {
                fprintf(stderr,
                        "f3connect events catalog: unknown format '%s' (markdown, asyncapi)\n", v);
                return 2;
            }
        } else if ((v = option_value(argc, argv, &i, "--output", &missing)) != NULL) {
            if (!*v) {
                fprintf(stderr, "f3connect events catalog: --output needs a file name\n");
                return 2;
            }
            a->output = v;
        } else if (missing) {
            fprintf(stderr, "f3connect events catalog: %s needs a value; " EVENTS_USAGE_HINT "\n",
                    argv[i]);
            return 2;
        } else {
            fprintf(stderr,
                    "f3connect events catalog: unexpected argument '%s'; " EVENTS_USAGE_HINT "\n",
                    argv[i]);
            return 2;
        }
    }
    return 0;
}

/* Writes text to path through a temporary file and a rename, so a reader never sees a
 * half-written document. Generated docs are not secret: mode 0644 whatever the umask. */
static int write_file(const char *path, const buf *text)
{
    buf tmp;
    buf_init(&tmp, 0);
    int fd = -1, rc = 1;
    if (buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid()) != 0) {
        fprintf(stderr, "f3connect events catalog: out of memory\n");
        goto out;
    }
    fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "f3connect events catalog: cannot create %s: %s\n", path, strerror(errno));
        goto out;
    }
    size_t done = 0;
    while (done < text->len) {
        ssize_t n = write(fd, text->data + done, text->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "f3connect events catalog: cannot write %s: %s\n", path,
                    strerror(errno));
            goto out;
        }
        done += (size_t)n;
    }
    if (fchmod(fd, 0644) != 0 || close(fd) != 0) {
        fd = -1;
        fprintf(stderr, "f3connect events catalog: cannot write %s: %s\n", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(buf_cstr(&tmp), path) != 0) {
        fprintf(stderr, "f3connect events catalog: cannot write %s: %s\n", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp.len)
        unlink(buf_cstr(&tmp));
    buf_free(&tmp);
    return rc;
}

static int events_catalog(int argc, char **argv)
{
    catalog_args a;
    int status = parse_catalog_args(argc, argv, &a);
    if (status)
        return status;
    buf out;
    buf_init(&out, 0);
    int rc = a.format == DOC_ASYNCAPI ? bus_catalog_asyncapi(&out) : bus_catalog_markdown(&out);
    if (rc < 0) {
        fprintf(stderr, "f3connect events catalog: cannot generate the catalog: %s\n",
                err_name(rc));
        status = 1;
    } else if (a.output) {
        status = write_file(a.output, &out);
    } else if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        fprintf(stderr, "f3connect events catalog: cannot write to standard output\n");
        status = 1;
    }
    buf_free(&out);
    return status;
}

int cmd_events(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "f3connect events: expected a subcommand (catalog); " EVENTS_USAGE_HINT "\n");
        return 2;
    }
    if (strcmp(argv[1], "catalog") == 0)
        return events_catalog(argc - 1, argv + 1);
    fprintf(stderr, "f3connect events: unknown subcommand '%s' (catalog); " EVENTS_USAGE_HINT "\n",
            argv[1]);
    return 2;
}
