#!/usr/bin/python3
"""The vendor feed (fbl forward) on real processes, a real HTTP server and a real rspamd.

usage: vendor_feed.py http|kill|rspamd|limits|config --fbl BIN --conninfo-file F --workdir DIR

Each mode makes its own database in the "pg" fixture's cluster (FBL_PG_CONNINFO_FILE),
writes report mails into a Maildir, runs the real binaries, and checks what the
vendor received (vendor_server.py records every request) and what the outbox says.

http    `fbl run` with five vendors on test servers: "acme" (healthy, then scripted:
        429 with Retry-After, 500s, a request that hangs past the timeout, and 400 for
        one chosen report), "locked" (refuses our token: 401), "flaky" (always 500:
        dead letters after max_attempts), "tls" (https with its own CA in ca_file) and
        "tls-noca" (https, no ca_file: refused by TLS verification). Checks: every
        report delivered, exactly one 2xx per report, Retry-After and backoff
        honoured, the refused report alone dead-lettered with the vendor's answer and
        sent by `fbl forward --retry-dead`, 401 stops the vendor loudly, the same
        idempotency key on every retry of a batch, and no reporter address, name or
        recipient in clear in any body (redact, include_raw). Prints the delivery lag.
kill    `fbl watch` + `fbl sink` fill the outbox; two `fbl forward` share it (SKIP
        LOCKED) against a slow vendor while one or the other is killed with SIGKILL
        again and again: nothing is lost, and a report is sent again only when its
        first delivery fell in the window of a kill.
rspamd  redis-server and rspamd started here on loopback: spam to /learnspam and
        /fuzzyadd, not-spam to /learnham, opt-out learnt nowhere; the controller's
        password; sent again, "already learned" counts as delivered; a wrong password
        stops the vendor.
limits  a reporter over [limits] reports_per_reporter_per_hour: its extra reports are
        stored with rate_limited and outbox state 'limited', and never sent.
config  bad [vendor:NAME] sections: exit 78 naming the file, line and key.

Standard library only; psql runs the queries. Exit 77 (skip) when rspamd or
redis-server is not installed (rspamd mode only).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vendor_server import VendorServer  # noqa: E402

SKIP = 77
FAILURES = []


def log(msg):
    print("vendor_feed: %s" % msg, flush=True)


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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the database ------------------------------------------------------------------------

class Db:
    def __init__(self, conninfo_file, name):
        base = open(conninfo_file).read().strip()
        self.admin = base
        self.name = name
        self.psql(base, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        self.psql(base, "CREATE DATABASE %s" % name)
        self.conninfo = "%s dbname=%s" % (base, name)

    @staticmethod
    def psql(conninfo, sql):
        out = subprocess.run(["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        return out.stdout.strip()

    def q(self, sql):
        return self.psql(self.conninfo, sql)

    def rows(self, sql):
        return [line.split("|") for line in self.q(sql).splitlines() if line]

    def count(self, sql):
        return int(self.q(sql) or 0)

    def drop(self):
        try:
            self.psql(self.admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)
        except subprocess.CalledProcessError:
            pass


# ---- report mails --------------------------------------------------------------------------

WORDS = ("watches cheap offer pharmacy discount luxury replica limited today only click "
         "free bonus casino winner prize lottery loan credit mortgage refinance investment "
         "crypto opportunity exclusive deal shipping guaranteed").split()


def make_arf(i, reporter, rcpt, feedback_type="abuse", marker="", name="Feedback Loop"):
    """An ARF report about one spam; everything personal is derived from the arguments."""
    words = " ".join(WORDS[(i * 7 + k * 13) % len(WORDS)] + str(k % 5) for k in range(80))
    d = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    ip = 1 + i % 250
    text = """From: %(name)s <%(rep)s>
To: spamalert@abuse.example.net
Subject: Abuse report %(i)d
Date: %(d)s
Message-ID: <arf-%(i)d-%(t)d@feedback.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b%(i)d"

--b%(i)d
Content-Type: text/plain

This is an email abuse report for a message received from 192.0.2.%(ip)d.
--b%(i)d
Content-Type: message/feedback-report

Feedback-Type: %(ft)s
User-Agent: TestFBL/1.0
Version: 1
Original-Mail-From: <bounce-%(i)d@spammer.example.com>
Original-Rcpt-To: <%(rcpt)s>
Source-IP: 192.0.2.%(ip)d
Arrival-Date: %(d)s

--b%(i)d
Content-Type: message/rfc822

