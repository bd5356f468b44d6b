"""rollup_check - are the hourly rollups (schema/012_rollups.sql) exact?

mismatches(conninfo) compares, inside a transaction it rolls back:
  1. every rollup table with what fbl.rollup_recompute() makes from the stored
     reports for every hour (a trigger that missed a write, or counted one
     twice, shows here);
  2. every analyst function over the whole history, answered from the rollups
     and from the reports alone (fbl.rollup_state.complete_since set to
     'infinity'), so the functions' reading of the rollups is checked too;
  3. the same over windows that begin and end inside an hour (WINDOWS, placed
     by the stored reports), where a function reads the reports for the
     partial hours at its ends and the rollups between them.
It returns a list of what differs (empty: exact). Standard library only.
"""
import subprocess

TABLES = ["rollup_complaints", "rollup_reporters", "rollup_source_ips", "rollup_senders",
          "rollup_campaigns", "rollup_domain_ips", "rollup_url_hosts"]
FUNCTIONS = ["summary", "complaints_hourly", "top_source_ips", "top_sender_domains",
             "top_url_hosts", "campaigns", "reporters", "false_positives"]


# Windows (since, until) relative to the first and the last report stored
# (lo, hi): both ends inside an hour; the usual "last so long"; ends a second
# from the hours' edges; everything up to a time inside an hour; two days and
# more, both ends inside an hour.
WINDOWS = [
    ("lo + interval '37 minutes 11 seconds'", "hi - interval '23 minutes 5 seconds'"),
    ("hi - interval '90 minutes 17 seconds'", "'infinity'"),
    ("date_trunc('hour', hi, 'UTC') - interval '2 hours 0.5 seconds'",
     "date_trunc('hour', hi, 'UTC') + interval '1 second'"),
    ("'-infinity'", "lo + interval '1 hour 30 minutes'"),
    ("hi - interval '2 days 5 hours 13 minutes'", "hi - interval '3 hours 7 minutes'"),
]


def _windowed(f):
    return ("SELECT w.k, to_jsonb(x) AS r FROM pg_temp.windows w "
            "CROSS JOIN LATERAL fbl.%s(since => w.since, until => w.until) x" % f)


def _rows(table):
    return "SELECT to_jsonb(t) AS r FROM fbl.%s t" % table


def _whole(f):
    return "SELECT to_jsonb(x) AS r FROM fbl.%s('-infinity'::timestamptz) x" % f


def _differ(label, kept, query):
    """How many rows only @kept (a temp table made from @query earlier) has, and only @query."""
    return ("SELECT '%s', (SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL %s) a), "
            "(SELECT count(*) FROM (%s EXCEPT ALL SELECT * FROM %s) b);"
            % (label, kept, query, query, kept))


def _script():
    # (label, temp table, query): kept before the recompute, compared after it.
    tables = [(t, "kept_" + t, _rows(t)) for t in TABLES]
    functions = ([("%s()" % f, "fast_" + f, _whole(f)) for f in FUNCTIONS] +
                 [("%s() in windows" % f, "window_" + f, _windowed(f)) for f in FUNCTIONS])
    sql = ["BEGIN;"]
    sql.append("CREATE TEMP TABLE windows AS SELECT k, since, until FROM "
               "(SELECT coalesce(min(received_at), now()) AS lo, coalesce(max(received_at), now()) "
               "AS hi FROM fbl.reports) b CROSS JOIN LATERAL (VALUES %s) v(k, since, until);"
               % ", ".join("(%d, (%s)::timestamptz, (%s)::timestamptz)" % (i, a, b)
                           for i, (a, b) in enumerate(WINDOWS)))
    for _, kept, query in tables + functions:
        sql.append("CREATE TEMP TABLE %s AS %s;" % (kept, query))
    sql.append("SELECT fbl.rollup_recompute(ARRAY(SELECT DISTINCT date_trunc('hour', received_at, "
               "'UTC') FROM fbl.reports UNION SELECT DISTINCT date_trunc('hour', received_at, "
               "'UTC') FROM fbl.report_urls UNION SELECT received_at FROM fbl.rollup_complaints "
               "UNION SELECT received_at FROM fbl.rollup_url_hosts UNION SELECT received_at "
               "FROM fbl.rollup_reporters));")
    sql.extend(_differ(*c) for c in tables)
    sql.append("UPDATE fbl.rollup_state SET complete_since = 'infinity';")
    sql.extend(_differ(*c) for c in functions)
    sql.append("ROLLBACK;")
    return "\n".join(sql)


def mismatches(conninfo):
    out = subprocess.run(["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1"],
                         input=_script(), check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True).stdout
    bad = []
    checked = 0
    for line in out.splitlines():
        if "|" not in line:
            continue  # fbl.rollup_recompute()'s void
        name, extra, missing = line.split("|")
        checked += 1
        if extra != "0" or missing != "0":
            bad.append("%s: %s rows only as kept, %s only as recomputed" % (name, extra, missing))
    if checked != len(TABLES) + 2 * len(FUNCTIONS):
        bad.append("the rollup check ran %d of %d comparisons: %s"
                   % (checked, len(TABLES) + 2 * len(FUNCTIONS), out))
    return bad
