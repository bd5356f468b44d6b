#!/usr/bin/python3
"""An IMAP mailbox through the whole pipeline: Dovecot -> `fbl run` -> PostgreSQL.

usage: imap_pipeline.py --fbl BIN --conninfo-file FILE --workdir DIR [--corpus DIR]
                        [--mails N] [--kills K]

Dovecot is started as in imap_dovecot.py (a copy of Debian's configuration, a throwaway
CA, imaps on 127.0.0.1). `fbl run` reads its INBOX ([mailbox:imap] imap = imaps://...)
into a database of its own in the "pg" fixture's cluster.

  check    (first) --check-config refuses a password file others may read (78, naming
           its line); with --connect it logs in, and a wrong password is a 78 naming the
           imap line; without --connect no login is tried.
  once     40 mails in INBOX: `fbl run --once` stores and moves them all, exits 0.
  crash    N mails (real corpus mails first, when --corpus has them, then generated
           ones) are appended in K chunks; `fbl run` is killed with SIGKILL once a
           random part of each chunk is stored, and started again. In the end every mail is in
           fbl.mails exactly once (mail_id = SHA-256 of the bytes Dovecot serves, the
           received_at its INTERNALDATE), every one sits in fbl/done, INBOX is empty.
  idle     with the folder empty and `fbl run` idling, a mail appended is stored
           within 1 s (the figure is printed; Dovecot itself waits 0.5 s before it
           tells an idling client).
  restart  Dovecot stopped (sessions killed) while fbl works on 600 mails, started 2 s
           later: the same `fbl run` reconnects, every mail stored once, INBOX empty.
  exits    a wrong password (77), a certificate from another CA (69), a missing folder
           (78): `fbl run` ends at once, its line naming the mailbox and what to check.
  xoauth2  Dovecot's oauth2 passdb validating JWTs itself (HS256 key in a dict): with
           oauth2_token_file holding a valid token, --check-config --connect logs in and
           --once stores a mail; an expired token exits 77.
  large    with max_mail_bytes = 64KiB, a 300 KiB mail is a too_large reject of its
           real size keeping its header block and body start, and is moved.
  hang     a relay in front of Dovecot accepts fbl's first connection and never answers:
           under a 2 s systemd watchdog (NOTIFY_SOCKET) the IMAP thread is seen stuck and
           no WATCHDOG=1 is sent, until the 30 s IMAP timeout ends the wait; fbl
           reconnects (relayed to Dovecot), the pings resume, a new mail is stored.
  poll     Dovecot without IDLE in its capabilities: with poll_interval = 2s, mails
           appended at different moments are each stored within 3 s.

Exit 77 (skip) without dovecot, openssl, root or psql. Standard library only.
"""
import argparse
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import imap_dovecot as dv
from ops_daemon import Notify
from ops_common import (Database, Failure, Proc, check, free_port, fresh_dir, log, parse_metrics,
                        run_main, scrape, wait_for)

NAME = "imap pipeline"
MAILBOX = "imap"
IDLE_BOUND = 1.0


def config(path, db, dc, ca, password_file, folder="INBOX", extra="",
           secret_key="password_file"):
    with open(path, "w") as fh:
        fh.write("[postgres]\nconninfo = %s\n\n"
                 "[log]\nlevel = info\n\n"
                 "[mailbox:%s]\nimap = imaps://127.0.0.1:%d/%s\nuser = %s\n"
                 "%s = %s\nca_file = %s\n%s"
                 % (db.conninfo, MAILBOX, dc.imaps_port, folder, dv.USER, secret_key,
                    password_file, ca, extra))
    return path


def secret(path, text):
    with open(path, "w") as fh:
        fh.write(text + "\n")
    os.chmod(path, 0o600)
    return path


class Run:
    """`fbl run` processes over one configuration, one log file each."""

    def __init__(self, args, conf, work):
        self.args, self.conf, self.work, self.n = args, conf, work, 0
        self.proc = None

    def start(self, extra=()):
        self.n += 1
        self.proc = Proc([self.args.fbl, "run", "--config", self.conf] + list(extra),
                         os.path.join(self.work, "run-%d.log" % self.n))
        return self.proc