Received: from mail.spammer.example.com (mail.spammer.example.com [192.0.2.%(ip)d])
	by mx1.example.net with ESMTP id X%(i)d; %(d)s
From: Deals <deals@spammer.example.com>
To: %(rcpt)s
Subject: Exclusive offer number %(i)d %(marker)s
Date: %(d)s
Message-ID: <spam-%(i)d-%(t)d@spammer.example.com>
Content-Type: text/plain; charset=us-ascii

Dear %(rcpt)s,
%(words)s
Order now at http://spammer.example.com/offer?id=%(i)d and save %(i)d percent.
--b%(i)d--
""" % dict(i=i, rep=reporter, rcpt=rcpt, ft=feedback_type, marker=marker, ip=ip, d=d,
           words=words, name=name, t=int(time.time() * 1000))
    return text.replace("\n", "\r\n").encode()


class Maildir:
    def __init__(self, path):
        self.path = path
        for d in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(path, d), exist_ok=True)
        self.n = 0

    def deliver(self, data):
        self.n += 1
        name = "%d.M%dP%dQ%d.vendortest" % (int(time.time()), self.n, os.getpid(), self.n)
        tmp = os.path.join(self.path, "tmp", name)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.rename(tmp, os.path.join(self.path, "new", name))


# ---- processes ------------------------------------------------------------------------------

class Proc:
    def __init__(self, name, argv, logdir):
        self.name, self.argv, self.logdir = name, argv, logdir
        self.p = None
        self.starts = 0
        self.logs = []

    def start(self):
        self.starts += 1
        path = os.path.join(self.logdir, "%s.%d.log" % (self.name, self.starts))
        self.logs.append(path)
        self.p = subprocess.Popen(self.argv, stdout=open(path, "w"), stderr=subprocess.STDOUT)
        return self

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill9(self):
        if self.alive():
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()

    def stop(self, timeout=60):
        if not self.alive():
            return self.p.returncode if self.p else None
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return "killed after %ds" % timeout

    def text(self):
        out = []
        for path in self.logs:
            with open(path, errors="replace") as fh:
                out.append(fh.read())
        return "".join(out)


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kw)


def write(path, text, mode=0o600):
    with open(path, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)
    return path


def base_config(db, mbox, extra):
    return """[postgres]
conninfo = %s

[mailbox:spamalert]
path = %s

[sink]
batch_max_wait = 50ms

[log]
level = info
%s""" % (db.conninfo, mbox, extra)


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def delivery_lags(db, server, vendor, ids=None):
    """Seconds from the outbox row's write to the vendor's first 2xx, per report."""
    created = dict((i, float(t)) for i, t in db.rows(
        "SELECT report_id, extract(epoch FROM created_at) FROM fbl.vendor_outbox "
        "WHERE vendor = '%s'" % vendor))
    lags = []
    with server.lock:
        for i, d in server.deliveries.items():
            if ids is not None and i not in ids:
                continue
            oks = [t for t, s in d if isinstance(s, int) and 200 <= s < 300]
            if oks and i in created:
                lags.append(oks[0] - created[i])
    return lags


def outbox_states(db, vendor):
    try:
        return dict((s, int(n)) for s, n in db.rows(
            "SELECT state, count(*) FROM fbl.vendor_outbox WHERE vendor = '%s' GROUP BY 1"
            % vendor))
    except subprocess.CalledProcessError:
        return {}  # not migrated yet


# ---- http ------------------------------------------------------------------------------------

def make_tls(workdir):
    """A CA and a certificate for localhost signed by it (openssl)."""
    d = os.path.join(workdir, "tls")
    os.makedirs(d, exist_ok=True)
    ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in
                                 ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = write(os.path.join(d, "ext.cnf"), "subjectAltName=DNS:localhost\n", 0o644)
    q = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    ca_key, "-out", ca, "-days", "2", "-subj", "/CN=fbl test CA"], **q)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                    csr, "-subj", "/CN=localhost"], **q)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                    "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext], **q)
    return ca, (crt, key)


def mode_http(a, db, work):
    mbox = Maildir(os.path.join(work, "mbox"))
    reporters = ["reporter%d@isp.example.net" % k for k in range(5)]
    names = ["Reporter Person%d" % k for k in range(5)]
    recipients = ["victim%d@customer.example.net" % k for k in range(400)]
    forbidden = reporters + names + recipients
    acme = VendorServer(token="acme-token", forbidden=forbidden).start()
    locked = VendorServer(token="the-right-token").start()
    flaky = VendorServer(token="flaky-token").start()
    flaky.script({"status": 500, "count": 10 ** 6})
    ca, cert = make_tls(work)
    tls = VendorServer(token="tls-token", tls=cert).start()
    servers = [acme, locked, flaky, tls]
    key = write(os.path.join(work, "redact.key"), "0123456789abcdef-test-key\n")
    tok = {n: write(os.path.join(work, n + ".token"), t + "\n") for n, t in
           (("acme", "acme-token"), ("locked", "a-wrong-token"), ("flaky", "flaky-token"),
            ("tls", "tls-token"))}
    conf = write(os.path.join(work, "fbl.conf"), base_config(db, mbox.path, """
