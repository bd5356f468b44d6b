/*
 * cmd_daemons.c - `fbl watch`, `fbl sink` and `fbl run`: one skeleton for the
 * long-running subcommands (options, config, logs, signals), each filling in
 * only what is its own.
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <glib.h>
#include <zmq.h>

#include "fbl/config.h"
#include "fbl/daemon.h"
#include "fbl/log.h"
#include "fbl/sink_loop.h"
#include "fbl/watch.h"
#include "parsers/parse.h"

#define RUN_ENDPOINT "inproc://fbl-sink"

typedef enum { ROLE_WATCH = 1, ROLE_SINK = 2, ROLE_RUN = 3 } role;

typedef struct opts {
    char *config_file;
    char *db;
    char *bind;
    char *log_level;
    GStrv maildirs;
    GStrv connect;
    gboolean once;
    gboolean check_config;
    gboolean print_config;
} opts;

static void opts_clear(opts *o)
{
    g_free(o->config_file);
    g_free(o->db);
    g_free(o->bind);
    g_free(o->log_level);
    g_strfreev(o->maildirs);
    g_strfreev(o->connect);
}

static const char *summary(role r)
{
    switch (r) {
    case ROLE_WATCH:
        return "Watch Maildirs: parse every mail delivered into new/, send its reports to\n"
               "the sinks, and move it to cur/ once a sink has committed it.";
    case ROLE_SINK:
        return "Receive reports from watchers, store them in PostgreSQL in batches (one\n"
               "transaction each), and acknowledge each mail after its commit.";
    case ROLE_RUN:
        return "Watch, parse and store in one process: the watcher and the sink run as\n"
               "threads over inproc ZeroMQ. The embedded default for one machine.";
    }
    return "";
}

static bool parse_args(role r, int *argc, char ***argv, opts *o)
{
    GOptionEntry common[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config_file,
         "INI configuration file (default: $FBL_CONFIG, else built-in defaults)", "FILE"},
        {"log-level", 0, 0, G_OPTION_ARG_STRING, &o->log_level,
         "debug, info, notice, warning or error (overrides [log] level)", "LEVEL"},
        {"check-config", 0, 0, G_OPTION_ARG_NONE, &o->check_config,
         "Validate the configuration and exit", NULL},
        {"print-config", 0, 0, G_OPTION_ARG_NONE, &o->print_config,
         "Print every setting's effective value (defaults marked) and exit", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionEntry watch[] = {
        {"maildir", 'm', 0, G_OPTION_ARG_FILENAME_ARRAY, &o->maildirs,
         "A Maildir to watch, besides the configured ones (repeatable)", "PATH"},
        {"once", 0, 0, G_OPTION_ARG_NONE, &o->once,
         "Exit once new/ is empty and every mail is stored", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionEntry connect[] = {
        {"connect", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->connect,
         "Sink endpoint (repeatable; overrides [watch] connect)", "ENDPOINT"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionEntry sink[] = {
        {"db", 0, 0, G_OPTION_ARG_STRING, &o->db,
         "PostgreSQL conninfo (overrides [postgres] conninfo)", "CONNINFO"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionEntry bind[] = {
        {"bind", 0, 0, G_OPTION_ARG_STRING, &o->bind,
         "Endpoint to listen on (overrides [sink] bind)", "ENDPOINT"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, summary(r));
    g_option_context_set_description(
        ctx, "Exit status: 0 after a clean stop (SIGTERM, SIGINT), 64 usage error,\n"
             "69 a service could not be reached, 70 internal error, 78 configuration error.");
    g_option_context_add_main_entries(ctx, common, NULL);
    if (r & ROLE_WATCH)
        g_option_context_add_main_entries(ctx, watch, NULL);
    if (r == ROLE_WATCH)
        g_option_context_add_main_entries(ctx, connect, NULL);
    if (r & ROLE_SINK)
        g_option_context_add_main_entries(ctx, sink, NULL);
    if (r == ROLE_SINK)
        g_option_context_add_main_entries(ctx, bind, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, argc, argv, &error)) {
        fprintf(stderr, "fbl %s: %s\n", (*argv)[0], error->message);
        return false;
    }
    if (*argc > 1) {
        fprintf(stderr, "fbl %s: unexpected argument '%s' (see --help)\n", (*argv)[0],
                (*argv)[1]);
        return false;
    }
    return true;
}

/* The config file, then the flags on top of it. */
static fbl_config *load_config(role r, opts *o, int *status)
{
    g_autoptr(GError) error = NULL;
    fbl_config *c = fbl_config_load(o->config_file, &error);
    if (c == NULL) {
        fprintf(stderr, "fbl: %s\n", error->message);
        *status = EX_CONFIG;
        return NULL;
    }
    if (o->log_level != NULL && !fbl_log_level_from_string(o->log_level, &c->log_level)) {
        fprintf(stderr, "fbl: unknown log level '%s'\n", o->log_level);
        fbl_config_free(c);
        *status = EX_USAGE;
        return NULL;
    }
    for (size_t i = 0; o->maildirs != NULL && o->maildirs[i] != NULL; i++)
        fbl_config_add_mailbox(c, o->maildirs[i]);
    if (o->connect != NULL) {
        g_strfreev(c->watch_connect);
        c->watch_connect = g_strdupv(o->connect);
    }
    if (o->db != NULL) {
        g_free(c->pg_conninfo);
        c->pg_conninfo = g_strdup(o->db);
    }
    if (o->bind != NULL) {
        g_free(c->sink_bind);
        c->sink_bind = g_strdup(o->bind);
    }
    if ((r & ROLE_WATCH) && c->mailboxes->len == 0 && !o->print_config) {
        fprintf(stderr, "fbl: no mailbox: give --maildir PATH or [mailbox:NAME] in the config\n");
        fbl_config_free(c);
        *status = EX_CONFIG;
        return NULL;
    }
    return c;
}

