/*
 * vendor.h - one anti-spam vendor's API: reports in, a delivery outcome per
 * report out
 *
 * Layer: sink/. Blocking; libcurl's multi interface keeps several requests in
 * flight and the connections alive between sends. One fbl_vendor is used by
 * one thread at a time (the forwarder runs a thread per vendor); call
 * curl_global_init() once before the first fbl_vendor_new(). Logs through
 * g_log domain "fbl-vendor"; it never logs a report's content or a secret.
 *
 * Back ends behind an ops struct (vendor_internal.h):
 *   http-json  POST of a gzip'd JSON batch {"v":1, "batch": KEY, "reports": [doc…]}
 *              to the url, "Authorization: Bearer TOKEN", "Idempotency-Key: KEY"
 *              (KEY: SHA-256 of the vendor name and the batch's report ids, the
 *              same on every retry of the same batch); with include_raw each
 *              doc also carries "raw_message": the reported message, base64.
 *   rspamd     one request per report to the controller: /learnspam (every
 *              feedback type but the ones below), /learnham (not-spam), and with
 *              a fuzzy flag /fuzzyadd (Flag, Weight headers) for spam; the body is
 *              the reported message, the password goes in "Password:". opt-out
 *              and auth-failure reports teach rspamd nothing: delivered as they
 *              are. "already learned" (HTTP 208, or that text) is delivered.
 *
 * Outcomes (STYLE.md §4, per request, then per report, worst first):
 *   curl error (timeout, connection, TLS), HTTP 408, 5xx -> RETRY (503 with its
 *       Retry-After), and the vendor pauses with capped exponential backoff
 *   HTTP 429 -> THROTTLED for its Retry-After (not an attempt); the vendor pauses
 *   HTTP 400, 413, 422 -> a batch is split in halves and sent again until the
 *       refused report is alone: it is REFUSED (dead letter, with the answer)
 *   HTTP 401, 403 -> the vendor refused our credentials: nothing more is sent,
 *       the rest is UNSENT, and fbl_vendor_auth_failure() says why
 *   any other 4xx -> REFUSED, and the vendor pauses (a wrong url must not burn
 *       through the backlog); 3xx and the rest -> RETRY
 * Requests not yet started when the vendor pauses or the caller cancels stay
 * UNSENT. Redaction (redact.h) is applied to the document and the reported
 * message before anything is sent; nothing else of the report leaves.
 *
 * Limits: a vendor's answer is read up to 64 KiB and kept (in answer) up to
 * 500 bytes; a batch's size is the caller's (batch_size, batch_bytes).
 */
#ifndef FBL_VENDOR_H
#define FBL_VENDOR_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "sink/redact.h"

#define FBL_VENDOR_ERROR (fbl_vendor_error_quark())
GQuark fbl_vendor_error_quark(void);

typedef enum {
    FBL_VENDOR_ERROR_OPTION = 1, /* permanent: a bad option (url, type, number) */
    FBL_VENDOR_ERROR_CURL,       /* permanent: libcurl could not be set up */
} fbl_vendor_error;              /* append new codes at the end only */

typedef enum {
    FBL_VENDOR_HTTP_JSON = 1,
    FBL_VENDOR_RSPAMD,
} fbl_vendor_type;

/* fbl_vendor_type_from_string - "http-json" or "rspamd" */
bool fbl_vendor_type_from_string(const char *name, fbl_vendor_type *type);

/* Caller-filled; strings are copied by fbl_vendor_new(). */
typedef struct fbl_vendor_options {
    const char *name; /* the [vendor:NAME]; also in the idempotency keys */
    fbl_vendor_type type;
    const char *url;     /* http-json: the endpoint; rspamd: the controller's base URL */
    const char *secret;  /* (nullable) bearer token (http-json) or password (rspamd) */
    const char *ca_file; /* (nullable) CA bundle for TLS; verification is always on */
    const char *user_agent;
    unsigned batch_size;      /* http-json: reports per request, at least 1 */
    unsigned parallel;        /* requests in flight, at least 1 */
    unsigned timeout_ms;      /* one request, connection included */
    unsigned retry_max_ms;    /* the longest pause after failures */
    bool include_raw;         /* http-json: add the reported message, base64 */
    bool learn;               /* rspamd: /learnspam and /learnham */
    unsigned fuzzy_flag;      /* rspamd: /fuzzyadd with this flag; 0: none */
    unsigned fuzzy_weight;    /* rspamd: its weight */
    const fbl_redact *redact; /* (nullable) (transfer none) kept for the vendor's life */
    bool (*cancelled)(void);  /* (nullable) true: start no more requests */
    /* (nullable) called after each request: its HTTP status, 0 when no answer came */
    void (*on_response)(const char *vendor, long http_status);
} fbl_vendor_options;

