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

#include "fbl/cmd_forward.h"
#include "fbl/config.h"
#include "fbl/curve.h"
#include "fbl/daemon.h"
#include "fbl/blocklist_loop.h"
#include "fbl/forward_loop.h"
#ifdef FBL_HAVE_IMAP
#include "fbl/imap_watch.h"
#endif
#include "fbl/log.h"
#include "fbl/metrics.h"
#include "fbl/report_loop.h"
#include "fbl/sink_loop.h"
#include "fbl/watch.h"
#include "parsers/parse.h"
#include "sink/pg.h"

#define RUN_ENDPOINT "inproc://fbl-sink"
/* PostgreSQL at start: the first pause between tries, and the step of a pause. */
#define RETRY_INITIAL_MS 250
#define PAUSE_STEP_MS    100

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
    GPtrArray *connect; /* --connect ENDPOINT values (fbl watch) */
    gboolean once;
    gboolean check_config;
    gboolean connect_imap;       /* --connect alone: --check-config logs in to IMAP mailboxes */
    bool connect_takes_endpoint; /* fbl watch: --connect ENDPOINT names a sink */
    gboolean print_config;
    gboolean print_table;
    gboolean status;
    gboolean retry_dead;
    gboolean backfill;
    char *vendor;
    char *since, *until;
} opts;

