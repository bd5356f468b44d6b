#!/usr/bin/python3
"""`fbl report` and `fbl prune` end to end, on databases of their own in the "pg"
fixture's cluster.

usage: analyst_cli.py --fbl BIN --conninfo-file F --samples DIR --workdir DIR

report  every sample of tests/corpus/samples delivered an hour ago into a Maildir and
        stored by `fbl run --once` (the pipeline), plus outbox rows of one vendor:
        `fbl report` in json, csv and text must give the numbers counted by SQL on the
        tables; the text tables are aligned and have totals; fbl_analyst alone can run
        it; usage errors exit 64 and a database without the schema 78.
prune   month partitions from eleven months ago to now, with rows in each (and an old
        row in a DEFAULT partition): --dry-run changes nothing; --older-than 180d drops
        exactly the months that ended before the cutoff (every table's), deletes the
        old DEFAULT row and keeps the rest; --raw-older-than 30d clears fbl.mails.raw
        before its cutoff only; [retention] keep in the config does the same; as
        fbl_analyst it is refused (77).
backfill a store from before schema 012 (reports over eleven months, the rollups empty
        and fbl.rollup_state where 012 leaves it): the analyst functions answer the same
        from the reports alone; `fbl migrate` rolls up the history a day at a time
        (skipping the empty months), after which the rollups equal a recompute, the
        functions still answer the same, and a second `fbl migrate` has nothing to do.

Standard library only; psql runs the queries.
"""
import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rollup_check  # noqa: E402

FAILURES = []


def log(msg):
    print("analyst_cli: %s" % msg, flush=True)


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        log("FAIL: %s" % msg)


