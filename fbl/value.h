/*
 * value.h - the value syntax of fbl.conf, one parser per kind of value
 *
 * Layer: fbl/. Pure functions without state: any thread may call them. The
 * configuration (config.c) reads every key of every group through them, and
 * the flags that take the same forms (fbl prune --older-than) do too, so a
 * value means the same wherever it is written. fbl.conf(5), VALUES, is the
 * user's copy of these rules.
 *
 * A number is decimal digits only: no sign, no blank, no fraction, no
 * leading "0x". A size, a duration and a number of days are a number, then
 * optionally blanks and a unit, in any case ("10MiB", "64 kib", "30S"); a
 * unit may be left out (then it is the smallest one: bytes, milliseconds,
 * days). A value whose count of bytes, milliseconds or days does not fit in
 * 64 bits is refused (FBL_VALUE_TOO_LARGE); ranges are the caller's (the
 * key table's). The callers have trimmed the text: a blank before or after
 * it is refused.
 */
#ifndef FBL_VALUE_H
#define FBL_VALUE_H

#include <stdbool.h>

#include <glib.h>

typedef enum {
    FBL_VALUE_OK = 0,
    FBL_VALUE_NOT_A_NUMBER, /* it does not start with a digit */
    FBL_VALUE_BAD_UNIT,     /* a number followed by a unit this kind does not have */
    FBL_VALUE_TOO_LARGE,    /* more than 64 bits, in the smallest unit */
} fbl_value_status;

/* fbl_value_parse_number - "4096" */
fbl_value_status fbl_value_parse_number(const char *text, guint64 *out);

/* fbl_value_parse_size - bytes: "4096", "512B", "64K", "64KiB", "10M", "10MiB", "1G", "1GiB" */
fbl_value_status fbl_value_parse_size(const char *text, guint64 *bytes);

/* fbl_value_parse_duration - milliseconds: "500", "500ms", "30s", "5m", "1h" */
fbl_value_status fbl_value_parse_duration(const char *text, guint64 *ms);

/* fbl_value_parse_days - days: "180", "180d", "26w" (a week is 7 days) */
fbl_value_status fbl_value_parse_days(const char *text, guint64 *days);

/*
 * fbl_value_parse_percent - parts per million of a percentage: "0.3%",
 * "0.3 %" or "0.3" (a percent; at most four decimals: "0.0001%" is 1)
 */
fbl_value_status fbl_value_parse_percent(const char *text, guint64 *ppm);

/*
 * fbl_value_parse_bool - true, yes, on, 1 and false, no, off, 0, in any case
 * (GKeyFile's own true/false/1/0 and what INI users write)
 *
 * Returns: false, @out untouched, for anything else.
 */
bool fbl_value_parse_bool(const char *text, bool *out);

#endif /* FBL_VALUE_H */