static void opts_clear(opts *o)
{
    g_free(o->config_file);
    g_free(o->db);
    g_free(o->bind);
    g_free(o->log_level);
    g_free(o->metrics);
    g_strfreev(o->maildirs);
    if (o->connect != NULL)
        g_ptr_array_unref(o->connect);
    g_free(o->vendor);
    g_free(o->since);
    g_free(o->until);
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

/*
 * --connect: with an ENDPOINT (fbl watch only) a sink to connect to; alone,
 * --check-config's request to log in to the IMAP mailboxes too.
 */
static gboolean on_connect(const char *name, const char *value, gpointer data, GError **error)
{
    opts *o = data;
    if (value == NULL) {
        o->connect_imap = TRUE;
        return TRUE;
    }
    if (!o->connect_takes_endpoint) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "%s takes no ENDPOINT here: fbl run's sink is in the process (fbl watch "
                    "connects to sinks)",
                    name);
        return FALSE;
    }
    if (o->connect == NULL)
        o->connect = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(o->connect, g_strdup(value));
    return TRUE;
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
         "Exit once every mailbox (new/, IMAP folder) is empty and every mail is stored", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionEntry connect_watch[] = {
        {"connect", 0, G_OPTION_FLAG_OPTIONAL_ARG, G_OPTION_ARG_CALLBACK, (void *) on_connect,
         "Sink endpoint (repeatable; overrides [watch] connect); without ENDPOINT, with "
         "--check-config: also log in to every IMAP mailbox (TLS, certificate, login, folder)",
         "ENDPOINT"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionEntry connect_run[] = {
        {"connect", 0, G_OPTION_FLAG_OPTIONAL_ARG, G_OPTION_ARG_CALLBACK, (void *) on_connect,
         "With --check-config: also log in to every IMAP mailbox (TLS, certificate, login, "
         "folder)",
         NULL},
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
        {"vendor", 0, 0, G_OPTION_ARG_STRING, &o->vendor,
         "Only this vendor (--retry-dead); the vendor to backfill (--backfill)", "NAME"},
        {"backfill", 0, 0, G_OPTION_ARG_NONE, &o->backfill,
         "Give --vendor outbox rows for the stored reports it has none for (--since, "
         "--until), and exit",
         NULL},
        {"since", 0, 0, G_OPTION_ARG_STRING, &o->since,
         "--backfill: reports delivered at or after T (epoch seconds, ISO-8601, or an age: 7d)",
         "T"},
        {"until", 0, 0, G_OPTION_ARG_STRING, &o->until,
         "--backfill: reports delivered before T (default: no end)", "T"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionEntry bind[] = {
        {"bind", 0, 0, G_OPTION_ARG_STRING, &o->bind,
         "Endpoint to listen on (overrides [sink] bind)", "ENDPOINT"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    /* The main group carries @o to on_connect(). */
    g_option_context_set_main_group(ctx, g_option_group_new(NULL, NULL, NULL, o, NULL));
    g_option_context_set_summary(ctx, summary(r));
    g_option_context_set_description(
        ctx, "Exit status: 0 after a clean stop (SIGTERM, SIGINT), 64 usage error, 69 a\n"
             "service could not be reached (--once: PostgreSQL, for [postgres]\n"
             "unreachable_timeout), 70 internal error, 74 --once left stored mails in new/,\n"
             "77 PostgreSQL lacks a role or right the schema needs (the error gives the SQL\n"
             "to run) or an IMAP server refused the login, 78 configuration error, a failed\n"
             "migration or a missing IMAP folder; an untrusted IMAP certificate is 69.");
    g_option_context_add_main_entries(ctx, common, NULL);
    if (r & ROLE_WATCH)
        g_option_context_add_main_entries(ctx, watch, NULL);
    o->connect_takes_endpoint = r == ROLE_WATCH;
    if (r == ROLE_WATCH || r == ROLE_RUN)
        g_option_context_add_main_entries(ctx, r == ROLE_WATCH ? connect_watch : connect_run, NULL);
    if (r & (ROLE_SINK | ROLE_FORWARD))
        g_option_context_add_main_entries(ctx, sink, NULL);
    if (r == ROLE_SINK)
        g_option_context_add_main_entries(ctx, bind, NULL);
    if (r == ROLE_FORWARD)
        g_option_context_add_main_entries(ctx, forward, NULL);
    return fbl_cmd_parse_options(ctx, argc, argv, 0);
}

static const char *role_name(role r)
{
    return r == ROLE_WATCH     ? "watch"
           : r == ROLE_SINK    ? "sink"
           : r == ROLE_FORWARD ? "forward"
                               : "run";
}

/* --metrics: the key of role @r (fbl run: [metrics] listen). */
static char **metrics_slot(role r, fbl_config *c)
{
    return r == ROLE_WATCH     ? &c->metrics_watch
           : r == ROLE_SINK    ? &c->metrics_sink
           : r == ROLE_FORWARD ? &c->metrics_forward
                               : &c->metrics_listen;
}

/* The flags on top of the file; false with @error (a usage error). */
static bool apply_flags(role r, const opts *o, fbl_config *c, GError **error)
{
    if (o->connect_imap && !o->check_config) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_VALUE,
                    "--connect without an ENDPOINT goes with --check-config");
        return false;
    }
    if (o->log_level != NULL && !fbl_log_level_from_string(o->log_level, &c->log_level)) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_VALUE, "unknown log level '%s'",
                    o->log_level);
        return false;
    }
    for (size_t i = 0; o->maildirs != NULL && o->maildirs[i] != NULL; i++)
        fbl_config_add_mailbox(c, o->maildirs[i]);
    if (o->connect != NULL) {
        g_strfreev(c->watch_connect);
        c->watch_connect = g_new0(char *, o->connect->len + 1);
        for (guint i = 0; i < o->connect->len; i++)
            c->watch_connect[i] = g_strdup(g_ptr_array_index(o->connect, i));
    }
    if (o->db != NULL && !fbl_config_set_conninfo(c, o->db, error))
        return false;
    if (o->metrics != NULL) {
        if (!fbl_metrics_parse_listen(o->metrics, NULL, error)) {
            g_prefix_error(error, "--metrics: ");
            return false;
        }
        char **slot = metrics_slot(r, c);
        g_free(*slot);
        *slot = g_strdup(o->metrics);
    }
    if (o->bind != NULL) {
        g_free(c->sink_bind);
        c->sink_bind = g_strdup(o->bind);
    }
    return true;
}

/* The config file, then the flags on top of it. */
static fbl_config *load_config(role r, opts *o, int *status)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_config) c = fbl_config_load(o->config_file, &error);
    if (c == NULL) {
        (void) fprintf(stderr, "fbl: %s\n", error->message);
        *status = EX_CONFIG;
        return NULL;
    }
    if (!apply_flags(r, o, c, &error)) {
        (void) fprintf(stderr, "fbl %s: %s\n", role_name(r), error->message);
        *status = EX_USAGE;
        return NULL;
    }
    if ((r & ROLE_WATCH) && c->mailboxes->len == 0 && !o->print_config) {
        (void) fprintf(stderr,
                       "fbl: no mailbox: give --maildir PATH or [mailbox:NAME] in the config\n");
        *status = EX_CONFIG;
        return NULL;
    }
    return g_steal_pointer(&c);
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

