#!/usr/bin/python3
"""fbl with the real mail servers it sits beside, as Debian ships them, started by the test.

usage: peers.py postfix|dovecot --fbl BIN --pg-conninfo-file FILE --workdir DIR
                [--corpus DIR] [--samples DIR]

postfix  A Postfix instance of its own (postfix -c DIR: Debian's main.cf and master.cf,
         changed only in ports, paths and users: smtpd on a free loopback port,
         mydestination empty, one virtual(8) domain delivering into a Maildir owned by
         the user nobody, queue and data directories under the work directory;
         message_size_limit stays Debian's 10240000). swaks sends every real corpus
         mail (--corpus, when present; else --samples) over SMTP while `fbl run`
         watches the Maildir: each mail is stored once, each within 2 s of its
         delivery (the Maildir file's time to its row's stored_at; p50/p99/max are
         printed), half of them within 1 s, and a mail over Postfix's limit is
         refused at SMTP (552).
dovecot  Dovecot (Debian's configuration, copied: only ports, paths, and a
         passwd-file user instead of the system's; plaintext login on loopback)
         delivers mails over LMTP into the Maildir `fbl run` watches, while an IMAP
         client logs in and SELECTs the folder again and again, which makes Dovecot
         move new/ to cur/ (also while fbl has a mail in flight). Every mail is stored
         exactly once; users then read, flag and delete some; `fbl run` is restarted
         and stores and reads nothing again; and a cur/ left by an fbl without its
         index (.fbl-committed) is not read again.

Each mode has its own database in the "pg" fixture's cluster. Exit 77 (skip) when the
packages are missing or the test does not run as root (the servers need it).
Standard library only.
"""
import argparse
import glob
import grp
import hashlib
import imaplib
import os
import pwd
import random
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

from ops_common import (SAMPLES, Database, Failure, Proc, Skip, check, edit_conf, free_port,
                        fresh_dir, log, need, run, run_main, start_dovecot, wait_for)

SKIP = 77
MAILBOX = "spamalert"
DOMAIN = "fbl.test"
RCPT = "%s@%s" % (MAILBOX, DOMAIN)
BOUND = 2.0  # seconds from delivery to the row, for every mail
POSTFIX_LIMIT = 10240000  # Debian's message_size_limit


def name_of(args):
    return "peers %s" % args.mode


def sha(data):
    return hashlib.sha256(data).hexdigest()


def reachable_by(user, path):
    """Whether @user can enter every directory down to @path."""
    return subprocess.run(["runuser", "-u", user, "--", "test", "-x", path],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def mail_home(work, user):
    """A directory under @work that @user reaches, else a private one under /tmp."""
    if reachable_by(user, work):
        return work
    return tempfile.mkdtemp(prefix="fbl-peers-")


def make_maildir(path, uid, gid):
    for sub in ("", "tmp", "new", "cur"):
        d = os.path.join(path, sub)
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, gid)
        os.chmod(d, 0o700)
    return path


def corpus_mails(args):
    """(source label, file paths): the shared real corpus when present, else our samples."""
    exts = (".eml", ".txt", ".msg")
    if args.corpus and os.path.isdir(args.corpus):
        files = sorted(p for p in glob.glob(os.path.join(args.corpus, "**", "*"), recursive=True)
                       if os.path.isfile(p) and p.endswith(exts)
                       and not os.path.basename(p).startswith(("README", "SOURCES")))
        if files:
            return "the real corpus (%s)" % args.corpus, files
    files = sorted(glob.glob(os.path.join(args.samples, "*.eml")))
    return "the project's samples (%s)" % args.samples, files


def maildir_files(mbox):
    """{sha256: (path, mtime)} of every mail in new/ and cur/."""
    found = {}
    for sub in ("new", "cur"):
        d = os.path.join(mbox, sub)
        for name in os.listdir(d):
            if name.startswith("."):
                continue
            path = os.path.join(d, name)
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
                st = os.stat(path)
            except FileNotFoundError:
                continue  # moved meanwhile: the next look finds it
            found[sha(data)] = (path, st.st_mtime)
    return found