[vendor:acme]
type = http-json
url = %s
token_file = %s
redact = reporter, recipients
redact_key_file = %s
include_raw = true
batch_size = 20
parallel = 3
timeout = 1s
max_attempts = 6
retry_max_wait = 2s

[vendor:locked]
type = http-json
url = %s
token_file = %s

[vendor:flaky]
type = http-json
url = %s
token_file = %s
max_attempts = 2
retry_max_wait = 1s

[vendor:tls]
type = http-json
url = %s
token_file = %s
ca_file = %s

[vendor:tls-noca]
type = http-json
url = %s
token_file = %s
max_attempts = 1
""" % (acme.url(), tok["acme"], key, locked.url(), tok["locked"], flaky.url(), tok["flaky"],
       tls.url(), tok["tls"], ca, tls.url(), tok["tls"])))
    fbl = Proc("run", [a.fbl, "run", "--config", conf], work).start()
    total = [0]

    def send(count, marker_at=None, marker=""):
        for k in range(count):
            i = total[0]
            total[0] += 1
            mbox.deliver(make_arf(i, reporters[i % 5], recipients[i % 400],
                                  marker=marker if k == marker_at else "",
                                  name=names[i % 5]))

    def acme_sent(n):
        return lambda: outbox_states(db, "acme").get("sent", 0) >= n

    try:
        # A: healthy.
        send(100)
        wait_until(acme_sent(100), 60, "100 reports at a healthy vendor")
        lags = delivery_lags(db, acme, "acme")
        log("phase A (healthy): %d reports, delivery lag p50 %.3f s, p99 %.3f s, max %.3f s"
            % (len(lags), percentile(lags, 50), percentile(lags, 99), max(lags or [0])))
        check(len(lags) == 100, "phase A: %d of 100 reports delivered" % len(lags))
        # The promise is 2 s (bench/forward measures it on a release build); here, with
        # sanitizers, five vendors' threads and a busy CI machine, only a loose bound.
        check(percentile(lags, 50) < 10.0, "phase A: median delivery lag %.2f s is over 10 s"
              % percentile(lags, 50))

        # B: 429 with Retry-After 2.
        acme.script({"status": 429, "retry_after": 2})
        send(20)
        wait_until(acme_sent(120), 60, "phase B (429) delivered")
        with acme.lock:
            reqs = list(acme.requests)
        t429 = [r["t"] for r in reqs if r["status"] == 429]
        after = [r["t"] for r in reqs if t429 and r["t"] > t429[0]]
        check(len(t429) == 1, "phase B: %d answers 429, expected 1" % len(t429))
        if t429 and after:
            gap = min(after) - t429[0]
            log("phase B: next request %.2f s after the 429 (Retry-After: 2)" % gap)
            check(gap >= 1.9, "phase B: a request came %.2f s after a 429 with Retry-After 2"
                  % gap)
        ids429 = [i for r in reqs if r["status"] == 429 for i in r["ids"]]
        att = db.rows("SELECT attempts FROM fbl.vendor_outbox WHERE vendor = 'acme' "
                      "AND report_id IN (%s)" % ",".join("'%s'" % i for i in ids429))
        check(all(x[0] == "1" for x in att),
              "phase B: a 429 was counted as an attempt: %s" % att)

        # C: 500, 500, then a request that hangs past the 1 s timeout.
        acme.script({"status": 500, "count": 2}, {"hang": 1.6})
        send(20)
        wait_until(acme_sent(140), 60, "phase C (500, timeout) delivered")
        with acme.lock:
            reqs = list(acme.requests)
        fails = [r for r in reqs if r["status"] in (500, "timeout")]
        check(len(fails) == 3, "phase C: %d failed requests, expected 3" % len(fails))
        for f in fails[:2]:
            later = [r["t"] for r in reqs if r["t"] > f["t"]]
            if later:
                check(min(later) - f["t"] >= 0.7,
                      "phase C: retried %.2f s after a 500, no backoff" % (min(later) - f["t"]))
        retried = db.count("SELECT count(*) FROM fbl.vendor_outbox WHERE vendor = 'acme' "
                           "AND attempts > 1")
        check(retried >= 1, "phase C: no report needed a second attempt")

        # D: one report refused with 400: the batch is split, that one is dead-lettered.
        acme.refuse_marker = "REFUSE-ME-PLEASE"
        send(30, marker_at=17, marker="REFUSE-ME-PLEASE")
        wait_until(lambda: outbox_states(db, "acme").get("sent", 0) >= 169 and
                   outbox_states(db, "acme").get("dead", 0) == 1, 60,
                   "phase D: 29 sent and 1 dead letter")
        dead = db.rows("SELECT report_id, last_error, attempts FROM fbl.vendor_outbox "
                       "WHERE vendor = 'acme' AND state = 'dead'")
        check(len(dead) == 1, "phase D: %d dead letters, expected 1" % len(dead))
        if dead:
            log("phase D: dead letter: %s" % dead[0][1])
            check("refused: field message.subject is not allowed" in dead[0][1] and
                  "HTTP 400" in dead[0][1], "phase D: the dead letter lacks the vendor's "
                  "answer: %s" % dead[0][1])
            subject = db.q("SELECT subject FROM fbl.reports WHERE id = '%s'" % dead[0][0])
            check("REFUSE-ME-PLEASE" in subject, "phase D: the wrong report was dead-lettered")
        status = run([a.fbl, "forward", "--config", conf, "--status"])
        log("fbl forward --status:\n" + status.stdout)
        check(status.returncode == 0, "--status exited %d" % status.returncode)
        check("newest dead letter: HTTP 400" in status.stdout, "--status shows no dead letter")
        # ... and sent again by --retry-dead once the vendor takes it.
        acme.refuse_marker = None
        rd = run([a.fbl, "forward", "--config", conf, "--retry-dead", "--vendor", "acme"])
        check(rd.returncode == 0 and "1 dead letter of acme made pending again" in rd.stdout,
              "--retry-dead: %r" % rd.stdout)
        wait_until(acme_sent(170), 30, "the dead letter sent after --retry-dead")

        # The other vendors.
        wait_until(lambda: outbox_states(db, "flaky").get("dead", 0) == 170, 60,
                   "flaky's 170 dead letters")
        wait_until(lambda: outbox_states(db, "tls").get("sent", 0) == 170, 60,
                   "170 reports over TLS")
        wait_until(lambda: outbox_states(db, "tls-noca").get("dead", 0) == 170, 60,
                   "tls-noca's 170 dead letters")
        time.sleep(1.0)  # anything sent twice would have shown by now
    finally:
        rc = fbl.stop()
        for s in servers:
            s.stop()
    check(rc == 0, "fbl run exited %s after SIGTERM" % rc)
    text = fbl.text()

    # Exactly once per report, at every healthy vendor.
    ids = set(x[0] for x in db.rows("SELECT id FROM fbl.reports"))
    check(len(ids) == 170, "%d reports stored, expected 170" % len(ids))
    for name, server in (("acme", acme), ("tls", tls)):
        ok = server.ok_counts()
        missing = [i for i in ids if ok.get(i, 0) == 0]
        twice = [i for i in ids if ok.get(i, 0) > 1]
        check(not missing, "%s: %d reports never delivered" % (name, len(missing)))
        check(not twice, "%s: %d reports delivered twice after a 2xx" % (name, len(twice)))
        check(outbox_states(db, name) == {"sent": 170}, "%s outbox: %s"
              % (name, outbox_states(db, name)))
    # The same idempotency key for the same batch, every time.
    keys = {}
    for r in acme.requests:
        keys.setdefault(tuple(r["ids"]), set()).add(r["key"])
    check(all(len(k) == 1 for k in keys.values()), "a batch was retried under another key")
    check(not acme.errors, "acme saw protocol errors: %s" % acme.errors[:3])
    check(not acme.violations, "PRIVACY: clear personal data reached the vendor: %s"
          % sorted(set(acme.violations))[:5])
    # 401: stopped loudly, nothing lost.
    check(outbox_states(db, "locked") == {"pending": 170},
          "locked outbox: %s" % outbox_states(db, "locked"))
    check("vendor=locked STOPPED" in text and "level=critical" in text,
          "no loud log line for the vendor that refused our token")
    check(len(locked.requests) <= 3, "locked: %d requests after a 401" % len(locked.requests))
    # Dead letters after max_attempts, with the reason.
    bad = db.count("SELECT count(*) FROM fbl.vendor_outbox WHERE vendor = 'flaky' AND "
                   "(attempts <> 2 OR last_error NOT LIKE 'gave up after 2 attempts: HTTP 500%')")
    check(bad == 0, "flaky: %d dead letters without the reason or attempts" % bad)
    noca = db.q("SELECT last_error FROM fbl.vendor_outbox WHERE vendor = 'tls-noca' LIMIT 1")
    check("curl:" in noca and ("certificate" in noca.lower() or "ssl" in noca.lower()),
          "tls-noca: not a TLS verification failure: %s" % noca)
    check(not tls.violations and not tls.errors, "tls: %s" % tls.errors[:3])
    lags = delivery_lags(db, acme, "acme")
    log("acme: %d requests, %d reports; lag over the whole run p50 %.3f s, p99 %.3f s"
        % (len(acme.requests), len(ids), percentile(lags, 50), percentile(lags, 99)))


# ---- kill -9 -------------------------------------------------------------------------------

def mode_kill(a, db, work):
    mbox = Maildir(os.path.join(work, "mbox"))
    server = VendorServer(token="kill-token", delay=0.15).start()
    tok = write(os.path.join(work, "token"), "kill-token")
    bus = "ipc://%s/bus.sock" % work
    conf = write(os.path.join(work, "fbl.conf"), base_config(db, mbox.path, """
