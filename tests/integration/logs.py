#!/usr/bin/python3
"""Logs an administrator can use, and each daemon's own metrics (fbl/log.c, fbl/metrics.c).

usage: logs.py file|stderr|journal|syslog --fbl BIN --conninfo-file F --workdir DIR

file     `fbl watch`, `fbl sink` and `fbl forward` (with a vendor: vendor_server.py) all
         append to ONE [log] file: every line starts with ts= (ISO-8601 UTC, ms), role=
         and pid=, each role's lines carry its process's pid, and a mail can be
         followed from parse to vendor_send by its rid, which is the first 12 hex
         digits of the mail's SHA-256 on every line, the vendor's included (fbl(1)).
         Each daemon's metrics endpoint publishes its own role's families only, `fbl
         run`'s all of them.
stderr   stderr lines carry ts/role/pid, except when $JOURNAL_STREAM names stderr
         (systemd connected it to journald, which adds them): then they start at
         rid=/level= as before. A bad [log] target is refused with file and line.
journal  [log] target = journal: the entries journald would get (a datagram socket
         bound at /run/systemd/journal/socket for the test) carry MESSAGE, PRIORITY,
         SYSLOG_IDENTIFIER=fbl, FBL_ROLE, FBL_RID, FBL_STAGE.
syslog   [log] target = syslog: the datagrams at /dev/log are "fbl[PID]: role=run
         rid=... stage=..." at facility daemon.

journal and syslog exit 77 (skip) when a real journald or syslog daemon owns the socket.
Standard library only; psql runs the queries.
"""
import argparse
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vendor_server import VendorServer  # noqa: E402
from vendor_feed import Db, Maildir, Proc, write, outbox_states, make_arf  # noqa: E402

SKIP = 77
FAILURES = []
PREFIX = re.compile(r"^ts=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) role=(\S+) pid=(\d+) ")


