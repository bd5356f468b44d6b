/* main.c - the fbl program: subcommand dispatch */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <glib.h>

#include "fbl/commands.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"parse", fbl_cmd_parse, "parse report mails into normalized JSON lines"},
    {"run", fbl_cmd_run, "watch mailboxes and store reports, all in one process"},
    {"watch", fbl_cmd_watch, "watch mailboxes and send their reports to sinks"},
    {"sink", fbl_cmd_sink, "receive reports from watchers and store them in PostgreSQL"},
    {"forward", fbl_cmd_forward, "send stored reports to the anti-spam vendors"},
    {"report", fbl_cmd_report, "print the headline tables for analysts"},
    {"prune", fbl_cmd_prune, "drop whole months of old data"},
    {"migrate", fbl_cmd_migrate, "apply the database schema migrations"},
    {"reparse", fbl_cmd_reparse, "re-run today's parsers over stored raw mail"},
    {"keygen", fbl_cmd_keygen, "make a CURVE key pair for encrypted watcher-sink links"},
    {"export", fbl_cmd_export,
     "write the blocklists (rbldnsd, rspamd, Postfix) or the locked accounts (Postfix)"},
    {"blocklist", fbl_cmd_blocklist, "explain why an IP or domain is or is not listed"},
    {"outbound", fbl_cmd_outbound, "load our users' send volumes, clear a locked account"},
};

/*
 * GLib converts what g_print() prints (GOption's --help) to the locale's
 * charset, and fbl never calls setlocale(): "[OPTION…]" came out as
 * "[OPTION?]". Our strings are UTF-8; print them as they are.
 */
static void print_utf8(const char *text)
{
    (void) fputs(text, stdout);
    (void) fflush(stdout);
}

/*
 * Keep the heap near what is in flight. glibc maps a large buffer (128 KiB and
 * up) with mmap only until the first one is freed; then it raises the threshold
 * to that size, and the buffers of large mails stay in the heaps of the parse
 * threads, each heap holding on to its largest mails. A fixed 1 MiB threshold
 * gives them back at free (peak RSS of a 5,000-mail backlog in `fbl run
 * --once`: 63-67 -> 52-53 MiB at the same CPU); the 8 MiB trim threshold keeps
 * the top of the heap, so small buffers do not fault pages in and out. Left
 * alone when the operator sets either through glibc's environment variables.
 */
static void tune_allocator(void)
{
#ifdef __GLIBC__
    if (getenv("MALLOC_MMAP_THRESHOLD_") != NULL || getenv("MALLOC_TRIM_THRESHOLD_") != NULL)
        return;
    (void) mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    (void) mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
#endif
}

static void usage(FILE *out)
{
    (void) fprintf(out, "Usage: fbl COMMAND [OPTION...]\n\n"
                        "Spam feedback-loop ingestion: report mails in, normalized reports out.\n\n"
                        "Commands:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        (void) fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    (void) fprintf(out, "\n'fbl COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    tune_allocator();
    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EX_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        (void) printf("fbl %s\n", FBL_VERSION);
        return EX_OK;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        /* GOption names the program after argv[0], which is the subcommand alone:
         * "Usage: run [OPTION…]". */
        g_autofree char *prgname = g_strconcat("fbl ", commands[i].name, NULL);
        g_set_prgname(prgname);
        (void) g_set_print_handler(print_utf8);
        return commands[i].run(argc - 1, argv + 1);
    }
    (void) fprintf(stderr, "fbl: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EX_USAGE;
}
