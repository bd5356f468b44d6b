#!/usr/bin/python3
"""`fbl run` as systemd runs it: sd_notify, the watchdog, metrics, SIGHUP, SIGTERM.

usage: ops_daemon.py --fbl BIN --pg-conninfo-file FILE --workdir DIR

One long-running `fbl run` with NOTIFY_SOCKET and WATCHDOG_USEC pointing at
a datagram socket this test binds, [log] file and [metrics] listen set:

- READY=1 arrives, then WATCHDOG=1 pings (every WatchdogSec/2);
- every golden sample of tests/corpus/samples (one copy of each content; not
  the too-large one, whose golden uses a 1 KiB limit) is delivered into new/;
  once new/ is empty, the Prometheus endpoint must count exactly the mails,
  reports and rejects by mailbox, format, feedback type and reason that the
  goldens claim, the sink's batches and mails must add up, and PostgreSQL
  must hold the same numbers;
- the log file is renamed away and SIGHUP makes fbl write a new one, with
  the next mail's rid at the parse, stored and ack stages;
- no reporter or recipient address from the samples appears in the info log;
- SIGTERM: STOPPING=1 arrives and fbl exits 0 with nothing left in new/.
"""
import argparse
import collections
import glob
import json
import os
import re
import signal
import socket
import time

from ops_common import (SAMPLES, Database, Proc, check, count, deliver, free_port, fresh_dir,
                        log, make_maildir, parse_metrics, run_main, scrape, wait_for)

NAME = "ops_daemon"
MAILBOX = "spamalert"


# What leads each line of a log file (fbl/log.h): the time, the role, the pid.
PREFIX = r"ts=\S+ role=\S+ pid=\d+ "


def golden_samples():
    """[(path, docs)] of the samples, one per distinct mail, and the expected metrics."""
    seen, out = set(), []
    for path in sorted(glob.glob(os.path.join(SAMPLES, "*.eml"))):
        if os.path.basename(path).startswith("reject-too-large"):
            continue
        docs = json.load(open(path[:-4] + ".json"))
        if docs[0]["mail_id"] in seen:
            continue
        seen.add(docs[0]["mail_id"])
        out.append((path, docs))
    return out


def expected_metrics(samples):
    exp = collections.Counter()
    for _, docs in samples:
        first = docs[0]
        if first["kind"] == "reject":
            exp['fbl_watch_mails_total{mailbox="%s",format="reject",feedback_type="none"}'
                % MAILBOX] += 1
            exp['fbl_watch_rejects_total{mailbox="%s",reason="%s"}'
                % (MAILBOX, first["reason"])] += 1
            continue
        exp['fbl_watch_mails_total{mailbox="%s",format="%s",feedback_type="%s"}'
            % (MAILBOX, first["format"], first["feedback_type"])] += 1
        for d in docs:
            exp['fbl_watch_reports_total{mailbox="%s",format="%s",feedback_type="%s"}'
                % (MAILBOX, d["format"], d["feedback_type"])] += 1
    return exp


def personal_addresses(samples):
    """Reporter and recipient addresses: personal data, never logged above debug."""
    found = set()
    for _, docs in samples:
        for d in docs:
            if d["kind"] != "report":
                continue
            if d["reporter"].get("address"):
                found.add(d["reporter"]["address"])
            for rcpt in (d.get("arf") or {}).get("original_rcpt_to") or []:
                found.add(rcpt)
    return found