def stored(db):
    """{mail_id: count} of fbl.mails."""
    rows = db.query("SELECT mail_id, count(*) FROM fbl.mails GROUP BY 1")
    return {line.split("|")[0]: int(line.split("|")[1]) for line in rows.splitlines() if line}


def stored_at(db):
    """{mail_id: stored_at as seconds since the epoch}."""
    rows = db.query("SELECT mail_id, extract(epoch FROM stored_at) FROM fbl.mails")
    return {line.split("|")[0]: float(line.split("|")[1]) for line in rows.splitlines() if line}


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class Fbl:
    """`fbl run` on one Maildir and database, its log at info level."""

    def __init__(self, args, work, db, mbox, tag, watch=""):
        self.args = args
        self.conf = os.path.join(work, "fbl-%s.conf" % tag)
        self.logpath = os.path.join(work, "fbl-%s.log" % tag)
        with open(self.conf, "w") as fh:
            fh.write("[postgres]\nconninfo = %s\n\n[mailbox:%s]\npath = %s\n\n"
                     "[watch]\nack_timeout = 3s\n%s\n[log]\nlevel = info\n"
                     % (db.conninfo, MAILBOX, mbox, watch))
        self.runs = 0
        self.proc = None

    def start(self):
        self.runs += 1
        path = "%s.%d" % (self.logpath, self.runs)
        self.proc = Proc([self.args.fbl, "run", "--config", self.conf], path)
        wait_for("fbl run to start", lambda: ": running" in self.proc.output()
                 or not self.proc.running(), 60)
        check(self.proc.running(), "fbl run exited %s:\n%s" % (self.proc.p.poll(),
                                                              self.proc.output()))

    def stop(self):
        rc = self.proc.stop()
        check(rc == 0, "fbl run exited %s after SIGTERM:\n%s" % (rc, self.proc.output()))

    def output(self):
        return self.proc.output()


# --- Postfix ---------------------------------------------------------------------------


def debian_file(*candidates):
    for p in candidates:
        if os.path.exists(p):
            return p
    raise Skip("none of %s: is postfix installed?" % ", ".join(candidates))


