#!/usr/bin/python3
"""Hostile peers against real fbl processes: the sink's ZeroMQ socket and the
metrics endpoint.

usage: sink_peers.py flood|forge --fbl BIN --peer WIRE_PEER --pg-conninfo-file FILE --workdir DIR
       sink_peers.py slowloris --fbl BIN --workdir DIR

flood      `fbl sink` and `fbl watch` over ipc://, a database of their own in the
           "pg" fixture's cluster. While the watcher delivers sample mails,
           wire_peer (a DEALER) sends messages the wire contract forbids: frames
           of 64 MiB, 12 a message (the sink's frame bound is its mail limit,
           10 MiB), 30,000 frames a message, and 80 MiB messages in frames
           under the frame bound (each sent after the answer to the one before:
           libzmq holds a message whole before the sink sees it, wire.h). The
           sink's VmRSS, sampled every 0.1 s, must stay under --rss-limit MiB;
           the sample mails delivered before and after must all be stored; the
           refusals must be counted by reason in
           fbl_sink_refused_messages_total and logged in a handful of lines.
forge      the same processes; wire_peer sends one "mail" message per case, each
           breaking one rule of the contract (wire.h) - a mail_id that is not
           the SHA-256 of the raw mail, a report id not derived from it, parts
           out of order, documents that disagree with the message, a time a
           month ahead, no raw mail yet reports - and one valid message. Only
           the valid one may be acknowledged and stored; the sink lives on and
           the watcher's mails are stored.
slowloris  `fbl watch` with its metrics endpoint: 50 connections send one byte
           of a request header per second; a normal GET /metrics must still be
           answered within 2 s, the slow connections must be closed by the
           endpoint within seconds, 3,000 more connections (500 at a time,
           half with part of a request, a third ending in a reset) must not
           flood the log (a handful of lines about the endpoint in all), and
           fbl must exit 0 on SIGTERM.
Standard library only; psql runs the queries.
"""
import argparse
import glob
import os
import socket
import struct
import subprocess
import threading
import time

from ops_common import (SAMPLES, Database, Proc, check, count, deliver, free_port, fresh_dir,
                        log, make_maildir, parse_metrics, run_main, scrape, wait_for)

NAME = "sink_peers"
MIB = 1024 * 1024
# Under AddressSanitizer, a small quarantine: the bound is about fbl's memory, not
# about the freed blocks ASan keeps (as pipeline.py does).
ASAN_ENV = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
            ":quarantine_size_mb=8:malloc_context_size=5"}


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample_mails():
    """One copy of each sample that is a mail of its own (the too-large one aside)."""
    seen, out = set(), []
    for path in sorted(glob.glob(os.path.join(SAMPLES, "*.eml"))):
        data = open(path, "rb").read()
        if "too-large" in path or data in seen:
            continue
        seen.add(data)
        out.append((path, data))
    return out


class Pipeline:
    """fbl sink + fbl watch over ipc://, with a database, a Maildir and the sink's metrics."""

    def __init__(self, args, dbname):
        self.work = fresh_dir(args.workdir)
        self.db = Database(args.pg_conninfo_file, dbname)
        self.mbox = make_maildir(os.path.join(self.work, "spamalert"))
        self.bus = "ipc://%s/bus.sock" % self.work
        self.port = free_port()
        self.sink_log = os.path.join(self.work, "sink.log")
        self.conf = os.path.join(self.work, "fbl.conf")
        with open(self.conf, "w") as fh:
            fh.write("[postgres]\nconninfo = %s\n\n[mailbox:spamalert]\npath = %s\n\n"
                     "[watch]\nconnect = %s\nack_timeout = 2s\n\n"
                     "[sink]\nbind = %s\nbatch_max_wait = 50ms\n\n"
                     "[log]\nlevel = notice\n\n[metrics]\nsink = 127.0.0.1:%d\n"
                     % (self.db.conninfo, self.mbox, self.bus, self.bus, self.port))
        self.sink = Proc([args.fbl, "sink", "--config", self.conf], self.sink_log, ASAN_ENV)
        wait_for("the sink's metrics", self.metrics_up, 60)
        self.watch = Proc([args.fbl, "watch", "--config", self.conf],
                          os.path.join(self.work, "watch.log"))
        self.samples = sample_mails()

    def metrics_up(self):
        check(self.sink.running(), "fbl sink exited early:\n" + self.sink.output())
        try:
            return scrape(self.port)[0] == 200
        except OSError:
            return False

    def metrics(self):
        return parse_metrics(scrape(self.port)[2])

    def deliver_samples(self):
        for _, data in self.samples:
            deliver(self.mbox, data)

    def check_samples_stored(self, timeout=120):
        """Every delivered file left new/; returns how many distinct mails PostgreSQL holds."""
        wait_for("new/ to empty", lambda: count(self.mbox, "new") == 0, timeout, 0.2)
        return int(self.db.query("SELECT count(DISTINCT mail_id) FROM fbl.mails"))

    def stop(self):
        rc_w = self.watch.stop()
        rc_s = self.sink.stop()
        check(rc_w == 0 and rc_s == 0, "exit codes after SIGTERM: watch %s, sink %s"
              % (rc_w, rc_s))

    def kill(self):
        self.watch.kill()
        self.sink.kill()

    def log_lines(self, word):
        return [line for line in self.sink.output().splitlines() if word in line]