class Notify:
    """The NOTIFY_SOCKET end: every datagram fbl sends, with its arrival time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.messages = []

    def poll(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return
            for line in data.decode().splitlines():
                self.messages.append((time.monotonic(), line))

    def has(self, prefix):
        self.poll()
        return any(m.startswith(prefix) for _, m in self.messages)

    def count(self, prefix):
        self.poll()
        return sum(1 for _, m in self.messages if m.startswith(prefix))


def test(args):
    work = fresh_dir(args.workdir)
    db = Database(args.pg_conninfo_file, "t_ops_daemon")
    mbox = make_maildir(os.path.join(work, MAILBOX))
    logfile = os.path.join(work, "fbl.log")
    port = free_port()
    conf = os.path.join(work, "fbl.conf")
    with open(conf, "w") as fh:
        fh.write("[postgres]\nconninfo = %s\n\n[mailbox:%s]\npath = %s\n\n"
                 "[sink]\nbatch_max_wait = 50ms\n\n[log]\nlevel = info\nfile = %s\n\n"
                 "[metrics]\nlisten = 127.0.0.1:%d\n" % (db.conninfo, MAILBOX, mbox, logfile,
                                                          port))
    notify = Notify(os.path.join(work, "notify.sock"))
    env = {"NOTIFY_SOCKET": os.path.join(work, "notify.sock"), "WATCHDOG_USEC": "2000000"}
    proc = Proc([args.fbl, "run", "--config", conf], os.path.join(work, "stderr.log"), env)
    try:
        wait_for("READY=1", lambda: notify.has("READY=1") or not proc.running(), 60)
        check(proc.running(), "fbl run exited early:\n" + proc.output())
        log(NAME, "READY=1 received")

        samples = golden_samples()
        for path, _ in samples:
            deliver(mbox, open(path, "rb").read())
        n = len(samples)
        wait_for("new/ to empty", lambda: count(mbox, "new") == 0, 60)
        wait_for("every ack", lambda: parse_metrics(scrape(port)[2]).get(
            "fbl_watch_acked_total") == n, 30)
        status, ctype, body = scrape(port)
        check(status == 200, "GET /metrics: %s" % status)
        check(ctype.startswith("text/plain; version=0.0.4"), "content type %s" % ctype)
        got = parse_metrics(body)
        exp = expected_metrics(samples)
        for family in ("fbl_watch_mails_total", "fbl_watch_reports_total",
                       "fbl_watch_rejects_total"):
            have = {k: v for k, v in got.items() if k.startswith(family + "{")}
            want = {k: float(v) for k, v in exp.items() if k.startswith(family + "{")}
            check(have == want, "%s: got %s, want %s" % (family, have, want))
        reports = sum(v for k, v in exp.items() if k.startswith("fbl_watch_reports_total"))
        rejects = sum(v for k, v in exp.items() if k.startswith("fbl_watch_rejects_total"))
        batches = got["fbl_sink_batches_total"]
        want_exact = {
            "fbl_watch_acked_total": n, "fbl_watch_resends_total": 0,
            "fbl_watch_mails_in_flight": 0, "fbl_watch_bytes_in_flight": 0,
            "fbl_watch_mails_queued": 0, "fbl_sink_mails_total": n,
            "fbl_sink_reports_total": reports, "fbl_sink_batch_mails_sum": n,
            "fbl_sink_batch_mails_count": batches, "fbl_sink_batch_duration_seconds_count": batches,
            'fbl_sink_batch_mails_bucket{le="+Inf"}': batches,
            'fbl_pg_errors_total{role="sink",kind="transient"}': 0,
            'fbl_pg_errors_total{role="sink",kind="permanent"}': 0,
            "fbl_sink_bad_messages_total": 0,
        }
        for key, want in want_exact.items():
            check(got.get(key) == want, "%s = %s, want %s" % (key, got.get(key), want))
        check(batches >= 1, "no batch counted")
        check(got.get('fbl_build_info{version="%s"}' % args.version) == 1, "fbl_build_info")
        check(scrape(port, "/nothing")[0] == 404, "GET /nothing is not 404")
        stored = db.query("SELECT (SELECT count(*) FROM fbl.reports) || ' ' || "
                          "(SELECT count(*) FROM fbl.rejects)")
        check(stored == "%d %d" % (reports, rejects),
              "PostgreSQL holds %s reports/rejects, the metrics say %d %d" % (stored, reports,
                                                                              rejects))
        log(NAME, "metrics match the goldens: %d mails, %d reports, %d rejects, %d batch(es)"
            % (n, reports, rejects, batches))

        wait_for("two WATCHDOG=1", lambda: notify.count("WATCHDOG=1") >= 2, 15)
        log(NAME, "watchdog pings: %d" % notify.count("WATCHDOG=1"))

        # logrotate: rename, SIGHUP, and the next mail's events go to the new file.
        os.rename(logfile, logfile + ".1")
        proc.p.send_signal(signal.SIGHUP)
        wait_for("a new log file", lambda: os.path.exists(logfile), 10)
        extra = open(os.path.join(SAMPLES, "arf-not-spam.eml"), "rb").read().replace(
            b"Cheap watches", b"Cheap clocks")
        deliver(mbox, extra)
        wait_for("the extra mail's ack", lambda: count(mbox, "new") == 0 and parse_metrics(
            scrape(port)[2]).get("fbl_watch_acked_total") == n + 1, 30)
        new_log = open(logfile).read()
        check("log file reopened" in new_log, "no 'log file reopened' in the new file")
        # Each line of a log file leads with ts=, role= and pid= (fbl/log.h).
        rid = re.search(r"^%srid=([0-9a-f]{12}) stage=parse " % PREFIX, new_log, re.M)
        check(rid, "no stage=parse line in the reopened log:\n" + new_log)
        for stage in ("stored", "ack"):
            check(re.search(r"^%srid=%s stage=%s " % (PREFIX, rid.group(1), stage), new_log,
                            re.M),
                  "rid %s has no stage=%s line" % (rid.group(1), stage))
        old_log = open(logfile + ".1").read()
        check(old_log.count("stage=parse") == n, "the old log has %d parse lines, want %d"
              % (old_log.count("stage=parse"), n))
        for line in (old_log + new_log).splitlines():
            check(re.match(r"^%s(rid=\S+ stage=\S+ )?level=\w+ domain=\S+ msg=" % PREFIX, line),
                  "not a key=value log line: %r" % line)
        for addr in personal_addresses(samples):
            check(addr not in old_log + new_log, "%s (personal data) is in the log" % addr)
        log(NAME, "SIGHUP reopened the log; rid %s has parse, stored and ack lines"
            % rid.group(1))

        rc = proc.stop(signal.SIGTERM)
        check(rc == 0, "fbl run exited %s after SIGTERM" % rc)
        check(notify.has("STOPPING=1"), "no STOPPING=1")
        check(count(mbox, "new") == 0 and count(mbox, "cur") == n + 1, "mails left in new/")
        check("stopped cleanly" in open(logfile).read(), "no 'stopped cleanly' line")
        log(NAME, "SIGTERM: STOPPING=1, exit 0")
    finally:
        proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--pg-conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--version", required=True)
    args = ap.parse_args()
    run_main(NAME, lambda: test(args))


if __name__ == "__main__":
    main()
