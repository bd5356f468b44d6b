/*
 * imap_watch.h - one IMAP mailbox ([mailbox:NAME] imap = URL) -> parse -> sink,
 * moved to done_folder on ack
 *
 * Layer: fbl/. One fbl_imap_watch is one IMAP connection (fbl/imap.h) and one
 * ZeroMQ DEALER socket to the sinks, run by one thread of its own: libetpan
 * blocks (a fetch, an IDLE), and the Maildir watcher's loop (watch.h) must
 * not wait on a server. `fbl run` and `fbl watch` start one per IMAP mailbox
 * beside the Maildir watcher. That thread parses too (watch.parse_threads is
 * the Maildir watcher's): an IMAP mailbox brings far fewer mails than the
 * server's own Maildirs, and a batch waits for its commit anyway.
 *
 * The loop: fetch the folder's mails from the next UID on, in batches of at
 * most min(watch.window, 32) mails; parse each exactly as a Maildir mail
 * (fbl/mailfile.h: the same parser, a mail over limits.max_mail_bytes the
 * same too_large reject keeping its header block and first 64 KiB);
 * received_at is the mail's INTERNALDATE; send each as one fbl/1 "mail"
 * message (wire.h). The batch is the window: no further mail is fetched until
 * the sink acknowledged (COMMITted) every mail of it; a mail not acknowledged
 * within watch.ack_timeout is sent again, each resend waiting twice as long,
 * up to 16 timeouts. Then the batch moves to done_folder and the next UID is
 * the batch's last + 1. An empty batch waits (IDLE, else poll_interval).
 *
 * Nothing is lost, nothing doubled: a mail leaves the folder only after its
 * commit, so the folder is the queue and nothing is persisted here: every
 * start reads the folder from UID 1. A crash between the commit and the move
 * leaves the mail there; it is sent again, the sink finds its mail id stored
 * and acknowledges it, and it moves. A mail over max_mail_bytes is fetched as
 * a prefix only (fbl/imap.h), so its mail id is the SHA-256 of that prefix,
 * not of the whole mail: the same for every fetch of it.
 *
 * Bounds: a batch is held whole while it is sent, so at most
 * FBL_IMAP_WATCH_BATCH (and watch.window) mails of up to max_mail_bytes each
 * (a larger one is a prefix of about 1 MiB): watch.window_bytes does not
 * bound an IMAP batch (XXX: fbl/imap.h fetches a batch by count only). The
 * thread does not report to the systemd watchdog (fbl/daemon.h): a fetch
 * or a reconnection may block for the network timeout.
 *
 * Metrics (fbl/metrics.h): fbl_imap_connected, fbl_imap_fetched_total,
 * fbl_imap_moved_total, fbl_imap_errors_total and
 * fbl_imap_last_wakeup_timestamp_seconds (set at each turn that fetched a
 * batch or ended a wait: every WAIT_MS at least while the session is up), by
 * mailbox.
 *
 * Errors: a transient IMAP error (fbl_imap_error_is_transient()) reconnects
 * with capped backoff and reads from UID 1 again; a permanent one (a refused
 * login, an untrusted certificate, a missing folder) ends the loop with its
 * sysexits code (77, 69, 78), at start or later, and the process with it.
 */
#ifndef FBL_IMAP_WATCH_H
#define FBL_IMAP_WATCH_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"
#include "fbl/imap.h"
#include "parsers/parse.h"

/* Mails fetched per batch at most (and never more than watch.window). */
#define FBL_IMAP_WATCH_BATCH 32u

typedef struct fbl_imap_watch fbl_imap_watch;

typedef struct fbl_imap_watch_stats {
    guint64 fetched; /* mails fetched and sent (resends of a crash's leftovers included) */
    guint64 moved;   /* mails moved to done_folder after their ack */
    guint64 errors;  /* IMAP errors met (each reconnects or ends the loop) */
} fbl_imap_watch_stats;

/*
 * fbl_imap_watch_options - the fbl_imap_options of IMAP mailbox @m, its
 * secret read from password_file or oauth2_token_file (fbl/secret.h's rule
 * unless allow_insecure_file_modes)
 *
 * @secret: (out) (transfer full) the secret the options point at; the caller
 *   wipes and frees it (explicit_bzero, g_free) once fbl_imap_new() copied it
 * Returns: true, or false with FBL_CONFIG_ERROR_VALUE naming the file, the
 *   line of the secret file's key and why.
 */
bool fbl_imap_watch_options(const fbl_config *config, const fbl_mailbox_config *m,
                            fbl_imap_options *out, char **secret, GError **error);

/*
 * fbl_imap_watch_check - --check-config for IMAP mailbox @m: its options
 * (the secret file, the URL's folder, fbl_imap_new()'s rules) and, with
 * @login, one connection: TLS, the certificate, the login, the folder
 *
 * Returns: true, or false with FBL_CONFIG_ERROR_VALUE naming the file and the
 *   line of [mailbox:NAME] imap (or of the secret file's key) and why.
 */
bool fbl_imap_watch_check(const fbl_config *config, const fbl_mailbox_config *m, bool login,
                          GError **error);

/*
 * fbl_imap_watch_new - the loop of IMAP mailbox @m; no IMAP connection yet
 *
 * @config, @parser: (transfer none) must outlive it
 * @endpoints: NULL-terminated sink endpoints
 * Returns: (transfer full) or NULL with FBL_CONFIG_ERROR (the options) or
 *   G_IO_ERROR (ZeroMQ).
 */
fbl_imap_watch *fbl_imap_watch_new(const fbl_config *config, const fbl_mailbox_config *m,
                                   const fbl_parser *parser, void *zmq_context,
                                   const char *const *endpoints, GError **error);
void fbl_imap_watch_free(fbl_imap_watch *iw);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_imap_watch, fbl_imap_watch_free)

/*
 * fbl_imap_watch_run - the loop (above) until fbl_daemon_stopping(), or with
 * @until_idle until the folder is empty and nothing is in flight. On a stop,
 * mails in flight get up to watch.ack_timeout for their acks; unacknowledged
 * ones stay in the folder for the next run.
 *
 * Returns: 0 (EX_OK), or the sysexits code of a permanent error, which is
 *   logged (critical) with what to do; EX_SOFTWARE when the socket failed.
 */
int fbl_imap_watch_run(fbl_imap_watch *iw, bool until_idle);

/*
 * fbl_imap_watch_start - fbl_imap_watch_run() in a thread of its own; a
 * permanent error there requests the process's stop (fbl_daemon_request_stop)
 */
void fbl_imap_watch_start(fbl_imap_watch *iw, bool until_idle);

/* fbl_imap_watch_join - wait for the thread started above: its fbl_imap_watch_run() status */
int fbl_imap_watch_join(fbl_imap_watch *iw);

void fbl_imap_watch_get_stats(const fbl_imap_watch *iw, fbl_imap_watch_stats *out);

#endif /* FBL_IMAP_WATCH_H */
