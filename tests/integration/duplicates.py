#!/usr/bin/python3
"""The same report delivered twice is stored twice and forwarded once (schema 007).

usage: duplicates.py twice|concurrent|lock|plans --fbl BIN --conninfo-file F --workdir DIR

Each mode makes its own database in the "pg" fixture's cluster, and uses a real
vendor (vendor_server.py) that records every report it receives.

twice       one `fbl run` with a vendor: an ARF report delivered three times with
            different delivery headers (Received, Delivered-To, Return-Path: other
            bytes, other mail ids), one without a Message-ID in the reported message
            delivered twice (fingerprint and source IP), and reports that are NOT
            copies: the same message reported as not-spam, by another reporter, and
            a copy delivered ten days earlier (outside the 7-day window). Checks:
            every mail stored, each copy's duplicate_of is its original, each
            original reaches the vendor once and no copy at all, the outbox rows of
            copies are 'duplicate', and the analyst functions count a report and
            its copies once. Then `fbl reparse` rewrites every report: the same
            marks, the same outbox, nothing sent again.
concurrent  two `fbl sink` and two `fbl watch` processes, each watcher with its own
            Maildir and its own sink; the two copies of each of 150 reports are
            delivered into the two Maildirs at the same moment, so the two sinks
            store them at once. Then `fbl forward`. Each pair: one original, one
            duplicate; the vendor gets each report once.
lock        the store function on two connections (psql), step by step: the second
            writer of a key waits for the first one's commit (an advisory lock),
            then sees its row and stores its copy as the duplicate.
plans       the plans of the store's lookups (schema 013) on month partitions without
            statistics, as a new database and every month until autoanalyze have
            them: the current month holds 200 reports, never analysed, and a session with plan_cache_mode = force_generic_plan (the plan a sink's
            session keeps) stores two batches with auto_explain on. Every probe of
            fbl.reports for a stored original (in fbl.store_staged and in
            fbl.duplicate_original) must use reports_duplicate_key_idx, and the
            per-reporter count the reporter index: never a month's received_at
            index, which reads the whole window per report (007's ORDER BY ...
            LIMIT 1 took it). Exits 77 (skipped) where auto_explain is missing.

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
from vendor_feed import Db, Maildir, Proc, write, outbox_states  # noqa: E402
import rollup_check  # noqa: E402

FAILURES = []


def log(msg):
    print("duplicates: %s" % msg, flush=True)


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        log("FAIL: %s" % msg)
    return cond


def wait_until(pred, timeout, what, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return True
        except subprocess.CalledProcessError:
            pass  # not migrated yet
        time.sleep(step)
    check(False, "timed out after %.0f s waiting for %s" % (timeout, what))
    return False


# ---- report mails ---------------------------------------------------------------------------

def report(key, reporter, feedback_type="abuse", message_id=True, ip=7):
    """One ARF report mail about the spam called @key (its bytes depend on the arguments only)."""
    mid = "Message-ID: <spam-%s@sender.example.com>\r\n" % key if message_id else ""
    text = ("From: Feedback Loop <%(rep)s>\r\n"
            "To: spamalert@abuse.example.net\r\n"
            "Subject: Abuse report %(key)s\r\n"
            "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
            "Message-ID: <arf-%(key)s-%(ft)s-%(rep)s>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n"
            "\r\n--b\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n"
            "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
            "Feedback-Type: %(ft)s\r\nUser-Agent: TestFBL/1.0\r\nVersion: 1\r\n"
            "Original-Mail-From: <bounce@sender.example.com>\r\n"
            "Original-Rcpt-To: <victim@customer.example.net>\r\n"
            "Source-IP: 192.0.2.%(ip)d\r\n"
            "Arrival-Date: Mon, 30 Nov 2026 09:59:00 +0000\r\n"
            "\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
            "Received: from mail.sender.example.com (mail.sender.example.com [192.0.2.%(ip)d])\r\n"
            "\tby mx1.example.net with ESMTP id X1; Mon, 30 Nov 2026 09:58:00 +0000\r\n"
            "From: Deals <deals@sender.example.com>\r\n"
            "To: victim@customer.example.net\r\n"
            "Subject: Cheap watches %(key)s\r\n"
            "Date: Mon, 30 Nov 2026 09:58:00 +0000\r\n"
            "%(mid)s"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            "Cheap watches %(key)s at http://shop.sender.example.com/%(key)s today only.\r\n"
            "--b--\r\n") % dict(rep=reporter, key=key, ft=feedback_type, mid=mid, ip=ip)
    return text.encode()


def delivered(data, copy):
    """@data as our MTA delivers it the @copy-th time: its own trace headers on top."""
    return ("Return-Path: <fbl-bounces+%d@feedback.example.org>\r\n"
            "Delivered-To: spamalert@abuse.example.net\r\n"
            "Received: from out%d.feedback.example.org (out%d.feedback.example.org "
            "[198.51.100.%d]) by mx.abuse.example.net with ESMTPS id Q%d;"
            " Mon, 30 Nov 2026 10:00:%02d +0000\r\n" % (copy, copy, copy, copy, copy, copy)
            ).encode() + data


def deliver_at(mbox, data, mtime):
    """Deliver @data as a mail delivered at @mtime (the watcher's received_at)."""
    name = "%d.M0P%d.old" % (int(mtime), os.getpid())
    tmp = os.path.join(mbox.path, "tmp", name)
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.utime(tmp, (mtime, mtime))
    os.rename(tmp, os.path.join(mbox.path, "new", name))


def config(db, mbox, vendor, token, extra="", name="spamalert"):
    return """[postgres]
conninfo = %s

[mailbox:%s]
path = %s

[sink]
batch_max_wait = 50ms

[log]
level = info

[vendor:acme]
type = http-json
url = %s
token_file = %s
%s""" % (db.conninfo, name, mbox, vendor.url(), token, extra)


def subject_of(db, rid):
    return db.q("SELECT subject FROM fbl.reports WHERE id = '%s'" % rid)


# ---- twice ----------------------------------------------------------------------------------

def mode_twice(a, db, work):
    mbox = Maildir(os.path.join(work, "mbox"))
    server = VendorServer(token="t").start()
    tok = write(os.path.join(work, "token"), "t")
    conf = write(os.path.join(work, "fbl.conf"), config(db, mbox.path, server, tok))
    rep, other = "fbl@feedback.example.org", "someone@isp.example.net"
    a_mail = report("A", rep)
    for copy in (1, 2, 3):
        mbox.deliver(delivered(a_mail, copy))
    b_mail = report("B", rep, message_id=False)
    for copy in (1, 2):
        mbox.deliver(delivered(b_mail, copy))
    mbox.deliver(delivered(report("A", rep, feedback_type="not-spam"), 1))  # another type
    mbox.deliver(delivered(report("A", other), 1))  # another reporter
    deliver_at(mbox, delivered(a_mail, 9), time.time() - 10 * 86400)  # out of the window
    fbl = Proc("run", [a.fbl, "run", "--config", conf], work).start()
    try:
        wait_until(lambda: db.count("SELECT count(*) FROM fbl.reports") == 8 and
                   outbox_states(db, "acme").get("pending", 0) == 0 and
                   outbox_states(db, "acme").get("sent", 0) >= 5, 60,
                   "8 reports stored and nothing pending")
        time.sleep(1.0)  # a copy sent anyway would show by now
        ok = server.ok_counts()
        check(sum(ok.values()) == 5 and len(ok) == 5,
              "the vendor got %d reports (%d distinct), expected 5: the 8 mails hold 5 reports"
              % (sum(ok.values()), len(ok)))
        check(outbox_states(db, "acme") == {"sent": 5, "duplicate": 3},
              "outbox: %s, expected 5 sent and 3 duplicate" % outbox_states(db, "acme"))
        check_twice(db, server)
        check_rollups(db, "after the store")
        reparse_keeps_marks(a, db, server, conf)
        check_rollups(db, "after fbl reparse")
    finally:
        rc = fbl.stop()
        server.stop()
    check(rc == 0, "fbl run exited %s after SIGTERM" % rc)
    check("stage=vendor_send" in fbl.text(), "no vendor_send line in the log")


def check_twice(db, server):
    rows = db.rows("SELECT id, subject, feedback_type, reporter_address, duplicate_of, "
                   "extract(epoch FROM received_at)::bigint FROM fbl.reports "
                   "ORDER BY received_at, id")
    check(len(rows) == 8, "%d reports stored, expected 8 (every copy is kept)" % len(rows))
    by_id = dict((r[0], r) for r in rows)
    dups = [r for r in rows if r[4]]
    log("copies: %s" % ["%s -> %s" % (d[1], by_id.get(d[4], ["?", "?"])[1]) for d in dups])
    check(len(dups) == 3, "%d copies marked, expected 3" % len(dups))
    for d in dups:
        orig = by_id.get(d[4])
        check(orig is not None and orig[4] == "", "copy %s points at %s, not at an original"
              % (d[0][:12], d[4][:12]))
        if orig:
            check(orig[1] == d[1] and orig[2] == d[2] and orig[3] == d[3],
                  "copy of %r marked as a copy of %r" % (d[1], orig[1]))
    subjects = sorted(r[1] for r in dups)
    check(subjects == ["Cheap watches A", "Cheap watches A", "Cheap watches B"],
          "the copies are %s" % subjects)
    ok = server.ok_counts()
    check(all(ok.get(d[0], 0) == 0 for d in dups), "a copy reached the vendor")
    originals = [r for r in rows if not r[4]]
    check(all(ok.get(r[0], 0) == 1 for r in originals),
          "vendor deliveries per original: %s" % [ok.get(r[0], 0) for r in originals])
    # The analyst functions count a report and its copies once.
    since = "now() - interval '30 days'"
    check(db.q("SELECT reports FROM fbl.summary(%s)" % since) == "5",
          "fbl.summary counts %s reports, expected 5"
          % db.q("SELECT reports FROM fbl.summary(%s)" % since))
    camp = db.q("SELECT sum(reports) FROM fbl.campaigns(%s)" % since)
    check(camp == "5", "fbl.campaigns counts %s reports, expected 5" % camp)
    host = db.rows("SELECT host, reports, urls FROM fbl.top_url_hosts(%s)" % since)
    check(host == [["shop.sender.example.com", "5", "5"]], "fbl.top_url_hosts: %s" % host)
    hourly = db.q("SELECT sum(reports) FROM fbl.complaints_hourly(%s)" % since)
    check(hourly == "5", "fbl.complaints_hourly counts %s reports" % hourly)
    ips = db.q("SELECT sum(reports) FROM fbl.top_source_ips(%s)" % since)
    check(ips == "5", "fbl.top_source_ips counts %s reports" % ips)
    who = db.q("SELECT sum(reports) FROM fbl.reporters(%s)" % since)
    check(who == "5", "fbl.reporters counts %s reports" % who)


def check_rollups(db, when):
    """The hourly rollups (schema 012) count each original once: what the triggers kept equals
    a recompute from the reports, and the analyst functions answer the same either way."""
    bad = rollup_check.mismatches(db.conninfo)
    log("rollups %s: %s" % (when, "exact" if not bad else bad))
    check(not bad, "rollups %s: %s" % (when, bad))


def reparse_keeps_marks(a, db, server, conf):
    before = db.rows("SELECT id, duplicate_of FROM fbl.reports ORDER BY id")
    states = db.rows("SELECT report_id, state FROM fbl.vendor_outbox ORDER BY 1")
    requests = len(server.requests)
    # Every stored document differs from what the parser makes now: all are rewritten.
    db.q("UPDATE fbl.reports SET doc = doc || '{\"stale\": true}'")
    r = subprocess.run([a.fbl, "reparse", "--config", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    log("fbl reparse: %s" % r.stdout.strip().splitlines()[-1:])
    check(r.returncode == 0, "fbl reparse exited %d: %s" % (r.returncode, r.stdout[-500:]))
    check(db.count("SELECT count(*) FROM fbl.reports WHERE doc ? 'stale'") == 0,
          "fbl reparse did not rewrite the reports")
    time.sleep(1.5)
    after = db.rows("SELECT id, duplicate_of FROM fbl.reports ORDER BY id")
    check(after == before, "fbl reparse changed the marks: %s -> %s" % (before, after))
    check(db.rows("SELECT report_id, state FROM fbl.vendor_outbox ORDER BY 1") == states,
          "fbl reparse changed the outbox")
    check(len(server.requests) == requests, "a report was sent again after fbl reparse")


# ---- concurrent -----------------------------------------------------------------------------

def mode_concurrent(a, db, work):
    server = VendorServer(token="t").start()
    tok = write(os.path.join(work, "token"), "t")
    boxes = [Maildir(os.path.join(work, "mbox%d" % k)) for k in (1, 2)]
    procs = []
    for k, box in enumerate(boxes, 1):
        bus = "ipc://%s/sink%d.sock" % (work, k)
        conf = write(os.path.join(work, "fbl%d.conf" % k), config(db, box.path, server, tok, """
[watch]
connect = %s

[sink]
bind = %s
batch_max_mails = 4
""" % (bus, bus), name="spamalert%d" % k).replace("[sink]\nbatch_max_wait = 50ms\n", ""))
        procs.append(Proc("sink%d" % k, [a.fbl, "sink", "--config", conf], work).start())
    wait_until(lambda: db.q("SELECT to_regclass('fbl.reports') IS NOT NULL AND "
                            "to_regprocedure('fbl.write_staged(text[])') IS NOT NULL") == "t",
               60, "the sinks' migrations")
    if a.no_lock:
        # The control: without the lock, how many pairs does the race let through twice?
        db.q("CREATE OR REPLACE FUNCTION fbl.lock_duplicate_keys(p_extra text[] DEFAULT NULL) "
             "RETURNS void LANGUAGE sql AS 'SELECT'")
    for k, box in enumerate(boxes, 1):
        conf = os.path.join(work, "fbl%d.conf" % k)
        procs.append(Proc("watch%d" % k, [a.fbl, "watch", "--config", conf], work).start())
    n = a.pairs
    for i in range(n):
        data = report("P%d" % i, "fbl%d@feedback.example.org" % (i % 7), ip=1 + i % 200)
        boxes[0].deliver(delivered(data, 1))
        boxes[1].deliver(delivered(data, 2))
    fwd = None
    try:
        wait_until(lambda: db.count("SELECT count(*) FROM fbl.reports") == 2 * n, 120,
                   "%d reports stored" % (2 * n))
        fwd = Proc("forward", [a.fbl, "forward", "--config", os.path.join(work, "fbl1.conf")],
                   work).start()
        wait_until(lambda: outbox_states(db, "acme").get("pending", 0) == 0 and
                   outbox_states(db, "acme").get("sent", 0) >= n, 120,
                   "%d reports sent, nothing pending" % n)
        time.sleep(1.0)
    finally:
        rcs = [p.stop() for p in ([fwd] if fwd else []) + procs]
        server.stop()
    check(all(rc == 0 for rc in rcs), "exit codes after SIGTERM: %s" % rcs)
    ok = server.ok_counts()
    check(len(ok) == n and all(v == 1 for v in ok.values()),
          "the vendor got %d reports (%d more than once), expected %d once each"
          % (len(ok), sum(1 for v in ok.values() if v > 1), n))
    pairs = db.rows("SELECT subject, count(*), count(duplicate_of), "
                    "count(*) FILTER (WHERE duplicate_of IS NULL) FROM fbl.reports GROUP BY 1")
    bad = [p for p in pairs if p[1:] != ["2", "1", "1"]]
    log("pairs stored as one original and one copy: %d of %d" % (len(pairs) - len(bad), n))
    check(len(pairs) == n and not bad, "%d pairs, not one original and one copy: %s"
          % (len(bad), bad[:5]))
    # Which sink stored which copy first: both must have won some, or nothing raced.
    firsts = db.rows("SELECT m.mailbox, count(*) FROM fbl.reports r JOIN fbl.mails m "
                     "USING (mail_id, received_at) WHERE r.duplicate_of IS NULL GROUP BY 1")
    log("originals by the sink that stored them first: %s" % firsts)
    dup_ids = set(x[0] for x in db.rows("SELECT id FROM fbl.reports WHERE duplicate_of "
                                        "IS NOT NULL"))
    check(not dup_ids & set(k for k, v in ok.items() if v), "a copy reached the vendor")
    check(outbox_states(db, "acme") == {"sent": n, "duplicate": n},
          "outbox: %s" % outbox_states(db, "acme"))
    check_rollups(db, "after two sinks stored at once")


# ---- lock -----------------------------------------------------------------------------------

class Session:
    """A psql session fed statement by statement (its own connection and transaction)."""

    def __init__(self, conninfo, path):
        self.out = open(path, "w+")
        self.p = subprocess.Popen(["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1"],
                                  stdin=subprocess.PIPE, stdout=self.out,
                                  stderr=subprocess.STDOUT, text=True)
        self.send("SELECT 'pid=' || pg_backend_pid();")
        wait_until(lambda: "pid=" in self.text(), 10, "a psql session")
        self.pid = self.text().split("pid=")[1].split()[0]

    def send(self, sql):
        self.p.stdin.write(sql + "\n")
        self.p.stdin.flush()

    def text(self):
        self.out.flush()
        with open(self.out.name) as fh:
            return fh.read()

    def close(self):
        self.p.stdin.close()
        return self.p.wait(timeout=30)


def stage(doc_json, copy):
    """The statements that stage one mail with one report (a copy of the document)."""
    mail_id = "%064x" % (0xC0FFEE + copy)
    rid = "%064x" % (0xBEEF00 + copy)
    doc = doc_json.replace("'", "''")
    return ("BEGIN;\nSELECT fbl.create_staging();\n"
            "INSERT INTO pg_temp.fbl_stage_mails VALUES ('%(m)s', now(), 'spamalert', 1, NULL);\n"
            "INSERT INTO pg_temp.fbl_stage_reports VALUES ('%(r)s', '%(m)s', now(), '%(d)s');\n"
            "SELECT 'stored=' || mails || '/' || reports FROM fbl.write_staged('{acme}');"
            % dict(m=mail_id, r=rid, d=doc)), rid


def mode_lock(a, db, work):
    path = os.path.join(work, "report.eml")
    with open(path, "wb") as fh:
        fh.write(report("L", "fbl@feedback.example.org"))
    doc = subprocess.run([a.fbl, "parse", path], stdout=subprocess.PIPE, text=True,
                         check=True).stdout.strip()
    r = subprocess.run([a.fbl, "migrate", "--db", db.conninfo], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, "fbl migrate: %s" % r.stdout)
    one = Session(db.conninfo, os.path.join(work, "one.out"))
    two = Session(db.conninfo, os.path.join(work, "two.out"))
    sql1, id1 = stage(doc, 1)
    sql2, id2 = stage(doc, 2)
    one.send(sql1)
    wait_until(lambda: "stored=1/1" in one.text(), 20, "the first writer's batch")
    two.send(sql2)
    waiting = wait_until(lambda: db.q(
        "SELECT wait_event FROM pg_stat_activity WHERE pid = %s" % two.pid) == "advisory", 20,
        "the second writer to wait on the first one's advisory lock")
    time.sleep(0.5)
    check("stored=" not in two.text(), "the second writer stored its copy before the first "
          "one committed")
    t0 = time.time()
    one.send("COMMIT;")
    wait_until(lambda: "stored=1/1" in two.text(), 20, "the second writer's batch")
    log("the second writer waited on the advisory lock: %s; went on %.3f s after the commit"
        % (waiting, time.time() - t0))
    two.send("COMMIT;")
    check(one.close() == 0 and two.close() == 0, "psql: %s %s" % (one.text(), two.text()))
    rows = db.rows("SELECT r.id, r.duplicate_of, o.state FROM fbl.reports r "
                   "JOIN fbl.vendor_outbox o ON o.report_id = r.id ORDER BY r.id")
    check(rows == [[id1, "", "pending"], [id2, id1, "duplicate"]], "stored: %s" % rows)


# ---- plans ----------------------------------------------------------------------------------

SKIP = 77


def stage_batch(doc_json, batch, n, base):
    """A transaction that stores @n reports (a copy of the document each: 10 reporters, the
    first 10 reports of every batch about the same 10 messages, the rest about a message
    each, a long subject) delivered at @base - seconds."""
    return """BEGIN;
SELECT fbl.create_staging();
INSERT INTO pg_temp.fbl_stage_mails
SELECT md5(g || 'm%(b)d'), %(t)s - g * interval '1 s' - %(b)d * interval '1 min', 'spamalert',
       1, NULL FROM generate_series(1, %(n)d) g;
INSERT INTO pg_temp.fbl_stage_reports
SELECT md5(g || 'r%(b)d'), md5(g || 'm%(b)d'),
       %(t)s - g * interval '1 s' - %(b)d * interval '1 min',
       jsonb_set(jsonb_set(jsonb_set('%(d)s'::jsonb, '{message,message_id}',
                                     to_jsonb('spam-' || CASE WHEN g <= 10 THEN g ELSE %(b)d * 1000 + g END
                                              || '@sender.example.com')),
                           '{reporter,address}', to_jsonb('fbl' || g %% 10 || '@feedback.example.org')),
                 '{message,subject}', to_jsonb((SELECT string_agg(md5(g || 'r%(b)d' || i), ' ')
                                                FROM generate_series(1, %(pad)d) i)))
FROM generate_series(1, %(n)d) g;
SELECT 'stored=' || mails || '/' || reports FROM fbl.write_staged('{acme}');
COMMIT;
""" % dict(b=batch, n=n, t=base, d=doc_json.replace("'", "''"), pad=60)


def psql_script(conninfo, script):
    return subprocess.run(["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1"], input=script,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mode_plans(a, db, work):
    path = os.path.join(work, "report.eml")
    with open(path, "wb") as fh:
        fh.write(report("P", "fbl@feedback.example.org"))
    doc = subprocess.run([a.fbl, "parse", path], stdout=subprocess.PIPE, text=True,
                         check=True).stdout.strip()
    r = subprocess.run([a.fbl, "migrate", "--db", db.conninfo], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if not check(r.returncode == 0, "fbl migrate: %s" % r.stdout):
        return
    # The months exist, as in production; the middle of this one is far from its edges.
    db.q("SELECT fbl.create_month_partitions(now() - interval '1 month'), "
         "fbl.create_month_partitions(now()), fbl.create_month_partitions(now() + interval '1 month')")
    base = "(date_trunc('month', now()) + interval '14 days')"
    pre = 2
    r = psql_script(db.conninfo, "".join(stage_batch(doc, 100 + b, 100, base) for b in range(pre)))
    if not check(r.returncode == 0 and r.stdout.count("stored=100/100") == pre,
                 "prefill: %s %s" % (r.stdout, r.stderr)):
        return
    month = db.q("SELECT DISTINCT tableoid::regclass FROM fbl.reports").split(".")[-1]
    check(db.q("SELECT count(*) FROM pg_stats WHERE schemaname = 'fbl' AND tablename = '%s'"
               % month) == "0", "%s has statistics" % month)
    key = db.q("SELECT duplicate_key FROM fbl.reports WHERE duplicate_key IS NOT NULL LIMIT 1")
    r = psql_script(db.conninfo, "LOAD 'auto_explain';")
    if r.returncode != 0:
        log("skipped: no auto_explain (%s)" % r.stderr.strip())
        return SKIP
    script = ("LOAD 'auto_explain';\n"
              "SET auto_explain.log_min_duration = 0;\n"
              "SET auto_explain.log_nested_statements = on;\n"
              "SET plan_cache_mode = force_generic_plan;\n"
              "SET client_min_messages = log;\n"
              + "".join(stage_batch(doc, b, 100, base) for b in range(2))
              + "SELECT 'original=' || coalesce(fbl.duplicate_original('%s', 'x', %s, "
                "interval '7 days'), '');\n" % (key, base))
    r = psql_script(db.conninfo, script)
    with open(os.path.join(work, "plans.log"), "w") as fh:
        fh.write(r.stdout + r.stderr)
    if not check(r.returncode == 0 and r.stdout.count("stored=100/100") == 2
                 and "original=" in r.stdout, "the batches: %s %s" % (r.stdout, r.stderr[-2000:])):
        return
    plans = r.stderr.split("LOG:  duration: ")
    store = [p for p in plans if "Insert on reports" in p]
    orig = [p for p in plans if "Aggregate" in p and "duplicate_key = $1" in p] or \
        [p for p in plans if "duplicate_key = $1" in p]
    if not check(len(store) == 2 and orig, "auto_explain logged %d store plans and %d "
                 "duplicate_original plans (see plans.log)" % (len(store), len(orig))):
        return
    for what, plan in (("fbl.store_staged", store[-1]), ("fbl.duplicate_original", orig[-1])):
        scans = re.findall(r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)"
                           r"(?: using (\S+))? on (reports_\w+)", plan)
        bitmaps = re.findall(r"Bitmap Index Scan on (\S+)", plan)
        used = [u for _, u, t in scans if u] + bitmaps
        log("%s: %s" % (what, ", ".join(sorted(set("%s %s" % (t, u or k) for k, u, t in scans
                                                    if t == month))) or "(no scan)"))
        wrong = [u for u in used if re.fullmatch(r"reports_(\d{6}|default)_received_at_idx", u)]
        check(not wrong, "%s reads %s: the whole window per report (plans.log)" % (what, wrong))
        mine = [u for _, u, t in scans if t == month] + [b for b in bitmaps if month in b]
        check("%s_duplicate_key_received_at_idx" % month in mine,
              "%s: no probe of %s_duplicate_key_received_at_idx (plans.log)" % (what, month))
        if what == "fbl.store_staged":
            check("%s_reporter_address_expr_received_at_idx" % month in mine,
                  "%s: the per-reporter count does not read %s's reporter index (plans.log)"
                  % (what, month))
    # And what the lookups found is 007's rule: a copy repeats the earliest original with its
    # key that an earlier transaction stored, else its batch's earliest report with the key
    # (every report here is within one window of every other).
    rows = db.rows("""SELECT count(*), count(r.duplicate_of), count(*) FILTER (
                          WHERE r.duplicate_of IS DISTINCT FROM coalesce(
                              (SELECT o.id FROM fbl.reports o
                               WHERE o.duplicate_key = r.duplicate_key AND o.duplicate_of IS NULL
                                 AND o.xmin::text::bigint < r.xmin::text::bigint
                               ORDER BY o.received_at, o.id LIMIT 1),
                              (SELECT o.id FROM fbl.reports o
                               WHERE o.duplicate_key = r.duplicate_key AND o.xmin = r.xmin
                                 AND (o.received_at, o.id) < (r.received_at, r.id)
                               ORDER BY o.received_at, o.id LIMIT 1)))
                      FROM fbl.reports r""")
    log("reports, copies, copies not as 007's rule: %s" % rows)
    check(rows and rows[0][0] == str(100 * (pre + 2)) and rows[0][1] != "0" and rows[0][2] == "0",
          "reports, copies, wrong: %s" % rows)


# ---- main -----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("twice", "concurrent", "lock", "plans"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--pairs", type=int, default=150)
    ap.add_argument("--no-lock", action="store_true",
                    help="concurrent: without the advisory lock (a control; expected to fail)")
    a = ap.parse_args()
    a.fbl = os.path.abspath(a.fbl)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    t0 = time.time()
    db = Db(a.conninfo_file, "t_dup_" + a.mode)
    try:
        skipped = globals()["mode_" + a.mode](a, db, a.workdir) == SKIP
    finally:
        db.drop()
    if skipped and not FAILURES:
        return SKIP
    log("%s done in %.1f s" % (a.mode, time.time() - t0))
    if FAILURES:
        print("%d failure(s); logs in %s" % (len(FAILURES), a.workdir))
        return 1
    log("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
