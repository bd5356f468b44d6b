/*
 * report.h - the normalized report model (DESIGN.md "Normalized report")
 *
 * Layer: parsers/. Plain data, no I/O. One fbl_report per report found in a
 * mail; one fbl_reject when a mail yields none. An fbl_parse_result holds
 * either for one mail. Strings are owned UTF-8 (NULL = unknown, JSON null);
 * lists are GPtrArrays of owned strings or structs and are never NULL.
 * Objects are not shared between threads; each has one owner.
 *
 * The JSON codec lives in report_json.h. The contract is versioned:
 * FBL_REPORT_VERSION goes into every document as "v".
 */
#ifndef FBL_REPORT_H
#define FBL_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#define FBL_REPORT_VERSION 1
#define FBL_SHA256_HEX_LEN 64

typedef enum {
    FBL_FORMAT_ARF = 0,
    FBL_FORMAT_ATTACHMENT,
    FBL_FORMAT_INLINE,
    FBL_FORMAT_JMRP,
    FBL_FORMAT_XARF,
    FBL_FORMAT_SPAMCOP,
    FBL_FORMAT_RAW,
} fbl_format;

typedef enum {
    FBL_FEEDBACK_ABUSE = 0,
    FBL_FEEDBACK_FRAUD,
    FBL_FEEDBACK_VIRUS,
    FBL_FEEDBACK_OTHER,
    FBL_FEEDBACK_NOT_SPAM,
    FBL_FEEDBACK_OPT_OUT,
    FBL_FEEDBACK_AUTH_FAILURE,
} fbl_feedback_type;

/* Why a mail yielded no report. Append only: the DB and logs store the names. */
typedef enum {
    FBL_REJECT_TOO_LARGE = 0,       /* over limits.max_mail_bytes, not parsed */
    FBL_REJECT_NOT_A_REPORT,        /* readable mail, but no report in it */
    FBL_REJECT_MALFORMED_MIME,      /* GMime could not make a message of it */
    FBL_REJECT_NO_ORIGINAL_MESSAGE, /* a report that carries nothing reported */
    FBL_REJECT_EMPTY,               /* zero bytes or only white space */
    FBL_REJECT_TOO_DEEP,            /* MIME nesting over limits.max_mime_depth */
    FBL_REJECT_TOO_MANY_PARTS,      /* over limits.max_mime_parts */
    FBL_REJECT_TOO_MANY_HEADERS,    /* over limits.max_headers */
    FBL_REJECT_HEADER_TOO_LONG,     /* one header over limits.max_header_bytes */
    FBL_REJECT_BOUNCE,              /* a DSN or bounce, not a complaint */
    FBL_REJECT_AUTO_REPLY,          /* out-of-office or other auto-reply */
    FBL_REJECT_DMARC_AGGREGATE,     /* a DMARC aggregate (rua) report */
} fbl_reject_reason;

typedef struct fbl_hop {
    char *from; /* the sending host's name as the receiver saw it (rDNS) */
    char *by;   /* the receiving host */
    char *ip;   /* the sending IP, canonical text */
    char *helo; /* the name the sender gave in HELO/EHLO */
    char *date; /* ISO-8601 UTC */
} fbl_hop;

typedef struct fbl_dkim {
    char *d; /* signing domain, lower case */
    char *s; /* selector */
} fbl_dkim;

typedef struct fbl_attachment {
    char *name;
    char *type;   /* "type/subtype", lower case */
    int64_t size; /* decoded bytes */
    char sha256[FBL_SHA256_HEX_LEN + 1];
} fbl_attachment;

typedef struct fbl_message {
    bool headers_only;
    char *message_id; /* without angle brackets */
    char *date;       /* ISO-8601 UTC */
    char *from;       /* addr-spec, lower case */
    char *from_name;
    char *from_domain;
    char *sender;
    char *reply_to;
    char *return_path;
    GPtrArray *to;   /* char *, addr-specs */
    char *subject;   /* UTF-8 */
    GPtrArray *dkim; /* fbl_dkim * */
    char *list_unsubscribe;
    char *cfbl_address;     /* CFBL-Address (RFC 9477): where its sender wants complaints */
    char *cfbl_feedback_id; /* CFBL-Feedback-ID (RFC 9477) */
    char *x_mailer;
    GPtrArray *received;    /* fbl_hop *, top (newest) first */
    GPtrArray *urls;        /* char *, normalized, unique, in order of appearance */
    GPtrArray *url_hosts;   /* char *, unique */
    GPtrArray *attachments; /* fbl_attachment * */
    char *fingerprint;
    int64_t size; /* bytes of the reported message (or of its headers) */
} fbl_message;

