/*
 * report_format.h - how `fbl report` writes numbers for people (text and
 * html formats alike, so both show a value the same way)
 *
 * Layer: fbl/. Pure; no state, thread-safe.
 */
#ifndef FBL_REPORT_FORMAT_H
#define FBL_REPORT_FORMAT_H

#include <glib.h>

/*
 * fbl_report_format_count - "1234567" -> "1,234,567" (a leading '-' kept);
 * text that is not an integer is returned as it is
 *
 * Returns: (transfer full)
 */
char *fbl_report_format_count(const char *digits);

/* What a column of a report holds, which says how a value of it reads. */
typedef enum {
    FBL_REPORT_TEXT,    /* a string */
    FBL_REPORT_INT,     /* a count */
    FBL_REPORT_SHARE,   /* 0..1, shown as a percentage */
    FBL_REPORT_TIME,    /* ISO-8601 UTC, shown as "YYYY-MM-DD HH:MM" */
    FBL_REPORT_SECONDS, /* a duration, shown as "3m 12s" */
    FBL_REPORT_BYTES,   /* a size, shown as "1.2 MB" */
} fbl_report_kind;

/*
 * fbl_report_format_value - a database value of @kind as people read it: SQL
 * NULL (@v NULL) is "-", text is returned as it is (neither cut nor escaped)
 *
 * Returns: (transfer full)
 */
char *fbl_report_format_value(fbl_report_kind kind, const char *v);

/* fbl_report_format_int - (transfer full) fbl_report_format_count() of @n */
char *fbl_report_format_int(gint64 n);

/*
 * fbl_report_format_seconds - a duration for people: "42s", "3m 12s",
 * "2h 05m", "3d 4h"
 *
 * Returns: (transfer full)
 */
char *fbl_report_format_seconds(gint64 s);

#endif /* FBL_REPORT_FORMAT_H */
