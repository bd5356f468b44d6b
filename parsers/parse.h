/*
 * parse.h - the parse entry point: one raw mail in, reports or a reject out
 *
 * Layer: parsers/. No I/O, no global state besides GMime's, which the
 * program initialises once with g_mime_init(). An fbl_parser is immutable
 * after fbl_parser_new(), so one parser may serve several threads at once.
 *
 * Every mail becomes a result: reports, or one reject with a machine-readable
 * reason (report.h). Hostile input is bounded before and during the GMime
 * parse (see the limits below and mime.h); nothing in the bytes can make
 * fbl_parser_parse() fail, crash or grow without bound.
 */
#ifndef FBL_PARSE_H
#define FBL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "parsers/report.h"

#define FBL_PARSE_ERROR (fbl_parse_error_quark())
GQuark fbl_parse_error_quark(void);

typedef enum {
    FBL_PARSE_ERROR_OPTION = 1, /* permanent: a bad option (network, limit) */
} fbl_parse_error;              /* append new codes at the end only */

/* Defaults: the postmaster policy's 10 MiB, and bounds no real report nears. */
#define FBL_DEFAULT_MAX_MAIL_BYTES   ((size_t) 10 * 1024 * 1024)
#define FBL_DEFAULT_MAX_MIME_DEPTH   32
#define FBL_DEFAULT_MAX_MIME_PARTS   1000
#define FBL_DEFAULT_MAX_HEADERS      10000
#define FBL_DEFAULT_MAX_HEADER_BYTES ((size_t) 128 * 1024)

/* Caller-filled; fbl_parse_options_init() sets the defaults. */
typedef struct fbl_parse_options {
    size_t max_mail_bytes;   /* larger mails: reject too_large, unparsed */
    unsigned max_mime_depth; /* nesting of multiparts and messages */
    unsigned max_mime_parts; /* MIME entities in the whole mail */
    unsigned max_headers;    /* header fields in the whole mail */
    size_t max_header_bytes; /* one header field's raw value */
    /* Networks whose Received hops are ours ("192.0.2.0/24", "2001:db8::/32",
     * a bare address); NULL-terminated, may be NULL. Copied. */
    const char *const *trusted_networks;
    /* Domains whose hosts hand mail among themselves ("prod.outlook.com");
     * see source.h. NULL-terminated, may be NULL. Copied. */
    const char *const *trusted_hosts;
    /* Our MTA's Authentication-Results authserv-id; with it, reporter.verified
     * says whether the reporter passed aligned DKIM or SPF (auth.h). Copied. */
    const char *authserv_id;
    /* What is ours ([local]): networks our users send from and our domains;
     * a report about such mail gets an outbound block (outbound.h).
     * NULL-terminated, may be NULL. Copied. */
    const char *const *local_networks;
    const char *const *local_domains;
} fbl_parse_options;

/* Per mail: where and when it arrived. */
typedef struct fbl_mail_meta {
    const char *mailbox;                     /* name recorded in the documents; may be NULL */
    fbl_feedback_type default_feedback_type; /* when the mail does not say */
    int64_t received_at;                     /* delivery time, seconds since the epoch */
    /* Every mail here is the reported message itself, handed on by a feedback
     * loop or a spam trap network (format raw): report each one whole. */
    bool raw;
} fbl_mail_meta;

typedef struct fbl_parser fbl_parser;

/*
 * fbl_parsers_init - initialise GMime and libxml2, once per process, from
 * one thread, before any parser is used; fbl_parsers_shutdown() undoes it.
 */
void fbl_parsers_init(void);
void fbl_parsers_shutdown(void);

void fbl_parse_options_init(fbl_parse_options *options);

/*
 * fbl_parser_new - validate @options and prepare a parser
 *
 * @options: (transfer none) copied
 * Returns: (transfer full) or NULL with FBL_PARSE_ERROR_OPTION.
 */
fbl_parser *fbl_parser_new(const fbl_parse_options *options, GError **error);
void fbl_parser_free(fbl_parser *parser);

/*
 * fbl_parser_parse - normalize one raw mail
 *
 * @data: (transfer none) the mail exactly as delivered; mail_id hashes it
 * Returns: (transfer full) reports, or a reject; never NULL.
 */
fbl_parse_result *fbl_parser_parse(const fbl_parser *parser, const void *data, size_t len,
                                   const fbl_mail_meta *meta);

/*
 * fbl_parser_parse_hashed - fbl_parser_parse() for a caller that hashed the
 * mail already (fbl/mailfile.h hashes it while reading): the same result,
 * without a second pass of SHA-256 over the bytes
 *
 * @mail_id: the SHA-256 (hex) of @data; the caller vouches for it (the mail
 *   and report ids derive from it)
 * Returns: (transfer full) reports, or a reject; never NULL.
 */
fbl_parse_result *fbl_parser_parse_hashed(const fbl_parser *parser, const void *data, size_t len,
                                          const char *mail_id, const fbl_mail_meta *meta);

/*
 * fbl_parser_too_large - the reject for a mail the caller did not read
 *
 * For mails over max_mail_bytes, which callers should hash while streaming
 * rather than load. @mail_id: the SHA-256 (hex) of the raw mail.
 * Returns: (transfer full) a result holding the too_large reject.
 */
fbl_parse_result *fbl_parser_too_large(const fbl_parser *parser, const char *mail_id, size_t size,
                                       const fbl_mail_meta *meta);

/* fbl_parser_get_options - (transfer none) the options the parser was made with */
const fbl_parse_options *fbl_parser_get_options(const fbl_parser *parser);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_parser, fbl_parser_free)

#endif /* FBL_PARSE_H */
