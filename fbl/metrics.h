/*
 * metrics.h - Prometheus metrics: a small registry and its HTTP endpoint
 *
 * Layer: fbl/. One registry per process (every thread of `fbl run` counts
 * into the same one), always collecting; fbl_metrics_serve() publishes it in
 * the Prometheus text exposition format 0.0.4 at http://ADDR:PORT/metrics
 * (libmicrohttpd, its own polling thread). Thread-safe: every function may be
 * called from any thread (one mutex; the counters are updated per mail and
 * per batch, never per byte). Not async-signal-safe.
 *
 * The endpoint's bounds, so that slow or many clients (slowloris) cannot keep
 * a scrape out: a request must arrive whole within 3 s of its connection
 * (HTTP_REQUEST_DEADLINE_MS, enforced by a janitor thread; libmicrohttpd only
 * bounds silence, 5 s), and when more than 32 requests are arriving at once
 * the oldest is closed (HTTP_PENDING_MAX); at most 256 connections, 128 from
 * one address, 32 KiB of request headers each; one request per connection.
 * libmicrohttpd's warnings and those closings are logged at most once a
 * minute, the next line counting what was not logged.
 *
 * Each endpoint publishes its own daemon's families only (fbl_metrics_set_roles):
 * fbl watch the watch_ ones, fbl sink the sink_ ones and curve_refused_total,
 * fbl forward the forward_ ones, each pg_errors_total with its own role label;
 * fbl run all of them. build_info and start_time_seconds are everyone's.
 *
 * Families (labels in braces; all names start with fbl_):
 *   watch_mails_total{mailbox,format,feedback_type}   mails read and parsed (a
 *       mail's format and feedback type are those of its first report;
 *       format="reject", feedback_type="none" for a mail that is a reject)
 *   watch_reports_total{mailbox,format,feedback_type}  reports parsed
 *   watch_rejects_total{mailbox,reason}               mails that are rejects
 *   watch_acked_total, watch_resends_total            acks received, resends
 *   watch_mails_in_flight, watch_bytes_in_flight      sent, not acknowledged
 *   watch_mails_queued                                names in new/ not read yet
 *   watch_skipped_total{mailbox,reason}               names in new/ that are no
 *       regular file (reason symlink|fifo|socket|device|directory|other)
 *   watch_retire_failures_total{mailbox,reason}       failed renames to cur/
 *       (reason: the errno name, e.g. enoent, enotdir, eacces, enospc)
 *   watch_mails_retire_pending                        stored mails left in new/
 *   sink_batches_total, sink_mails_total, sink_reports_total   committed
 *   sink_batch_mails (histogram), sink_batch_bytes (histogram),
 *   sink_batch_duration_seconds (histogram)           per committed batch
 *   sink_bad_messages_total                           messages refused (any reason)
 *   sink_refused_messages_total{reason}               the same by reason: version,
 *       shape, doc, too_many_frames, too_large, mail_id, inconsistent (wire.h)
 *   pg_errors_total{role,kind}                        PostgreSQL errors: role
 *       sink|forward, kind transient|permanent
 *   forward_responses_total{vendor,status}            vendor answers: HTTP status,
 *       or "none" when no answer came (timeout, connection refused)
 *   forward_reports_sent_total{vendor}                reports the vendor accepted
 *   forward_outbox_pending{vendor}, forward_outbox_dead{vendor},
 *   forward_outbox_lag_seconds{vendor}                the outbox, as last queried
 *   curve_refused_total                               watchers refused by the
 *       sink's CURVE authentication (unknown public key)
 *   blocklist_listed{kind}, blocklist_exports_total{kind},
 *   blocklist_last_export_timestamp_seconds{kind}     the sink's blocklist
 *       re-export (kind ip|domain): listed entries, rewrites, last rewrite
 *   build_info{version} (1), start_time_seconds       the process
 */
#ifndef FBL_METRICS_H
#define FBL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <glib.h>

#include "parsers/report.h"

#define FBL_METRICS_ERROR (fbl_metrics_error_quark())
GQuark fbl_metrics_error_quark(void);

typedef enum {
    FBL_METRICS_ERROR_ADDRESS = 1, /* permanent: not ADDR:PORT */
    FBL_METRICS_ERROR_LISTEN,      /* permanent: the address cannot be bound */
} fbl_metrics_error;               /* append new codes at the end only */

/*
 * fbl_metrics_parse_listen - "127.0.0.1:9771", "[::1]:9771", "0.0.0.0:9771"
 * (numeric addresses only: no name lookups at start-up)
 *
 * @addr: (out) (optional) the socket address
 * Returns: true, or false with FBL_METRICS_ERROR_ADDRESS.
 */
bool fbl_metrics_parse_listen(const char *listen, struct sockaddr_storage *addr, GError **error);

/*
 * fbl_metrics_serve - publish the registry at http://@listen/metrics until
 * fbl_metrics_stop(); port 0 picks a free port (logged)
 *
 * Returns: true, or false with FBL_METRICS_ERROR.
 */
