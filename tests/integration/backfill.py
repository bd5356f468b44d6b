#!/usr/bin/python3
"""A vendor added later gets the backlog: `fbl forward --backfill` (sink/outbox.c).

usage: backfill.py --fbl BIN --conninfo-file F --workdir DIR [--bulk N]

1. `fbl run --once` stores reports while no vendor is configured: plain ones, a
   report delivered twice (its copy is a duplicate, schema 007) and a reporter over
   [limits] reports_per_reporter_per_hour (rate limited). No outbox rows.
2. A vendor is added (a real HTTP vendor, vendor_server.py);
   `fbl forward --backfill --vendor acme --since 1d` writes its rows: pending for
   the plain reports and the originals, 'duplicate' for the copy, 'limited' for the
   rate-limited ones, and says so in its summary.
3. `fbl forward` sends them: the vendor receives each pending report exactly once,
   and neither the copy nor the limited ones.
4. The same backfill again adds nothing ("already there"), and so does a range
   that holds no report; usage errors exit 64.
5. Speed: --bulk N more reports (made in SQL from a stored one) backfilled for a
   second vendor: the progress lines and the rate.

Standard library only; psql runs the queries.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vendor_server import VendorServer  # noqa: E402
from vendor_feed import Db, Maildir, Proc, write, outbox_states, make_arf  # noqa: E402
from duplicates import report, delivered  # noqa: E402

FAILURES = []


def log(msg):
    print("backfill: %s" % msg, flush=True)


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        log("FAIL: %s" % msg)
    return cond


def wait_until(pred, timeout, what, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    check(False, "timed out after %.0f s waiting for %s" % (timeout, what))
    return False


def run(argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


BASE = """[postgres]
conninfo = %s

[mailbox:spamalert]
path = %s

[limits]
reports_per_reporter_per_hour = 2

[log]
level = info
"""

VENDORS = """
[vendor:acme]
type = http-json
url = %s
token_file = %s