def psql(conninfo, sql):
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    out = subprocess.run(["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, stdout=subprocess.PIPE, text=True, env=env)
    return out.stdout.strip()


def q_int(conninfo, sql):
    return int(psql(conninfo, sql))


def fbl(args, *argv, expect=0):
    p = subprocess.run([args.fbl, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if expect is not None and p.returncode != expect:
        check(False, "fbl %s: exit %d, expected %d: %s" % (" ".join(argv), p.returncode, expect,
                                                           p.stderr.strip()))
    return p


def fresh_db(admin, name):
    psql(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    psql(admin, "CREATE DATABASE %s" % name)
    # The corpus holds one report in many encodings (the same reporter and Message-ID):
    # schema 007 would mark them as copies; these checks count every report.
    psql(admin, "ALTER DATABASE %s SET fbl.duplicate_window = '0'" % name)
    return "%s dbname=%s" % (admin, name)


# ---- report ------------------------------------------------------------------

def csv_blocks(text):
    blocks = {}
    for block in text.strip("\n").split("\n\n"):
        rows = list(csv.reader(io.StringIO(block)))
        check(rows[0][:2] == ["table", "rank"], "csv header %s" % rows[0])
        name = rows[1][0] if len(rows) > 1 else None
        blocks[name] = [dict(zip(rows[0], r)) for r in rows[1:]]
    return blocks


def text_tables(text):
    """Title -> lines of each table of the text report."""
    tables, title = {}, None
    for line in text.split("\n"):
        if line and not line.startswith(" "):
            title = line
            tables[title] = []
        elif line and title is not None:
            tables[title].append(line)
    return tables


def test_report(args, admin, work):
    db = fresh_db(admin, "t_analyst_cli")
    fbl(args, "migrate", "--db", db, "--log-level", "warning")
    md = os.path.join(work, "spamalert")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub))
    t = int(time.time()) - 3600
    names = sorted(n for n in os.listdir(args.samples) if n.endswith(".eml"))
    for i, name in enumerate(names):
        shutil.copy(os.path.join(args.samples, name),
                    os.path.join(md, "new", "%d.M%dP1Q%d.analyst" % (t + i, i, i)))
    fbl(args, "run", "--once", "--maildir", md, "--db", db, "--log-level", "warning")
    reports = q_int(db, "SELECT count(*) FROM fbl.reports")
    rejects = q_int(db, "SELECT count(*) FROM fbl.rejects")
    check(reports > 20 and rejects > 3, "stored %d reports, %d rejects" % (reports, rejects))
    psql(db, "INSERT INTO fbl.vendor_outbox (report_id, received_at, vendor) "
             "SELECT id, received_at, 'example' FROM fbl.reports")
    psql(db, "UPDATE fbl.vendor_outbox SET state = 'sent', sent_at = now() WHERE report_id < '8'")
    sent = q_int(db, "SELECT count(*) FROM fbl.vendor_outbox WHERE state = 'sent'")
    with_ip = q_int(db, "SELECT count(*) FROM fbl.reports WHERE source_ip IS NOT NULL")
    ips = q_int(db, "SELECT count(DISTINCT source_ip) FROM fbl.reports")
    not_spam = q_int(db, "SELECT count(*) FROM fbl.reports WHERE feedback_type = 'not-spam'")

    # json
    p = fbl(args, "report", "--db", db, "--format", "json", "--top", "3")
    doc = json.loads(p.stdout)
    check(doc["period"] == "hour" and doc["until_now"] is True, "json window %s" % doc["period"])
    s = doc["summary"]
    check(s["reports"] == reports and s["rejects"] == rejects and s["not_spam"] == not_spam,
          "json summary %s" % s)
    top = doc["top_source_ips"]
    check(len(top["rows"]) == 3, "json top_source_ips has %d rows" % len(top["rows"]))
    check(top["total"]["rows"] == ips and top["total"]["reports"] == with_ip,
          "json top_source_ips total %s" % top["total"])
    check(top["others"]["rows"] == ips - 3 and
          top["others"]["reports"] + sum(r["reports"] for r in top["rows"]) == with_ip,
          "json top_source_ips others %s" % top["others"])
    check(doc["complaints"]["total"]["reports"] == reports, "json complaints total")
    check(doc["rejects_by_reason"]["total"]["rejects"] == rejects, "json rejects total")
    feed = doc["vendor_feed"]["rows"]
    check(len(feed) == 1 and feed[0]["vendor"] == "example" and feed[0]["sent"] == sent and
          feed[0]["pending"] == reports - sent, "json vendor_feed %s" % feed)
    check(all(len(r["reporter_key"]) == 16 for r in doc["reporters"]["rows"]
              if r["reporter_domain"] is not None), "json reporter keys")
    check("@" not in json.dumps(doc["reporters"]), "json reporters show no address")

    # csv
    p = fbl(args, "report", "--db", db, "--format", "csv", "--top", "3")
    blocks = csv_blocks(p.stdout)
    check(int(blocks["summary"][0]["reports"]) == reports, "csv summary %s" % blocks["summary"])
    check(len(blocks["top_source_ips"]) == 3, "csv top_source_ips rows")
    check([r["rank"] for r in blocks["campaigns"]] == ["1", "2", "3"], "csv campaign ranks")
    check(sum(int(r["rejects"]) for r in blocks["rejects_by_reason"]) == rejects, "csv rejects")
    p = fbl(args, "report", "--db", db, "--format", "csv", "--top", "0")
    check(len(csv_blocks(p.stdout)["top_source_ips"]) == ips, "csv --top 0 lists every IP")

    # text
    p = fbl(args, "report", "--db", db, "--top", "3")
    tables = text_tables(p.stdout)
    check(p.stdout.startswith("fbl report: ") and "(the last 24h)" in p.stdout.split("\n")[0],
          "text heading: %s" % p.stdout.split("\n")[0])
    for title in ("Summary", "Top source IPs", "Top sender domains", "Top URL hosts",
                  "Top campaigns", "Top reporters", "False positives (not-spam reports)",
                  "Vendor feed", "Rejected mails", "Reports per hour (UTC)"):
        check(title in tables, "text has the table %s" % title)
    ip_lines = tables.get("Top source IPs", [])
    check(len(ip_lines) == 1 + 3 + 2, "text top source IPs: %d lines" % len(ip_lines))
    check(ip_lines[-1].strip().startswith("total (%d IPs)" % ips) and
          ("%d" % with_ip) in ip_lines[-1].replace(",", ""), "text total: %s" % ip_lines[-1:])
    rej = tables.get("Rejected mails", [])
    check(len({len(line) for line in rej}) == 1, "text columns aligned: %s" % rej)
    check("%d" % reports in tables["Summary"][0].replace(",", ""), "text summary")
    check("\x1b" not in p.stdout, "no escape characters in the text")

    # the analyst role alone, a longer window, errors
    analyst = "%s options='-c role=fbl_analyst'" % db
    p = fbl(args, "report", "--db", analyst, "--format", "json")
    check(json.loads(p.stdout or "{}").get("summary", {}).get("reports") == reports,
          "fbl report as fbl_analyst")
    p = fbl(args, "report", "--db", db, "--since", "7d", "--format", "json")
    check(json.loads(p.stdout)["period"] == "day", "7 days are shown per day")
    p = fbl(args, "report", "--db", db, "--since", "2020-01-01", "--until", "2020-02-01",
            "--format", "json")
    check(json.loads(p.stdout)["summary"]["reports"] == 0, "an empty window")
    fbl(args, "report", "--db", db, "--format", "xml", expect=64)
    fbl(args, "report", "--db", db, "--since", "yesterday", expect=64)
    fbl(args, "report", "--db", db, "--top", "-1", expect=64)
    fbl(args, "report", "--db", db, "--since", "1h", "--until", "2h", expect=64)
    empty = fresh_db(admin, "t_analyst_cli_empty")
    fbl(args, "report", "--db", empty, expect=78)
    fbl(args, "report", "--db", "host=/nonexistent dbname=x", expect=69)


# ---- prune -------------------------------------------------------------------

AGES = (330, 300, 270, 240, 200, 150, 90, 40, 10, 0)  # days ago, one row each


def partitions(db):
    return set(psql(db, "SELECT partition FROM fbl.month_partitions()").split())


def fill(db):
    sql = []
    for days in AGES:
        at = "now() - interval '%d days'" % days
        sql.append("SELECT fbl.create_month_partitions(%s);" % at)
        sql.append("INSERT INTO fbl.mails (mail_id, received_at, size, raw) "
                   "VALUES ('m%d', %s, 3, 'raw');" % (days, at))
        sql.append("INSERT INTO fbl.reports (id, received_at, mail_id, part, format, "
                   "feedback_type, redacted, headers_only, doc) VALUES ('r%d', %s, 'm%d', 0, "
                   "'arf', 'abuse', false, false, '{}');" % (days, at, days))
        sql.append("INSERT INTO fbl.report_urls (report_id, received_at, position, url, host) "
                   "VALUES ('r%d', %s, 0, 'http://x.example/', 'x.example');" % (days, at))
        sql.append("INSERT INTO fbl.vendor_outbox (report_id, received_at, vendor) "
                   "VALUES ('r%d', %s, 'example');" % (days, at))
        sql.append("INSERT INTO fbl.rejects (mail_id, received_at, reason) "
                   "VALUES ('j%d', %s, 'bounce');" % (days, at))
    # Two years ago no month was made: the row lands in the DEFAULT partition.
    sql.append("INSERT INTO fbl.reports (id, received_at, mail_id, part, format, feedback_type, "
               "redacted, headers_only, doc) VALUES ('old', now() - interval '730 days', 'm', 0, "
               "'arf', 'abuse', false, false, '{}');")
    psql(db, "\n".join(sql))


def test_prune(args, admin, work):
    db = fresh_db(admin, "t_analyst_prune")
    fbl(args, "migrate", "--db", db, "--log-level", "warning")
    fill(db)
    before = partitions(db)
    gone = set(psql(db, "SELECT partition FROM fbl.month_partitions() "
                        "WHERE hi <= now() - interval '180 days'").split())
    tables = q_int(db, "SELECT count(DISTINCT parent) FROM fbl.month_partitions()")
    check(tables == 15, "15 tables by month (8, and 012's 7 rollups): %d" % tables)
    check(len(gone) >= 3 * tables and len(gone) % tables == 0,
          "%d partitions to drop" % len(gone))
    current = psql(db, "SELECT partition FROM fbl.month_partitions() WHERE parent = 'reports' "
                       "AND lo <= now() AND hi > now()")

    p = fbl(args, "prune", "--db", db, "--older-than", "180d", "--dry-run")
    check(partitions(db) == before, "--dry-run dropped nothing")
    check(p.stdout.count("would drop 20") == len(gone) // tables, "dry run lists the months: %s"
          % p.stdout)
    check(q_int(db, "SELECT count(*) FROM fbl.reports") == len(AGES) + 1, "dry run kept rows")

    p = fbl(args, "prune", "--db", db, "--older-than", "180d")
    after = partitions(db)
    check(after == before - gone, "dropped exactly the old months: %s" % sorted(before - after))
    check(current in after, "the current month stays")
    kept = [int(d) for d in psql(db, "SELECT d FROM unnest(ARRAY%s) d WHERE EXISTS (SELECT 1 "
                                     "FROM fbl.month_partitions() WHERE parent = 'reports' AND "
                                     "lo <= now() - d * interval '1 day' AND "
                                     "hi > now() - d * interval '1 day')" % list(AGES)).split()]
    for table in ("reports", "mails", "report_urls", "vendor_outbox", "rejects"):
        check(q_int(db, "SELECT count(*) FROM fbl.%s" % table) == len(kept),
              "%s keeps the rows of the kept months" % table)
    check(q_int(db, "SELECT reports FROM fbl.summary('-infinity')") == len(kept),
          "the rollups of the dropped months went with them")
    check(q_int(db, "SELECT count(*) FROM fbl.reports_default") == 0,
          "the old row in the DEFAULT partition was deleted")
    check(psql(db, "SELECT to_regclass('fbl.reports_default')") == "fbl.reports_default",
          "the DEFAULT partition stays")
    check("dropped 20" in p.stdout, "prune says what it dropped: %s" % p.stdout)

    # Raw mail on its own schedule: cleared before the cutoff only, rows kept.
    p = fbl(args, "prune", "--db", db, "--raw-older-than", "30d", "--dry-run")
    check(q_int(db, "SELECT count(*) FROM fbl.mails WHERE raw IS NULL") == 0, "raw dry run")
    p = fbl(args, "prune", "--db", db, "--raw-older-than", "30d")
    expect_cleared = len([d for d in kept if d > 30])
    check(q_int(db, "SELECT count(*) FROM fbl.mails WHERE raw IS NULL") == expect_cleared and
          q_int(db, "SELECT count(*) FROM fbl.mails WHERE raw IS NULL AND received_at > now() - "
                    "interval '30 days'") == 0, "raw cleared before the cutoff only")
    check(q_int(db, "SELECT count(*) FROM fbl.mails") == len(kept), "mails themselves kept")
    check("cleared the raw bytes of %d mails" % expect_cleared in p.stdout, p.stdout)

    # [retention] in the config: nothing older is left, so nothing happens.
    conf = os.path.join(work, "fbl.conf")
    with open(conf, "w") as f:
        f.write("[postgres]\nconninfo = %s\n\n[retention]\nkeep = 26w\nraw_keep = 30d\n" % db)
    p = fbl(args, "prune", "--config", conf)
    check(partitions(db) == after, "a second prune changes nothing")
    check("(none)" in p.stdout, "nothing to drop: %s" % p.stdout)
    with open(conf, "w") as f:
        f.write("[retention]\nkeep = soon\n")
    fbl(args, "prune", "--config", conf, "--db", db, expect=78)

    fbl(args, "prune", "--db", "%s options='-c role=fbl_analyst'" % db, "--older-than", "30d",
        expect=77)
    fbl(args, "prune", "--db", db, "--older-than", "0d", expect=64)
    fbl(args, "prune", "--db", db, "--older-than", "6 months", expect=64)
    p = fbl(args, "prune", "--db", db)
    check("nothing to do" in p.stdout, "no age: nothing to do")
    check(partitions(db) == after, "the failed runs dropped nothing")


# ---- backfill ------------------------------------------------------------------

def answers(db):
    """Every analyst function over the whole history, as JSON text."""
    return psql(db, "SELECT json_agg(x) FROM (%s) x" % " UNION ALL ".join(
        "SELECT '%s' AS f, to_jsonb(t) AS r FROM fbl.%s('-infinity'::timestamptz) t" % (f, f)
        for f in rollup_check.FUNCTIONS))


def test_backfill(args, admin, work):
    db = fresh_db(admin, "t_analyst_backfill")
    fbl(args, "migrate", "--db", db, "--log-level", "warning")
    fill(db)
    # Reports that the rollups count by key, spread over the months and hours.
    sql = []
    for i in range(60):
        at = "now() - interval '%d hours'" % (i * 131 % 7000)
        sql.append("INSERT INTO fbl.reports (id, received_at, mail_id, part, format, "
                   "feedback_type, redacted, headers_only, doc, source_ip, from_domain, "
                   "return_path_domain, fingerprint, subject, reporter_address, rate_limited) "
                   "VALUES ('k%d', %s, 'mk%d', 0, 'arf', '%s', false, false, "
                   "'{\"message\": {\"dkim\": [{\"d\": \"d%d.example\"}]}}', '192.0.2.%d', "
                   "'s%d.example', 'b.example', 'fp%d', 'subject %d', 'u%d@isp.example', %s);"
                   % (i, at, i, "not-spam" if i % 7 == 0 else "abuse", i % 3, i % 5, i % 4,
                      i % 6, i, i % 9, "true" if i % 11 == 0 else "false"))
        sql.append("INSERT INTO fbl.report_urls (report_id, received_at, position, url, host) "
                   "VALUES ('k%d', %s, 0, 'http://h%d.example/', 'h%d.example');"
                   % (i, at, i % 4, i % 4))
        # The document's first signature, as the store writes it beside the report.
        sql.append("INSERT INTO fbl.report_dkim (report_id, received_at, position, d) "
                   "VALUES ('k%d', %s, 0, 'd%d.example');" % (i, at, i % 3))
    psql(db, "\n".join(sql))
    before = answers(db)
    check(q_int(db, "SELECT count(*) FROM fbl.rollup_source_ips") > 0, "the triggers rolled up")
    # As 012 finds a store: no rollups, complete from the hour after the newest report.
    psql(db, "TRUNCATE %s; UPDATE fbl.rollup_state SET complete_since = date_trunc('hour', "
             "(SELECT max(received_at) FROM fbl.reports), 'UTC') + interval '1 hour'"
             % ", ".join("fbl." + t for t in rollup_check.TABLES))
    check(answers(db) == before, "without rollups the functions answer the same")
    p = fbl(args, "migrate", "--db", db, "--log-level", "warning")
    m = re.search(r"rolled up (\d+) days? of stored reports", p.stdout)
    days = int(m.group(1)) if m else 0
    # Eleven months of reports, but only the days that have some are rolled up.
    check(12 <= days <= 80, "fbl migrate rolled up %d days: %s" % (days, p.stdout.strip()))
    check(psql(db, "SELECT complete_since FROM fbl.rollup_state") == "-infinity",
          "the rollups are whole: %s" % psql(db, "SELECT complete_since FROM fbl.rollup_state"))
    bad = rollup_check.mismatches(db)
    check(not bad, "the rolled-up history equals a recompute: %s" % bad)
    check(answers(db) == before, "with the rolled-up history the functions answer the same")
    p = fbl(args, "migrate", "--db", db, "--log-level", "warning")
    check("rolled up" not in p.stdout, "a second fbl migrate rolled up again: %s" % p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    with open(args.conninfo_file) as f:
        admin = f.read().strip()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    for name, fn in (("report", test_report), ("prune", test_prune), ("backfill", test_backfill)):
        work = os.path.join(args.workdir, name)
        os.makedirs(work)
        n = len(FAILURES)
        start = time.monotonic()
        fn(args, admin, work)
        log("%s: %s in %.1f s" % (name, "ok" if len(FAILURES) == n else "FAILED",
                                  time.monotonic() - start))
    if FAILURES:
        log("%d failure(s)" % len(FAILURES))
        return 1
    log("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
