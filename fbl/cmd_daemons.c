/*
 * cmd_daemons.c - `fbl watch`, `fbl sink`, `fbl forward` and `fbl run`: one
 * skeleton for the long-running subcommands (options, config, logs, signals),
 * each filling in only what is its own.
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <glib.h>
#include <zmq.h>

#include "fbl/config.h"
#include "fbl/curve.h"
#include "fbl/daemon.h"
#include "fbl/forward_loop.h"
#include "fbl/log.h"
#include "fbl/metrics.h"
#include "fbl/sink_loop.h"
#include "fbl/watch.h"
#include "parsers/parse.h"
#include "sink/pg.h"

#define RUN_ENDPOINT "inproc://fbl-sink"

typedef enum {
    ROLE_WATCH = 1,
    ROLE_SINK = 2,
    ROLE_FORWARD = 4,
    ROLE_RUN = ROLE_WATCH | ROLE_SINK | ROLE_FORWARD,
} role;

typedef struct opts {
    char *config_file;
    char *db;
    char *bind;
    char *log_level;
    char *metrics;
    GStrv maildirs;
    GStrv connect;
    gboolean once;
    gboolean check_config;
    gboolean print_config;
    gboolean print_table;
    gboolean status;
    gboolean retry_dead;
    char *vendor;
} opts;

static void opts_clear(opts *o)
{
    g_free(o->config_file);
    g_free(o->db);
    g_free(o->bind);
    g_free(o->log_level);
    g_free(o->metrics);
    g_strfreev(o->maildirs);
    g_strfreev(o->connect);
    g_free(o->vendor);
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
    case ROLE_FORWARD:
        return "Send stored reports to the configured anti-spam vendors ([vendor:NAME]):\n"
               "outbox rows in batches, retried with backoff, dead-lettered when refused.";
    case ROLE_RUN:
        return "Watch, parse, store and forward in one process: the watcher, the sink and\n"
               "the forwarder (when vendors are configured) run as threads over inproc\n"
               "ZeroMQ. The embedded default for one machine.";
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
        {"print-config-table", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &o->print_table,
         "Print the table of every key (group, key, unit, default, range, help) and exit", NULL},
        {"metrics", 0, 0, G_OPTION_ARG_STRING, &o->metrics,
         "Serve Prometheus metrics at http://ADDR:PORT/metrics (overrides [metrics])", "ADDR:PORT"},
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
    GOptionEntry forward[] = {
        {"status", 0, 0, G_OPTION_ARG_NONE, &o->status,
         "Print each vendor's pending, sent and dead rows and the lag, and exit", NULL},
        {"retry-dead", 0, 0, G_OPTION_ARG_NONE, &o->retry_dead,
         "Make dead letters pending again (all vendors, or --vendor), and exit", NULL},
        {"vendor", 0, 0, G_OPTION_ARG_STRING, &o->vendor, "Only this vendor (--retry-dead)",
         "NAME"},
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
    if (r & (ROLE_SINK | ROLE_FORWARD))
        g_option_context_add_main_entries(ctx, sink, NULL);
    if (r == ROLE_SINK)
        g_option_context_add_main_entries(ctx, bind, NULL);
    if (r == ROLE_FORWARD)
        g_option_context_add_main_entries(ctx, forward, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, argc, argv, &error)) {
        fprintf(stderr, "fbl %s: %s\n", (*argv)[0], error->message);
        return false;
    }
    if (*argc > 1) {
        fprintf(stderr, "fbl %s: unexpected argument '%s' (see --help)\n", (*argv)[0], (*argv)[1]);
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
        g_autoptr(GError) bad = NULL;
        if (!fbl_config_check_conninfo(o->db, &bad)) {
            fprintf(stderr, "fbl: --db %s\n", bad->message);
            fbl_config_free(c);
            *status = EX_USAGE;
            return NULL;
        }
        g_free(c->pg_conninfo);
        c->pg_conninfo = g_strdup(o->db);
    }
    if (o->metrics != NULL) {
        g_autoptr(GError) bad = NULL;
        if (!fbl_metrics_parse_listen(o->metrics, NULL, &bad)) {
            fprintf(stderr, "fbl: --metrics: %s\n", bad->message);
            fbl_config_free(c);
            *status = EX_USAGE;
            return NULL;
        }
        char **slot = r == ROLE_WATCH     ? &c->metrics_watch
                      : r == ROLE_SINK    ? &c->metrics_sink
                      : r == ROLE_FORWARD ? &c->metrics_forward
                                          : &c->metrics_listen;
        g_free(*slot);
        *slot = g_strdup(o->metrics);
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

/* A loop running in a thread of `fbl run`. */
typedef struct worker {
    const char *name;
    bool (*run)(void *loop, GError **error);
    void *loop;
    GThread *thread;
    bool ok;
    GError *error;
} worker;