def stored(db):
    """{mail_id: rows} of the mailbox's mails in PostgreSQL."""
    out = {}
    if db.query("SELECT to_regclass('fbl.mails') IS NULL") == "t":
        return out  # the first fbl run has not migrated yet
    text = db.query("SELECT mail_id, count(*) FROM fbl.mails WHERE mailbox = '%s' "
                    "GROUP BY mail_id" % MAILBOX)
    for line in filter(None, text.splitlines()):
        mail_id, n = line.split("|")
        out[mail_id] = int(n)
    return out


def mails_to_append(args):
    # Distinct mails: the corpus holds a few byte-identical files, which appended twice
    # would be two deliveries of one mail (stored twice, the second marked duplicate_of).
    out, seen = [], set()
    for data in map(dv.crlf, dv.corpus_files(args.corpus, args.mails // 3)):
        if dv.sha(data) not in seen:
            seen.add(dv.sha(data))
            out.append(data)
    args.from_corpus = len(out)
    for i in range(len(out), args.mails):
        out.append(dv.crlf(dv.generated(i, "pipeline", body_bytes=(i * 37) % 4000)))
    return out


def append_all(dc, ca, mails, indexes):
    m = dc.client(ca)
    for i in indexes:
        dv.append(m, "INBOX", mails[i], i)
    m.logout()


def case_crash(args, dc, ca, db, run):
    """The mails are appended in K chunks, each while an `fbl run` works, which is then
    killed once a random part of the chunk is stored: every kill finds mails in flight,
    stored and not moved, or not yet fetched."""
    m = dc.client(ca)
    mails = mails_to_append(args)
    want = {dv.sha(d) for d in mails}
    base = set(stored(db))  # from the cases before
    base_done = dv.count(m, dv.DONE)
    unmoved = 0  # stored but still in INBOX at a kill: fetched again, acked, moved
    chunk = -(-len(mails) // args.kills)
    rng = random.Random(args.seed)
    for k in range(args.kills):
        p = run.start()
        part = range(k * chunk, min(len(mails), (k + 1) * chunk))
        appender = threading.Thread(target=append_all, args=(dc, ca, mails, part))
        appender.start()
        # Kill once a random part of this chunk is stored: in the middle of the work.
        target = len(base) + part.start + rng.randint(1, max(1, len(part) - 1))
        wait_for("%d mails stored" % target, lambda: len(stored(db)) >= target, 120, step=0.01)
        check(p.running(), "fbl run %d ended early:\n%s" % (run.n, p.output()[-3000:]))
        p.kill()
        appender.join()
        unmoved += max(0, len(stored(db)) - dv.count(m, dv.DONE))
        log(NAME, "crash: SIGKILL %d at %d appended: %d stored, %d in INBOX, %d in %s"
            % (k + 1, part.stop, len(stored(db)), dv.count(m, "INBOX"), dv.count(m, dv.DONE),
               dv.DONE))
    p = run.start(["--metrics", "127.0.0.1:%d" % args.metrics_port])
    wait_for("INBOX empty", lambda: dv.count(m, "INBOX") == 0, 300, step=0.5)
    got = {k: v for k, v in stored(db).items() if k not in base}
    check(set(got) == want, "stored %d mails, want %d; missing %s, unexpected %s"
          % (len(got), len(want), sorted(want - set(got))[:3], sorted(set(got) - want)[:3]))
    doubled = {k: v for k, v in got.items() if v != 1}
    check(not doubled, "stored more than once: %s" % list(doubled.items())[:3])
    done = dv.count(m, dv.DONE)
    check(done == base_done + len(mails), "%s holds %d mails, want %d"
          % (dv.DONE, done, base_done + len(mails)))
    check(set(dv.served_bytes(m, dv.DONE)) == want | base, "%s holds other mails" % dv.DONE)
    m.logout()
    log(NAME, "crash: %d kills; %d mails (%d distinct, %d from the corpus) stored once each, "
        "all in %s, INBOX empty; %d were stored but not yet moved at a kill"
        % (args.kills, len(mails), len(want), args.from_corpus, dv.DONE, unmoved))
    return p


def case_idle(dc, ca, db, p):
    m = dc.client(ca)
    data = dv.crlf(dv.generated(99999, "idle"))
    time.sleep(2)  # fbl idles by now
    check(p.running(), "fbl run ended:\n%s" % p.output()[-3000:])
    t0 = time.monotonic()
    dv.append(m, "INBOX", data, 7)
    mail_id = dv.sha(data)
    while mail_id not in stored(db):
        check(time.monotonic() - t0 < 10, "the mail appended while idle is not stored in 10 s")
        time.sleep(0.02)
    took = time.monotonic() - t0
    log(NAME, "idle: a mail appended while fbl idles stored after %.3f s (bound %.1f s)"
        % (took, IDLE_BOUND))
    check(took <= IDLE_BOUND, "stored after %.3f s, over %.1f s" % (took, IDLE_BOUND))
    wait_for("the idle mail moved", lambda: dv.count(m, "INBOX") == 0, 10)
    m.logout()


def case_metrics(args):
    """The last `fbl run` moved at least the idle mail, fetched what it moved, is connected,
    and its idle session woke up within the last 5 s (IDLE renewed, the folder listed)."""
    status, _, text = scrape(args.metrics_port)
    check(status == 200, "metrics: HTTP %d" % status)
    got = parse_metrics(text)
    label = '{mailbox="%s"}' % MAILBOX
    connected = got.get("fbl_imap_connected" + label)
    fetched = got.get("fbl_imap_fetched_total" + label, 0)
    moved = got.get("fbl_imap_moved_total" + label, 0)
    check(connected == 1, "fbl_imap_connected%s = %s, want 1" % (label, connected))
    check(moved >= 1 and fetched >= moved, "fbl_imap_fetched_total %s, fbl_imap_moved_total %s"
          % (fetched, moved))
    # idling: the session hears from the server at least every 5 s
    age = time.time() - got.get("fbl_imap_last_wakeup_timestamp_seconds" + label, 0)
    check(0 <= age <= 7, "fbl_imap_last_wakeup_timestamp_seconds is %.1f s old" % age)
    log(NAME, "metrics: connected 1, fetched %d, moved %d, last wake-up %.1f s ago"
        % (fetched, moved, age))


def expect_exit(args, conf, work, what, status, hint):
    """`fbl run` on @conf ends by itself with @status, its last line naming the mailbox and
    @hint (what to check), and stores nothing; returns that line."""
    p = Proc([args.fbl, "run", "--config", conf], os.path.join(work, what + ".log"))
    t0 = time.monotonic()
    try:
        rc = p.p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Failure("fbl run (%s) still runs after 60 s:\n%s" % (what, p.output()[-3000:]))
    out = p.output()
    check(rc == status, "fbl run (%s) exited %d, want %d:\n%s" % (what, rc, status, out[-3000:]))
    said = [l for l in out.splitlines() if "mailbox=%s" % MAILBOX in l and hint in l]
    check(said, "fbl run (%s): no line naming the mailbox and %r:\n%s" % (what, hint, out[-3000:]))
    log(NAME, "%s: exit %d after %.1f s: %s" % (what, rc, time.monotonic() - t0, said[0].strip()[:220]))


def case_exits(args, dc, ca, db, work):
    """A wrong password (77), an untrusted certificate (69), a missing folder (78): each ends
    `fbl run` at once with a line saying what to check; nothing is retried in a loop."""
    good = os.path.join(work, "password")
    bad = secret(os.path.join(work, "wrong-password"), "not-the-password")
    expect_exit(args, config(os.path.join(work, "wrong.conf"), db, dc, ca, bad), work,
                "wrong password", 77, "password_file")
    _, other_ca = dv.make_ca(work, "other-ca")
    expect_exit(args, config(os.path.join(work, "untrusted.conf"), db, dc, other_ca, good), work,
                "untrusted certificate", 69, "ca_file")
    expect_exit(args, config(os.path.join(work, "nofolder.conf"), db, dc, ca, good,
                             folder="NoSuchFolder"), work, "missing folder", 78, "NoSuchFolder")


def check_config(args, conf, *flags):
    out = subprocess.run([args.fbl, "run", "--config", conf, "--check-config"] + list(flags),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return out.returncode, out.stdout


def case_check(args, dc, ca, db, work, good_conf):
    """--check-config reads the secret file under the secret-file rule; --connect logs in."""
    rc, out = check_config(args, good_conf, "--connect")
    check(rc == 0, "--check-config --connect of the right configuration: %d %s" % (rc, out))
    bad = secret(os.path.join(work, "check-wrong"), "not-the-password")
    conf = config(os.path.join(work, "check-wrong.conf"), db, dc, ca, bad)
    rc, out = check_config(args, conf)
    check(rc == 0, "--check-config without --connect must not log in: %d %s" % (rc, out))
    rc, out = check_config(args, conf, "--connect")
    check(rc == 78 and conf + ":8: [mailbox:imap] imap:" in out and "refused the login" in out,
          "--check-config --connect with a wrong password: %d %s" % (rc, out))
    os.chmod(bad, 0o644)
    rc, out = check_config(args, conf)
    check(rc == 78 and conf + ":10: [mailbox:imap] password_file:" in out,
          "--check-config with a password file others may read: %d %s" % (rc, out))
    log(NAME, "check: --check-config reads the password file (0644 refused), --connect logs in")


def case_once(args, dc, ca, db, run):
    """`fbl run --once` stores what the folder holds, moves it, and exits 0."""
    m = dc.client(ca)
    mails = [dv.crlf(dv.generated(50000 + i, "once")) for i in range(40)]
    for i, data in enumerate(mails):
        dv.append(m, "INBOX", data, i)
    p = run.start(["--once"])
    try:
        rc = p.p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Failure("fbl run --once still runs after 120 s:\n%s" % p.output()[-3000:])
    got = stored(db)
    check(rc == 0, "fbl run --once exited %d:\n%s" % (rc, p.output()[-3000:]))
    check({dv.sha(d) for d in mails} <= set(got), "--once: not every mail stored")
    check(dv.count(m, "INBOX") == 0, "--once: INBOX holds %d mails" % dv.count(m, "INBOX"))
    m.logout()
    log(NAME, "once: fbl run --once stored and moved %d mails, exit 0" % len(mails))
    return len(mails)


def case_dovecot_restart(args, dc, ca, db, p):
    """Dovecot stopped (its sessions killed, as a host restart does) while `fbl run` works on
    600 mails, started again 2 s later: fbl reconnects by itself and stores each mail once.
    The mails are appended to another folder first and moved into INBOX in one command, so
    the stop falls in the middle of fbl's work, not of the appending."""
    mails = [dv.crlf(dv.generated(60000 + i, "restart", body_bytes=i * 11)) for i in range(600)]
    want = {dv.sha(d) for d in mails}
    before = len(stored(db))
    m = dc.client(ca)
    m.create("Staging")
    for i, data in enumerate(mails):
        dv.append(m, "Staging", data, i)
    m.select("Staging")
    typ, _ = m.uid("MOVE", "1:*", "INBOX")
    check(typ == "OK", "UID MOVE Staging -> INBOX: %s" % typ)
    m.logout()
    wait_for("100 of them stored", lambda: len(stored(db)) >= before + 100, 120, step=0.01)
    # The sessions first (a dropped connection at once, mid-batch), then the server.
    check(dc.kill_sessions() >= 1, "restart: no imap process of fbl's session found")
    at_stop = len(stored(db)) - before
    dc.stop()
    check(at_stop < len(mails), "restart: every mail stored before the drop; not mid-stream")
    time.sleep(2)
    dc.start()
    m = dc.client(ca)
    wait_for("INBOX empty after the restart", lambda: dv.count(m, "INBOX") == 0, 120, step=0.2)
    got = stored(db)
    check(want <= set(got), "restart: %d of the mails missing" % len(want - set(got)))
    check(all(got[k] == 1 for k in want), "restart: a mail stored twice")
    check(p.running(), "fbl run ended after the restart:\n%s" % p.output()[-3000:])
    out = p.output()
    check("reconnecting" in out, "restart: fbl never said it reconnects:\n%s" % out[-3000:])
    m.logout()
    log(NAME, "restart: Dovecot stopped with %d of %d stored, started 2 s later: the same "
        "fbl run reconnected, every mail stored once, INBOX empty"
        % (at_stop, len(mails)))


def case_xoauth2(args, dc, ca, db, work, key):
    """oauth2_token_file: with a token Dovecot accepts (a JWT it validates itself),
    --check-config --connect logs in and `fbl run --once` stores a mail; with an expired
    one, `fbl run` exits 77 naming oauth2_token_file."""
    token = secret(os.path.join(work, "token"), dv.jwt(key, dv.USER))
    conf = config(os.path.join(work, "oauth.conf"), db, dc, ca, token,
                  secret_key="oauth2_token_file")
    rc, out = check_config(args, conf, "--connect")
    check(rc == 0, "--check-config --connect with a valid token: %d %s" % (rc, out))
    m = dc.client(ca)
    data = dv.crlf(dv.generated(80000, "xoauth2"))
    dv.append(m, "INBOX", data, 80000)
    p = Proc([args.fbl, "run", "--config", conf, "--once"], os.path.join(work, "oauth.log"))
    rc = p.p.wait(timeout=120)
    check(rc == 0 and dv.sha(data) in stored(db),
          "fbl run --once with XOAUTH2: exit %d, stored %s:\n%s"
          % (rc, dv.sha(data) in stored(db), p.output()[-3000:]))
    check(dv.count(m, "INBOX") == 0, "XOAUTH2: the mail was not moved")
    m.logout()
    logins = [l for l in dc.logs_all().splitlines() if "method=XOAUTH2" in l]
    check(logins, "Dovecot logged no XOAUTH2 login")
    expired = secret(os.path.join(work, "expired-token"), dv.jwt(key, dv.USER, lifetime=-600))
    expect_exit(args, config(os.path.join(work, "expired.conf"), db, dc, ca, expired,
                             secret_key="oauth2_token_file"), work, "expired token", 77,
                "oauth2_token_file")
    log(NAME, "xoauth2: a JWT Dovecot validates: --check-config --connect 0, --once stored "
        "the mail (%d XOAUTH2 logins in Dovecot's log); an expired one: 77" % len(logins))


def case_too_large(args, dc, ca, db, work, password):
    """max_mail_bytes = 64KiB and a 300 KiB mail: it is not fetched whole (RFC822.SIZE says
    it is over), stored as a too_large reject of its real size whose raw bytes are its
    header block and the start of its body, and moved like any other."""
    conf = config(os.path.join(work, "large.conf"), db, dc, ca, password,
                  extra="\n[limits]\nmax_mail_bytes = 64KiB\n")
    m = dc.client(ca)
    data = dv.crlf(dv.generated(81000, "large", body_bytes=300 * 1024))
    dv.append(m, "INBOX", data, 81000)
    p = Proc([args.fbl, "run", "--config", conf, "--once"], os.path.join(work, "large.log"))
    rc = p.p.wait(timeout=120)
    check(rc == 0, "fbl run --once (too large): exit %d:\n%s" % (rc, p.output()[-3000:]))
    row = db.query("SELECT r.size, m.raw_complete, octet_length(m.raw), "
                   "position('\\x0d0a0d0a'::bytea in m.raw) > 0, "
                   "position('Subject: spam report large'::bytea in m.raw) > 0 "
                   "FROM fbl.rejects r JOIN fbl.mails m USING (mail_id, received_at) "
                   "WHERE r.mailbox = '%s' AND r.reason = 'too_large'" % MAILBOX)
    check(row, "no too_large reject stored:\n%s" % p.output()[-3000:])
    size, complete, kept, has_blank, has_header = row.split("|")
    check(int(size) == len(data) and complete == "f" and int(kept) < len(data)
          and has_blank == "t" and has_header == "t",
          "too_large reject: size %s raw_complete %s kept %s blank line %s Subject %s"
          % (size, complete, kept, has_blank, has_header))
    check(dv.count(m, "INBOX") == 0, "the too large mail was not moved")
    m.logout()
    log(NAME, "too_large: a %d-byte mail over max_mail_bytes 64KiB: reject of size %s, %s "
        "bytes kept (header block + body start), moved" % (len(data), size, kept))


class StallOnce:
    """A TCP relay in front of Dovecot whose first connection is accepted and then never
    answered (a server that hangs: no greeting, no TLS); later ones are relayed."""

    def __init__(self, target_port):
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if not self.held:
                self.held.append(conn)  # never read, never answered
                continue
            up = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()
        for conn in self.held:
            conn.close()


def case_hang(args, dc, ca, db, work, password):
    """An IMAP server that accepts the connection and then says nothing. Under systemd's
    watchdog (NOTIFY_SOCKET, WATCHDOG_USEC = 2 s) the IMAP thread is seen stuck and the
    pings stop; the network timeout (30 s, below the units' WatchdogSec of 60 s) ends the
    wait, fbl reconnects (through the relay, to Dovecot), the pings resume and a mail is
    stored."""
    relay = StallOnce(dc.imaps_port)
    conf = config(os.path.join(work, "hang.conf"), db, dc, ca, password)
    with open(conf) as fh:
        text = fh.read().replace(":%d/" % dc.imaps_port, ":%d/" % relay.port)
    with open(conf, "w") as fh:
        fh.write(text)
    sock = os.path.join(tempfile.mkdtemp(prefix="fbl-notify-"), "notify.sock")
    notify = Notify(sock)
    p = Proc([args.fbl, "run", "--config", conf], os.path.join(work, "hang.log"),
             {"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "2000000"})
    try:
        wait_for("READY=1", lambda: notify.has("READY=1"), 30)
        t0 = time.monotonic()
        wait_for("the watchdog to see the IMAP thread stuck",
                 lambda: "a thread of the imap loop has not turned" in p.output(), 10)
        stuck = time.monotonic()
        wait_for("the timeout and a reconnection",
                 lambda: "watchdog pings resume" in p.output(), 60, step=0.2)
        resumed = time.monotonic()
        notify.poll()
        during = [m for t, m in notify.messages
                  if m.startswith("WATCHDOG=1") and stuck + 0.5 < t < resumed - 0.5]
        check(not during, "%d WATCHDOG=1 pings while the IMAP thread hung" % len(during))
        def pinged_since(when):
            notify.poll()
            return any(m.startswith("WATCHDOG=1") and t > when for t, m in notify.messages)
        wait_for("pings after the recovery", lambda: pinged_since(resumed), 5)
        m = dc.client(ca)
        data = dv.crlf(dv.generated(82000, "hang"))
        dv.append(m, "INBOX", data, 82000)
        m.logout()
        wait_for("the mail after the recovery", lambda: dv.sha(data) in stored(db), 15, step=0.05)
        check(p.running(), "fbl run ended:\n%s" % p.output()[-3000:])
        log(NAME, "hang: a server that answers nothing: the watchdog saw the IMAP thread stuck "
            "%.1f s after READY=1 and sent no ping; %.1f s after READY=1 the IMAP timeout had "
            "ended the wait, fbl reconnected, pings resumed; a new mail stored"
            % (stuck - t0, resumed - t0))
    finally:
        p.stop()
        relay.close()


def case_poll(args, dc, ca, db, work, password):
    """Dovecot without IDLE: `fbl run` polls (poll_interval = 2s) and a mail appended is
    stored within the interval (and a second of slack)."""
    dc.stop()
    dc.kill_sessions()
    dc.start("IMAP4rev1 LITERAL+ UIDPLUS MOVE")
    conf = config(os.path.join(work, "poll.conf"), db, dc, ca, password,
                  extra="poll_interval = 2s\n")
    p = Proc([args.fbl, "run", "--config", conf], os.path.join(work, "poll.log"))
    try:
        wait_for("fbl to connect", lambda: "IDLE no" in p.output(), 30)
        m = dc.client(ca)
        worst = 0.0
        for i in range(3):
            time.sleep(0.7 * i)  # at different points of the interval
            data = dv.crlf(dv.generated(70000 + i, "poll"))
            t0 = time.monotonic()
            dv.append(m, "INBOX", data, i)
            mail_id = dv.sha(data)
            wait_for("the polled mail", lambda: mail_id in stored(db), 10, step=0.02)
            worst = max(worst, time.monotonic() - t0)
        m.logout()
        check(worst <= 3.0, "without IDLE a mail took %.3f s, over poll_interval + 1 s" % worst)
        log(NAME, "poll: without IDLE (poll_interval 2s) 3 mails stored within %.3f s" % worst)
    finally:
        p.stop()


def test(args):
    for tool in ("dovecot", "openssl"):
        if not (shutil.which(tool) or os.path.exists("/usr/sbin/" + tool)):
            raise dv.Skip("%s is not installed" % tool)
    if not os.path.exists("/usr/lib/dovecot/imap"):
        raise dv.Skip("dovecot-imapd is not installed")
    if os.getuid() != 0:
        raise dv.Skip("dovecot needs root to start")
    if not shutil.which("psql"):
        raise dv.Skip("psql is not installed")
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    work = fresh_dir(args.workdir)
    os.chmod(work, 0o755)
    nobody = pwd.getpwnam("nobody")
    home = tempfile.mkdtemp(prefix="fbl-imap-home-")
    os.chmod(home, 0o755)
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    ca_key, ca = dv.make_ca(work, "ca")
    key, cert = dv.make_server_cert(work, ca_key, ca)
    db = Database(args.conninfo_file, "fbl_imap_pipeline")
    dc = dv.Dovecot(work, home, cert, key, nobody.pw_uid, nobody.pw_gid)
    jwt_key = dc.enable_xoauth2()
    dc.start()
    password = secret(os.path.join(work, "password"), dv.PASSWORD)
    run = Run(args, config(os.path.join(work, "fbl.conf"), db, dc, ca, password), work)
    p = None
    try:
        case_check(args, dc, ca, db, work, run.conf)
        case_once(args, dc, ca, db, run)
        p = case_crash(args, dc, ca, db, run)
        case_idle(dc, ca, db, p)
        case_metrics(args)
        case_dovecot_restart(args, dc, ca, db, p)
        p.stop()
        case_exits(args, dc, ca, db, work)
        case_xoauth2(args, dc, ca, db, work, jwt_key)
        case_too_large(args, dc, ca, db, work, password)
        case_hang(args, dc, ca, db, work, password)
        case_poll(args, dc, ca, db, work, password)
    except Failure as e:
        last = run.proc.output()[-3000:] if run.proc else ""
        raise Failure("%s\n--- fbl run (last) ---\n%s\n--- dovecot log ---\n%s"
                      % (e, last, dc.logs()))
    finally:
        if p is not None:
            p.kill()
        dc.cleanup()
        shutil.rmtree(home, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--corpus", help="real report mails (CMake's FBL_CORPUS_DIR), optional")
    ap.add_argument("--mails", type=int, default=300)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    args.metrics_port = free_port()
    log(NAME, "seed %d" % args.seed)

    def body():
        try:
            test(args)
        except dv.Skip as e:
            log(NAME, "SKIP: %s" % e)
            sys.exit(dv.SKIP)

    run_main(NAME, body)


if __name__ == "__main__":
    main()
