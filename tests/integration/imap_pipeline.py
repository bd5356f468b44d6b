#!/usr/bin/python3
"""An IMAP mailbox through the whole pipeline: Dovecot -> `fbl run` -> PostgreSQL.

usage: imap_pipeline.py --fbl BIN --conninfo-file FILE --workdir DIR [--corpus DIR]
                        [--mails N] [--kills K]

Dovecot is started as in imap_dovecot.py (a copy of Debian's configuration, a throwaway
CA, imaps on 127.0.0.1). `fbl run` reads its INBOX ([mailbox:imap] imap = imaps://...)
into a database of its own in the "pg" fixture's cluster.

  crash    N mails (real corpus mails first, when --corpus has them, then generated
           ones) are appended in K chunks; `fbl run` is killed with SIGKILL once a
           random part of each chunk is stored, and started again. In the end every mail is in
           fbl.mails exactly once (mail_id = SHA-256 of the bytes Dovecot serves, the
           received_at its INTERNALDATE), every one sits in fbl/done, INBOX is empty.
  idle     with the folder empty and `fbl run` idling, a mail appended is stored
           within 1 s (the figure is printed; Dovecot itself waits 0.5 s before it
           tells an idling client).
  auth     a wrong password: `fbl run` exits 77 at once, saying the login was refused.
  check    (first) --check-config refuses a password file others may read (78, naming
           its line); with --login it logs in, and a wrong password is a 78 naming the
           imap line; without --login no login is tried.

Exit 77 (skip) without dovecot, openssl, root or psql. Standard library only.
"""
import argparse
import os
import pwd
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import imap_dovecot as dv
from ops_common import (Database, Failure, Proc, check, free_port, fresh_dir, log, parse_metrics,
                        run_main, scrape, wait_for)

NAME = "imap pipeline"
MAILBOX = "imap"
IDLE_BOUND = 1.0


def config(path, db, dc, ca, password_file):
    with open(path, "w") as fh:
        fh.write("[postgres]\nconninfo = %s\n\n"
                 "[log]\nlevel = info\n\n"
                 "[mailbox:%s]\nimap = imaps://127.0.0.1:%d/INBOX\nuser = %s\n"
                 "password_file = %s\nca_file = %s\n"
                 % (db.conninfo, MAILBOX, dc.imaps_port, dv.USER, password_file, ca))
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
    out = [dv.crlf(d) for d in dv.corpus_files(args.corpus, args.mails // 3)]
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
    unmoved = 0  # stored but still in INBOX at a kill: fetched again, acked, moved
    chunk = -(-len(mails) // args.kills)
    rng = random.Random(args.seed)
    for k in range(args.kills):
        p = run.start()
        part = range(k * chunk, min(len(mails), (k + 1) * chunk))
        appender = threading.Thread(target=append_all, args=(dc, ca, mails, part))
        appender.start()
        # Kill once a random part of this chunk is stored: in the middle of the work.
        target = part.start + rng.randint(1, max(1, len(part) - 1))
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
    got = stored(db)
    check(set(got) == want, "stored %d mails, want %d; missing %s, unexpected %s"
          % (len(got), len(want), sorted(want - set(got))[:3], sorted(set(got) - want)[:3]))
    doubled = {k: v for k, v in got.items() if v != 1}
    check(not doubled, "stored more than once: %s" % list(doubled.items())[:3])
    done = dv.count(m, dv.DONE)
    check(done == len(mails), "%s holds %d mails, want %d" % (dv.DONE, done, len(mails)))
    check(set(dv.served_bytes(m, dv.DONE)) == want, "%s holds other mails" % dv.DONE)
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
    """The last `fbl run` moved at least the idle mail, fetched what it moved, is connected."""
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
    log(NAME, "metrics: connected 1, fetched %d, moved %d" % (fetched, moved))


def case_auth(args, dc, ca, db, work):
    bad = secret(os.path.join(work, "wrong-password"), "not-the-password")
    conf = config(os.path.join(work, "wrong.conf"), db, dc, ca, bad)
    p = Proc([args.fbl, "run", "--config", conf], os.path.join(work, "wrong.log"))
    t0 = time.monotonic()
    try:
        rc = p.p.wait(timeout=60)
    except Exception:
        p.kill()
        raise Failure("fbl run with a wrong password still runs after 60 s:\n%s"
                      % p.output()[-3000:])
    out = p.output()
    check(rc == 77, "fbl run with a wrong password exited %d, want 77:\n%s" % (rc, out[-3000:]))
    check("mailbox=%s" % MAILBOX in out and "password_file" in out,
          "the exit does not name the mailbox and what to check:\n%s" % out[-3000:])
    log(NAME, "auth: a wrong password: exit 77 after %.1f s: %s"
        % (time.monotonic() - t0,
           [l for l in out.splitlines() if "password_file" in l][0].strip()[:200]))


def check_config(args, conf, *flags):
    out = subprocess.run([args.fbl, "run", "--config", conf, "--check-config"] + list(flags),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return out.returncode, out.stdout


def case_check(args, dc, ca, db, work, good_conf):
    """--check-config reads the secret file under the secret-file rule; --login logs in."""
    rc, out = check_config(args, good_conf, "--login")
    check(rc == 0, "--check-config --login of the right configuration: %d %s" % (rc, out))
    bad = secret(os.path.join(work, "check-wrong"), "not-the-password")
    conf = config(os.path.join(work, "check-wrong.conf"), db, dc, ca, bad)
    rc, out = check_config(args, conf)
    check(rc == 0, "--check-config without --login must not log in: %d %s" % (rc, out))
    rc, out = check_config(args, conf, "--login")
    check(rc == 78 and conf + ":8: [mailbox:imap] imap:" in out and "refused the login" in out,
          "--check-config --login with a wrong password: %d %s" % (rc, out))
    os.chmod(bad, 0o644)
    rc, out = check_config(args, conf)
    check(rc == 78 and conf + ":10: [mailbox:imap] password_file:" in out,
          "--check-config with a password file others may read: %d %s" % (rc, out))
    log(NAME, "check: --check-config reads the password file (0644 refused), --login logs in")


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
    dc.start()
    password = secret(os.path.join(work, "password"), dv.PASSWORD)
    run = Run(args, config(os.path.join(work, "fbl.conf"), db, dc, ca, password), work)
    p = None
    try:
        case_check(args, dc, ca, db, work, run.conf)
        p = case_crash(args, dc, ca, db, run)
        case_idle(dc, ca, db, p)
        case_metrics(args)
        p.stop()
        case_auth(args, dc, ca, db, work)
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