[vendor:bulk]
type = http-json
url = http://127.0.0.1:9/never-started
"""


def summary(text):
    m = re.search(r"backfill (\S+) done: (\d+) reports, (\d+) rows added \((\d+) pending, "
                  r"(\d+) limited, (\d+) duplicate\), (\d+) already there", text)
    return [int(x) for x in m.groups()[1:]] if m else None


def store_without_vendor(a, db, work, mbox):
    conf = write(os.path.join(work, "novendor.conf"), BASE % (db.conninfo, mbox.path))
    for i in range(6):
        mbox.deliver(make_arf(i, "calm%d@isp.example.net" % i, "v%d@c.example.net" % i))
    twice = report("BF", "fbl@feedback.example.org")
    mbox.deliver(delivered(twice, 1))
    mbox.deliver(delivered(twice, 2))
    for i in range(4):
        mbox.deliver(make_arf(100 + i, "flooder@isp.example.net", "w%d@c.example.net" % i))
    r = run([a.fbl, "run", "--config", conf, "--once"])
    check(r.returncode == 0, "fbl run --once exited %d: %s" % (r.returncode, r.stdout[-800:]))
    check(db.count("SELECT count(*) FROM fbl.reports") == 12, "%d reports stored, expected 12"
          % db.count("SELECT count(*) FROM fbl.reports"))
    check(db.count("SELECT count(*) FROM fbl.vendor_outbox") == 0, "outbox rows without a vendor")
    return conf


def backfill_and_send(a, db, work, conf):
    server = VendorServer(token="t").start()
    tok = write(os.path.join(work, "token"), "t")
    with open(conf) as fh:
        text = fh.read()
    conf = write(os.path.join(work, "fbl.conf"), text + VENDORS % (server.url(), tok))
    r = run([a.fbl, "forward", "--config", conf, "--backfill", "--vendor", "acme",
             "--since", "1d"])
    log(r.stdout.strip())
    check(r.returncode == 0, "--backfill exited %d" % r.returncode)
    check(summary(r.stdout) == [12, 12, 9, 2, 1, 0], "--backfill summary: %r" % r.stdout)
    check(outbox_states(db, "acme") == {"pending": 9, "limited": 2, "duplicate": 1},
          "outbox after --backfill: %s" % outbox_states(db, "acme"))
    fwd = Proc("forward", [a.fbl, "forward", "--config", conf], work).start()
    try:
        wait_until(lambda: outbox_states(db, "acme").get("sent", 0) == 9, 60, "9 reports sent")
        time.sleep(1.0)  # anything sent twice, or held back and sent, would show by now
        again = run([a.fbl, "forward", "--config", conf, "--backfill", "--vendor", "acme",
                     "--since", "2d", "--until",
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))])
        log(again.stdout.strip())
        check(again.returncode == 0 and summary(again.stdout) == [12, 0, 0, 0, 0, 12],
              "the second --backfill: %r" % again.stdout)
        time.sleep(1.0)
    finally:
        rc = fwd.stop()
        server.stop()
    check(rc == 0, "fbl forward exited %s" % rc)
    ok = server.ok_counts()
    pending_ids = set(x[0] for x in db.rows(
        "SELECT id FROM fbl.reports WHERE duplicate_of IS NULL AND NOT rate_limited"))
    check(set(ok) == pending_ids and all(v == 1 for v in ok.values()),
          "the vendor got %d reports (%d twice), expected the %d pending ones once each"
          % (len(ok), sum(1 for v in ok.values() if v > 1), len(pending_ids)))
    check(outbox_states(db, "acme") == {"sent": 9, "limited": 2, "duplicate": 1},
          "outbox at the end: %s" % outbox_states(db, "acme"))
    status = run([a.fbl, "forward", "--config", conf, "--status"]).stdout
    log("fbl forward --status:\n" + status)
    check(re.search(r"^acme +0 +0 +9 +0 +2 +1 ", status, re.M), "--status: %r" % status)
    return conf


def usage_errors(a, conf):
    cases = [
        (["--backfill", "--since", "1d"], "needs --vendor"),
        (["--backfill", "--vendor", "nobody", "--since", "1d"], "not configured: nobody"),
        (["--backfill", "--vendor", "acme"], "needs --since"),
        (["--backfill", "--vendor", "acme", "--since", "yesterday"], "--since yesterday"),
        (["--backfill", "--vendor", "acme", "--since", "1d", "--until", "2d"], "--until 2d"),
    ]
    for args, want in cases:
        r = run([a.fbl, "forward", "--config", conf] + args)
        check(r.returncode == 64 and want in r.stdout,
              "%s: exit %d %r (want 64 and %r)" % (args, r.returncode, r.stdout, want))
    r = run([a.fbl, "forward", "--config", conf, "--backfill", "--vendor", "acme",
             "--since", "2000-01-01", "--until", "2000-02-01"])
    check(r.returncode == 0 and summary(r.stdout) == [0, 0, 0, 0, 0, 0],
          "an empty range: %r" % r.stdout)


def bulk(a, db, conf, n):
    """@n more reports (copies of a stored one under new ids) backfilled for "bulk"."""
    db.q("INSERT INTO fbl.reports SELECT encode(sha256(('bulk' || g)::bytea), 'hex'), "
         "r.received_at - g * interval '1 second', r.mail_id, r.part, r.mailbox, r.format, "
         "r.feedback_type, r.reporter_address, r.reporter_verified, r.reporting_mta, "
         "r.user_agent, r.source_ip, r.source_ip_from, r.redacted, r.headers_only, "
         "'<bulk-' || g || '@x>', r.message_date, r.from_address, r.from_domain, r.return_path, "
         "r.return_path_domain, r.subject, r.fingerprint, r.message_size, r.arf_feedback_type, "
         "r.arf_source_ip, r.arf_original_mail_from, r.arf_arrival_date, "
         "r.arf_reported_domains, r.arf_incidents, r.arf_auth_failure, r.warnings, r.doc, "
         "r.parsed_at, false, NULL "
         "FROM (SELECT * FROM fbl.reports WHERE duplicate_of IS NULL LIMIT 1) r, "
         "generate_series(1, %d) g" % n)
    t0 = time.time()
    r = run([a.fbl, "forward", "--config", conf, "--backfill", "--vendor", "bulk",
             "--since", "30d"])
    secs = time.time() - t0
    progress = [l for l in r.stdout.splitlines() if "(going on)" in l]
    log("bulk: %d reports in %.2f s (%.0f rows/s); %d progress line(s), e.g. %r"
        % (n + 12, secs, (n + 12) / secs, len(progress), progress[:1]))
    log(r.stdout.strip().splitlines()[-1])
    s = summary(r.stdout)
    check(r.returncode == 0 and s is not None and s[0] == n + 12 and s[1] == n + 12,
          "bulk --backfill: %r" % r.stdout[-500:])
    if secs > 3.0:
        check(progress, "a %.1f s backfill printed no progress line" % secs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--bulk", type=int, default=200000)
    a = ap.parse_args()
    a.fbl = os.path.abspath(a.fbl)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    t0 = time.time()
    db = Db(a.conninfo_file, "t_backfill")
    try:
        mbox = Maildir(os.path.join(a.workdir, "mbox"))
        conf = store_without_vendor(a, db, a.workdir, mbox)
        if not FAILURES:
            conf = backfill_and_send(a, db, a.workdir, conf)
            usage_errors(a, conf)
            if a.bulk > 0:
                bulk(a, db, conf, a.bulk)
    finally:
        db.drop()
    log("done in %.1f s" % (time.time() - t0))
    if FAILURES:
        print("%d failure(s); logs in %s" % (len(FAILURES), a.workdir))
        return 1
    log("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
