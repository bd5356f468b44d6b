#!/usr/bin/python3
"""The watcher in a hostile or unusual Maildir: real `fbl run` processes, real files.

usage: watch_hostile.py special|retire|settle|link --fbl BIN --pg-conninfo-file FILE
                        --workdir DIR

special  new/ holds symlinks (one to a secret file, one dangling), a FIFO, a Unix
         socket, a directory and a device beside one mail. `fbl run --once` must
         store the mail only, log each other name once (naming its type, never its
         contents), leave them all in place and exit 0 within a bound (a FIFO used
         to hang the watcher in open()). A running `fbl run` must do the same for
         such names created while it runs, and count them in
         fbl_watch_skipped_total. `fbl parse LINK` still follows a symlink.
retire   a mail whose name is NAME_MAX bytes long cannot get ":2,S" in cur/:
         `fbl run --once` stores it once (and a normal mail beside it), names it
         and exits 74 within a bound (it used to resend it forever). Then a running
         `fbl run` whose cur/ is removed, and then replaced by a file: each mail is
         stored and sent once, the failures are logged with their errno text and
         counted, and once cur/ is back both mails move there.
settle   an MTA that writes into new/ itself, slowly: a mail written in pieces while
         `fbl run --once` starts, one written in two halves while `fbl run` runs
         (inotify IN_CREATE), and one finished but held open: each is stored whole.
link     mails delivered by link() from tmp/ into new/ and unlink() in tmp/ (Postfix
         local/virtual, qmail, maildrop): each is stored within 2 s, not at the next
         listing of new/ a minute later.

Each mode has its own database in the "pg" fixture's cluster. Standard library only.
"""
import argparse
import hashlib
import os
import re
import socket
import stat
import subprocess
import threading
import time

from ops_common import (SAMPLES, Database, Failure, Proc, check, count, deliver, free_port,
                        fresh_dir, log, make_maildir, parse_metrics, run_main, scrape, wait_for)

NAME = "watch_hostile"
MAILBOX = "spamalert"
SECRET = b"CURVE-SECRET-KEY-NEVER-TO-BE-STORED 0123456789abcdef\n"
ONCE_BOUND = 30  # seconds: `fbl run --once` over a handful of mails takes 1-3 s
EX_IOERR = 74


def mail(tag):
    """A distinct report mail (a header naming @tag on top of a sample)."""
    body = open(os.path.join(SAMPLES, "arf-not-spam.eml"), "rb").read()
    return b"X-Hostile-Test: " + tag.encode() + b"\n" + body


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Fbl:
    """`fbl run` on one Maildir and database, with its log at info level."""

    def __init__(self, args, work, db, mbox, tag, metrics_port=None):
        self.args, self.work, self.tag = args, work, tag
        self.conf = os.path.join(work, "%s.conf" % tag)
        self.logpath = os.path.join(work, "%s.log" % tag)
        self.port = metrics_port
        with open(self.conf, "w") as fh:
            fh.write("[postgres]\nconninfo = %s\n\n[mailbox:%s]\npath = %s\n\n"
                     "[watch]\nack_timeout = 3s\n\n[sink]\nbatch_max_wait = 20ms\n\n"
                     "[log]\nlevel = info\n" % (db.conninfo, MAILBOX, mbox))
            if metrics_port:
                fh.write("\n[metrics]\nlisten = 127.0.0.1:%d\n" % metrics_port)
        self.proc = None

    def once(self, timeout=ONCE_BOUND):
        """Run `fbl run --once`: (exit status or None when killed at @timeout, seconds)."""
        self.proc = Proc([self.args.fbl, "run", "--once", "--config", self.conf], self.logpath)
        t0 = time.monotonic()
        try:
            rc = self.proc.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        self.proc.kill()
        return rc, time.monotonic() - t0

    def start_once(self):
        self.proc = Proc([self.args.fbl, "run", "--once", "--config", self.conf], self.logpath)
        return self.proc

    def start(self):
        """Start the daemon and wait until its watcher runs (inotify is set up before)."""
        self.proc = Proc([self.args.fbl, "run", "--config", self.conf], self.logpath)
        self.wait_running()
        return self.proc

    def wait_running(self):
        wait_for("fbl run to start", lambda: ": running" in self.output() or
                 not self.proc.running(), 60)
        check(self.proc.running() or self.proc.p.returncode == 0,
              "fbl run exited early:\n" + self.output())

    def stop(self):
        return self.proc.stop()

    def output(self):
        return self.proc.output()

    def metrics(self):
        return parse_metrics(scrape(self.port)[2])