typedef struct sink_thread {
    fbl_sink_loop *loop;
    bool ok;
    GError *error;
} sink_thread;

static gpointer run_sink(gpointer data)
{
    sink_thread *t = data;
    t->ok = fbl_sink_loop_run(t->loop, &t->error);
    if (!t->ok)
        fbl_daemon_request_stop(); /* the watcher must not wait for acks that cannot come */
    return NULL;
}

static int log_stats_watch(fbl_watch *w)
{
    fbl_watch_stats st;
    fbl_watch_get_stats(w, &st);
    g_message("watch done: sent=%" G_GUINT64_FORMAT " resent=%" G_GUINT64_FORMAT
              " acked=%" G_GUINT64_FORMAT " reports=%" G_GUINT64_FORMAT
              " rejects=%" G_GUINT64_FORMAT " in_flight=%u",
              st.mails_sent, st.resends, st.acked, st.reports, st.rejects, st.in_flight);
    return EX_OK;
}

static int run_role(role r, fbl_config *c, bool once)
{
    fbl_parse_options po;
    fbl_config_parse_options(c, &po);
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_parser) parser = (r & ROLE_WATCH) ? fbl_parser_new(&po, &error) : NULL;
    if ((r & ROLE_WATCH) && parser == NULL) {
        fprintf(stderr, "fbl: %s\n", error->message);
        return EX_CONFIG;
    }
    void *ctx = zmq_ctx_new();
    int status = EX_OK;
    fbl_sink_loop *sink = NULL;
    fbl_watch *watch = NULL;
    GThread *thread = NULL;
    sink_thread st = {0};
    const char *endpoint = r == ROLE_RUN ? RUN_ENDPOINT : c->sink_bind;
    if (r & ROLE_SINK) {
        sink = fbl_sink_loop_new(c, ctx, endpoint, &error);
        if (sink == NULL) {
            g_critical("%s", error->message);
            status = EX_UNAVAILABLE;
            goto out;
        }
    }
    if (r & ROLE_WATCH) {
        const char *inproc[] = {RUN_ENDPOINT, NULL};
        const char *const *to = r == ROLE_RUN ? inproc : (const char *const *) c->watch_connect;
        watch = fbl_watch_new(c, parser, ctx, to, &error);
        if (watch == NULL) {
            g_critical("%s", error->message);
            status = EX_CONFIG;
            goto out;
        }
    }
    if (r == ROLE_SINK) {
        if (!fbl_sink_loop_run(sink, &error)) {
            g_critical("%s", error->message);
            status = EX_SOFTWARE;
        }
        goto out;
    }
    if (r == ROLE_RUN) {
        st.loop = sink;
        thread = g_thread_new("fbl-sink", run_sink, &st);
    }
    if (!fbl_watch_run(watch, c->watch_ack_timeout_ms, once, &error)) {
        g_critical("%s", error->message);
        status = EX_SOFTWARE;
    }
    log_stats_watch(watch);
out:
    fbl_daemon_request_stop(); /* after --once, or a failure: the sink thread ends too */
    if (thread != NULL) {
        g_thread_join(thread);
        if (!st.ok) {
            g_critical("%s", st.error != NULL ? st.error->message : "sink failed");
            status = EX_SOFTWARE;
        }
        g_clear_error(&st.error);
    }
    fbl_watch_free(watch);
    fbl_sink_loop_free(sink);
    zmq_ctx_term(ctx);
    return status;
}

static int daemon_main(role r, int argc, char **argv)
{
    opts o = {0};
    int status = EX_OK;
    if (!parse_args(r, &argc, &argv, &o)) {
        opts_clear(&o);
        return EX_USAGE;
    }
    fbl_config *c = load_config(r, &o, &status);
    if (c == NULL) {
        opts_clear(&o);
        return status;
    }
    if (o.print_config) {
        g_autoptr(GString) out = g_string_new(NULL);
        fbl_config_print(c, out);
        fputs(out->str, stdout);
    } else if (o.check_config) {
        printf("%s: configuration OK\n", c->file != NULL ? c->file : "(defaults)");
    } else {
        fbl_log_init(c->log_level);
        fbl_daemon_signals();
        fbl_parsers_init();
        status = run_role(r, c, o.once);
        fbl_parsers_shutdown();
    }
    fbl_config_free(c);
    opts_clear(&o);
    return status;
}

int fbl_cmd_watch(int argc, char **argv)
{
    return daemon_main(ROLE_WATCH, argc, argv);
}

int fbl_cmd_sink(int argc, char **argv)
{
    return daemon_main(ROLE_SINK, argc, argv);
}

int fbl_cmd_run(int argc, char **argv)
{
    return daemon_main(ROLE_RUN, argc, argv);
}