def run_peer(argv, out):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out.append((argv, p.returncode, p.stdout.strip()))


FLOODS = [
    # (what, frames, bytes per frame, messages, how): each message past a bound. libzmq
    # hands a message over only once it is whole, so a message under the frame bound
    # (ZMQ_MAXMSGSIZE) is held whole in libzmq's queue, whatever the sink then does with
    # it; the paced flood sends the next one after the answer to the one before.
    ("frames of 64 MiB, 12 a message", 12, 64 * MIB, 4, "burst"),
    ("30,000 frames a message", 30000, 16, 3, "burst"),
    ("80 MiB a message, in frames of 8 MiB", 12, 8 * MIB, 4, "paced"),
]


def test_flood(args):
    p = Pipeline(args, "t_sink_flood")
    try:
        base = rss_kib(p.sink.p.pid)
        log(NAME, "sink VmRSS at rest: %.1f MiB" % (base / 1024))
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(p.sink.p.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        outputs = []
        p.deliver_samples()
        for what, frames, size, messages, how in FLOODS:
            t0 = time.monotonic()
            run_peer([args.peer, "flood", p.bus, str(frames), str(size), str(messages), "8",
                      how], outputs)
            log(NAME, "%s x%d: %s in %.1f s; sink VmRSS peak so far %.1f MiB"
                % (what, messages, outputs[-1][2], time.monotonic() - t0, peak[0] / 1024))
            check(p.sink.running(), "fbl sink died:\n" + p.sink.output()[-3000:])
        p.deliver_samples()  # and again, after the floods
        stored = p.check_samples_stored()
        done.set()
        sampler.join()
        log(NAME, "sink VmRSS peak %.1f MiB (limit %d MiB)" % (peak[0] / 1024, args.rss_limit))
        check(peak[0] <= args.rss_limit * 1024, "the sink's VmRSS reached %.1f MiB, over %d MiB"
              % (peak[0] / 1024, args.rss_limit))
        check(stored == len(p.samples), "%d sample mails stored, want %d"
              % (stored, len(p.samples)))
        check(count(p.mbox, "cur") == 2 * len(p.samples), "cur/ holds %d files, want %d"
              % (count(p.mbox, "cur"), 2 * len(p.samples)))
        log(NAME, "the watcher's mails were stored, before and after the floods (%d distinct)"
            % stored)
        for argv, rc, out in outputs:
            check(rc == 0, "%s: exit %d: %s" % (" ".join(argv), rc, out))
        m = p.metrics()
        frames = m.get('fbl_sink_refused_messages_total{reason="too_many_frames"}', 0)
        large = m.get('fbl_sink_refused_messages_total{reason="too_large"}', 0)
        check(frames == 3, "too_many_frames refusals: %s, want 3" % frames)
        check(large >= 4, "too_large refusals: %s, want 4 or more" % large)
        check(m.get("fbl_sink_bad_messages_total") == frames + large,
              "fbl_sink_bad_messages_total %s" % m.get("fbl_sink_bad_messages_total"))
        lines = p.log_lines("refused")
        check(1 <= len(lines) <= 3, "%d log lines about refusals:\n%s"
              % (len(lines), "\n".join(lines)))
        log(NAME, "refused: too_many_frames %d, too_large %d; %d log line(s)"
            % (frames, large, len(lines)))
        p.stop()
    finally:
        p.kill()


# (case, what the sink must answer): every case but "valid" breaks one rule of wire.h.
CASES = ["valid", "mail_id", "raw", "size", "report_id", "part", "doc_mail_id", "received_at",
         "mailbox", "future", "too_large_reports"]
FIRST_T = 1767225600  # 2026-01-01T00:00:00Z; each case its own hour, so keys never collide


def stored_under(db, forged, valid):
    """Rows a forged message may have left: any at its own delivery time, and any under an
    id of its own (the valid message's ids are stored at another time)."""
    t = int(forged["received_at"])
    sql = ["SELECT count(*) FROM fbl.%s WHERE received_at = to_timestamp(%d)" % (table, t)
           for table in ("mails", "reports", "rejects")]
    if forged["mail_id"] != valid["mail_id"]:
        sql += ["SELECT count(*) FROM fbl.%s WHERE mail_id = '%s'" % (table, forged["mail_id"])
                for table in ("mails", "reports", "rejects")]
    if forged["report_id"] not in ("-", valid["report_id"]):
        sql.append("SELECT count(*) FROM fbl.reports WHERE id = '%s'" % forged["report_id"])
    return int(db.query("SELECT " + " + ".join("(%s)" % q for q in sql)))


def test_forge(args):
    p = Pipeline(args, "t_sink_forge")
    try:
        p.deliver_samples()
        mail = os.path.join(SAMPLES, "attach-two-rfc822-crlf.eml")
        answers = {}
        for i, case in enumerate(CASES):
            t = FIRST_T + 3600 * i
            out = []
            run_peer([args.peer, "forge", p.bus, case, mail, str(t), "spamalert"], out)
            _, rc, text = out[0]
            check(rc == 0, "%s: exit %d: %s" % (case, rc, text))
            fields = dict(kv.split("=", 1) for kv in text.split(" reason=")[0].split())
            fields["reason"] = text.split(" reason=", 1)[1]
            answers[case] = fields
            log(NAME, "%-18s -> %s (%s)" % (case, fields["reply"], fields["reason"][:90]))
        check(answers["valid"]["reply"] == "ack", "the valid message: %s" % answers["valid"])
        for case, a in answers.items():
            if case == "valid":
                continue
            check(a["reply"] != "ack", "%s: acknowledged: %s" % (case, a))
        stored = p.check_samples_stored()
        check(stored == len(p.samples), "%d distinct mails stored, want the %d samples (the "
              "valid forged one is one of them)" % (stored, len(p.samples)))
        valid = answers["valid"]
        check(int(p.db.query("SELECT count(*) FROM fbl.mails WHERE mail_id = '%s' AND "
                             "received_at = to_timestamp(%s)" % (valid["mail_id"], valid["received_at"])))
              == 1, "the valid message was not stored")
        for case, a in answers.items():
            if case != "valid":
                n = stored_under(p.db, a, valid)
                check(n == 0, "%s: %d row(s) stored" % (case, n))
        check(p.sink.running(), "fbl sink died")
        m = p.metrics()
        refused = {k: v for k, v in m.items() if k.startswith("fbl_sink_refused_messages_total")
                   and v > 0}
        check(sum(refused.values()) == len(CASES) - 1, "refusals counted: %s" % refused)
        check(refused.get('fbl_sink_refused_messages_total{reason="mail_id"}') == 2,
              "mail_id refusals: %s" % refused)
        lines = p.log_lines("refused")
        check(1 <= len(lines) <= 3, "%d log lines about refusals:\n%s"
              % (len(lines), "\n".join(lines)))
        log(NAME, "nothing forged stored; refusals %s; %d log line(s); %d sample mails stored"
            % (refused, len(lines), len(p.samples)))
        p.stop()
    finally:
        p.kill()


SLOW = 50


def slowloris(port, results, i, stop):
    """One connection that sends a request header a byte a second; records when it was closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    opened = time.monotonic()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    s.settimeout(1.0)
    try:
        while not stop.is_set():
            try:
                if s.recv(4096) == b"":
                    break  # closed by the server
            except socket.timeout:
                pass
            s.sendall(b"a")
        else:
            return
    except OSError:
        pass
    finally:
        s.close()
    results[i] = time.monotonic() - opened


def burst(port, n):
    """@n connections, 500 open at once: half send part of a request, a third end in a reset."""
    for start in range(0, n, 500):
        socks = []
        for i in range(start, min(n, start + 500)):
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=2)
                if i % 2:
                    c.sendall(b"GET /metrics HTTP/1.1\r\nHo")
                socks.append(c)
            except OSError:
                pass
        for i, c in enumerate(socks):
            if i % 3 == 0:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()


def timed_get(port):
    t0 = time.monotonic()
    try:
        status = scrape(port)[0]
    except OSError as e:
        status = str(e)
    return status, time.monotonic() - t0


def test_slowloris(args):
    work = fresh_dir(args.workdir)
    mbox = make_maildir(os.path.join(work, "spamalert"))
    port = free_port()
    logfile = os.path.join(work, "fbl.log")
    conf = os.path.join(work, "fbl.conf")
    with open(conf, "w") as fh:
        fh.write("[mailbox:spamalert]\npath = %s\n\n[watch]\nconnect = ipc://%s/nobody.sock\n\n"
                 "[log]\nlevel = info\nfile = %s\n\n[metrics]\nwatch = 127.0.0.1:%d\n"
                 % (mbox, work, logfile, port))
    proc = Proc([args.fbl, "watch", "--config", conf], os.path.join(work, "stderr.log"))
    stop = threading.Event()
    try:
        wait_for("the metrics endpoint", lambda: proc.running() and timed_get(port)[0] == 200, 30)
        closed = {}
        threads = [threading.Thread(target=slowloris, args=(port, closed, i, stop), daemon=True)
                   for i in range(SLOW)]
        for t in threads:
            t.start()
        time.sleep(2.5)
        worst = 0.0
        for _ in range(5):
            status, took = timed_get(port)
            check(status == 200, "GET /metrics beside %d slow clients: %s after %.1f s"
                  % (SLOW, status, took))
            worst = max(worst, took)
            time.sleep(1.5)
        check(worst < 2.0, "GET /metrics took %.2f s beside %d slow clients" % (worst, SLOW))
        log(NAME, "GET /metrics beside %d slow clients: slowest of 5 in %.3f s" % (SLOW, worst))
        wait_for("the slow connections to be closed", lambda: len(closed) == SLOW, 10)
        check(max(closed.values()) < 6.0, "a slow connection lived %.1f s" % max(closed.values()))
        log(NAME, "the endpoint closed every slow connection within %.1f s"
            % max(closed.values()))
        t0 = time.monotonic()
        burst(port, 3000)
        log(NAME, "3,000 connections (500 at once; half with a partial request, a third "
            "reset) in %.1f s" % (time.monotonic() - t0))
        status, took = timed_get(port)
        check(status == 200 and took < 2.0, "GET /metrics after them: %s in %.2f s"
              % (status, took))
        check(proc.running(), "fbl watch died")
        stop.set()
        rc = proc.stop()
        check(rc == 0, "fbl watch exited %s after SIGTERM" % rc)
        lines = [line for line in open(logfile) if "metrics endpoint" in line]
        check(len(lines) <= 5, "%d log lines about the endpoint:\n%s" % (len(lines),
                                                                         "".join(lines[:20])))
        log(NAME, "%d log line(s) about the endpoint" % len(lines))
    finally:
        stop.set()
        proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("flood", "forge", "slowloris"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--peer")
    ap.add_argument("--pg-conninfo-file")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rss-limit", type=int, default=256, help="MiB, the sink's VmRSS")
    args = ap.parse_args()
    run_main(NAME, {"flood": lambda: test_flood(args), "forge": lambda: test_forge(args),
                    "slowloris": lambda: test_slowloris(args)}[args.mode])


if __name__ == "__main__":
    main()