def rid_lines(text, digest, stage):
    # stderr lines lead with ts=, role= and pid= (fbl/log.h), unless journald's.
    lead = r"(?:ts=\S+ role=\S+ pid=\d+ )?"
    return len(re.findall(r"^%srid=%s stage=%s " % (lead, digest[:12], stage), text, re.M))


def stored_ids(db):
    return db.query("SELECT mail_id FROM fbl.mails ORDER BY 1").split()


# --- special files --------------------------------------------------------------------


def make_specials(mbox, secret, prefix, keep):
    """Every kind of name that is not a regular file, in new/: {name: kind}."""
    new = os.path.join(mbox, "new")
    made = {}
    link = "%s1.link.host" % prefix
    os.symlink(secret, os.path.join(new, link))
    made[link] = "symlink"
    dangling = "%s2.dangling.host" % prefix
    os.symlink(os.path.join(mbox, "nowhere"), os.path.join(new, dangling))
    made[dangling] = "symlink"
    fifo = "%s3.fifo.host" % prefix
    os.mkfifo(os.path.join(new, fifo))
    made[fifo] = "fifo"
    sock_name = "%s4.sock.host" % prefix
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    here = os.getcwd()
    os.chdir(new)  # a relative name: a deep build directory is no limit on sun_path
    try:
        sock.bind(sock_name)
    finally:
        os.chdir(here)
    keep.append(sock)
    made[sock_name] = "socket"
    directory = "%s5.dir.host" % prefix
    os.mkdir(os.path.join(new, directory))
    made[directory] = "directory"
    dev = "%s6.dev.host" % prefix
    try:
        os.mknod(os.path.join(new, dev), 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null
        made[dev] = "device"
    except PermissionError:
        log(NAME, "not root: no device node in new/")
    return made


def check_specials_left(mbox, made):
    for name, kind in made.items():
        st = os.lstat(os.path.join(mbox, "new", name))
        is_kind = {"symlink": stat.S_ISLNK, "fifo": stat.S_ISFIFO, "socket": stat.S_ISSOCK,
                   "directory": stat.S_ISDIR, "device": stat.S_ISCHR}[kind]
        check(is_kind(st.st_mode), "new/%s is no longer a %s" % (name, kind))


def check_skip_lines(text, made):
    for name, kind in made.items():
        lines = [line for line in text.splitlines() if "new/%s " % name in line]
        check(len(lines) == 1, "new/%s: %d log lines, want 1:\n%s" % (name, len(lines), text))
        check("is a %s, not a mail file" % kind in lines[0],
              "new/%s: the line does not say %s: %s" % (name, kind, lines[0]))
    check(SECRET.decode().split()[0] not in text, "the secret's contents are in the log")


def test_special(args):
    work = fresh_dir(args.workdir)
    db = Database(args.pg_conninfo_file, "t_watch_special")
    secret = os.path.join(work, "watch.key")
    with open(secret, "wb") as fh:
        fh.write(SECRET)
    keep = []

    # 1. fbl run --once over a new/ full of things that are no mail files.
    mbox = make_maildir(os.path.join(work, "once"))
    made = make_specials(mbox, secret, "1700000000.", keep)
    good = mail("special-once")
    with open(os.path.join(mbox, "new", "1700000009.mail.host"), "wb") as fh:
        fh.write(good)
    run = Fbl(args, work, db, mbox, "once")
    rc, took = run.once()
    text = run.output()
    leaked = db.query("SELECT count(*) FROM fbl.mails WHERE position('\\x%s'::bytea IN raw) > 0"
                      % SECRET[:20].hex())
    check(leaked == "0", "the secret file was stored through the symlink%s" % (
        "; and fbl run --once still ran after %d s" % ONCE_BOUND if rc is None else ""))
    check(rc is not None, "fbl run --once still running after %d s (a FIFO in new/ hangs "
          "the watcher):\n%s" % (ONCE_BOUND, text))
    check(rc == 0, "fbl run --once exited %s:\n%s" % (rc, text))
    ids = stored_ids(db)
    check(ids == [sha(good)], "fbl.mails holds %s, want only the mail %s" % (ids, sha(good)))
    check_specials_left(mbox, made)
    check(count(mbox, "cur") == 1, "the mail is not in cur/")
    check_skip_lines(text, made)
    log(NAME, "--once: exit 0 in %.1f s, 1 mail stored, %d other names left alone, logged once"
        % (took, len(made)))

    # `fbl parse` of a symlink reads its target: the user asked for that file.
    out = subprocess.run([args.fbl, "parse", os.path.join(mbox, "new", "1700000000.1.link.host")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(out.returncode == 0, "fbl parse LINK exited %d: %s" % (out.returncode, out.stderr))
    check(sha(SECRET).encode() in out.stdout, "fbl parse LINK did not read the link's target")

    # 2. A running watcher: the same names created while it runs (inotify IN_CREATE).
    mbox2 = make_maildir(os.path.join(work, "daemon"))
    port = free_port()
    daemon = Fbl(args, work, db, mbox2, "daemon", port)
    daemon.start()
    try:
        made2 = make_specials(mbox2, secret, "1700000100.", keep)
        good2 = mail("special-daemon")
        deliver(mbox2, good2)
        wait_for("the mail in cur/", lambda: count(mbox2, "cur") == 1, 20)
        want = {}
        for kind in made2.values():
            key = 'fbl_watch_skipped_total{mailbox="%s",reason="%s"}' % (MAILBOX, kind)
            want[key] = want.get(key, 0) + 1

        def counted():
            got = daemon.metrics()
            return all(got.get(k) == v for k, v in want.items())

        wait_for("fbl_watch_skipped_total %s" % want, counted, 20)
        time.sleep(1.0)  # nothing more may come
        got = daemon.metrics()
        have = {k: v for k, v in got.items() if k.startswith("fbl_watch_skipped_total")}
        check(have == want, "fbl_watch_skipped_total: got %s, want %s" % (have, want))
        check(sorted(stored_ids(db)) == sorted([sha(good), sha(good2)]),
              "fbl.mails: %s" % stored_ids(db))
        check_specials_left(mbox2, made2)
        check_skip_lines(daemon.output(), made2)
    finally:
        rc = daemon.stop()
    check(rc == 0, "fbl run exited %s after SIGTERM" % rc)
    for s in keep:
        s.close()
    log(NAME, "running: %d names created under it skipped and counted, the mail stored"
        % len(made2))


# --- mails that cannot be retired -----------------------------------------------------


def test_retire(args):
    work = fresh_dir(args.workdir)
    db = Database(args.pg_conninfo_file, "t_watch_retire")

    # 1. --once: a name of NAME_MAX bytes cannot take ":2,S".
    mbox = make_maildir(os.path.join(work, "once"))
    prefix = "1700000200.M1P1."
    long_name = prefix + "h" * (os.pathconf(os.path.join(mbox, "cur"), "PC_NAME_MAX") -
                                len(prefix))
    stuck, fine = mail("retire-long-name"), mail("retire-fine")
    with open(os.path.join(mbox, "new", long_name), "wb") as fh:
        fh.write(stuck)
    with open(os.path.join(mbox, "new", "1700000201.M2P1.host"), "wb") as fh:
        fh.write(fine)
    run = Fbl(args, work, db, mbox, "once")
    rc, took = run.once()
    text = run.output()
    check(rc is not None, "fbl run --once still running after %d s with a mail it cannot "
          "retire; parsed it %d times" % (ONCE_BOUND, rid_lines(text, sha(stuck), "parse")))
    check(rc == EX_IOERR, "fbl run --once exited %s, want %d:\n%s" % (rc, EX_IOERR, text))
    check(sorted(stored_ids(db)) == sorted([sha(stuck), sha(fine)]),
          "fbl.mails: %s" % stored_ids(db))
    for stage in ("parse", "stored"):
        n = rid_lines(text, sha(stuck), stage)
        check(n == 1, "the unretirable mail: %d stage=%s lines, want 1" % (n, stage))
    check(re.search(r"new/%s is stored but could not be moved to cur/.*File name too long"
                    % long_name, text), "the end of the run does not name the mail:\n" + text)
    check(os.path.exists(os.path.join(mbox, "new", long_name)), "the long name left new/")
    check(count(mbox, "cur") == 1 and count(mbox, "new") == 1, "cur/ or new/ is wrong")
    log(NAME, "--once: exit %d in %.1f s; the NAME_MAX mail stored and parsed once, named"
        % (rc, took))

    # 2. A running watcher loses cur/, then finds a file in its place.
    mbox2 = make_maildir(os.path.join(work, "daemon"))
    port = free_port()
    daemon = Fbl(args, work, db, mbox2, "daemon", port)
    daemon.start()
    cur = os.path.join(mbox2, "cur")
    try:
        os.rmdir(cur)
        first = mail("retire-no-cur")
        deliver(mbox2, first)
        wait_for("a retire failure (cur/ missing)", lambda: daemon.metrics().get(
            'fbl_watch_retire_failures_total{mailbox="%s",reason="enoent"}' % MAILBOX, 0) >= 1,
            20)
        text = daemon.output()
        check(re.search(r"^(?:ts=\S+ role=\S+ pid=\d+ )?rid=%s stage=retire level=warning "
                        r".*No such file or directory"
                        % sha(first)[:12], text, re.M),
              "no warning with the errno text:\n" + text)
        with open(cur, "w") as fh:
            fh.write("not a directory\n")
        second = mail("retire-cur-is-a-file")
        deliver(mbox2, second)
        wait_for("a retire failure (cur is a file)", lambda: daemon.metrics().get(
            'fbl_watch_retire_failures_total{mailbox="%s",reason="enotdir"}' % MAILBOX, 0) >= 1,
            20)
        time.sleep(4)  # several rescans' worth of the old loop, and retries of the rename
        got = daemon.metrics()
        text = daemon.output()
        check(got.get("fbl_watch_mails_retire_pending") == 2,
              "fbl_watch_mails_retire_pending = %s, want 2" % got.get(
                  "fbl_watch_mails_retire_pending"))
        check(got.get("fbl_sink_mails_total") == 2 and got.get("fbl_watch_resends_total") == 0,
              "sent more than once: sink_mails_total %s, resends %s" % (
                  got.get("fbl_sink_mails_total"), got.get("fbl_watch_resends_total")))
        for m in (first, second):
            check(rid_lines(text, sha(m), "parse") == 1, "a mail was parsed again")
        check(count(mbox2, "new") == 2, "the mails left new/")
        check(sorted(stored_ids(db)) == sorted([sha(stuck), sha(fine), sha(first),
                                                sha(second)]), "fbl.mails: %s" % stored_ids(db))
        failures = sum(v for k, v in got.items()
                       if k.startswith("fbl_watch_retire_failures_total"))
        log(NAME, "running: cur/ missing, then a file: 2 mails stored once, %d failed "
            "renames counted" % failures)

        os.unlink(cur)
        os.mkdir(cur)
        wait_for("both mails in cur/", lambda: count(mbox2, "cur") == 2, 40)
        wait_for("the gauge at 0", lambda: daemon.metrics().get(
            "fbl_watch_mails_retire_pending") == 0, 5)
        check("moved to cur/ after" in daemon.output(), "no line says the mails moved at last")
        check(daemon.metrics().get("fbl_sink_mails_total") == 2, "sent again after cur/ came back")
    finally:
        rc = daemon.stop()
    check(rc == 0, "fbl run exited %s after SIGTERM" % rc)
    log(NAME, "running: cur/ back, both mails retired by the backoff's retry")


# --- a writer in new/ -----------------------------------------------------------------


def slow_write(path, data, pieces, pause, go_on):
    """Write @data into @path in @pieces, @pause apart; the last one only after @go_on."""
    step = len(data) // pieces
    with open(path, "wb") as fh:
        for i in range(pieces - 1):
            fh.write(data[i * step:(i + 1) * step])
            fh.flush()
            time.sleep(pause)
        while not go_on():
            # the writer is alive: its file changes (a slow SMTP client, say)
            os.utime(fh.fileno())
            time.sleep(pause)
        fh.write(data[(pieces - 1) * step:])


def test_settle(args):
    work = fresh_dir(args.workdir)
    db = Database(args.pg_conninfo_file, "t_watch_settle")

    # 1. --once starts while a mail is being written into new/.
    mbox = make_maildir(os.path.join(work, "once"))
    whole = mail("settle-once") * 4
    path = os.path.join(mbox, "new", "1700000300.M1P1.host")
    run = Fbl(args, work, db, mbox, "once")
    started = {}
    writer = threading.Thread(target=slow_write, args=(
        path, whole, 4, 0.2, lambda: "t" in started and time.monotonic() > started["t"] + 1.0))
    writer.start()
    time.sleep(0.3)  # some of it is there
    proc = run.start_once()
    wait_for("fbl run --once to start", lambda: ": running" in run.output() or
             not proc.running(), 60)
    started["t"] = time.monotonic()  # its first listing of new/ comes now
    writer.join()
    try:
        rc = proc.p.wait(timeout=ONCE_BOUND)
    except subprocess.TimeoutExpired:
        rc = None
    proc.kill()
    check(rc == 0, "fbl run --once exited %s:\n%s" % (rc, run.output()))
    ids = stored_ids(db)
    check(ids == [sha(whole)], "stored %s, want the whole mail %s (%d bytes): a part was "
          "stored" % (ids, sha(whole), len(whole)))
    raw_len = db.query("SELECT length(raw) FROM fbl.mails")
    check(raw_len == str(len(whole)), "raw is %s bytes, want %d" % (raw_len, len(whole)))
    log(NAME, "--once: a mail written in place while the listing ran was stored whole")

    # 2. A running watcher: open(O_CREAT) in new/ raises IN_CREATE before the mail is there.
    mbox2 = make_maildir(os.path.join(work, "daemon"))
    daemon = Fbl(args, work, db, mbox2, "daemon", free_port())
    daemon.start()
    try:
        halves = mail("settle-halves") * 4
        fd = os.open(os.path.join(mbox2, "new", "1700000301.M2P1.host"),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, halves[:len(halves) // 2])
        time.sleep(0.6)
        os.write(fd, halves[len(halves) // 2:])
        os.close(fd)
        # written whole, then held open well past the settling time
        held = mail("settle-held-open") * 4
        fd = os.open(os.path.join(mbox2, "new", "1700000302.M3P1.host"),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, held[:100])
        time.sleep(0.4)
        os.write(fd, held[100:])
        wait_for("two mails in cur/", lambda: count(mbox2, "cur") == 2, 20)
        os.close(fd)
        want = sorted([sha(whole), sha(halves), sha(held)])
        check(sorted(stored_ids(db)) == want, "stored %s, want %s" % (stored_ids(db), want))
    finally:
        rc = daemon.stop()
    check(rc == 0, "fbl run exited %s after SIGTERM" % rc)
    log(NAME, "running: a mail written in two halves and one held open: both stored whole")


# --- link() delivery ------------------------------------------------------------------


def test_link(args):
    work = fresh_dir(args.workdir)
    db = Database(args.pg_conninfo_file, "t_watch_link")
    mbox = make_maildir(os.path.join(work, "mbox"))
    daemon = Fbl(args, work, db, mbox, "daemon", free_port())
    daemon.start()
    try:
        for i in range(3):
            data = mail("link-%d" % i)
            name = "%d.M%dP%d.link.example" % (int(time.time()), i, os.getpid())
            tmp = os.path.join(mbox, "tmp", name)
            with open(tmp, "wb") as fh:
                fh.write(data)
            t0 = time.monotonic()
            os.link(tmp, os.path.join(mbox, "new", name))
            os.unlink(tmp)
            want = sha(data)
            try:
                wait_for("mail %d stored" % i, lambda: want in stored_ids(db), 2.0, step=0.05)
            except Failure:
                raise Failure("a mail linked into new/ was not stored within 2 s (the next "
                              "listing of new/ is %d s away)" % 60)
            log(NAME, "linked mail %d stored after %.2f s" % (i, time.monotonic() - t0))
        wait_for("cur/ to hold the 3 mails", lambda: count(mbox, "cur") == 3, 10)
        check(count(mbox, "new") == 0, "new/ is not empty")
    finally:
        rc = daemon.stop()
    check(rc == 0, "fbl run exited %s after SIGTERM" % rc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("special", "retire", "settle", "link"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--pg-conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    fn = {"special": test_special, "retire": test_retire, "settle": test_settle,
          "link": test_link}[args.mode]
    run_main("%s %s" % (NAME, args.mode), lambda: fn(args))


if __name__ == "__main__":
    main()