[watch]
connect = %s

[sink]
bind = %s

[vendor:acme]
type = http-json
url = %s
token_file = %s
batch_size = 5
parallel = 1
timeout = 2s
""" % (bus, bus, server.url(), tok)).replace("[sink]\nbatch_max_wait = 50ms\n", ""))
    n = a.mails
    for i in range(n):
        mbox.deliver(make_arf(i, "r%d@isp.example.net" % (i % 13), "v%d@c.example.net" % i))
    sink = Proc("sink", [a.fbl, "sink", "--config", conf], work).start()
    watch = Proc("watch", [a.fbl, "watch", "--config", conf], work).start()
    wait_until(lambda: db.count("SELECT count(*) FROM fbl.vendor_outbox") == n
               if db.q("SELECT to_regclass('fbl.vendor_outbox') IS NOT NULL") == "t" else False,
               120, "%d outbox rows" % n, step=0.5)
    fwd = [Proc("forward%d" % k, [a.fbl, "forward", "--config", conf], work).start()
           for k in (1, 2)]
    kills = []
    import random
    rnd = random.Random(a.seed)
    try:
        for _ in range(a.kills):
            time.sleep(rnd.uniform(0.4, 1.2))
            victim = rnd.choice(fwd)
            kills.append(time.time())
            victim.kill9()
            time.sleep(rnd.uniform(0.0, 0.3))
            victim.start()
        log("SIGKILLs of a forwarder: %d" % len(kills))
        wait_until(lambda: outbox_states(db, "acme").get("sent", 0) == n, 120,
                   "all %d reports sent" % n)
        time.sleep(1.0)
    finally:
        rcs = [p.stop() for p in fwd + [watch, sink]]
        server.stop()
    check(all(rc == 0 for rc in rcs), "exit codes after SIGTERM: %s" % rcs)
    ids = set(x[0] for x in db.rows("SELECT id FROM fbl.reports"))
    check(len(ids) == n, "%d reports stored, expected %d" % (len(ids), n))
    ok = server.ok_counts()
    lost = [i for i in ids if ok.get(i, 0) == 0]
    check(not lost, "%d reports never delivered" % len(lost))
    window = 3.0  # the 2 s timeout and the commit after the last answer
    outside = 0
    again = 0
    for i, d in server.deliveries.items():
        oks = [t for t, s in d if s == 200]
        for t in oks[:-1]:
            again += 1
            if not any(t <= k <= t + window for k in kills):
                outside += 1
    log("reports sent again after a kill: %d; outside a kill's window: %d" % (again, outside))
    check(outside == 0, "%d reports sent again after a 2xx outside a kill's window" % outside)
    shares = [sum(1 for line in p.text().splitlines() if "stage=vendor_send" in line)
              for p in fwd]
    log("batches committed per forwarder: %s" % shares)
    check(all(s > 0 for s in shares), "one forwarder did all the work: %s" % shares)
    check(outbox_states(db, "acme") == {"sent": n}, "outbox: %s" % outbox_states(db, "acme"))


# ---- rspamd ----------------------------------------------------------------------------------

RSPAMD_CONF = """options {
  pidfile = "%(d)s/rspamd.pid";
  filters = "fuzzy_check";
  dns { nameserver = ["127.0.0.1:1"]; timeout = 0.2s; retransmits = 1; }
  cache_file = "%(d)s/symbols.cache";
  history_file = "%(d)s/history";
  control_socket = "%(d)s/rspamd.sock mode=0600";
  tempdir = "%(d)s";
  allow_raw_input = true;
  url_tld = "%(d)s/tld.dat";
}
logging { type = "file"; filename = "%(d)s/rspamd.log"; level = "info"; }
worker "controller" {
  bind_socket = "127.0.0.1:%(controller)d";
  count = 1;
  password = "%(password)s";
  enable_password = "%(password)s";
  secure_ip = "192.0.2.254";
}
worker "fuzzy" {
  bind_socket = "127.0.0.1:%(fuzzy)d";
  count = 1;
  backend = "redis";
  servers = "127.0.0.1:%(redis)d";
  allow_update = ["127.0.0.1"];
}
redis { servers = "127.0.0.1:%(redis)d"; }
classifier "bayes" {
  backend = "redis";
  servers = "127.0.0.1:%(redis)d";
  tokenizer { name = "osb"; }
  min_tokens = 11;
  min_learns = 1;
  statfile { symbol = "BAYES_HAM"; spam = false; }
  statfile { symbol = "BAYES_SPAM"; spam = true; }
}
fuzzy_check {
  min_bytes = 0;
  timeout = 2s;
  rule "local" {
    algorithm = "mumhash";
    servers = "127.0.0.1:%(fuzzy)d";
    symbol = "LOCAL_FUZZY_UNKNOWN";
    mime_types = ["*"];
    read_only = false;
    skip_unknown = true;
    short_text_direct_hash = true;
    min_length = 0;
    fuzzy_map = { LOCAL_FUZZY_DENIED { max_score = 20.0; flag = 11; } }
  }
}
"""


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.read().decode().strip()
    except OSError:
        return None


def redis_cli(port, *args):
    return run(["redis-cli", "-p", str(port)] + list(args)).stdout.strip()


def mode_rspamd(a, db, work):
    if not shutil.which("rspamd") or not shutil.which("redis-server"):
        log("SKIP: rspamd or redis-server is not installed (scripts/install-deps)")
        return SKIP
    d = os.path.join(work, "rspamd")
    os.makedirs(d, exist_ok=True)
    ports = {"controller": free_port(), "fuzzy": free_port(), "redis": free_port()}
    password = "s3cret-controller-pw"
    write(os.path.join(d, "tld.dat"), "com\nnet\norg\nexample\ninvalid\n", 0o644)
    rconf = write(os.path.join(d, "rspamd.conf"), RSPAMD_CONF % dict(ports, d=d,
                                                                     password=password), 0o644)
    redis = Proc("redis", ["redis-server", "--port", str(ports["redis"]), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no", "--dir", d], work).start()
    # -i: the tests run as root in CI; rspamd refuses root without it.
    rspamd = Proc("rspamd", ["rspamd", "-f", "-i", "-c", rconf], work)
    fbl = None
    try:
        wait_until(lambda: redis_cli(ports["redis"], "ping") == "PONG", 20, "redis")
        rspamd.start()
        url = "http://127.0.0.1:%d" % ports["controller"]
        wait_until(lambda: http_get(url + "/ping") == "pong", 120, "rspamd's controller",
                   step=0.5)
        mbox = Maildir(os.path.join(work, "mbox"))
        pw = write(os.path.join(work, "rspamd.pw"), password + "\n")
        bad_pw = write(os.path.join(work, "bad.pw"), "not-the-password\n")
        key = write(os.path.join(work, "redact.key"), "another-test-key-0123456789\n")
        conf = write(os.path.join(work, "fbl.conf"), base_config(db, mbox.path, """
