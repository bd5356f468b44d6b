/*
 * report_json.h - the JSON codec of the normalized report (contract v1)
 *
 * Layer: parsers/. Pure functions, thread-safe. The same document goes over
 * ZeroMQ, into PostgreSQL's jsonb copy, to the vendor and out of `fbl parse`.
 * Encoding writes every contract key, unknown values as null or [].
 * Decoding is strict about types and "v" (it reads what the wire carries,
 * which another process wrote) and bounded: jansson limits nesting depth and
 * the caller limits the input size.
 */
#ifndef FBL_REPORT_JSON_H
#define FBL_REPORT_JSON_H

#include <stdbool.h>

#include <glib.h>
#include <jansson.h>

#include "parsers/report.h"

#define FBL_REPORT_JSON_ERROR (fbl_report_json_error_quark())
GQuark fbl_report_json_error_quark(void);

typedef enum {
    FBL_REPORT_JSON_ERROR_SYNTAX = 1, /* permanent: not JSON */
    FBL_REPORT_JSON_ERROR_VERSION,    /* permanent: "v" is not one we read */
    FBL_REPORT_JSON_ERROR_FIELD,      /* permanent: a field has the wrong type or value */
} fbl_report_json_error;              /* append new codes at the end only */

/* fbl_report_to_json - (transfer full) the document for one report */
json_t *fbl_report_to_json(const fbl_report *report);

/* fbl_reject_to_json - (transfer full) the document for one reject */
json_t *fbl_reject_to_json(const fbl_reject *reject);

/*
 * fbl_parse_result_to_lines - every report and reject as JSON lines
 *
 * @pretty: indent each document (then it spans several lines)
 * Returns: (transfer full) newline-terminated documents, in part order.
 */
char *fbl_parse_result_to_lines(const fbl_parse_result *result, bool pretty);

/*
 * fbl_report_from_json - decode a report document
 *
 * Returns: (transfer full) the report, or NULL with @error set.
 */
fbl_report *fbl_report_from_json(const json_t *doc, GError **error);

/* fbl_reject_from_json - decode a reject document; NULL with @error set */
fbl_reject *fbl_reject_from_json(const json_t *doc, GError **error);

#endif /* FBL_REPORT_JSON_H */