static gpointer worker_main(gpointer data)
{
    worker *w = data;
    w->ok = w->run(w->loop, &w->error);
    if (!w->ok)
        fbl_daemon_request_stop(); /* the others must not wait for what cannot come */
    return NULL;
}

static bool run_sink(void *loop, GError **error)
{
    return fbl_sink_loop_run(loop, error);
}

static bool run_forward(void *loop, GError **error)
{
    return fbl_forward_loop_run(loop, error);
}

static void start_worker(worker *w, const char *name, bool (*run)(void *, GError **), void *loop)
{
    w->name = name;
    w->run = run;
    w->loop = loop;
    w->thread = g_thread_new(name, worker_main, w);
}

/* Join @w; false (and logged) when its loop failed. */
static bool join_worker(worker *w)
{
    if (w->thread == NULL)
        return true;
    g_thread_join(w->thread);
    w->thread = NULL;
    if (!w->ok)
        g_critical("%s: %s", w->name, w->error != NULL ? w->error->message : "failed");
    g_clear_error(&w->error);
    return w->ok;
}

static void log_stats_watch(fbl_watch *w)
{
    fbl_watch_stats st;
    fbl_watch_get_stats(w, &st);
    g_message("watch done: sent=%" G_GUINT64_FORMAT " resent=%" G_GUINT64_FORMAT
              " acked=%" G_GUINT64_FORMAT " reports=%" G_GUINT64_FORMAT
              " rejects=%" G_GUINT64_FORMAT " in_flight=%u skipped=%" G_GUINT64_FORMAT
              " retire_pending=%u",
              st.mails_sent, st.resends, st.acked, st.reports, st.rejects, st.in_flight, st.skipped,
              st.retire_pending);
}

/* The loops of one process, made before any of them runs. */
typedef struct loops {
    void *zmq;
    fbl_parser *parser;
    fbl_sink_loop *sink;
    fbl_watch *watch;
    fbl_forward_loop *forward;
} loops;

static void loops_clear(loops *l)
{
    fbl_watch_free(l->watch);
    fbl_sink_loop_free(l->sink);
    fbl_forward_loop_free(l->forward);
    fbl_parser_free(l->parser);
    if (l->zmq != NULL)
        zmq_ctx_term(l->zmq);
}

/* Make every loop @r needs; a sysexits code, EX_OK when all were made. */
static int make_loops(role r, const fbl_config *c, loops *l)
{
    GError *error = NULL;
    int status = EX_OK;
    l->zmq = zmq_ctx_new();
    if (r & ROLE_WATCH) {
        fbl_parse_options po;
        fbl_config_parse_options(c, &po);
        l->parser = fbl_parser_new(&po, &error);
        if (l->parser == NULL)
            status = EX_CONFIG;
    }
    if (status == EX_OK && (r & ROLE_SINK)) {
        /* Before the sink's first connection: its sessions set them. */
        fbl_pg_set_exempt_reporters((const char *const *) c->exempt_reporters);
        l->sink = fbl_sink_loop_new(c, l->zmq, r == ROLE_RUN ? RUN_ENDPOINT : c->sink_bind, &error);
        if (l->sink == NULL) /* key files and the plaintext rule are configuration */
            status = error->domain == FBL_CONFIG_ERROR || error->domain == FBL_CURVE_ERROR
                         ? EX_CONFIG
                         : EX_UNAVAILABLE;
    }
    /* `fbl run` forwards only when vendors are configured; `fbl forward` always. */
    if (status == EX_OK && (r == ROLE_FORWARD || (r == ROLE_RUN && c->vendors->len > 0))) {
        l->forward = fbl_forward_loop_new(c, &error);
        if (l->forward == NULL)
            status = EX_CONFIG;
    }
    if (status == EX_OK && (r & ROLE_WATCH)) {
        const char *inproc[] = {RUN_ENDPOINT, NULL};
        const char *const *to = r == ROLE_RUN ? inproc : (const char *const *) c->watch_connect;
        l->watch = fbl_watch_new(c, l->parser, l->zmq, to, &error);
        if (l->watch == NULL)
            status = EX_CONFIG;
    }
    if (error != NULL) {
        g_critical("%s", error->message);
        g_error_free(error);
    }
    return status;
}

static const char *role_name(role r)
{
    return r == ROLE_WATCH     ? "watch"
           : r == ROLE_SINK    ? "sink"
           : r == ROLE_FORWARD ? "forward"
                               : "run";
}

