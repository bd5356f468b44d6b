#!/usr/bin/python3
"""The vendor feed against rspamd as Debian ships it, with fbl killed again and again.

usage: rspamd_stock.py --fbl BIN --conninfo-file F --workdir DIR [--mails N] [--kills K]

rspamd and redis run from Debian's packages with Debian's configuration
(/etc/rspamd/rspamd.conf, its statistic.conf with min_tokens 11 and min_learns
200, every stock module); local.d only moves the workers to free loopback ports,
sets a controller password, points redis at the test's instance and keeps logs
and state in the work directory. That rspamd answers /learnspam with "204 No
Content" and no body for every message with too few tokens, and 200 for the
others.

Reports about short and long spam, not-spam, and repeats (another reporter
reporting a long spam rspamd has learned already: rspamd answers 208 "already
learned") arrive while `fbl run` is killed with SIGKILL at random moments and
started again. At the end every mail is stored once, every report reached
rspamd (its outbox row is 'sent', none dead: 204 and 208 are both success),
rspamd's learn count went up by the number of long messages (short ones are
below min_tokens) plus at most the repeats (rspamd's learn cache misses some
copies that arrive close together), and fbl never stopped on its own: every run
ended by our SIGKILL, the last one by SIGTERM with exit 0.
Exit 77 (skip) when rspamd or redis-server is not installed.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vendor_feed as vf  # noqa: E402

SKIP = 77
PASSWORD = "stock-controller-pw"


def short_spam(i):
    """An ARF report whose spam has a handful of words: rspamd's 204."""
    d = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    return ("""From: Feedback Loop <fbl@isp.example.net>
To: spamalert@abuse.example.net
Subject: Abuse report %(i)d
Date: %(d)s
Message-ID: <short-arf-%(i)d@isp.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b%(i)d"

--b%(i)d
Content-Type: text/plain

An abuse report.
--b%(i)d
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: TestFBL/1.0
Version: 1
Source-IP: 192.0.2.%(ip)d

--b%(i)d
Content-Type: message/rfc822

From: Deals <deals@spammer.example.com>
To: victim%(i)d@customer.example.net
Subject: hi %(i)d
Message-ID: <short-spam-%(i)d@spammer.example.com>
Date: %(d)s

buy now %(i)d
--b%(i)d--
""" % dict(i=i, d=d, ip=1 + i % 250)).replace("\n", "\r\n").encode()


