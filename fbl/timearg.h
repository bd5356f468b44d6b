/*
 * timearg.h - points in time given on the command line (--since, --until)
 *
 * Layer: fbl/. Pure; no state.
 */
#ifndef FBL_TIMEARG_H
#define FBL_TIMEARG_H

#include <stdbool.h>

#include <glib.h>

/*
 * fbl_time_arg_parse - @text as Unix seconds: epoch seconds ("1767225600"),
 * ISO-8601 ("2026-01-01T00:00:00Z"; UTC when the zone is left out; a bare
 * date is its midnight UTC), or an age ("90s", "30m", "24h", "7d", "2w": that
 * long before @now)
 *
 * Returns: false when @text is none of those or lies before 1970.
 */
bool fbl_time_arg_parse(const char *text, gint64 now, gint64 *out);

#endif /* FBL_TIMEARG_H */