/* The checks of --check-config beyond the file itself: transport security and key files. */
static bool check_role(role r, const fbl_config *c, GError **error)
{
    if (r == ROLE_WATCH)
        return fbl_curve_check_watch(c, (const char *const *) c->watch_connect, error);
    if (r == ROLE_SINK)
        return fbl_curve_check_sink(c, c->sink_bind, error);
    if (r == ROLE_FORWARD || (r == ROLE_RUN && c->vendors->len > 0)) {
        /* The forwarder checks the [vendor:NAME] values (and reads their secrets). */
        fbl_forward_loop *f = fbl_forward_loop_new(c, error);
        fbl_forward_loop_free(f);
        return f != NULL;
    }
    return true;
}

/* The metrics endpoint of role @r: its own key, else [metrics] listen; NULL: none. */
static const char *metrics_listen(role r, const fbl_config *c)
{
    const char *own = r == ROLE_WATCH     ? c->metrics_watch
                      : r == ROLE_SINK    ? c->metrics_sink
                      : r == ROLE_FORWARD ? c->metrics_forward
                                          : NULL;
    return own != NULL ? own : c->metrics_listen;
}

/* The loops are made: serve the metrics, then tell systemd we are ready. */
static int announce(role r, const fbl_config *c)
{
    const char *listen = metrics_listen(r, c);
    GError *error = NULL;
    if (listen != NULL && !fbl_metrics_serve(listen, &error)) {
        g_critical("%s", error->message);
        g_error_free(error);
        return EX_UNAVAILABLE;
    }
    g_autofree char *status = g_strdup_printf("fbl %s %s: running", role_name(r), FBL_VERSION);
    g_message("%s", status);
    fbl_daemon_started(status);
    return EX_OK;
}

static int run_role(role r, const fbl_config *c, bool once)
{
    loops l = {0};
    int status = make_loops(r, c, &l);
    if (status == EX_OK)
        status = announce(r, c);
    GError *error = NULL;
    if (status == EX_OK && r == ROLE_SINK && !fbl_sink_loop_run(l.sink, &error))
        status = EX_SOFTWARE;
    if (status == EX_OK && r == ROLE_FORWARD && !fbl_forward_loop_run(l.forward, &error))
        status = EX_SOFTWARE;
    if (status == EX_OK && (r & ROLE_WATCH)) {
        worker sink = {0}, forward = {0};
        if (l.sink != NULL)
            start_worker(&sink, "fbl-sink", run_sink, l.sink);
        if (l.forward != NULL)
            start_worker(&forward, "fbl-forward", run_forward, l.forward);
        if (!fbl_watch_run(l.watch, c->watch_ack_timeout_ms, once, &error))
            status = EX_SOFTWARE;
        else if (once && fbl_watch_unretired(l.watch) > 0)
            status = EX_IOERR; /* stored, but left in new/: the watcher named them */
        log_stats_watch(l.watch);
        fbl_daemon_request_stop(); /* after --once, or a failure: the threads end too */
        if (!join_worker(&sink) || !join_worker(&forward))
            status = EX_SOFTWARE;
    }
    if (error != NULL) {
        g_critical("%s", error->message);
        g_error_free(error);
    }
    fbl_daemon_finished();
    fbl_metrics_stop();
    loops_clear(&l);
    if (status == EX_OK)
        g_message("fbl %s: stopped cleanly", role_name(r));
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
    g_autoptr(GError) error = NULL;
    if (o.print_table) {
        g_autoptr(GString) out = g_string_new(NULL);
        fbl_config_print_table(out);
        fputs(out->str, stdout);
    } else if (o.print_config) {
        g_autoptr(GString) out = g_string_new(NULL);
        fbl_config_print(c, out);
        fputs(out->str, stdout);
    } else if (o.check_config && !check_role(r, c, &error)) {
        fprintf(stderr, "fbl: %s\n", error->message);
        status = EX_CONFIG;
    } else if (o.check_config) {
        printf("%s: configuration OK\n", c->file != NULL ? c->file : "(defaults)");
    } else if (c->log_file != NULL && !fbl_log_open_file(c->log_file, &error)) {
        fprintf(stderr, "fbl: %s\n", error->message);
        status = EX_CANTCREAT;
    } else if (o.status) {
        fbl_log_init(c->log_level);
        status = fbl_forward_status(c, stdout);
    } else if (o.retry_dead) {
        fbl_log_init(c->log_level);
        status = fbl_forward_retry_dead(c, o.vendor, stdout);
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

int fbl_cmd_forward(int argc, char **argv)
{
    return daemon_main(ROLE_FORWARD, argc, argv);
}