def stock_rspamd(work, ports):
    d = os.path.join(work, "rspamd")
    local = os.path.join(d, "etc", "local.d")
    for sub in ("etc/local.d", "db", "run", "log"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    files = {
        "worker-controller.inc": 'bind_socket = "127.0.0.1:%d";\npassword = "%s";\n'
                                 'enable_password = "%s";\n'
                                 % (ports["controller"], PASSWORD, PASSWORD),
        "worker-normal.inc": 'bind_socket = "127.0.0.1:%d";\n' % ports["normal"],
        "worker-proxy.inc": 'bind_socket = "127.0.0.1:%d";\n' % ports["proxy"],
        "worker-fuzzy.inc": 'bind_socket = "127.0.0.1:%d";\n' % ports["fuzzy"],
        "redis.conf": 'servers = "127.0.0.1:%d";\n' % ports["redis"],
        # No network here: DNS fails at once instead of timing out per message.
        "options.inc": 'dns { nameserver = ["127.0.0.1:1"]; timeout = 0.2s; retransmits = 1; }\n',
        "logging.inc": 'type = "file"; filename = "%s/log/rspamd.log"; level = "info";\n' % d,
    }
    for name, text in files.items():
        vf.write(os.path.join(local, name), text, 0o644)
    argv = ["rspamd", "-f", "-i", "-c", "/etc/rspamd/rspamd.conf",
            "--var", "LOCAL_CONFDIR=%s/etc" % d, "--var", "DBDIR=%s/db" % d,
            "--var", "RUNDIR=%s/run" % d, "--var", "LOGDIR=%s/log" % d]
    return vf.Proc("rspamd", argv, work), d


def report(rng, kinds, sent, i):
    """Mail i of the run: a short or long spam report, a not-spam report, or a
    repeat: another reporter's report of an earlier long spam, the reported
    message byte for byte the same (@sent: the mails delivered so far)."""
    k = kinds[i]
    if k == "short":
        return short_spam(i)
    if k == "repeat":
        j = rng.choice([n for n in range(i) if kinds[n] == "long"])
        return (sent[j].replace(b"<rep%d@isp.example.net>" % j,
                                b"<again%d@other-isp.example.org>" % i, 1)
                .replace(b"Message-ID: <arf-%d-" % j, b"Message-ID: <arf-again-%d-" % i, 1))
    return vf.make_arf(i, "rep%d@isp.example.net" % i, "victim%d@customer.example.net" % i,
                       feedback_type="not-spam" if k == "ham" else "abuse")


def learned(url):
    req = urllib.request.Request(url + "/stat", headers={"Password": PASSWORD})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return int(json.load(r).get("learned", 0))
    except (OSError, ValueError):
        return -1


def run(a, db, work):
    if not shutil.which("rspamd") or not shutil.which("redis-server"):
        vf.log("SKIP: rspamd or redis-server is not installed (scripts/install-deps)")
        return SKIP
    ports = {k: vf.free_port() for k in ("controller", "normal", "proxy", "fuzzy", "redis")}
    redis = vf.Proc("redis", ["redis-server", "--port", str(ports["redis"]), "--bind",
                              "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", work],
                    work).start()
    rspamd, rdir = stock_rspamd(work, ports)
    url = "http://127.0.0.1:%d" % ports["controller"]
    runs = []
    try:
        vf.wait_until(lambda: vf.redis_cli(ports["redis"], "ping") == "PONG", 20, "redis")
        rspamd.start()
        vf.wait_until(lambda: vf.http_get(url + "/ping") == "pong", 180, "stock rspamd",
                      step=0.5)
        mbox = vf.Maildir(os.path.join(work, "mbox"))
        pw = vf.write(os.path.join(work, "rspamd.pw"), PASSWORD + "\n")
        conf = vf.write(os.path.join(work, "fbl.conf"), vf.base_config(db, mbox.path, """
[vendor:rs]
type = rspamd
url = %s
password_file = %s
timeout = 10s
""" % (url, pw)))
        rng = random.Random(a.seed)
        kinds = []
        for i in range(a.mails):
            k = rng.choice(("short", "long", "long", "ham", "repeat"))
            if k == "repeat" and "long" not in kinds:
                k = "long"
            kinds.append(k)
        before = learned(url)

        def start():
            p = vf.Proc("run", [a.fbl, "run", "--config", conf], work).start()
            runs.append(p)
            return p

        fbl = start()
        sent = []
        delivered = 0
        kills = 0
        while delivered < a.mails:
            chunk = rng.randint(5, 15)
            for _ in range(min(chunk, a.mails - delivered)):
                i = delivered
                k = kinds[i]
                sent.append(report(rng, kinds, sent, i))
                mbox.deliver(sent[-1])
                delivered += 1
            time.sleep(rng.uniform(0.2, 1.5))
            if kills < a.kills:
                vf.check(fbl.alive(), "fbl run stopped on its own before kill %d (exit %s)"
                         % (kills + 1, fbl.p.poll()))
                fbl.kill9()
                kills += 1
                fbl = start()
        vf.wait_until(lambda: db.count("SELECT count(*) FROM fbl.mails") == a.mails, 180,
                      "%d mails stored" % a.mails)
        vf.wait_until(lambda: vf.outbox_states(db, "rs").get("sent", 0) == a.mails, 300,
                      "%d reports at rspamd" % a.mails, step=0.5)
        vf.check(fbl.alive(), "the last fbl run stopped on its own (exit %s)" % fbl.p.poll())
        states = vf.outbox_states(db, "rs")
        stored = db.count("SELECT count(*) FROM fbl.mails")
        ids = db.count("SELECT count(DISTINCT id) FROM fbl.reports")
        reports = db.count("SELECT count(*) FROM fbl.reports")
        after = learned(url)
        vf.log("%d mails (%d short, %d long, %d ham, %d repeats), %d kills: stored %d, "
               "reports %d (%d ids), outbox %s, rspamd learned %d -> %d"
               % (a.mails, kinds.count("short"), kinds.count("long"), kinds.count("ham"),
                  kinds.count("repeat"), kills, stored, reports, ids, states, before, after))
        vf.check(stored == a.mails, "%d mails stored, expected %d" % (stored, a.mails))
        vf.check(reports == ids == a.mails, "%d reports (%d ids) for %d mails"
                 % (reports, ids, a.mails))
        vf.check(states == {"sent": a.mails}, "outbox rows: %s" % states)
        # Every long spam and ham is learned once; a repeat is answered 208 "already
        # learned", except when rspamd's learn cache misses it (seen with copies that
        # arrive close together: rspamd then learns the same message again).
        learnable = kinds.count("long") + kinds.count("ham")
        repeats = kinds.count("repeat")
        vf.check(learnable <= after - before <= learnable + repeats,
                 "rspamd learned %d -> %d, expected +%d (the long spam and ham; not the "
                 "short) plus at most the %d repeats" % (before, after, learnable, repeats))
        rlog = open(os.path.join(rdir, "log", "rspamd.log"), errors="replace").read()
        already = sum(1 for line in rlog.splitlines()
                      if "skip learning:" in line and "already learned" in line)
        vf.check(already > 0, "rspamd said 'already learned' to none of the %d repeats" % repeats)
        vf.log("rspamd: %d learned again, %d skipped as already learned"
               % (after - before - learnable, already))
    finally:
        rc = runs[-1].stop() if runs else 0
        rspamd.stop(timeout=30)
        redis.stop(timeout=20)
    vf.check(rc == 0, "fbl run exited %s after SIGTERM" % rc)
    text = "".join(p.text() for p in runs)
    for bad in ("AddressSanitizer", "runtime error:", "SIGSEGV", "GLib-CRITICAL"):
        vf.check(bad not in text, "%r in fbl's log" % bad)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--mails", type=int, default=150)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    a.fbl = os.path.abspath(a.fbl)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    t0 = time.time()
    db = vf.Db(a.conninfo_file, "t_rspamd_stock")
    try:
        rc = run(a, db, a.workdir)
    finally:
        db.drop()
    if rc == SKIP:
        return SKIP
    vf.log("done in %.1f s" % (time.time() - t0))
    if vf.FAILURES:
        print("%d failure(s); logs in %s" % (len(vf.FAILURES), a.workdir))
        return 1
    vf.log("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