static bool run_blocklist(void *loop, GError **error)
{
    return fbl_blocklist_loop_run(loop, error);
}

static bool run_report(void *loop, GError **error)
{
    return fbl_report_loop_run(loop, error);
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
    GPtrArray *imap; /* fbl_imap_watch *, one per IMAP mailbox (FBL_HAVE_IMAP) */
    fbl_forward_loop *forward;
    fbl_blocklist_loop *blocklist; /* the sink's re-export; NULL when no file is wanted */
    fbl_report_loop *report;       /* the sink's HTML page; NULL when not wanted */
} loops;

static void loops_clear(loops *l)
{
    if (l->imap != NULL)
        g_ptr_array_unref(l->imap);
    fbl_watch_free(l->watch);
    fbl_sink_loop_free(l->sink);
    fbl_forward_loop_free(l->forward);
    fbl_blocklist_loop_free(l->blocklist);
    fbl_report_loop_free(l->report);
    fbl_parser_free(l->parser);
    if (l->zmq != NULL)
        zmq_ctx_term(l->zmq);
}

/* The sink's loop: bound, PostgreSQL not yet connected; a sysexits code. */
static int make_sink(role r, const fbl_config *c, loops *l, GError **error)
{
    /* Before the sink's first connection: its sessions set them. */
    fbl_pg_set_exempt_reporters((const char *const *) c->exempt_reporters);
    l->sink = fbl_sink_loop_new(c, l->zmq, r == ROLE_RUN ? RUN_ENDPOINT : c->sink_bind, error);
    if (l->sink != NULL && fbl_blocklist_loop_wanted(c)) {
        l->blocklist = fbl_blocklist_loop_new(c, error);
        if (l->blocklist == NULL)
            return EX_CONFIG; /* the allowlist file */
    }
    if (l->sink != NULL && fbl_report_loop_wanted(c))
        l->report = fbl_report_loop_new(c);
    if (l->sink != NULL)
        return EX_OK;
    /* Key files and the plaintext rule are configuration; a bind that fails is not. */
    bool config = (*error)->domain == FBL_CONFIG_ERROR || (*error)->domain == FBL_CURVE_ERROR;
    return config ? EX_CONFIG : EX_UNAVAILABLE;
}

/* The watcher's loop and its parser; a sysexits code. */
static int make_watch(role r, const fbl_config *c, loops *l, GError **error)
{
    fbl_parse_options po;
    fbl_config_parse_options(c, &po);
    l->parser = fbl_parser_new(&po, error);
    if (l->parser == NULL)
        return EX_CONFIG;
    const char *inproc[] = {RUN_ENDPOINT, NULL};
    const char *const *to = r == ROLE_RUN ? inproc : (const char *const *) c->watch_connect;
    l->watch = fbl_watch_new(c, l->parser, l->zmq, to, error);
    if (l->watch == NULL)
        return EX_CONFIG;
#ifdef FBL_HAVE_IMAP
    l->imap = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_imap_watch_free);
    for (guint i = 0; i < c->mailboxes->len; i++) {
        const fbl_mailbox_config *m = g_ptr_array_index(c->mailboxes, i);
        fbl_imap_watch *iw =
            m->imap != NULL ? fbl_imap_watch_new(c, m, l->parser, l->zmq, to, error) : NULL;
        if (m->imap != NULL && iw == NULL)
            return (*error)->domain == FBL_CONFIG_ERROR ? EX_CONFIG : EX_UNAVAILABLE;
        if (iw != NULL)
            g_ptr_array_add(l->imap, iw);
    }
#endif
    return EX_OK;
}

/* Make every loop @r needs; a sysexits code, EX_OK when all were made. */
static int make_loops(role r, const fbl_config *c, loops *l)
{
    GError *error = NULL;
    int status = EX_OK;
    l->zmq = zmq_ctx_new();
    if (r & ROLE_SINK)
        status = make_sink(r, c, l, &error);
    /* `fbl run` forwards only when vendors are configured; `fbl forward` always. */
    if (status == EX_OK && (r == ROLE_FORWARD || (r == ROLE_RUN && c->vendors->len > 0))) {
        l->forward = fbl_forward_loop_new(c, &error);
        status = l->forward != NULL ? EX_OK : EX_CONFIG;
    }
    if (status == EX_OK && (r & ROLE_WATCH))
        status = make_watch(r, c, l, &error);
    if (error != NULL) {
        g_critical("%s", error->message);
        g_error_free(error);
    }
    return status;
}

