/*
 * imap.h - one IMAP mailbox, read by UID: fetch, wait (IDLE or poll), move when stored
 *
 * Layer: fbl/. Blocking network I/O through libetpan (which parses every
 * answer; this module parses no IMAP itself). One fbl_imap is one connection
 * to one folder and belongs to one thread; different objects may live in
 * different threads. The process must ignore SIGPIPE (fbl/daemon.c does): a
 * server that closes the connection makes a write fail, not kill us.
 *
 * The caller's loop:
 *   fbl_imap_connect (or fbl_imap_reconnect); then, again and again:
 *   fbl_imap_next_batch(next_uid) -> hand every mail to the sink -> after
 *   the sink's COMMIT: fbl_imap_move_done(their UIDs), next_uid = last UID + 1
 *   -> fbl_imap_wait when the batch was empty.
 * On an error for which fbl_imap_error_is_transient() is true, call
 * fbl_imap_reconnect() (capped backoff, stops with the caller's stop flag)
 * and go on; on a permanent one, fbl_imap_error_exit_status() is the sysexits
 * code to end with (77 a refused login, 69 a certificate that is not
 * trusted, 78 a folder that is missing or a bad URL).
 *
 * Exactly once: the folder is the queue. The store is idempotent on the mail id, the SHA-256 of the
 * bytes fetched (doc/DESIGN.md, "Nothing is doubled"), and a mail leaves the folder only after its
 * commit (moved to done_folder), so the caller need persist nothing: a new session reads the folder
 * from UID 1. A crash between the commit and the move leaves the mail in the folder: it is fetched
 * again, sent again, and the store's mail id makes that resend add nothing. The folder's
 * UIDVALIDITY is recorded at connect; if it changes on a reconnect (the server renumbered the
 * folder), the UIDs the caller holds mean nothing any more: FBL_IMAP_ERROR_UIDVALIDITY_CHANGED says
 * so, and the caller reads the folder again from UID 1, each mail still deduplicated by its hash.
 * The delivery time is the mail's INTERNALDATE, which a copy or move on the server keeps, so a
 * re-fetched mail has the same (mail id, received_at) key.
 *
 * TLS: imaps:// (implicit TLS), or imap:// with starttls = true. The server's
 * certificate chain is always verified, against ca_file or else the system's
 * trust store, and its name against the URL's host (a DNS name, or an IP
 * literal against the certificate's IP addresses), with OpenSSL, right after
 * the handshake and before any credential is sent. Debian builds libetpan on
 * GnuTLS without any verification of its own (its CA-file setter does nothing
 * there), so the chain libetpan received is verified here
 * (X509_verify_cert()). Plain imap:// without STARTTLS is accepted only to a
 * loopback address (a local Dovecot); otherwise fbl_imap_new() refuses it.
 *
 * Bounds: a batch holds at most batch_max_mails mails, and at most
 * batch_max_bytes of them by their RFC822.SIZE (a prefix counts its bound),
 * but always one mail, so one as large as max_fetch_bytes still comes. A mail whose
 * RFC822.SIZE is over max_fetch_bytes is not fetched whole: only its header
 * block (at most FBL_IMAP_PREFIX_HEADER_BYTES of it) and the first
 * FBL_IMAP_PREFIX_BODY_BYTES of its body, never more than max_fetch_bytes
 * in all, a prefix of its bytes, with
 * `truncated` set (the caller rejects it too_large and keeps those bytes, as
 * the Maildir watcher keeps a too_large mail's start).
 * XXX: a server that announces a small RFC822.SIZE and then sends more is
 * believed: libetpan reads a literal whole before returning it.
 *
 * IDLE (RFC 2177) is used where the server offers it: a mail that arrives
 * while fbl_imap_wait() idles ends the wait at once. IDLE is renewed every
 * FBL_IMAP_IDLE_RENEW_MS, well before a server's 30-minute autologout.
 * Without IDLE the wait sleeps poll_interval_ms and sends NOOP. Either way
 * the caller's stop function is asked at least every FBL_IMAP_STOP_CHECK_MS.
 *
 * Moving (after the commit): UID MOVE (RFC 6851) where offered, else UID
 * COPY, UID STORE +FLAGS.SILENT (\Deleted) and UID EXPUNGE (RFC 4315).
 * XXX: a server with neither MOVE nor UIDPLUS gets a plain EXPUNGE, which
 * also removes mails another client marked \Deleted in the folder.
 * done_folder is created at connect when LIST does not find it.
 *
 * XXX: folder names must be printable ASCII without '&' (IMAP's modified
 * UTF-7 is not encoded here); fbl_imap_new() refuses others.
 */
