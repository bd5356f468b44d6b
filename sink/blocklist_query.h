/*
 * blocklist_query.h - what the blocklists are computed from: per IP or
 * domain, who complained about it in a window (schema/010_blocklist.sql)
 *
 * Layer: sink/. Blocking libpq I/O on one connection of its own, used by one
 * thread at a time. Reads only fbl.blocklist_counts() and
 * fbl.blocklist_reports(), which fbl_analyst and fbl_writer may call: no
 * address ever comes back (reporters are pseudonyms). The policy that turns
 * counts into a listing is fbl/blocklist.h's, not here.
 *
 * Errors: FBL_PG_ERROR (sink/pgconn.h); FBL_PG_ERROR_SCHEMA when the
 * functions are missing (run fbl migrate), _PRIVILEGE when the role may not
 * call them. A reconnect is tried once per call when the connection was lost.
 */
#ifndef FBL_BLOCKLIST_QUERY_H
#define FBL_BLOCKLIST_QUERY_H

#include <stdbool.h>

#include <glib.h>

#include "sink/pgconn.h"

typedef struct fbl_blocklist_query fbl_blocklist_query;

/* What is listed: a source IP, or a domain (From domain or URL host). */
typedef enum {
    FBL_BLOCKLIST_IP = 0,
    FBL_BLOCKLIST_DOMAIN,
} fbl_blocklist_kind;

/* fbl_blocklist_kind_to_string - "ip" or "domain" (the SQL functions' kind) */
const char *fbl_blocklist_kind_to_string(fbl_blocklist_kind kind);

/* The counts of one entry in the window. */
typedef struct fbl_blocklist_counts {
    char *entry;            /* canonical IP text, or a domain in lower case */
    guint64 complainers;    /* distinct reporters of abuse, fraud or virus reports */
    guint64 verified;       /* of them, those our MTA verified at least once */
    guint64 not_spam;       /* distinct reporters of not-spam reports about it */
    gint64 first_complaint; /* Unix seconds; 0: no complaint */
    gint64 last_complaint;  /* Unix seconds; 0: no complaint */
} fbl_blocklist_counts;

void fbl_blocklist_counts_free(fbl_blocklist_counts *counts);

/* One report behind an entry, as explain shows it. */
typedef struct fbl_blocklist_report {
    gint64 received_at;
    char *feedback_type;
    char *reporter_domain; /* (nullable) */
    char *reporter_key;    /* (nullable) the pseudonym of fbl.reporters */
    int verified;          /* 1, 0, or -1 unknown */
    char *found_in;        /* source_ip, from_domain or url_host */
    char *report_id;
} fbl_blocklist_report;

void fbl_blocklist_report_free(fbl_blocklist_report *report);

/*
 * fbl_blocklist_query_new - connect (application_name @application_name
 * unless the conninfo says)
 *
 * Returns: (transfer full) or NULL with FBL_PG_ERROR.
 */
fbl_blocklist_query *fbl_blocklist_query_new(const char *conninfo, const char *application_name,
                                             GError **error);
void fbl_blocklist_query_free(fbl_blocklist_query *query);

/*
 * fbl_blocklist_query_counts - the entries of @kind with at least
 * @min_complainers complainers in [@since, @until), ordered by entry
 *
 * @entry: (nullable) only this one (canonical IP, or lower-case domain)
 * @since, @until: Unix seconds
 * @out: (out) (transfer full) fbl_blocklist_counts *, freed with the array
 * Returns: false with FBL_PG_ERROR.
 */
bool fbl_blocklist_query_counts(fbl_blocklist_query *query, fbl_blocklist_kind kind,
                                const char *entry, gint64 since, gint64 until,
                                guint min_complainers, GPtrArray **out, GError **error);

/*
 * fbl_blocklist_query_reports - the reports about @entry in [@since, @until),
 * newest first
 *
 * @out: (out) (transfer full) fbl_blocklist_report *, freed with the array
 * Returns: false with FBL_PG_ERROR.
 */
bool fbl_blocklist_query_reports(fbl_blocklist_query *query, fbl_blocklist_kind kind,
                                 const char *entry, gint64 since, gint64 until, GPtrArray **out,
                                 GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_blocklist_query, fbl_blocklist_query_free)

#endif /* FBL_BLOCKLIST_QUERY_H */
