/* main.c - the fbl program: subcommand dispatch */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

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