bool fbl_metrics_serve(const char *listen, GError **error);

/* The roles whose families an endpoint publishes (the bits of fbl_metrics_set_roles). */
typedef enum {
    FBL_METRICS_ROLE_WATCH = 1,
    FBL_METRICS_ROLE_SINK = 2,
    FBL_METRICS_ROLE_FORWARD = 4,
    FBL_METRICS_ROLE_ALL = 7,
} fbl_metrics_role;

/*
 * fbl_metrics_set_roles - publish only the families of @roles (an OR of
 * fbl_metrics_role) from now on: a daemon exports its own series, not zeros
 * of the others'. The default is FBL_METRICS_ROLE_ALL.
 */
void fbl_metrics_set_roles(unsigned roles);

/* fbl_metrics_stop - stop the endpoint, if it runs; the registry stays */
void fbl_metrics_stop(void);

/* fbl_metrics_render - (transfer full) the whole registry, exposition format 0.0.4 */
char *fbl_metrics_render(void);

/* The watcher (fbl/watch.c). */

/* fbl_metrics_watch_mail - one mail read and parsed from @mailbox (first send only) */
void fbl_metrics_watch_mail(const char *mailbox, const fbl_parse_result *result);
void fbl_metrics_watch_acked(void);
void fbl_metrics_watch_resend(void);
/* fbl_metrics_watch_window - the gauges: in flight, and names waiting in new/ */
void fbl_metrics_watch_window(unsigned mails, guint64 bytes, unsigned queued);
/* fbl_metrics_watch_skipped - one name in new/ of @mailbox not read: @reason is its type */
void fbl_metrics_watch_skipped(const char *mailbox, const char *reason);
/* fbl_metrics_watch_retire_failure - one failed rename to cur/; @reason: the errno name */
void fbl_metrics_watch_retire_failure(const char *mailbox, const char *reason);
/* fbl_metrics_watch_retire_pending - the gauge: stored mails whose rename failed */
void fbl_metrics_watch_retire_pending(unsigned mails);

/* An IMAP mailbox (fbl/imap_watch.c). */

/* fbl_metrics_imap_connected - the gauge: @mailbox's IMAP session is @up */
void fbl_metrics_imap_connected(const char *mailbox, bool up);
/* fbl_metrics_imap_fetched - one mail fetched from @mailbox and sent */
void fbl_metrics_imap_fetched(const char *mailbox);
/* fbl_metrics_imap_moved - @mails moved to done_folder after their commit */
void fbl_metrics_imap_moved(const char *mailbox, unsigned mails);
/* fbl_metrics_imap_error - one IMAP error; @kind: connect, protocol, auth, tls, ... */
void fbl_metrics_imap_error(const char *mailbox, const char *kind);
/* fbl_metrics_imap_woke - @mailbox's session heard from the server now (a batch listed) */
void fbl_metrics_imap_woke(const char *mailbox);

/* The sink (fbl/sink_loop.c). */

/* fbl_metrics_sink_batch - one batch committed */
void fbl_metrics_sink_batch(unsigned mails, unsigned reports, size_t bytes, double seconds);
void fbl_metrics_sink_bad_message(void);
/* fbl_metrics_sink_refused - one message refused for @reason (fbl_wire_error_reason()) */
void fbl_metrics_sink_refused(const char *reason);

/* fbl_metrics_pg_error - a PostgreSQL error; @role is "sink" or "forward" */
void fbl_metrics_pg_error(const char *role, bool transient);

/*
 * The forwarder (fbl/forward_loop.c calls these).
 *
 * fbl_metrics_vendor_response - one answer of @vendor's API to one request
 * @http_status: the HTTP status, or 0 when there was no answer (timeout,
 *   connection error): counted as status="none"
 */
void fbl_metrics_vendor_response(const char *vendor, int http_status);

/* fbl_metrics_vendor_sent - @reports accepted by @vendor (2xx) */
void fbl_metrics_vendor_sent(const char *vendor, unsigned reports);

/*
 * fbl_metrics_outbox - @vendor's outbox as last queried: rows due or waiting
 * (@pending), dead letters (@dead), and @lag_seconds, the age of the oldest
 * pending row (0 when none). Meant for a periodic query of the forwarder
 * (e.g. every 10 s); the gauges keep their last value in between.
 */
void fbl_metrics_outbox(const char *vendor, guint64 pending, guint64 dead, double lag_seconds);

/* The transport (fbl/curve.c). */
void fbl_metrics_curve_refused(void);

/* The sink's blocklist re-export (fbl/blocklist_loop.c); @kind is "ip" or "domain". */

/* fbl_metrics_blocklist_listed - the gauge: @entries of @kind listed, as last computed */
void fbl_metrics_blocklist_listed(const char *kind, unsigned entries);
/* fbl_metrics_blocklist_exported - @kind's files were rewritten at @unix_time */
void fbl_metrics_blocklist_exported(const char *kind, double unix_time);

#endif /* FBL_METRICS_H */