typedef enum {
    FBL_VENDOR_SENT = 1,  /* delivered (2xx, or the vendor had it already) */
    FBL_VENDOR_UNSENT,    /* not tried: leave it as it was */
    FBL_VENDOR_THROTTLED, /* the vendor asked to wait (429): not an attempt */
    FBL_VENDOR_RETRY,     /* a failed attempt: try again later */
    FBL_VENDOR_REFUSED,   /* the vendor refused this report: dead letter */
} fbl_vendor_outcome;     /* worst last: a report's outcome is its requests' worst */

/* One report to deliver. */
typedef struct fbl_vendor_item {
    /* in, borrowed: */
    const char *id;   /* the report id */
    const char *doc;  /* the normalized report, JSON text */
    const void *mail; /* (nullable) the raw report mail, when the vendor wants it */
    size_t mail_len;
    /* out: */
    fbl_vendor_outcome outcome;
    unsigned retry_after_ms; /* RETRY, THROTTLED, UNSENT: the vendor's Retry-After; 0: none */
    char *answer;            /* (nullable) owned: why, e.g. "HTTP 400: {…}" or curl's error */
} fbl_vendor_item;

/* fbl_vendor_item_clear - free what fbl_vendor_send() set */
void fbl_vendor_item_clear(fbl_vendor_item *item);

typedef struct fbl_vendor fbl_vendor;

/*
 * fbl_vendor_new - check @options and make the curl multi handle
 *
 * Returns: (transfer full) or NULL with FBL_VENDOR_ERROR.
 */
fbl_vendor *fbl_vendor_new(const fbl_vendor_options *options, GError **error);
void fbl_vendor_free(fbl_vendor *vendor);

/* fbl_vendor_wants_mail - the items need the raw mail (rspamd, include_raw) */
bool fbl_vendor_wants_mail(const fbl_vendor *vendor);

/*
 * fbl_vendor_send - deliver @items, setting each one's outcome, retry_after_ms
 * and answer. Never fails as a whole: failures are outcomes.
 *
 * Takes up to about timeout x (1 + log2 n) when a batch has to be split.
 */
void fbl_vendor_send(fbl_vendor *vendor, fbl_vendor_item *items, guint n);

/*
 * fbl_vendor_get_pause_ms - how long to wait before the next send: the
 * vendor's Retry-After, or the capped exponential backoff (with jitter) after
 * failed requests; 0 after a clean send
 */
unsigned fbl_vendor_get_pause_ms(const fbl_vendor *vendor);

/*
 * fbl_vendor_auth_failure - (nullable) (transfer none) set when the vendor
 * refused our credentials (HTTP 401/403): "HTTP 401: answer". Stop sending.
 */
const char *fbl_vendor_auth_failure(const fbl_vendor *vendor);

/*
 * fbl_vendor_reported_message - the reported message inside a report mail
 *
 * @format: the report's format; "raw": the mail itself (unwrapped when it is
 *   one message/rfc822)
 * @part: the report's part: the index among the innermost embedded messages
 *   (message/rfc822, a .eml attachment, text/rfc822-headers), in document order
 * Returns: (transfer full) the message, or the whole mail when none is found
 *   (inline forwards, X-ARF text evidence). Bounded by the parsers' default limits.
 * XXX this re-finds the part the parsers chose; for mails where their choice is
 * cleverer (TNEF, a JMRP mail forwarded as an attachment) the whole mail may be sent.
 */
GBytes *fbl_vendor_reported_message(const void *mail, size_t len, const char *format,
                                    unsigned part);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_vendor, fbl_vendor_free)

#endif /* FBL_VENDOR_H */
