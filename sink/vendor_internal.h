/*
 * vendor_internal.h - what the adapters (vendor_http.c, vendor_rspamd.c)
 * share with the engine (vendor.c)
 *
 * Layer: sink/, private to the vendor modules. The engine prepares each
 * report (redacted document, scrubbed reported message), asks the adapter to
 * plan requests for a set of them, runs the requests through the multi
 * handle, judges each answer and folds the verdicts into the reports'
 * outcomes; an adapter only builds requests and, where the vendor has its own
 * ways, judges answers.
 */
#ifndef FBL_VENDOR_INTERNAL_H
#define FBL_VENDOR_INTERNAL_H

#include <stdbool.h>

#include <curl/curl.h>
#include <glib.h>
#include <jansson.h>

#include "sink/vendor.h"

/* A report being delivered. */
typedef struct fbl_vendor_work {
    fbl_vendor_item *item;
    json_t *doc;               /* the document as sent (redacted) */
    const char *feedback_type; /* borrowed from doc */
    GBytes *message;           /* (nullable) the reported message as sent (scrubbed) */
    int verdicts;              /* requests judged */
} fbl_vendor_work;

/* One HTTP request carrying some reports. */
typedef struct fbl_vendor_request {
    fbl_vendor_work **works; /* borrowed */
    guint n;
    int kind;        /* the adapter's: which endpoint */
    bool splittable; /* a refusal may be narrowed down by halving */
    CURL *easy;
    struct curl_slist *headers;
    GBytes *body;
    GByteArray *response; /* the answer, bounded */
    char errbuf[CURL_ERROR_SIZE];
} fbl_vendor_request;

/* What an answer means for the request's reports. */
typedef enum {
    FBL_VERDICT_DEFAULT = 0, /* judge: let the engine decide by the status */
    FBL_VERDICT_OK,
    FBL_VERDICT_RETRY,
    FBL_VERDICT_THROTTLE,
    FBL_VERDICT_REFUSED,
} fbl_vendor_verdict;

typedef struct fbl_vendor_ops {
    const char *type;
    /* wants_mail: the reported message is needed */
    bool (*wants_mail)(const fbl_vendor *vendor);
    /* plan: append built requests (fbl_vendor_request *) for @works to @out;
     * a report that needs none is delivered as it is */
    void (*plan)(fbl_vendor *vendor, fbl_vendor_work **works, guint n, GPtrArray *out);
    /* judge: (nullable) the adapter's reading of an HTTP answer, or DEFAULT */
    fbl_vendor_verdict (*judge)(const fbl_vendor *vendor, const fbl_vendor_request *request,
                                long status);
} fbl_vendor_ops;

extern const fbl_vendor_ops fbl_vendor_http_ops;
extern const fbl_vendor_ops fbl_vendor_rspamd_ops;

/* fbl_vendor_get_options - (transfer none) the vendor's options (strings copied) */
const fbl_vendor_options *fbl_vendor_get_options(const fbl_vendor *vendor);

/*
 * fbl_vendor_request_new - a POST of @body to @url for @works with the common
 * options set (timeouts, TLS, CA, keep-alive, answer buffer, no "Expect:")
 *
 * @headers: (transfer full) extra headers, may be NULL
 * @body: (transfer full)
 * Returns: (transfer full) a request; when libcurl refused an option its
 *   error is in errbuf and the engine judges the request a failed attempt.
 */
fbl_vendor_request *fbl_vendor_request_new(fbl_vendor *vendor, fbl_vendor_work **works, guint n,
                                           const char *url, struct curl_slist *headers,
                                           GBytes *body);
void fbl_vendor_request_free(fbl_vendor_request *request);

/* fbl_vendor_work_refuse - the report cannot be sent at all: a dead letter with @why */
void fbl_vendor_work_refuse(fbl_vendor_work *work, const char *why);

/* fbl_vendor_add_header - append "Name: value" (curl_slist_append, checked) */
struct curl_slist *fbl_vendor_add_header(struct curl_slist *list, const char *name,
                                         const char *value, bool *ok);

#endif /* FBL_VENDOR_INTERNAL_H */