#ifndef FBL_IMAP_H
#define FBL_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define FBL_IMAP_ERROR (fbl_imap_error_quark())
GQuark fbl_imap_error_quark(void);

typedef enum {
    FBL_IMAP_ERROR_AUTH = 1,            /* permanent: the server refused the login */
    FBL_IMAP_ERROR_TLS,                 /* permanent: no TLS, or a certificate not trusted */
    FBL_IMAP_ERROR_NO_FOLDER,           /* permanent: the folder (or done_folder) is missing */
    FBL_IMAP_ERROR_CONNECT,             /* transient: no connection, dropped, timed out */
    FBL_IMAP_ERROR_PROTOCOL,            /* transient: the server said NO/BAD or sent garbage */
    FBL_IMAP_ERROR_UIDVALIDITY_CHANGED, /* neither: start again from UID 1 (see above) */
    FBL_IMAP_ERROR_INVALID,             /* permanent: a bad URL or option */
} fbl_imap_error;                       /* append new codes at the end only */

/* Over max_fetch_bytes: at most this much of the header block, then of the body. */
#define FBL_IMAP_PREFIX_HEADER_BYTES ((size_t) 1024 * 1024)
#define FBL_IMAP_PREFIX_BODY_BYTES   ((size_t) 64 * 1024)
/* IDLE is ended and started again this often (RFC 2177: at least every 29 minutes). */
#define FBL_IMAP_IDLE_RENEW_MS (25u * 60u * 1000u)
/* The longest time a wait goes without asking the caller's stop function. */
#define FBL_IMAP_STOP_CHECK_MS 200u

/* Defaults for the options left 0. */
#define FBL_IMAP_DEFAULT_POLL_MS     60000u
#define FBL_IMAP_DEFAULT_MAX_FETCH   ((size_t) 10 * 1024 * 1024)
#define FBL_IMAP_DEFAULT_BATCH       32u
#define FBL_IMAP_DEFAULT_BATCH_BYTES ((size_t) 64 * 1024 * 1024)
/* Below systemd's WatchdogSec (60 s in etc/systemd): a stalled read is not a stuck thread. */
#define FBL_IMAP_DEFAULT_TIMEOUT_S      30u
#define FBL_IMAP_DEFAULT_MAX_BACKOFF_MS 60000u

/* Everything is copied by fbl_imap_new(); the secrets are wiped when freed. */
typedef struct {
    const char *url; /* imaps://host[:993]/FOLDER or imap://host[:143]/FOLDER */
    const char *user;
    const char *password;      /* (nullable) LOGIN; exactly one of password, oauth2_token */
    const char *oauth2_token;  /* (nullable) AUTHENTICATE XOAUTH2 */
    const char *ca_file;       /* (nullable) PEM; NULL: the system's trust store */
    bool starttls;             /* imap:// only: STARTTLS before the login, required */
    const char *done_folder;   /* where a stored mail goes; created if missing */
    unsigned poll_interval_ms; /* without IDLE; 0: FBL_IMAP_DEFAULT_POLL_MS */
    size_t max_fetch_bytes;    /* 0: FBL_IMAP_DEFAULT_MAX_FETCH */
    unsigned batch_max_mails;  /* 0: FBL_IMAP_DEFAULT_BATCH */
    size_t batch_max_bytes;    /* 0: FBL_IMAP_DEFAULT_BATCH_BYTES */
    unsigned timeout_s;        /* network timeout per read or write; 0: default */
    unsigned max_backoff_ms;   /* fbl_imap_reconnect()'s cap; 0: default */
    uint32_t uidvalidity;      /* a value known from before; 0: none */
} fbl_imap_options;

/* One fetched mail. */
typedef struct {
    uint32_t uid;
    uint64_t size;       /* RFC822.SIZE: the whole mail's size on the server */
    gint64 internaldate; /* INTERNALDATE, Unix seconds (UTC) */
    GBytes *bytes;       /* the mail, or its prefix when truncated */
    bool truncated;      /* size was over max_fetch_bytes: header + body prefix only */
} fbl_imap_mail;

typedef struct fbl_imap fbl_imap;

/* The caller's stop flag, e.g. fbl_daemon_stopping; NULL: never stop. */
typedef bool (*fbl_imap_stop_fn)(void);

void fbl_imap_mail_free(fbl_imap_mail *mail);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_imap_mail, fbl_imap_mail_free)