typedef struct fbl_arf {
    char *version;
    char *feedback_type_raw;
    char *user_agent;
    char *source_ip; /* canonical */
    char *original_mail_from;
    GPtrArray *original_rcpt_to; /* char * */
    char *arrival_date;          /* ISO-8601 UTC */
    char *reporting_mta;
    GPtrArray *reported_domain;        /* char * */
    GPtrArray *reported_uri;           /* char * */
    int64_t incidents;                 /* -1 = unknown */
    GPtrArray *authentication_results; /* char * */
    char *original_envelope_id;
    bool redacted_address; /* Redacted-Address field present (RFC 6590) */
    /* RFC 6591 auth-failure fields */
    char *auth_failure;
    char *delivery_result;
    char *dkim_domain;        /* DKIM-Domain, lower case */
    char *dkim_identity;      /* DKIM-Identity */
    char *dkim_selector;      /* DKIM-Selector */
    GPtrArray *spf_dns;       /* char *: SPF-DNS, each as written */
    char *identity_alignment; /* Identity-Alignment: "dkim", "spf", "none", lists of them */
    /* RFC 6650's opt-out: the addresses to take off a list, apart from the recipients */
    GPtrArray *removal_recipient; /* char * */
    int64_t source_port;          /* Source-Port (RFC 6692); -1 = unknown */
} fbl_arf;

typedef struct fbl_reporter {
    char *address; /* lower case; the original complainant when the mail relays one */
    char *via;     /* lower case; the list or desk that relayed the complaint, or NULL */
    char *name;
    char *user_agent;
    char *reporting_mta;
    int verified; /* -1 unknown (null), 0 false, 1 true */
} fbl_reporter;

/* A report about mail our own users sent (outbound.h): whose account, and why ours. */
typedef struct fbl_outbound {
    char *account;      /* lower case; NULL when the message names nobody */
    char *account_from; /* "auth", "envelope" or "from"; NULL with account */
    char *auth_header;  /* account_from auth: "received", "x-authenticated-user", ... */
    char *matched;      /* why ours: "source_ip", "from_domain" or "dkim" */
} fbl_outbound;

typedef struct fbl_report {
    char id[FBL_SHA256_HEX_LEN + 1];
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    unsigned part;
    char *received_at; /* ISO-8601 UTC */
    char *mailbox;
    fbl_format format;
    fbl_feedback_type feedback_type;
    fbl_reporter reporter;
    fbl_arf *arf; /* NULL unless the report carried ARF fields */
    char *source_ip;
    char *source_ip_from; /* "arf", "received", "x-originating-ip", … */
    bool redacted;
    fbl_message message;
    fbl_outbound *outbound; /* NULL unless the parse options' [local] scope says it is ours */
    GPtrArray *warnings;    /* char * */
} fbl_report;

typedef struct fbl_reject {
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    char *received_at;
    char *mailbox;
    fbl_reject_reason reason;
    char *detail; /* one human line */
    int64_t size;
} fbl_reject;

/* What one mail produced: reports (possibly none) or exactly one reject. */
typedef struct fbl_parse_result {
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    GPtrArray *reports; /* fbl_report * */
    fbl_reject *reject; /* non-NULL iff reports is empty */
} fbl_parse_result;

const char *fbl_format_to_string(fbl_format format);
bool fbl_format_from_string(const char *name, fbl_format *format);
const char *fbl_feedback_type_to_string(fbl_feedback_type type);
bool fbl_feedback_type_from_string(const char *name, fbl_feedback_type *type);
const char *fbl_reject_reason_to_string(fbl_reject_reason reason);
bool fbl_reject_reason_from_string(const char *name, fbl_reject_reason *reason);

/*
 * fbl_report_new - an empty report: unknown everywhere, lists empty
 *
 * Returns: (transfer full) free with fbl_report_free().
 */
fbl_report *fbl_report_new(void);
void fbl_report_free(fbl_report *report);

/*
 * fbl_report_set_ids - fill mail_id and part, derive the report id
 *
 * The id is the SHA-256 of "<mail_id>/<part>": stable for the same mail and
 * part, whichever watcher or reparse produces it.
 */
void fbl_report_set_ids(fbl_report *report, const char *mail_id, unsigned part);

/* fbl_report_add_warning - append a printf-formatted warning */
void fbl_report_add_warning(fbl_report *report, const char *format, ...) G_GNUC_PRINTF(2, 3);

fbl_arf *fbl_arf_new(void);
void fbl_arf_free(fbl_arf *arf);
void fbl_outbound_free(fbl_outbound *outbound);
fbl_hop *fbl_hop_new(void);
void fbl_hop_free(fbl_hop *hop);
void fbl_dkim_free(fbl_dkim *dkim);
void fbl_attachment_free(fbl_attachment *attachment);

fbl_reject *fbl_reject_new(fbl_reject_reason reason, const char *detail);
void fbl_reject_free(fbl_reject *reject);

fbl_parse_result *fbl_parse_result_new(const char *mail_id);
void fbl_parse_result_free(fbl_parse_result *result);

/* fbl_sha256_hex - hex SHA-256 of @len bytes into @out (65 bytes) */
void fbl_sha256_hex(const void *data, size_t len, char out[FBL_SHA256_HEX_LEN + 1]);

/* fbl_strv_add_unique - append a copy of @value unless an equal one is there */
bool fbl_strv_add_unique(GPtrArray *list, const char *value);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_report, fbl_report_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_reject, fbl_reject_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_parse_result, fbl_parse_result_free)

#endif /* FBL_REPORT_H */