class Postfix:
    """A Postfix instance of our own: `postfix -c DIR`, Debian's files, our ports and paths."""

    def __init__(self, work, maildirs, uid, gid):
        self.dir = os.path.join(work, "postfix")
        self.port = free_port()
        os.makedirs(self.dir)
        shutil.copy(debian_file("/etc/postfix/main.cf", "/usr/share/postfix/main.cf.debian"),
                    os.path.join(self.dir, "main.cf"))
        shutil.copy(debian_file("/etc/postfix/master.cf", "/usr/share/postfix/master.cf.dist"),
                    os.path.join(self.dir, "master.cf"))
        queue, data = os.path.join(work, "queue"), os.path.join(work, "data")
        os.makedirs(queue)
        os.makedirs(data)
        os.chown(data, pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid)
        vmailbox = os.path.join(self.dir, "vmailbox")
        with open(vmailbox, "w") as fh:
            fh.write("%s %s/\n" % (RCPT, MAILBOX))  # the trailing slash: a Maildir
        self.log = os.path.join(work, "postfix.log")
        self.postconf(
            "queue_directory=%s" % queue, "data_directory=%s" % data,
            "mail_owner=postfix", "setgid_group=postdrop",
            "inet_interfaces=127.0.0.1", "inet_protocols=ipv4",
            "mydestination=", "virtual_mailbox_domains=%s" % DOMAIN,
            "virtual_mailbox_base=%s" % maildirs,
            "virtual_mailbox_maps=texthash:%s" % vmailbox,
            "virtual_uid_maps=static:%d" % uid, "virtual_gid_maps=static:%d" % gid,
            "maillog_file=%s" % self.log, "maillog_file_prefixes=%s" % work)
        # smtpd on our port instead of 25: the service's name is its address.
        smtp = run(["postconf", "-c", self.dir, "-M", "smtp/inet"]).split()
        check(len(smtp) >= 8, "no smtp/inet service in Debian's master.cf")
        run(["postconf", "-c", self.dir, "-MX", "smtp/inet"])
        run(["postconf", "-c", self.dir, "-Me", "127.0.0.1:%d/inet=127.0.0.1:%d %s"
             % (self.port, self.port, " ".join(smtp[1:]))])
        run(["postconf", "-c", self.dir, "-Me",
             "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd"])

    def postconf(self, *settings):
        run(["postconf", "-c", self.dir, "-e"] + list(settings))

    def start(self):
        run(["postfix", "-c", self.dir, "check"])
        run(["postfix", "-c", self.dir, "start"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(512).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.2)
        raise Failure("postfix does not answer on port %d:\n%s" % (self.port, self.logs()))

    def stop(self):
        subprocess.run(["postfix", "-c", self.dir, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def logs(self):
        try:
            with open(self.log, errors="replace") as fh:
                return fh.read()[-4000:]
        except OSError:
            return "(no postfix log)"

    def send(self, path):
        """swaks DATA from @path: (exit status, its output)."""
        with open(path, "rb") as fh:
            data = fh.read()
        if b"\n" not in data:
            # Old Mac line ends (CR only): no SMTP client sends such a file as it is
            # (swaks takes its one long line for a file name); its lines are lines.
            path = os.path.join(os.path.dirname(self.dir), "lf-" + os.path.basename(path))
            with open(path, "wb") as fh:
                fh.write(data.replace(b"\r", b"\n"))
        out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.port),
                              "--from", "fbl@feedback.example.net", "--to", RCPT,
                              "--data", "@" + path, "--suppress-data", "--timeout", "60"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors="replace", timeout=120)
        return out.returncode, out.stdout


def big_mail(work):
    """A mail over Postfix's limit (Debian's message_size_limit)."""
    path = os.path.join(work, "big.eml")
    line = b"X" * 76 + b"\r\n"
    with open(path, "wb") as fh:
        fh.write(b"From: big@example.net\r\nTo: %s\r\nSubject: too big\r\n\r\n" % RCPT.encode())
        for _ in range(POSTFIX_LIMIT // len(line) + 4000):
            fh.write(line)
    return path


def deliver_corpus(pf, files, mbox, db):
    """Send @files one by one; each must be stored within BOUND of its delivery."""
    latencies = []
    seen = {}
    for i, path in enumerate(files):
        rc, out = pf.send(path)
        check(rc == 0, "swaks exited %d for %s:\n%s\n%s" % (rc, path, out[-2000:], pf.logs()))
        # This mail's file: the one Maildir file not seen before.
        wait_for("mail %d (%s) in the Maildir" % (i, os.path.basename(path)),
                 lambda: len(maildir_files(mbox)) > len(seen), 30, step=0.02)
        new = {k: v for k, v in maildir_files(mbox).items() if k not in seen}
        check(len(new) == 1, "%d new files for one mail" % len(new))
        mail_id, (fpath, mtime) = next(iter(new.items()))
        seen[mail_id] = fpath
        wait_for("mail %d (%s) stored" % (i, os.path.basename(path)),
                 lambda: mail_id in stored(db), 30, step=0.02)
        took = stored_at(db)[mail_id] - mtime
        latencies.append(took)
        check(took < BOUND, "%s was stored %.2f s after its delivery (bound %.1f s)"
              % (os.path.basename(path), took, BOUND))
    return seen, latencies


def test_postfix(args):
    for tool in ("postfix", "postconf", "swaks"):
        need(shutil.which(tool) or os.path.exists("/usr/sbin/" + tool),
             "%s is not installed (Debian packages postfix and swaks)" % tool)
    need(os.getuid() == 0, "postfix -c DIR start needs root")
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    work = fresh_dir(args.workdir)
    os.chmod(work, 0o755)
    nobody = pwd.getpwnam("nobody")
    maildirs = os.path.join(mail_home(work, "nobody"), "vmail")
    os.makedirs(maildirs)
    os.chown(maildirs, nobody.pw_uid, nobody.pw_gid)
    mbox = make_maildir(os.path.join(maildirs, MAILBOX), nobody.pw_uid, nobody.pw_gid)
    db = Database(args.pg_conninfo_file, "t_peers_postfix")
    source, files = corpus_mails(args)
    check(files, "no mails to send")
    pf = Postfix(work, maildirs, nobody.pw_uid, nobody.pw_gid)
    fbl = Fbl(args, work, db, mbox, "postfix")
    pf.start()
    try:
        fbl.start()
        log(name_of(args), "postfix %s on 127.0.0.1:%d; sending %d mails of %s with swaks"
            % (run(["postconf", "-c", pf.dir, "-h", "mail_version"]).strip(), pf.port,
               len(files), source))
        t0 = time.monotonic()
        seen, latencies = deliver_corpus(pf, files, mbox, db)
        log(name_of(args), "%d mails delivered and stored in %.1f s; delivery -> commit: "
            "p50 %.3f s, p99 %.3f s, max %.3f s (bound %.1f s each; %d over 1 s)"
            % (len(seen), time.monotonic() - t0, percentile(latencies, 50),
               percentile(latencies, 99), max(latencies), BOUND,
               sum(1 for t in latencies if t > 1.0)))
        # Within a second as a rule: virtual(8) link()s its mails into new/, and a link
        # that waits for the settling second (FBL_WATCH_SETTLE_MS) must stay the exception.
        check(percentile(latencies, 50) < 1.0, "delivery -> commit p50 %.3f s: the mails "
              "Postfix links into new/ wait for the settling second" % percentile(latencies, 50))

        rc, out = pf.send(big_mail(work))
        check(rc != 0 and " 552 " in out.replace("\n", " ") + " ",
              "the mail over message_size_limit was not refused with 552 (swaks %d):\n%s"
              % (rc, out[-2000:]))
        log(name_of(args), "a mail of %d bytes refused at SMTP: swaks exit %d, %s"
            % (os.path.getsize(big_mail(work)), rc,
               [line for line in out.splitlines() if " 552 " in line + " "][0].strip()))
        time.sleep(1.0)
        rows = stored(db)
        check(set(rows) == set(seen), "fbl.mails holds %d mails, %d were delivered"
              % (len(rows), len(seen)))
        check(all(n == 1 for n in rows.values()), "a mail is stored twice")
        wait_for("new/ to empty", lambda: not os.listdir(os.path.join(mbox, "new")), 10)
    finally:
        if fbl.proc is not None:
            fbl.stop()
        pf.stop()
    log(name_of(args), "every mail stored once, new/ empty")


# --- Dovecot ---------------------------------------------------------------------------


USER = RCPT  # the LMTP recipient and the IMAP login: the passwd-file's user
PASSWORD = "peers-imap-pw"


class Dovecot:
    """Dovecot from a copy of Debian's /etc/dovecot: its authentication is the shipped
    passwd-file include instead of the system's; local.conf (which Debian's dovecot.conf
    includes) sets ports, paths and the certificate, and allows plaintext login."""

    def __init__(self, work, mbox, uid, gid):
        self.work = work
        self.etc = os.path.join(work, "dovecot")
        shutil.copytree("/etc/dovecot", self.etc, symlinks=True)
        # sun_path holds 107 bytes: long work directories get their sockets under /tmp.
        self.base = os.path.join(work, "run")
        if len(self.base) > 60:
            self.base = tempfile.mkdtemp(prefix="fbl-dovecot-")
        self.imap_port, imaps_port, self.lmtp_port = free_port(), free_port(), free_port()
        self.log = os.path.join(work, "dovecot.log")
        users = os.path.join(work, "users")
        with open(users, "w") as fh:
            fh.write("%s:{PLAIN}%s:%d:%d::%s::userdb_mail=maildir:%s\n"
                     % (USER, PASSWORD, uid, gid, os.path.dirname(mbox), mbox))
        self._edit("conf.d/10-auth.conf", "\n!include auth-system.conf.ext",
                   "\n#!include auth-system.conf.ext\n!include auth-passwdfile.conf.ext")
        self._edit("conf.d/auth-passwdfile.conf.ext", "/etc/dovecot/users", users)
        key, cert = os.path.join(work, "key.pem"), os.path.join(work, "cert.pem")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-keyout", key, "-out", cert])
        # Debian makes its certificate at install time, where ssl-cert can: ours is the test's.
        self._edit("conf.d/10-ssl.conf", "</etc/dovecot/private/dovecot.pem", "<" + cert)
        self._edit("conf.d/10-ssl.conf", "</etc/dovecot/private/dovecot.key", "<" + key)
        with open(os.path.join(self.etc, "local.conf"), "w") as fh:
            fh.write("""base_dir = %(base)s
state_dir = %(work)s/state
instance_name = fbl-peers-%(pid)d
log_path = %(log)s
listen = 127.0.0.1
disable_plaintext_auth = no
service imap-login {
  inet_listener imap {
    port = %(imap)d
  }
  inet_listener imaps {
    port = %(imaps)d
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %(lmtp)d
  }
}
""" % dict(base=self.base, work=work, pid=os.getpid(), log=self.log, cert=cert, key=key,
           imap=self.imap_port, imaps=imaps_port, lmtp=self.lmtp_port))
        self.conf = os.path.join(self.etc, "dovecot.conf")

    def _edit(self, name, old, new):
        edit_conf(self.etc, name, old, new)

    def start(self):
        start_dovecot(self.conf, self.work, self.imap_port, self.logs)

    def stop(self):
        subprocess.run(["dovecot", "-c", self.conf, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if self.base.startswith(tempfile.gettempdir()):
            shutil.rmtree(self.base, ignore_errors=True)

    def logs(self):
        try:
            with open(self.log, errors="replace") as fh:
                return fh.read()[-4000:]
        except OSError:
            return "(no dovecot log)"

    def imap(self):
        m = imaplib.IMAP4("127.0.0.1", self.imap_port)
        m.login(USER, PASSWORD)
        return m


class Selecter(threading.Thread):
    """An IMAP user who keeps the folder open: logs in, SELECTs INBOX again and again
    (each SELECT makes Dovecot move what is in new/ to cur/), logs out, logs in again."""

    def __init__(self, dovecot):
        super().__init__(daemon=True)
        self.dovecot = dovecot
        self.halt = threading.Event()
        self.logins = self.selects = 0
        self.error = None

    def run(self):
        try:
            while not self.halt.is_set():
                m = self.dovecot.imap()
                self.logins += 1
                for _ in range(25):
                    if self.halt.is_set():
                        break
                    typ, _ = m.select("INBOX")
                    check(typ == "OK", "SELECT INBOX: %s" % typ)
                    self.selects += 1
                    time.sleep(random.uniform(0.0, 0.03))
                m.logout()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(60)
        check(self.error is None, "the IMAP client failed: %r" % self.error)


def dovecot_mail(i, tag):
    """A distinct report mail: a sample with a header of its own on top."""
    names = sorted(glob.glob(os.path.join(SAMPLES, "arf-*.eml")))
    with open(names[i % len(names)], "rb") as fh:
        body = fh.read()
    return b"X-Peers-Test: %s-%d\r\n" % (tag.encode(), i) + body


def lmtp_deliver(dovecot, count, tag, pause):
    """@count mails over one LMTP session, @pause apart."""
    lmtp = smtplib.LMTP("127.0.0.1", dovecot.lmtp_port)
    try:
        for i in range(count):
            refused = lmtp.sendmail("fbl@feedback.example.net", [USER], dovecot_mail(i, tag))
            check(not refused, "LMTP refused mail %d: %s" % (i, refused))
            time.sleep(pause)
    finally:
        lmtp.quit()


def parse_lines(text):
    return [line for line in text.splitlines() if " stage=parse " in line]


def wait_stored(db, mbox, want_files, timeout):
    """Every mail file of the Maildir (there must be @want_files) is in fbl.mails."""
    def done():
        files = maildir_files(mbox)
        return len(files) >= want_files and set(files) <= set(stored(db))

    try:
        wait_for("every mail of the Maildir in fbl.mails", done, timeout, step=0.2)
    except Failure:
        files = maildir_files(mbox)
        lost = [os.path.relpath(p, mbox) for k, (p, _) in files.items() if k not in stored(db)]
        raise Failure("%d of %d mails never stored, e.g. %s" % (len(lost), len(files), lost[:5]))


def check_once(db, mbox):
    """fbl.mails holds exactly the Maildir's mails, each once."""
    rows = stored(db)
    files = maildir_files(mbox)
    doubled = [k for k, n in rows.items() if n != 1]
    check(not doubled, "%d mails stored more than once" % len(doubled))
    return rows, files


def users_act(dovecot):
    """Users read, flag and delete mails, all committed by now: Dovecot renames them in cur/."""
    m = dovecot.imap()
    typ, data = m.select("INBOX")
    total = int(data[0])
    m.fetch("1:%d" % min(total, 40), "(BODY[])")  # read: \Seen
    m.store("5:%d" % min(total, 60), "+FLAGS", "(\\Flagged)")
    m.store("1:10", "+FLAGS", "(\\Deleted)")
    m.expunge()
    typ, folders = m.list()
    m.logout()
    return total, [f.decode(errors="replace") for f in folders]


def count_cur_moved(mbox):
    """Files in cur/ that Dovecot, not fbl, moved there (fbl's have ':2,S', never ':2,')."""
    return sum(1 for n in os.listdir(os.path.join(mbox, "cur")) if n.endswith(":2,"))


def read_in_cur(text):
    return sum(1 for line in parse_lines(text) if " in=cur\"" in line)


def dovecot_first_run(args, dc, fbl, db, mbox, n):
    """@n mails over LMTP while a user keeps selecting the folder: the first two thirds
    while fbl runs (slowly: a backlog waits in new/, as while PostgreSQL is slow), the
    rest while fbl is stopped."""
    selecter = Selecter(dc)
    selecter.start()
    running, down = 2 * n // 3, n - 2 * n // 3
    try:
        lmtp_deliver(dc, running, "running", 0.002)
        wait_stored(db, mbox, running, 60)
        first = fbl.output()
        fbl.stop()
        lmtp_deliver(dc, down, "while-down", 0.002)
        wait_for("Dovecot to move new/ to cur/", lambda: not os.listdir(
            os.path.join(mbox, "new")), 30)
        fbl.start()
        wait_stored(db, mbox, n, 60)
    finally:
        selecter.stop()
    rows, files = check_once(db, mbox)
    check(len(rows) == n and set(rows) == set(files),
          "fbl.mails holds %d mails, the Maildir %d" % (len(rows), len(files)))
    second = fbl.output()
    parsed = len(parse_lines(first)) + len(parse_lines(second))
    check(parsed == n, "%d mails parsed %d times" % (n, parsed))
    check(read_in_cur(first) > 0, "no mail was read in cur/ while fbl ran: Dovecot moved none "
          "before fbl took it (%d SELECTs)" % selecter.selects)
    check(read_in_cur(second) == down, "after the restart %d mails read in cur/, want %d"
          % (read_in_cur(second), down))
    moved = count_cur_moved(mbox)
    log(name_of(args), "%d mails over LMTP, %d IMAP logins, %d SELECTs: %d stored, each once, "
        "each parsed once; while fbl ran %d of %d were read in cur/ (Dovecot moved them "
        "first), and all %d delivered while it was stopped; %d were moved by Dovecot while "
        "in flight; cur/ holds %d files renamed by Dovecot, %d by fbl"
        % (n, selecter.logins, selecter.selects, len(rows), read_in_cur(first), running, down,
           moved - read_in_cur(first) - read_in_cur(second), moved,
           len(os.listdir(os.path.join(mbox, "cur"))) - moved))


def dovecot_restart(args, dc, fbl, db, mbox, n, more):
    """Users act on the committed mails; fbl restarts: nothing is read again, new mail is."""
    total, folders = users_act(dc)
    check(not any("fbl" in f for f in folders), "IMAP LIST shows fbl's index: %s" % folders)
    fbl.stop()
    fbl.start()
    lmtp_deliver(dc, more, "after-restart", 0.0)
    m = dc.imap()
    m.select("INBOX")  # moves them to cur/, maybe before fbl takes them
    m.logout()
    wait_stored(db, mbox, total - 10 + more, 30)
    time.sleep(2.0)  # a rescan's worth: nothing more may come
    rows, _ = check_once(db, mbox)
    parsed = parse_lines(fbl.output())
    check(len(rows) == n + more, "fbl.mails holds %d mails, want %d" % (len(rows), n + more))
    check(len(parsed) == more, "after the restart %d mails parsed, want the %d new ones:\n%s"
          % (len(parsed), more, "\n".join(parsed[:5])))
    log(name_of(args), "users read 40, flagged 56 and deleted 10 mails; fbl restarted: the %d "
        "new mails stored, nothing read again, %d rows; LIST: %s"
        % (more, len(rows), ", ".join(folders)))


def dovecot_legacy(args, fbl, db, mbox):
    """A cur/ left by an fbl without the index is not read again (it is taken as committed)."""
    fbl.stop()
    index = os.path.join(mbox, ".fbl-committed")
    os.unlink(index)
    before = len(stored(db))
    fbl.start()
    time.sleep(2.0)
    text = fbl.output()
    check(not parse_lines(text), "cur/ of an older fbl read again:\n%s" % text[-2000:])
    check(".fbl-committed made: the" in text, "no line says cur/ was taken as committed")
    check(os.path.exists(index) and len(stored(db)) == before, "the index is missing")
    log(name_of(args), "no index: %s" % [line for line in text.splitlines()
                                         if ".fbl-committed made" in line][0].split("msg=")[-1])


def test_dovecot(args):
    for tool in ("dovecot", "doveconf", "openssl"):
        need(shutil.which(tool) or os.path.exists("/usr/sbin/" + tool),
             "%s is not installed (Debian packages dovecot-core, dovecot-imapd, "
             "dovecot-lmtpd, openssl)" % tool)
    need(os.path.exists("/usr/lib/dovecot/lmtp") and os.path.exists("/usr/lib/dovecot/imap"),
         "dovecot-lmtpd or dovecot-imapd is not installed")
    need(os.getuid() == 0, "dovecot needs root to start")
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    work = fresh_dir(args.workdir)
    os.chmod(work, 0o755)
    nobody = pwd.getpwnam("nobody")
    home = os.path.join(mail_home(work, "nobody"), "home")
    make_maildir(home, nobody.pw_uid, nobody.pw_gid)
    mbox = make_maildir(os.path.join(home, "Maildir"), nobody.pw_uid, nobody.pw_gid)
    db = Database(args.pg_conninfo_file, "t_peers_dovecot")
    dc = Dovecot(work, mbox, nobody.pw_uid, nobody.pw_gid)
    # A slow store (4 mails in flight, batches held 250 ms): a backlog waits in new/.
    fbl = Fbl(args, work, db, mbox, "dovecot",
              "window = 4\n\n[sink]\nbatch_max_wait = 250ms\nbatch_idle = 250ms\n")
    dc.start()
    try:
        log(name_of(args), "dovecot %s: IMAP on 127.0.0.1:%d, LMTP on 127.0.0.1:%d"
            % (run(["dovecot", "--version"]).strip(), dc.imap_port, dc.lmtp_port))
        fbl.start()
        dovecot_first_run(args, dc, fbl, db, mbox, 300)
        dovecot_restart(args, dc, fbl, db, mbox, 300, 20)
        dovecot_legacy(args, fbl, db, mbox)
    finally:
        if fbl.proc is not None and fbl.proc.running():
            fbl.stop()
        dc.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("postfix", "dovecot"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--pg-conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--corpus", help="the shared real corpus (CMake's FBL_CORPUS_DIR)")
    ap.add_argument("--samples", default=SAMPLES)
    args = ap.parse_args()
    fn = {"postfix": test_postfix, "dovecot": test_dovecot}[args.mode]

    def body():
        try:
            fn(args)
        except Skip as e:
            log(name_of(args), "SKIP: %s" % e)
            sys.exit(SKIP)

    run_main(name_of(args), body)


if __name__ == "__main__":
    main()
