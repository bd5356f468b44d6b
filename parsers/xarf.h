/*
 * xarf.h - X-ARF reports: v0.1/v0.2 YAML (report.txt) and v4 JSON (xarf.json)
 *
 * Layer: parsers/. Pure, thread-safe, input untrusted.
 *
 * X-ARF (x-arf.org) is the German abuse-desk format: a mail with an
 * "X-ARF: yes" header, a human part, a YAML report part and the evidence;
 * its v4 is one JSON document, sent alone or inside MARF (an ARF report with
 * Feedback-Type: xarf). Only the fields fbl records are read; the YAML
 * reader takes "Key: value" lines (quoted or not) and nothing nested, which
 * is all X-ARF v0.2 uses. Values are bounded by FBL_XARF_MAX_VALUE.
 */
#ifndef FBL_XARF_H
#define FBL_XARF_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "parsers/report.h"

#define FBL_XARF_MAX_VALUE 4096

typedef struct fbl_xarf {
    char *version;
    char *report_type;   /* "spam", "login-attack", "phishing", … (v4 ReportType) */
    char *category;      /* v0.2 Category, v4 ReportClass */
    char *source_ip;     /* canonical, when the source is an IP */
    char *date;          /* ISO-8601 UTC */
    char *reported_from; /* the reporting address */
    char *user_agent;
    char *mail_from;    /* v4 SmtpMailFromAddress */
    GByteArray *sample; /* v4: the first message sample, decoded; NULL when none */
} fbl_xarf;

/*
 * fbl_xarf_parse_yaml - an X-ARF v0.2 report.txt
 *
 * Returns: (transfer full) or NULL when the text holds no X-ARF field.
 */
fbl_xarf *fbl_xarf_parse_yaml(const char *text, size_t len);

/*
 * fbl_xarf_parse_json - an X-ARF v4 xarf.json
 *
 * Returns: (transfer full) or NULL when it is not an X-ARF JSON document.
 */
fbl_xarf *fbl_xarf_parse_json(const char *text, size_t len);

void fbl_xarf_free(fbl_xarf *xarf);

/* fbl_xarf_feedback_type - the contract's type for an X-ARF report type */
fbl_feedback_type fbl_xarf_feedback_type(const fbl_xarf *xarf);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_xarf, fbl_xarf_free)

#endif /* FBL_XARF_H */