/* The key files and the transport rule, and the vendors (their URLs and secret files). */
static bool check_peers(role r, const fbl_config *c, GError **error)
{
    if (r == ROLE_WATCH)
        return fbl_curve_check_watch(c, (const char *const *) c->watch_connect, error);
    if (r == ROLE_SINK)
        return fbl_curve_check_sink(c, c->sink_bind, error);
    if (r == ROLE_FORWARD || (r == ROLE_RUN && c->vendors->len > 0)) {
        /* The forwarder reads the files [vendor:NAME] keys name (secrets, CA bundle). */
        fbl_forward_loop *f = fbl_forward_loop_new(c, error);
        fbl_forward_loop_free(f);
        return f != NULL;
    }
    return true;
}

/*
 * The IMAP mailboxes: with @all (--check-config) their secret files and URLs,
 * and with @login a login to each; start-up checks them as it makes the loops.
 */
static bool check_imap(const fbl_config *c, bool all, bool login, GError **error)
{
    for (guint i = 0; i < c->mailboxes->len; i++) {
        const fbl_mailbox_config *m = g_ptr_array_index(c->mailboxes, i);
        if (m->imap == NULL)
            continue;
#ifdef FBL_HAVE_IMAP
        if (all && !fbl_imap_watch_check(c, m, login, error))
            return false;
#else
        (void) all;
        (void) login;
        g_autofree char *group = g_strconcat("mailbox:", m->name, NULL);
        return fbl_config_error_at(c, group, "imap", error,
                                   "this fbl was built without IMAP support (libetpan)");
#endif
    }
    return true;
}

/*
 * check_role - what needs neither a socket nor PostgreSQL: the key files and
 * the transport rule, the vendors, the log file, the Maildirs. --check-config
 * runs them all (@all); start-up runs the Maildir checks here, so that their
 * errors name the file and the line, and the rest as it makes the loops. The
 * file itself (every value, the networks, the conninfo) was checked when it
 * was loaded.
 */
static bool check_role(role r, const fbl_config *c, bool all, bool login, GError **error)
{
    if (all && (!check_peers(r, c, error) || !fbl_config_check_log_file(c, error)))
        return false;
    if (all && (r & ROLE_SINK) && fbl_blocklist_loop_wanted(c)) {
        /* The re-export reads the allowlist file at start. */
        fbl_blocklist_loop *b = fbl_blocklist_loop_new(c, error);
        fbl_blocklist_loop_free(b);
        if (b == NULL)
            return false;
    }
    return !(r & ROLE_WATCH) ||
           (fbl_config_check_mailboxes(c, error) && check_imap(c, all, login, error));
}

/* Sleep @ms in short steps, telling the watchdog we live; false when a stop was requested. */
static bool pause_ms(int64_t ms)
{
    int64_t until = fbl_now_ms() + ms;
    while (!fbl_daemon_stopping()) {
        fbl_daemon_alive(FBL_DAEMON_LOOP_SINK);
        int64_t left = until - fbl_now_ms();
        if (left <= 0)
            return true;
        g_usleep((gulong) MIN(left, PAUSE_STEP_MS) * 1000);
    }
    return false;
}

/* One try: connect, and apply the migrations this binary carries that the database lacks. */
static bool migrate_once(const fbl_config *c, GError **error)
{
    fbl_pg_options o = {.conninfo = c->pg_conninfo, .store_raw = c->sink_store_raw};
    g_autoptr(fbl_pg) pg = fbl_pg_new(&o, error);
    return pg != NULL && fbl_pg_migrate(pg, NULL, error);
}

/* The sysexits code of a permanent fbl_pg error met before any mail was taken. */
static int database_refused(const GError *error)
{
    g_critical("PostgreSQL cannot take mail, and retrying will not help: %s", error->message);
    return error->code == FBL_PG_ERROR_PRIVILEGE ? EX_NOPERM : EX_CONFIG;
}