[vendor:rs]
type = rspamd
url = %s
password_file = %s
fuzzy_flag = 11
fuzzy_weight = 2
redact = recipients
redact_key_file = %s

[vendor:rs-bad]
type = rspamd
url = %s
password_file = %s
""" % (url, pw, key, url, bad_pw)))
        kinds = ["abuse"] * 20 + ["not-spam"] * 5 + ["opt-out"] * 2
        for i, ft in enumerate(kinds):
            mbox.deliver(make_arf(1000 + i, "rep%d@isp.example.net" % i,
                                  "victim%d@customer.example.net" % i, feedback_type=ft))
        fbl = Proc("run", [a.fbl, "run", "--config", conf], work).start()
        wait_until(lambda: outbox_states(db, "rs").get("sent", 0) == len(kinds), 90,
                   "%d reports at rspamd" % len(kinds))
        spam = redis_cli(ports["redis"], "hget", "BAYES_SPAM", "learns")
        ham = redis_cli(ports["redis"], "hget", "BAYES_HAM", "learns")
        learned = int(redis_cli(ports["redis"], "hlen", "learned_ids") or 0)
        log("rspamd learned: spam %s, ham %s, messages %d" % (spam, ham, learned))
        check(spam == "20" and ham == "5" and learned == 25,
              "rspamd learned spam %s ham %s (%d messages), expected 20, 5 (25)"
              % (spam, ham, learned))
        rlog = open(os.path.join(d, "rspamd.log"), errors="replace").read()
        fuzzy = sum(1 for line in rlog.splitlines()
                    if "added fuzzy hash" in line and "LOCAL_FUZZY_DENIED:11" in line)
        check(fuzzy >= 20, "rspamd added %d fuzzy hashes, expected 20" % fuzzy)
        check("@spammer.example.com" in rlog or fuzzy > 0, "rspamd saw no reported message")
        # Sent again: rspamd answers "already learned", which is delivered.
        db.q("UPDATE fbl.vendor_outbox SET state = 'pending', next_attempt_at = now() "
             "WHERE vendor = 'rs'; NOTIFY fbl_outbox")
        wait_until(lambda: outbox_states(db, "rs").get("sent", 0) == len(kinds), 60,
                   "the second round at rspamd")
        rlog = open(os.path.join(d, "rspamd.log"), errors="replace").read()
        # XXX rspamd 3.4 itself learns a few of them again (its learn cache misses some
        # messages learned while a /fuzzyadd of the same message ran); each answer,
        # 200 or 208, is a delivery.
        already = rlog.count("skip learning:")
        log("second round: %d answers 'already learned'" % already)
        check(already >= 1, "no 'already learned' answer seen")
        check(outbox_states(db, "rs") == {"sent": len(kinds)}, "rs outbox: %s"
              % outbox_states(db, "rs"))
        check(outbox_states(db, "rs-bad") == {"pending": len(kinds)}, "rs-bad outbox: %s"
              % outbox_states(db, "rs-bad"))
        check("vendor=rs-bad STOPPED" in fbl.text(), "no loud log for the wrong password")
        check("victim1@customer.example.net" not in rlog, "a clear recipient reached rspamd")
    finally:
        rc = fbl.stop() if fbl else 0
        rspamd.stop(timeout=20)
        redis.stop(timeout=20)
    check(rc == 0, "fbl run exited %s after SIGTERM" % rc)
    return 0


# ---- limits ----------------------------------------------------------------------------------

def mode_limits(a, db, work):
    mbox = Maildir(os.path.join(work, "mbox"))
    server = VendorServer(token="t").start()
    tok = write(os.path.join(work, "token"), "t")
    # The session setting comes from [limits] (the sink passes it on); the database's
    # default is the fallback for sinks that do not set it.
    db.q("ALTER DATABASE %s SET fbl.reports_per_reporter_per_hour = 3" % db.name)
    conf = write(os.path.join(work, "fbl.conf"), base_config(db, mbox.path, """