def log(msg):
    print("logs: %s" % msg, flush=True)


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
        except (subprocess.CalledProcessError, OSError):
            pass
        time.sleep(step)
    check(False, "timed out after %.0f s waiting for %s" % (timeout, what))
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def families(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    return text, set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def mails(mbox, n, tag):
    """Deliver @n report mails; their ids (the SHA-256 of their bytes)."""
    ids = []
    for i in range(n):
        data = make_arf(i, "rep%d@isp.example.net" % i, "v%d@c.example.net" % i, marker=tag)
        ids.append(hashlib.sha256(data).hexdigest())
        mbox.deliver(data)
    return ids


def run_once(a, conf, work, name, env=None):
    with open(os.path.join(work, name + ".out"), "w+") as out:
        rc = subprocess.call([a.fbl, "run", "--config", conf, "--once"], stdout=out,
                             stderr=subprocess.STDOUT, env=env, timeout=120)
        out.seek(0)
        return rc, out.read()


# ---- file ------------------------------------------------------------------------------------

ROLE_FAMILIES = {
    "watch": ("fbl_watch_mails_total", ("fbl_sink_", "fbl_forward_", "fbl_pg_errors_total",
                                        "fbl_curve_refused_total")),
    "sink": ("fbl_sink_batches_total", ("fbl_watch_", "fbl_forward_")),
    "forward": ("fbl_forward_responses_total", ("fbl_watch_", "fbl_sink_",
                                                "fbl_curve_refused_total")),
}


def check_metrics(role, port):
    text, fams = families(port)
    want, never = ROLE_FAMILIES[role]
    check(want in fams, "fbl %s publishes no %s" % (role, want))
    foreign = sorted(f for f in fams if f.startswith(never))
    check(not foreign, "fbl %s publishes other roles' families: %s" % (role, foreign))
    check("fbl_build_info" in fams, "fbl %s publishes no fbl_build_info" % role)
    if role == "sink":
        check('role="forward"' not in text, "fbl sink publishes the forwarder's pg errors")
    if role == "forward":
        check('role="sink"' not in text, "fbl forward publishes the sink's pg errors")
    log("fbl %s publishes %d families" % (role, len(fams)))


def mode_file(a, db, work):
    mbox = Maildir(os.path.join(work, "mbox"))
    server = VendorServer(token="t").start()
    tok = write(os.path.join(work, "token"), "t")
    logfile = os.path.join(work, "fbl.log")
    bus = "ipc://%s/bus.sock" % work
    ports = {r: free_port() for r in ("watch", "sink", "forward")}
    conf = write(os.path.join(work, "fbl.conf"), """[postgres]
conninfo = %s

[mailbox:spamalert]
path = %s

[watch]
connect = %s

[sink]
bind = %s
batch_max_wait = 50ms

[log]
level = info
file = %s

[metrics]
watch = 127.0.0.1:%d
sink = 127.0.0.1:%d
forward = 127.0.0.1:%d

[vendor:acme]
type = http-json
url = %s
token_file = %s
""" % (db.conninfo, mbox.path, bus, bus, logfile, ports["watch"], ports["sink"],
       ports["forward"], server.url(), tok))
    procs = {}
    try:
        for role in ("sink", "watch", "forward"):
            procs[role] = Proc(role, [a.fbl, role, "--config", conf], work).start()
        ids = mails(mbox, 5, "file-mode")
        wait_until(lambda: outbox_states(db, "acme").get("sent", 0) == 5, 60, "5 reports sent")
        for role, port in ports.items():
            check_metrics(role, port)
    finally:
        rcs = dict((r, p.stop()) for r, p in procs.items())
        server.stop()
    check(all(rc == 0 for rc in rcs.values()), "exit codes: %s" % rcs)
    check_file(logfile, dict((r, p.p.pid) for r, p in procs.items()), ids)
    check_run_metrics(a, db, work)


def check_file(logfile, pids, ids):
    lines = open(logfile).read().splitlines()
    seen = {}
    for line in lines:
        m = PREFIX.match(line)
        if not check(m, "a line without ts/role/pid: %r" % line):
            continue
        role, pid = m.group(2), int(m.group(3))
        check(pids.get(role) == pid, "role=%s pid=%d, but fbl %s runs as %s"
              % (role, pid, role, pids.get(role)))
        seen[role] = seen.get(role, 0) + 1
    log("%d lines in one file: %s" % (len(lines), seen))
    check(set(seen) == {"watch", "sink", "forward"}, "roles in the file: %s" % sorted(seen))
    short = set(i[:12] for i in ids)
    for stage in ("parse", "stored", "ack", "vendor_send"):
        rids = set(re.findall(r"(?:^| )rid=(\S+) stage=%s " % stage, "\n".join(lines), re.M))
        check(rids and rids <= short, "stage=%s: rid %s is not a mail id (the mails: %s)"
              % (stage, sorted(rids - short), sorted(short)))
    parse = [l for l in lines if " stage=parse " in l]
    check(all(" role=watch " in l for l in parse), "a parse line not from the watcher")
    send = [l for l in lines if " stage=vendor_send " in l]
    check(send and all(" role=forward " in l for l in send), "vendor_send lines: %s" % send)


def check_run_metrics(a, db, work):
    """fbl run: every role's families."""
    port = free_port()
    mbox = Maildir(os.path.join(work, "mbox-run"))
    conf = write(os.path.join(work, "run.conf"), """[postgres]
conninfo = %s
[mailbox:spamalert]
path = %s
[metrics]
listen = 127.0.0.1:%d
[vendor:acme]
type = http-json
url = http://127.0.0.1:9/none
""" % (db.conninfo, mbox.path, port))
    p = Proc("run", [a.fbl, "run", "--config", conf], work).start()
    try:
        fams = set()
        wait_until(lambda: fams.update(families(port)[1]) or "fbl_watch_acked_total" in fams,
                   30, "fbl run's metrics")
    finally:
        p.stop()
    for want in ("fbl_watch_acked_total", "fbl_sink_batches_total",
                 "fbl_forward_reports_sent_total", "fbl_pg_errors_total"):
        check(want in fams, "fbl run does not publish %s" % want)


# ---- stderr ----------------------------------------------------------------------------------

def mode_stderr(a, db, work):
    mbox = Maildir(os.path.join(work, "mbox"))
    conf = write(os.path.join(work, "fbl.conf"), "[postgres]\nconninfo = %s\n[mailbox:m]\n"
                 "path = %s\n[log]\nlevel = info\n" % (db.conninfo, mbox.path))
    ids = mails(mbox, 1, "stderr-plain")
    rc, text = run_once(a, conf, work, "plain")
    check(rc == 0, "fbl run --once exited %d: %s" % (rc, text[-500:]))
    lines = [l for l in text.splitlines() if l]
    check(lines and all(PREFIX.match(l) for l in lines),
          "stderr lines without ts/role/pid: %s" % [l for l in lines if not PREFIX.match(l)][:3])
    check(any(" role=run " in l and " rid=%s stage=parse " % ids[0][:12] in l for l in lines),
          "no parse line with role=run and the mail's rid")
    # Under journald: stderr is the journal's stream, named by JOURNAL_STREAM.
    ids = mails(mbox, 1, "stderr-journald")
    path = os.path.join(work, "journald.out")
    with open(path, "w") as out:
        st = os.fstat(out.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        rc = subprocess.call([a.fbl, "run", "--config", conf, "--once"], stdout=out,
                             stderr=out, env=env, timeout=120)
    lines = [l for l in open(path).read().splitlines() if l]
    check(rc == 0, "fbl run --once (journald) exited %d" % rc)
    check(lines and all(re.match(r"^(rid=\S+ stage=\S+ )?level=\w+ domain=\S+ msg=", l)
                        for l in lines),
          "under journald, lines not as they were: %s" % lines[:3])
    check(any(l.startswith("rid=%s stage=parse " % ids[0][:12]) for l in lines),
          "under journald, no parse line for the mail")
    # A bad target names the file, the line and the key.
    bad = write(os.path.join(work, "bad.conf"), "[log]\ntarget = kafka\n")
    r = subprocess.run([a.fbl, "sink", "--config", bad, "--check-config"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 78 and "bad.conf:2: [log] target:" in r.stdout,
          "target = kafka: exit %d %r" % (r.returncode, r.stdout))
    bad = write(os.path.join(work, "bad2.conf"), "[log]\ntarget = file\n")
    r = subprocess.run([a.fbl, "sink", "--config", bad, "--check-config"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 78 and "[log] file" in r.stdout,
          "target = file without file: exit %d %r" % (r.returncode, r.stdout))


# ---- journal and syslog ---------------------------------------------------------------------

class DgramSink:
    """A datagram socket bound at @path (made for the test, removed after), collecting."""

    def __init__(self, path):
        self.path = path
        self.made = []
        d = os.path.dirname(path)
        while not os.path.isdir(d):
            self.made.insert(0, d)
            d = os.path.dirname(d)
        for d in self.made:
            os.mkdir(d)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.got = []
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping:
            try:
                self.got.append(self.sock.recv(1 << 20))
            except socket.timeout:
                continue

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()
        os.unlink(self.path)
        for d in reversed(self.made):
            os.rmdir(d)


def journal_fields(datagram):
    """journald's native protocol: KEY=value lines, or KEY\\n<le64 size><bytes>\\n."""
    fields, i = {}, 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            size = int.from_bytes(datagram[nl + 1:nl + 9], "little")
            v = datagram[nl + 9:nl + 9 + size]
            i = nl + 9 + size + 1
        fields[k.decode()] = v.decode(errors="replace")
    return fields


def mode_journal(a, db, work):
    path = "/run/systemd/journal/socket"
    if os.path.exists(path):
        log("SKIP: %s exists (a real journald)" % path)
        return SKIP
    mbox = Maildir(os.path.join(work, "mbox"))
    conf = write(os.path.join(work, "fbl.conf"), "[postgres]\nconninfo = %s\n[mailbox:m]\n"
                 "path = %s\n[log]\nlevel = info\ntarget = journal\n" % (db.conninfo, mbox.path))
    ids = mails(mbox, 2, "journal")
    sink = DgramSink(path)
    try:
        rc, text = run_once(a, conf, work, "journal")
        time.sleep(0.3)
    finally:
        sink.close()
    check(rc == 0, "fbl run --once exited %d: %s" % (rc, text[-500:]))
    entries = [journal_fields(d) for d in sink.got]
    log("%d journal entries; e.g. %s" % (len(entries), entries[:1]))
    check(entries, "no journal entry")
    check(all(e.get("SYSLOG_IDENTIFIER") == "fbl" and e.get("FBL_ROLE") == "run" and
              e.get("PRIORITY", "").isdigit() and e.get("MESSAGE") for e in entries),
          "an entry without SYSLOG_IDENTIFIER=fbl, FBL_ROLE=run, PRIORITY or MESSAGE")
    parse = [e for e in entries if e.get("FBL_STAGE") == "parse"]
    check(sorted(e.get("FBL_RID") for e in parse) == sorted(i[:12] for i in ids),
          "parse entries' FBL_RID: %s" % [e.get("FBL_RID") for e in parse])
    check(all(e.get("PRIORITY") == "6" and e["MESSAGE"].startswith("rid=") for e in parse),
          "parse entries: %s" % parse[:1])
    check(not text.strip(), "stderr is not empty with target = journal: %r" % text[:300])


def mode_syslog(a, db, work):
    path = "/dev/log"
    if os.path.exists(path):
        log("SKIP: %s exists (a real syslog daemon)" % path)
        return SKIP
    mbox = Maildir(os.path.join(work, "mbox"))
    conf = write(os.path.join(work, "fbl.conf"), "[postgres]\nconninfo = %s\n[mailbox:m]\n"
                 "path = %s\n[log]\nlevel = info\ntarget = syslog\n" % (db.conninfo, mbox.path))
    ids = mails(mbox, 1, "syslog")
    sink = DgramSink(path)
    try:
        rc, text = run_once(a, conf, work, "syslog")
        time.sleep(0.3)
    finally:
        sink.close()
    check(rc == 0, "fbl run --once exited %d: %s" % (rc, text[-500:]))
    msgs = [d.decode(errors="replace") for d in sink.got]
    log("%d syslog messages; e.g. %r" % (len(msgs), msgs[:1]))
    pat = re.compile(r"^<(\d+)>.* fbl\[(\d+)\]: role=run (.*)$")
    parsed = [pat.match(m) for m in msgs]
    check(msgs and all(parsed), "not syslog lines of fbl[PID]: role=run: %s"
          % [m for m, p in zip(msgs, parsed) if not p][:3])
    parse = [p for p in parsed if p and " stage=parse " in p.group(3)]
    check(parse and all(int(p.group(1)) == 3 * 8 + 6 for p in parse),
          "parse lines are not daemon.info: %s" % [p.group(0) for p in parse][:2])
    check(any(p.group(3).startswith("rid=%s stage=parse " % ids[0][:12]) for p in parse),
          "no parse line for the mail")


# ---- main -------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("file", "stderr", "journal", "syslog"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    a.fbl = os.path.abspath(a.fbl)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    t0 = time.time()
    db = Db(a.conninfo_file, "t_logs_" + a.mode)
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