/*
 * prepare_database - before the sink takes any mail: PostgreSQL answers and
 * the schema is migrated. A permanent error (a migration fails, a right is
 * missing) ends the process at once with the error, which says what to run:
 * retrying cannot help until an administrator acts. While PostgreSQL is
 * unreachable (down, or refusing the login), retry with backoff: for ever as
 * a daemon (systemd has it READY, watchers keep their mail), and for
 * [postgres] unreachable_timeout with --once, which then exits 69.
 *
 * Returns: a sysexits code; EX_OK also when a stop was requested meanwhile.
 */
static int prepare_database(role r, const fbl_config *c, bool once)
{
    if (!(r & ROLE_SINK))
        return EX_OK;
    int64_t start = fbl_now_ms();
    unsigned backoff = 0;
    g_autofree char *last = NULL; /* the error logged last: a new one is a warning again */
    for (;;) {
        g_autoptr(GError) error = NULL;
        if (migrate_once(c, &error))
            return EX_OK;
        fbl_metrics_pg_error("sink", fbl_pg_error_is_transient(error));
        if (!fbl_pg_error_is_transient(error))
            return database_refused(error);
        int64_t left = (int64_t) c->pg_unreachable_timeout_ms - (fbl_now_ms() - start);
        if (once && left <= 0) {
            g_critical("giving up on PostgreSQL after %ums ([postgres] unreachable_timeout): %s",
                       c->pg_unreachable_timeout_ms, error->message);
            return EX_UNAVAILABLE;
        }
        if (g_strcmp0(last, error->message) != 0 && once)
            g_warning("PostgreSQL does not answer or refuses the login; retrying for up to %ums "
                      "([postgres] unreachable_timeout): %s",
                      c->pg_unreachable_timeout_ms, error->message);
        else if (g_strcmp0(last, error->message) != 0)
            g_warning("PostgreSQL does not answer or refuses the login; retrying until it does: "
                      "%s",
                      error->message);
        g_free(last);
        last = g_strdup(error->message);
        backoff = fbl_backoff_next(backoff, RETRY_INITIAL_MS, c->sink_retry_max_wait_ms);
        if (!pause_ms(once ? MIN((int64_t) backoff, left) : (int64_t) backoff))
            return EX_OK;
    }
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
    /* Its own series only: the role bits are fbl_metrics_role's. */
    fbl_metrics_set_roles((unsigned) r);
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

#ifdef FBL_HAVE_IMAP
static void start_imap(loops *l, bool once)
{
    for (guint i = 0; i < l->imap->len; i++)
        fbl_imap_watch_start(g_ptr_array_index(l->imap, i), once);
}

/* Wait for the IMAP mailboxes' threads: the first failure's status, else @status. */
static int join_imap(loops *l, int status)
{
    for (guint i = 0; i < l->imap->len; i++) {
        int s = fbl_imap_watch_join(g_ptr_array_index(l->imap, i));
        if (status == EX_OK)
            status = s;
    }
    return status;
}
#endif

/*
 * `fbl run` and `fbl watch`: the Maildir watcher here; each IMAP mailbox, the
 * sink and the forwarder (run) in threads. With --once the IMAP threads end
 * when their folders are empty; otherwise a stop (or an IMAP mailbox's
 * permanent error, which requests one) ends them.
 */
static int run_watch(const fbl_config *c, loops *l, bool once, GError **error)
{
    int status = EX_OK;
    worker sink = {0}, forward = {0}, blocklist = {0}, report = {0};
    if (l->sink != NULL)
        start_worker(&sink, "fbl-sink", run_sink, l->sink);
    if (l->blocklist != NULL && !once)
        start_worker(&blocklist, "fbl-blocklist", run_blocklist, l->blocklist);
    if (l->report != NULL && !once)
        start_worker(&report, "fbl-report", run_report, l->report);
    if (l->forward != NULL)
        start_worker(&forward, "fbl-forward", run_forward, l->forward);
#ifdef FBL_HAVE_IMAP
    start_imap(l, once);
#endif
    if (!fbl_watch_run(l->watch, c->watch_ack_timeout_ms, once, error))
        status = EX_SOFTWARE;
    else if (once && fbl_watch_unretired(l->watch) > 0)
        status = EX_IOERR; /* stored, but left in new/: the watcher named them */
    log_stats_watch(l->watch);
    if (!once)
        fbl_daemon_request_stop(); /* a failure: the threads end too */
#ifdef FBL_HAVE_IMAP
    status = join_imap(l, status);
#endif
    fbl_daemon_request_stop(); /* after --once, or a failure: the threads end too */
    if (!join_worker(&sink) || !join_worker(&forward) || !join_worker(&blocklist) ||
        !join_worker(&report))
        status = EX_SOFTWARE;
    return status;
}

/* Run the loops of @r until a stop (or, with --once, until new/ is done). */
static int run_loops(role r, const fbl_config *c, loops *l, bool once)
{
    GError *error = NULL;
    int status = EX_OK;
    worker blocklist = {0}, report = {0};
    if (r == ROLE_SINK && l->blocklist != NULL)
        start_worker(&blocklist, "fbl-blocklist", run_blocklist, l->blocklist);
    if (r == ROLE_SINK && l->report != NULL)
        start_worker(&report, "fbl-report", run_report, l->report);
    if (r & ROLE_WATCH)
        status = run_watch(c, l, once, &error);
    else if (!(r == ROLE_SINK ? fbl_sink_loop_run(l->sink, &error)
                              : fbl_forward_loop_run(l->forward, &error)))
        status = EX_SOFTWARE;
    fbl_daemon_request_stop(); /* the re-export and the page end with the sink */
    if (!join_worker(&blocklist) || !join_worker(&report))
        status = EX_SOFTWARE;
    if (error != NULL) {
        g_critical("%s", error->message);
        g_error_free(error);
    }
    return status;
}

static int run_role(role r, const fbl_config *c, bool once)
{
    loops l = {0};
    int status = make_loops(r, c, &l);
    if (status == EX_OK)
        status = announce(r, c);
    if (status == EX_OK)
        status = prepare_database(r, c, once);
    if (status == EX_OK && !fbl_daemon_stopping())
        status = run_loops(r, c, &l, once);
    fbl_daemon_finished();
    fbl_metrics_stop();
    loops_clear(&l);
    if (status == EX_OK)
        g_message("fbl %s: stopped cleanly", role_name(r));
    return status;
}

/* What the flags ask for, once the configuration is loaded: a sysexits code. */
static int act(role r, const opts *o, const fbl_config *c)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    if (o->print_table || o->print_config) {
        if (o->print_table)
            fbl_config_print_table(out);
        else
            fbl_config_print(c, role_name(r), out);
        (void) fputs(out->str, stdout);
        return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
    }
    g_autoptr(GError) bad_target = NULL;
    if (!fbl_log_check_target(c->log_target, c->log_file, &bad_target)) {
        (void) fbl_config_error_at(c, "log", "target", &error, "%s", bad_target->message);
        (void) fprintf(stderr, "fbl: %s\n", error->message);
        return EX_CONFIG;
    }
    if (!check_role(r, c, o->check_config, o->connect_imap, &error)) {
        (void) fprintf(stderr, "fbl: %s\n", error->message);
        return EX_CONFIG;
    }
    if (o->check_config) {
        (void) printf("%s: configuration OK\n", c->file != NULL ? c->file : "(defaults)");
        return EX_OK;
    }
    if (!fbl_log_setup(role_name(r), c->log_target, c->log_file, &error)) {
        (void) fprintf(stderr, "fbl: %s\n", error->message);
        return EX_CANTCREAT;
    }
    fbl_log_init(c->log_level);
    if (o->status)
        return fbl_forward_status(c, stdout);
    if (o->retry_dead)
        return fbl_forward_retry_dead(c, o->vendor, stdout);
    if (o->backfill)
        return fbl_forward_backfill(c, o->vendor, o->since, o->until, stdout);
    fbl_daemon_signals();
    fbl_parsers_init();
    int status = run_role(r, c, o->once);
    fbl_parsers_shutdown();
    return status;
}

static int daemon_main(role r, int argc, char **argv)
{
    opts o = {0};
    int status = EX_USAGE;
    if (parse_args(r, &argc, &argv, &o)) {
        fbl_config *c = load_config(r, &o, &status);
        if (c != NULL)
            status = act(r, &o, c);
        fbl_config_free(c);
    }
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