/*
 * fbl_imap_new - check and copy @options; no connection yet
 *
 * Returns: (transfer full) or NULL with FBL_IMAP_ERROR_INVALID: not an
 *   imap:// or imaps:// URL, no host, a folder name out of range, no user,
 *   not exactly one of password and oauth2_token, starttls with imaps://,
 *   or plain imap:// to a host that is not loopback.
 */
fbl_imap *fbl_imap_new(const fbl_imap_options *options, GError **error);

/* fbl_imap_free - log out if connected, wipe the secrets, free; NULL is fine */
void fbl_imap_free(fbl_imap *imap);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_imap, fbl_imap_free)

/*
 * fbl_imap_connect - one attempt: connect, TLS, verify, log in, SELECT the
 * folder, record its UIDVALIDITY, create done_folder if missing
 *
 * An open connection is closed first.
 * Returns: true, or false with FBL_IMAP_ERROR: CONNECT (no answer, refused,
 *   dropped, timed out), TLS (the handshake failed on a server that answered,
 *   STARTTLS not offered, the chain or the name not trusted), AUTH (login
 *   refused), NO_FOLDER (the folder does not exist, or done_folder cannot be
 *   made), PROTOCOL, or UIDVALIDITY_CHANGED (the connection is up and the new
 *   value recorded: see above).
 */
bool fbl_imap_connect(fbl_imap *imap, GError **error);

/*
 * fbl_imap_reconnect - fbl_imap_connect until it succeeds, a permanent error,
 * UIDVALIDITY_CHANGED or @stopping: waits 0.5 s, 1 s, ... up to max_backoff_ms
 * (fbl_backoff_next) between attempts; each failed attempt is logged (warning)
 *
 * Returns: true once connected; else false with the permanent error,
 *   UIDVALIDITY_CHANGED, or CONNECT when @stopping said stop.
 */
bool fbl_imap_reconnect(fbl_imap *imap, fbl_imap_stop_fn stopping, GError **error);

/*
 * fbl_imap_next_batch - the folder's mails with UID >= @next_uid, lowest
 * first, at most batch_max_mails of them and batch_max_bytes (call again
 * for the rest)
 *
 * A mail expunged by someone else between the listing and its fetch is left
 * out. Returns: (transfer full) a GPtrArray of fbl_imap_mail (maybe empty),
 *   or NULL with FBL_IMAP_ERROR_CONNECT or PROTOCOL.
 */
GPtrArray *fbl_imap_next_batch(fbl_imap *imap, uint32_t next_uid, GError **error);

/*
 * fbl_imap_wait - until the server reports a change (IDLE), @timeout_ms passed
 * or @stopping says stop; without IDLE, min(@timeout_ms, poll_interval_ms)
 * then NOOP
 *
 * Returns: true (whether or not anything arrived: call fbl_imap_next_batch),
 *   or false with FBL_IMAP_ERROR_CONNECT or PROTOCOL.
 */
bool fbl_imap_wait(fbl_imap *imap, unsigned timeout_ms, fbl_imap_stop_fn stopping, GError **error);

/*
 * fbl_imap_move_done - move the mails @uids[0..@n) to done_folder
 *
 * Call only after the sink committed them. UIDs no longer in the folder are
 * ignored by the server. Returns: true, or false with FBL_IMAP_ERROR_CONNECT
 *   or PROTOCOL (some may have moved: moving again is harmless).
 */
bool fbl_imap_move_done(fbl_imap *imap, const uint32_t *uids, size_t n, GError **error);

/* fbl_imap_get_uidvalidity - the folder's UIDVALIDITY (0 before the first connect) */
uint32_t fbl_imap_get_uidvalidity(const fbl_imap *imap);
/* fbl_imap_has_idle, fbl_imap_has_move - what the connected server offers */
bool fbl_imap_has_idle(const fbl_imap *imap);
bool fbl_imap_has_move(const fbl_imap *imap);
/* fbl_imap_is_connected - a session is open (it may still have dropped unnoticed) */
bool fbl_imap_is_connected(const fbl_imap *imap);

/* fbl_imap_error_is_transient - keep the work and reconnect (see the codes) */
bool fbl_imap_error_is_transient(const GError *error);

/*
 * fbl_imap_error_exit_status - the sysexits(3) code for a permanent @error:
 *   AUTH 77, TLS 69, NO_FOLDER and INVALID 78; 69 for anything else.
 */
int fbl_imap_error_exit_status(const GError *error);

#endif /* FBL_IMAP_H */
