/* blocklist_loop.c - the sink's re-export of the blocklists (see blocklist_loop.h) */
#define G_LOG_DOMAIN "fbl-sink"
#include "fbl/blocklist_loop.h"

#include <string.h>

#include "fbl/blocklist.h"
#include "fbl/blocklist_export.h"
#include "fbl/commands.h"
#include "fbl/daemon.h"
#include "fbl/metrics.h"
#include "sink/blocklist_query.h"

/* How often the loop looks at the stop flag while it waits for the next turn. */
#define POLL_MS 200

/* The files of one kind. */
typedef struct kind_files {
    fbl_blocklist_kind kind;
    const char *path[3]; /* by fbl_export_format; NULL: not wanted */
    char *digest;        /* of the listed set last exported; NULL: none yet */
} kind_files;

struct fbl_blocklist_loop {
    const fbl_config *config;
    fbl_blocklist_policy *policy;
    fbl_blocklist_query *query; /* NULL while not connected */
    kind_files kinds[2];
    bool failing; /* the last turn failed: its line was logged */
};

static void set_kinds(fbl_blocklist_loop *l, const fbl_config *c)
{
    kind_files *ip = &l->kinds[FBL_BLOCKLIST_IP], *dom = &l->kinds[FBL_BLOCKLIST_DOMAIN];
    ip->kind = FBL_BLOCKLIST_IP;
    ip->path[FBL_EXPORT_RBLDNSD] = c->blocklist_ips_rbldnsd;
    ip->path[FBL_EXPORT_RSPAMD] = c->blocklist_ips_rspamd;
    ip->path[FBL_EXPORT_POSTFIX] = c->blocklist_ips_postfix;
    dom->kind = FBL_BLOCKLIST_DOMAIN;
    dom->path[FBL_EXPORT_RBLDNSD] = c->blocklist_domains_rbldnsd;
    dom->path[FBL_EXPORT_RSPAMD] = c->blocklist_domains_rspamd;
    dom->path[FBL_EXPORT_POSTFIX] = c->blocklist_domains_postfix;
}

static bool kind_wanted(const kind_files *k)
{
    for (size_t f = 0; f < G_N_ELEMENTS(k->path); f++) {
        if (k->path[f] != NULL)
            return true;
    }
    return false;
}

bool fbl_blocklist_loop_wanted(const fbl_config *c)
{
    fbl_blocklist_loop l = {0};
    set_kinds(&l, c);
    return kind_wanted(&l.kinds[0]) || kind_wanted(&l.kinds[1]);
}

fbl_blocklist_loop *fbl_blocklist_loop_new(const fbl_config *c, GError **error)
{
    g_autoptr(GError) local = NULL;
    fbl_blocklist_policy *p = fbl_blocklist_policy_from_config(c, 0, &local);
    if (p == NULL) {
        (void) fbl_config_error_at(c, "blocklist", "allowlist_file", error, "%s", local->message);
        return NULL;
    }
    fbl_blocklist_loop *l = g_new0(fbl_blocklist_loop, 1);
    l->config = c;
    l->policy = p;
    set_kinds(l, c);
    return l;
}

void fbl_blocklist_loop_free(fbl_blocklist_loop *l)
{
    if (l == NULL)
        return;
    fbl_blocklist_policy_free(l->policy);
    fbl_blocklist_query_free(l->query);
    for (size_t i = 0; i < G_N_ELEMENTS(l->kinds); i++)
        g_free(l->kinds[i].digest);
    g_free(l);
}

/* The SHA-256 of the sorted entries, one a line. */
static char *digest_of(const GPtrArray *entries)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    for (guint i = 0; i < entries->len; i++) {
        const char *e = g_ptr_array_index(entries, i);
        g_checksum_update(sum, (const guchar *) e, (gssize) strlen(e));
        g_checksum_update(sum, (const guchar *) "\n", 1);
    }
    return g_strdup(g_checksum_get_string(sum));
}

/* Write every file of @k for @entries; false (logged) when one failed. */
static bool write_files(fbl_blocklist_loop *l, const kind_files *k, const GPtrArray *entries)
{
    fbl_export_text text;
    fbl_cmd_export_text(l->config, &text);
    bool ok = true;
    for (size_t f = 0; f < G_N_ELEMENTS(k->path); f++) {
        g_autoptr(GError) error = NULL;
        if (k->path[f] != NULL &&
            !fbl_export_write(k->path[f], k->kind, (fbl_export_format) f, entries, &text, &error)) {
            g_critical("blocklist export: %s", error->message);
            ok = false;
        }
    }
    return ok;
}

/* One kind: compute, and write when the set changed. */
static bool export_kind(fbl_blocklist_loop *l, kind_files *k, gint64 now, GError **error)
{
    g_autoptr(GPtrArray) listed = NULL;
    if (!fbl_blocklist_listed(l->policy, l->query, k->kind, 0, now, &listed, error))
        return false;
    const char *kind = fbl_blocklist_kind_to_string(k->kind);
    fbl_metrics_blocklist_listed(kind, listed->len);
    g_autofree char *digest = digest_of(listed);
    if (k->digest != NULL && strcmp(k->digest, digest) == 0)
        return true;
    if (!write_files(l, k, listed))
        return true; /* logged; the digest stays, so the next turn tries again */
    g_free(k->digest);
    k->digest = g_steal_pointer(&digest);
    fbl_metrics_blocklist_exported(kind, (double) now);
    g_message("blocklist export: %u %s listed, files written", listed->len, kind);
    return true;
}

/* One turn: connect when needed, then each wanted kind. */
static void turn(fbl_blocklist_loop *l)
{
    g_autoptr(GError) error = NULL;
    if (l->query == NULL)
        l->query = fbl_blocklist_query_new(l->config->pg_conninfo, "fbl sink blocklist", &error);
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    for (size_t i = 0; l->query != NULL && i < G_N_ELEMENTS(l->kinds); i++) {
        if (kind_wanted(&l->kinds[i]) && !export_kind(l, &l->kinds[i], now, &error))
            break;
    }
    if (error == NULL) {
        l->failing = false;
        return;
    }
    fbl_metrics_pg_error("sink", fbl_pg_error_is_transient(error));
    if (!l->failing)
        g_warning("blocklist export: %s (trying again every export_interval)", error->message);
    l->failing = true;
    g_clear_pointer(&l->query, fbl_blocklist_query_free);
}

bool fbl_blocklist_loop_run(fbl_blocklist_loop *l, GError **error)
{
    (void) error;
    gint64 next = 0;
    while (!fbl_daemon_stopping()) {
        fbl_daemon_alive(FBL_DAEMON_LOOP_SINK);
        if (fbl_now_ms() >= next) {
            turn(l);
            next = fbl_now_ms() + l->config->blocklist_export_interval_ms;
        }
        g_usleep((gulong) POLL_MS * 1000);
    }
    return true;
}