[limits]
reports_per_reporter_per_hour = 3

[vendor:acme]
type = http-json
url = %s
token_file = %s
""" % (server.url(), tok)))
    for i in range(6):
        mbox.deliver(make_arf(2000 + i, "flooder@isp.example.net", "v%d@c.example.net" % i))
    for i in range(2):
        mbox.deliver(make_arf(2100 + i, "calm@isp.example.net", "w%d@c.example.net" % i))
    mbox.deliver(make_arf(2200, "", "x@c.example.net"))
    fbl = Proc("run", [a.fbl, "run", "--config", conf], work).start()
    try:
        wait_until(lambda: outbox_states(db, "acme").get("sent", 0) == 6, 60, "6 reports sent")
        time.sleep(1.5)
        status = run([a.fbl, "forward", "--config", conf, "--status"]).stdout
        log("fbl forward --status:\n" + status)
    finally:
        rc = fbl.stop()
        server.stop()
    check(rc == 0, "fbl run exited %s" % rc)
    limited = db.rows("SELECT reporter_address, count(*) FROM fbl.reports WHERE rate_limited "
                      "GROUP BY 1")
    check(limited == [["flooder@isp.example.net", "3"]], "rate_limited reports: %s" % limited)
    check(outbox_states(db, "acme") == {"sent": 6, "limited": 3}, "outbox: %s"
          % outbox_states(db, "acme"))
    limited_ids = set(x[0] for x in db.rows("SELECT id FROM fbl.reports WHERE rate_limited"))
    check(not limited_ids & set(server.deliveries), "a rate-limited report was forwarded")
    check(" 3 " in status.split("acme", 1)[-1].split("\n")[0] if "acme" in status else False,
          "--status does not show 3 limited")


# ---- config ----------------------------------------------------------------------------------

def mode_config(a, db, work):
    tok = write(os.path.join(work, "token"), "t")
    key = write(os.path.join(work, "short.key"), "short")
    good = write(os.path.join(work, "good.key"), "a-long-enough-test-key-0123456789")
    cases = [
        ("unknown key", "type = http-json\nurl = http://127.0.0.1:1/\ntokn_file = %s\n" % tok,
         "fbl.conf:%d: [vendor:v] tokn_file: unknown key"),
        ("bad type", "type = smtp\nurl = http://127.0.0.1:1/\n",
         "fbl.conf:%d: [vendor:v] type: expected http-json or rspamd"),
        ("bad url", "type = http-json\nurl = ftp://x/\n", "url: expected an http://"),
        ("rspamd key on http", "type = http-json\nurl = http://x/\nfuzzy_flag = 3\n",
         "fuzzy_flag: only for type rspamd"),
        ("bad field", "type = http-json\nurl = http://x/\nredact = reporter, shoe_size\n"
         "redact_key_file = %s\n" % good, "cannot redact 'shoe_size'"),
        ("no key", "type = http-json\nurl = http://x/\nredact = reporter\n",
         "redact_key_file: required with redact"),
        ("short key", "type = http-json\nurl = http://x/\nredact = reporter\n"
         "redact_key_file = %s\n" % key, "at least 16 bytes"),
        ("missing token", "type = http-json\nurl = http://x/\ntoken_file = /nonexistent/t\n",
         "token_file:"),
        ("range", "type = http-json\nurl = http://x/\nbatch_size = 0\n",
         "batch_size: 0 is out of range"),
        ("unit", "type = http-json\nurl = http://x/\ntimeout = 3 fortnights\n",
         "timeout: bad unit"),
    ]
    for name, body, want in cases:
        text = "[postgres]\nconninfo = %s\n\n[vendor:v]\n%s" % (db.conninfo, body)
        conf = write(os.path.join(work, "fbl.conf"), text)
        line = 0
        for n, l in enumerate(text.splitlines(), 1):
            if want.count("%d") and l.startswith(want.split("] ")[1].split(":")[0]):
                line = n
        if "%d" in want:
            want = want % line
        r = run([a.fbl, "forward", "--config", conf])
        check(r.returncode == 78 and want in r.stdout,
              "config %s: exit %d, output %r (want %r)" % (name, r.returncode,
                                                             r.stdout.strip()[-300:], want))
    conf = write(os.path.join(work, "fbl.conf"), "[postgres]\nconninfo = %s\n" % db.conninfo)
    r = run([a.fbl, "forward", "--config", conf])
    check(r.returncode == 78 and "no [vendor:NAME]" in r.stdout,
          "no vendor: exit %d %r" % (r.returncode, r.stdout))
    r = run([a.fbl, "forward", "--config", conf, "--status"])
    check(r.returncode == 78 and "fbl migrate" in r.stdout,
          "--status on an empty database: exit %d %r" % (r.returncode, r.stdout))


# ---- main ------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("http", "kill", "rspamd", "limits", "config"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--mails", type=int, default=600)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    a.fbl = os.path.abspath(a.fbl)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    t0 = time.time()
    db = Db(a.conninfo_file, "t_vendor_" + a.mode)
    try:
        rc = globals()["mode_" + a.mode](a, db, a.workdir)
    finally:
        db.drop()
    if rc == SKIP:
        return SKIP
    log("%s done in %.1f s" % (a.mode, time.time() - t0))
    if FAILURES:
        print("%d failure(s); logs in %s" % (len(FAILURES), a.workdir))
        return 1
    log("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
