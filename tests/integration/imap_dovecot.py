#!/usr/bin/python3
"""fbl's IMAP client module (fbl/imap.h, driven by imap_probe) against a real Dovecot.

usage: imap_dovecot.py --probe BIN --workdir DIR [--corpus DIR]

Dovecot is started by the test from a copy of Debian's /etc/dovecot (only ports, paths,
the certificate, a passwd-file user and the hierarchy separator '/' changed), listening
on 127.0.0.1 and 127.0.0.2 with imaps and imap (+STARTTLS). Its certificate is signed by a
throwaway CA the test makes with the openssl CLI, for DNS:localhost and IP:127.0.0.1 only.
Dovecot writes the raw IMAP of every session (rawlog_dir), so the test sees which
commands the module really sent. Mails are appended with imaplib over TLS, each with an
INTERNALDATE of its own (odd time zones included): generated ones, and real corpus mails
from --corpus when that directory exists (read in place, never copied).

Cases, in order:
  fetch      every mail fetched once, its bytes (SHA-256) those Dovecot serves and, for
             generated mails, those appended; its INTERNALDATE right; then INBOX empty
             and fbl/done (created by the module) holding them all; UID MOVE sent
  idle       a mail appended while the probe idles is fetched within 1 s
  starttls   imap:// with --starttls fetches over STARTTLS
  large      a mail over --max-fetch: truncated, only the header block and 64 KiB of
             the body fetched, and those bytes are the mail's prefix
  errors     wrong password -> auth (exit 77); a certificate from another CA -> tls (69);
             the right CA but another host name (127.0.0.2) -> tls (69); a folder that
             does not exist -> no_folder (78); a persisted UIDVALIDITY that is not the
             folder's -> uidvalidity_changed
  restart    Dovecot stopped while the probe idles, its imap processes killed (a master
             restart alone leaves an idling session alive) and started again: the probe
             reconnects and fetches the mail appended after the restart
  noidle     Dovecot without IDLE in imap_capability: the probe polls (no IDLE sent) and
             a new mail arrives within the poll interval
  nomove     Dovecot without MOVE: UID COPY, UID STORE and UID EXPUNGE move the mails,
             no MOVE is sent

Exit 77 (skip) when dovecot or openssl is missing, or without root (Dovecot needs it).
Standard library only.
"""
import argparse
import base64
import email.utils
import glob
import hashlib
import hmac
import imaplib
import json
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from ops_common import (Failure, Skip, check, edit_conf, free_port, fresh_dir, log, run,
                        run_main, start_dovecot)

NAME = "peers imap-dovecot"
SKIP = 77
USER = "spamalert@fbl.test"
PASSWORD = "imap-test-pw"
DONE = "fbl/done"
IDLE_BOUND = 1.0  # seconds from APPEND to the probe's fetch, while it idles
POLL_MS = 1500


def sha(data):
    return hashlib.sha256(data).hexdigest()


# --- certificates ----------------------------------------------------------------------


def make_ca(work, name):
    key, pem = os.path.join(work, name + ".key"), os.path.join(work, name + ".pem")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=fbl test %s" % name, "-keyout", key, "-out", pem,
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign"])
    return key, pem


def make_server_cert(work, ca_key, ca_pem):
    key, csr = os.path.join(work, "server.key"), os.path.join(work, "server.csr")
    pem, ext = os.path.join(work, "server.pem"), os.path.join(work, "server.ext")
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", key, "-out", csr])
    with open(ext, "w") as fh:
        fh.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                 "extendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", pem])
    return key, pem


# --- Dovecot ---------------------------------------------------------------------------


class Dovecot:
    """Debian's configuration, copied; local.conf sets ports, paths, certificate, rawlog."""

    def __init__(self, work, home, cert, key, uid, gid):
        self.work = work
        self.etc = os.path.join(work, "dovecot")
        shutil.copytree("/etc/dovecot", self.etc, symlinks=True)
        self.base = os.path.join(work, "run")
        if len(self.base) > 60:  # sun_path holds 107 bytes
            self.base = tempfile.mkdtemp(prefix="fbl-imap-")
        self.imap_port, self.imaps_port = free_port(), free_port()
        self.log = os.path.join(work, "dovecot.log")
        self.rawlog = os.path.join(home, "rawlog")
        os.makedirs(self.rawlog)
        os.chown(self.rawlog, uid, gid)
        users = os.path.join(work, "users")
        with open(users, "w") as fh:
            fh.write("%s:{PLAIN}%s:%d:%d::%s::userdb_mail=maildir:%s/Maildir\n"
                     % (USER, PASSWORD, uid, gid, home, home))
        self._edit("conf.d/10-auth.conf", "\n!include auth-system.conf.ext",
                   "\n#!include auth-system.conf.ext\n!include auth-passwdfile.conf.ext")
        self._edit("conf.d/auth-passwdfile.conf.ext", "/etc/dovecot/users", users)
        self._edit("conf.d/10-mail.conf", "  #separator = \n", "  separator = /\n")
        self._edit("conf.d/10-ssl.conf", "</etc/dovecot/private/dovecot.pem", "<" + cert)
        self._edit("conf.d/10-ssl.conf", "</etc/dovecot/private/dovecot.key", "<" + key)
        self.conf = os.path.join(self.etc, "dovecot.conf")
        self.capability = None
        self.extra = ""  # more of local.conf (e.g. an auth listener for Postfix's SASL)

    def _edit(self, name, old, new):
        edit_conf(self.etc, name, old, new)

    def enable_xoauth2(self):
        """XOAUTH2 as Dovecot checks it with no other server: its oauth2 passdb validating
        JWTs itself (introspection_mode = local) with an HS256 key read from an fs:posix
        dict; the passwd-file still serves the user. Before start(). Returns the key, to
        sign tokens with jwt()."""
        key = os.urandom(32)
        keys = os.path.join(self.work, "jwt-keys")
        # Dovecot looks up shared/<azp>/<alg>/<kid>; a token without azp or kid: "default".
        path = os.path.join(keys, "default", "HS256")
        os.makedirs(path)
        with open(os.path.join(path, "default"), "w") as fh:
            fh.write(base64.b64encode(key).decode())
        for d, _, files in os.walk(keys):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        ext = os.path.join(self.etc, "dovecot-oauth2.conf.ext")
        with open(ext, "w") as fh:
            fh.write("introspection_mode = local\nlocal_validation_key_dict = "
                     "fs:posix:prefix=%s/\nusername_attribute = email\n" % keys)
        self._edit("conf.d/10-auth.conf", "\nauth_mechanisms = plain\n",
                   "\nauth_mechanisms = plain xoauth2\n")
        self._edit("conf.d/10-auth.conf", "\n#!include auth-system.conf.ext",
                   "\npassdb {\n  driver = oauth2\n  mechanisms = xoauth2\n  args = %s\n}\n"
                   "#!include auth-system.conf.ext" % ext)
        return key

    def _local(self):
        caps = ("protocol imap {\n  imap_capability = %s\n}\n" % self.capability
                if self.capability else "")
        with open(os.path.join(self.etc, "local.conf"), "w") as fh:
            fh.write("""base_dir = %(base)s
state_dir = %(work)s/state
instance_name = fbl-imap-%(pid)d
log_path = %(log)s
listen = 127.0.0.1, 127.0.0.2
disable_plaintext_auth = no
rawlog_dir = %(rawlog)s
service imap-login {
  inet_listener imap {
    port = %(imap)d
  }
  inet_listener imaps {
    port = %(imaps)d
  }
}
%(caps)s%(extra)s""" % dict(base=self.base, work=self.work, pid=os.getpid(), log=self.log,
                   rawlog=self.rawlog, imap=self.imap_port, imaps=self.imaps_port,
                   caps=caps, extra=self.extra))

    def start(self, capability=None):
        self.capability = capability
        self._local()
        start_dovecot(self.conf, self.work, self.imap_port, self.logs)

    def stop(self):
        subprocess.run(["dovecot", "-c", self.conf, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.imap_port), timeout=1).close()
                time.sleep(0.1)
            except OSError:
                return
        raise Failure("dovecot still answers after stop")

    def kill_sessions(self):
        """SIGKILL this instance's imap processes: a master restart leaves an idling session
        alive, a host's restart or a crash does not."""
        prefix = ("fbl-imap-%d/imap" % os.getpid()).encode()
        killed = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    cmd = fh.read()
            except OSError:
                continue
            if prefix in cmd and b"imap-login" not in cmd:
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
        return killed

    def cleanup(self):
        self.stop()
        if self.base.startswith(tempfile.gettempdir()):
            shutil.rmtree(self.base, ignore_errors=True)

    def logs(self):
        try:
            with open(self.log, errors="replace") as fh:
                return fh.read()[-4000:]
        except OSError:
            return "(no dovecot log)"

    def logs_all(self):
        try:
            with open(self.log, errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def client(self, ca_pem):
        ctx = ssl.create_default_context(cafile=ca_pem)
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=ctx)
        m.login(USER, PASSWORD)
        return m

    def raw_commands(self):
        """Every command clients sent since the last call (rawlog .in files), upper case."""
        text = []
        for path in sorted(glob.glob(os.path.join(self.rawlog, "*.in"))):
            with open(path, "rb") as fh:
                text.append(fh.read().decode("latin-1"))
            os.unlink(path)
        for path in glob.glob(os.path.join(self.rawlog, "*.out")):
            os.unlink(path)
        return "\n".join(text).upper()


# --- mails -----------------------------------------------------------------------------

ZONES = ["+0000", "+0130", "-0700", "+1245", "-0330"]


def jwt(key, user, lifetime=3600):
    """An HS256 JWT for @user (the email claim Dovecot reads), valid @lifetime seconds from
    now (negative: expired)."""
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": user, "email": user, "iat": now - 60, "nbf": now - 60,
                             "exp": now + lifetime}).encode())
    sig = b64(hmac.new(key, ("%s.%s" % (head, claims)).encode(), hashlib.sha256).digest())
    return "%s.%s.%s" % (head, claims, sig)


def crlf(data):
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def generated(i, tag, body_bytes=0):
    body = ("Report %d (%s).\n" % (i, tag)) + ("x" * 75 + "\n") * (body_bytes // 76)
    return ("From: Reporter %d <r%d@example.com>\nTo: spamalert@example.net\n"
            "Subject: spam report %s %d\nMessage-ID: <%s-%d@example.com>\n"
            "Date: Mon, 4 Mar 2024 10:00:00 +0000\n\n%s" % (i, i, tag, i, tag, i, body)
            ).encode()


def corpus_files(corpus, limit):
    if not corpus or not os.path.isdir(corpus):
        return []
    files = sorted(p for p in glob.glob(os.path.join(corpus, "**", "*"), recursive=True)
                   if os.path.isfile(p) and os.path.getsize(p) < 2_000_000)
    out = []
    for p in files:
        with open(p, "rb") as fh:
            data = fh.read()
        if b"\0" not in data and b"\n\n" in data.replace(b"\r\n", b"\n"):
            out.append(data)
        if len(out) >= limit:
            break
    return out


def internaldate(i):
    """An INTERNALDATE in IMAP's form, and the Unix time it names."""
    zone = ZONES[i % len(ZONES)]
    day, hour, minute, sec = 1 + i % 27, (3 + i) % 24, (7 * i) % 60, (13 * i) % 60
    text = "%02d-Feb-2024 %02d:%02d:%02d %s" % (day, hour, minute, sec, zone)
    tup = email.utils.parsedate_tz("%d Feb 2024 %02d:%02d:%02d %s" % (day, hour, minute,
                                                                        sec, zone))
    return '"%s"' % text, email.utils.mktime_tz(tup)


def append(m, folder, data, i):
    date, unix = internaldate(i)
    typ, _ = m.append(folder, None, date, data)
    check(typ == "OK", "APPEND failed: %s" % typ)
    return unix


def served_bytes(m, folder):
    """{sha256: bytes} of every mail in @folder as Dovecot serves it."""
    m.select(folder, readonly=True)
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
    check(typ == "OK", "FETCH in %s failed" % folder)
    out = {}
    for item in data:
        if isinstance(item, tuple):
            out[sha(item[1])] = item[1]
    m.close()
    return out


def count(m, folder):
    typ, data = m.status(folder, "(MESSAGES)")
    check(typ == "OK", "STATUS %s failed: %s" % (folder, data))
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))


# --- the probe -------------------------------------------------------------------------


class Probe:
    """imap_probe running, its JSON lines read as they come."""

    def __init__(self, args, dc, ca_pem, extra=(), url=None, expect=0, deadline=60):
        self.lines = queue.Queue()
        self.all = []
        argv = [args.probe, "--url", url or "imaps://127.0.0.1:%d/INBOX" % dc.imaps_port,
                "--user", USER, "--password-file", args.password_file, "--ca-file", ca_pem,
                "--done-folder", DONE, "--poll-ms", str(POLL_MS), "--max-backoff-ms", "1000",
                "--expect", str(expect), "--deadline-s", str(deadline)] + list(extra)
        self.stderr = open(os.path.join(args.workdir, "probe.err"), "a")
        # unbuffered: each line is read as soon as the probe writes it
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr, bufsize=0)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = {"unreadable": raw.decode(errors="replace")}
            obj["_seen"] = time.time()
            self.all.append(obj)
            self.lines.put(obj)
        self.lines.put(None)

    def next(self, timeout, what):
        try:
            obj = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise Failure("no probe line within %ss while waiting for %s; so far: %s"
                          % (timeout, what, self.all[-5:]))
        if obj is None:
            raise Failure("the probe ended (exit %s) while waiting for %s; lines: %s"
                          % (self.proc.wait(), what, self.all[-5:]))
        return obj

    def until(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while True:
            obj = self.next(max(0.05, end - time.monotonic()), what)
            if pred(obj):
                return obj
            check(time.monotonic() < end, "timed out waiting for %s; last: %s" % (what, obj))

    def mails(self):
        return [o for o in self.all if "uid" in o]

    def finish(self, timeout=30):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure("the probe did not end within %ss; lines: %s" % (timeout,
                                                                           self.all[-5:]))
        time.sleep(0.1)  # the reader thread drains the pipe
        self.stderr.close()
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.finish()


# --- cases -----------------------------------------------------------------------------


def case_fetch(args, dc, ca):
    m = dc.client(ca)
    sent, unix = [], {}
    mails = [generated(i, "fetch") for i in range(20)] + corpus_files(args.corpus, 20)
    for i, data in enumerate(mails):
        unix[sha(crlf(data))] = append(m, "INBOX", data, i)
        sent.append(crlf(data))
    served = served_bytes(m, "INBOX")
    check(len(served) == len(set(map(sha, sent))) or len(mails) > 20,
          "Dovecot serves %d distinct generated mails, %d appended" % (len(served), len(sent)))
    for data in sent[:20]:
        check(sha(data) in served, "Dovecot changed a generated mail's bytes")
    m.logout()
    dc.raw_commands()
    p = Probe(args, dc, ca, expect=len(mails))
    rc = p.finish(60)
    check(rc == 0, "probe exit %d; lines: %s" % (rc, p.all[-5:]))
    got = p.mails()
    check(len(got) == len(mails), "fetched %d mails, appended %d" % (len(got), len(mails)))
    check(len({g["uid"] for g in got}) == len(got), "a UID fetched twice")
    check({g["sha256"] for g in got} == set(served), "the fetched bytes are not the served ones")
    for g in got:
        check(not g["truncated"], "uid %d truncated" % g["uid"])
        if g["sha256"] in unix:
            check(g["internaldate"] == unix[g["sha256"]], "uid %d internaldate %d, want %d"
                  % (g["uid"], g["internaldate"], unix[g["sha256"]]))
    m = dc.client(ca)
    check(count(m, "INBOX") == 0, "INBOX still holds %d mails" % count(m, "INBOX"))
    done = served_bytes(m, DONE)
    check(set(done) == set(served), "%s holds %d mails, want the %d fetched"
          % (DONE, len(done), len(served)))
    m.logout()
    raw = dc.raw_commands()
    check("UID MOVE" in raw and "CREATE" in raw, "no UID MOVE or CREATE sent:\n%s" % raw[-2000:])
    log(NAME, "fetch: %d mails (%d from the corpus) fetched once with their bytes and "
        "INTERNALDATE, moved with UID MOVE to %s (created)"
        % (len(got), len(mails) - 20, DONE))


def await_new_mail(p, dc, ca, tag, bound, i=900):
    p.until(lambda o: o.get("event") == "waiting", 30, "the probe to wait")
    time.sleep(0.3)  # into IDLE (or the poll's sleep)
    m = dc.client(ca)
    data = crlf(generated(i, tag))
    append(m, "INBOX", data, i)
    appended = time.time()
    m.logout()
    got = p.until(lambda o: "uid" in o, bound + 5, "the new mail")
    lag = got["fetched_at"] - appended
    check(got["sha256"] == sha(data), "the new mail's bytes differ")
    check(lag < bound, "%s: the new mail fetched %.3f s after its APPEND, bound %.1f s"
          % (tag, lag, bound))
    return lag


def case_idle(args, dc, ca):
    p = Probe(args, dc, ca)
    lags = [await_new_mail(p, dc, ca, "idle", IDLE_BOUND, 900 + k) for k in range(3)]
    p.stop()
    check(p.all[0].get("idle") is True, "Dovecot offers IDLE, the probe did not see it")
    check("IDLE" in dc.raw_commands(), "the probe sent no IDLE")
    log(NAME, "idle: 3 mails appended while the probe idled, fetched after %s s"
        % ", ".join("%.3f" % x for x in lags))


def case_starttls(args, dc, ca):
    m = dc.client(ca)
    data = crlf(generated(950, "starttls"))
    append(m, "INBOX", data, 950)
    m.logout()
    mark = len(dc.logs_all())
    p = Probe(args, dc, ca, url="imap://localhost:%d/INBOX" % dc.imap_port,
              extra=["--starttls"], expect=1)
    rc = p.finish()
    check(rc == 0 and [g["sha256"] for g in p.mails()] == [sha(data)],
          "STARTTLS: exit %d, lines %s" % (rc, p.all))
    # on the plain port Dovecot calls a login "TLS" only after STARTTLS (else "secured")
    logins = [ln for ln in dc.logs_all()[mark:].splitlines() if "Login: user=<%s>" % USER in ln]
    check(len(logins) == 1 and ", TLS," in logins[0], "no login over STARTTLS: %s" % logins)
    log(NAME, "starttls: imap://localhost with STARTTLS, certificate checked for localhost")


def case_large(args, dc, ca):
    m = dc.client(ca)
    data = crlf(generated(960, "large", 300_000))
    append(m, "INBOX", data, 960)
    m.logout()
    p = Probe(args, dc, ca, extra=["--max-fetch", "100000"], expect=1)
    rc = p.finish()
    got = p.mails()
    check(rc == 0 and len(got) == 1, "large: exit %d, lines %s" % (rc, p.all))
    g = got[0]
    head = data[:data.index(b"\r\n\r\n") + 4]
    want = data[:len(head) + 64 * 1024]
    check(g["truncated"] and g["size"] == len(data), "large: not marked truncated: %s" % g)
    check(g["bytes"] == len(want) and g["sha256"] == sha(want),
          "large: fetched %d bytes, want the header (%d) + 64 KiB = %d, the mail's prefix"
          % (g["bytes"], len(head), len(want)))
    log(NAME, "large: a %d-byte mail over --max-fetch 100000: %d bytes fetched (header + "
        "64 KiB), marked truncated" % (len(data), g["bytes"]))


def expect_error(args, dc, ca, what, code, status, **kw):
    p = Probe(args, dc, ca, deadline=30, **kw)
    rc = p.finish()
    errs = [o for o in p.all if "error" in o]
    check(rc == status and errs and errs[0]["error"] == code,
          "%s: want error %s and exit %d, got exit %d, lines %s" % (what, code, status, rc,
                                                                    p.all))
    check(not p.mails(), "%s: mails fetched anyway" % what)
    return errs[0]["message"]


def case_errors(args, dc, ca, other_ca):
    good = args.password_file
    bad = os.path.join(args.workdir, "bad-password")
    with open(bad, "w") as fh:
        fh.write("not-the-password\n")
    os.chmod(bad, 0o600)
    args.password_file = bad
    msg = expect_error(args, dc, ca, "wrong password", "auth", 77)
    args.password_file = good
    msgs = [msg]
    for what, kw in (("untrusted CA", dict(ca=other_ca)),
                     ("wrong name", dict(ca=ca, url="imaps://127.0.0.2:%d/INBOX" % dc.imaps_port))):
        mark = len(dc.logs_all())
        msgs.append(expect_error(args, dc, kw.pop("ca"), what, "tls", 69, **kw))
        # the certificate is judged before any credential leaves: Dovecot saw no login
        time.sleep(0.5)
        seen = dc.logs_all()[mark:]
        check("no auth attempts" in seen and "auth failed" not in seen,
              "%s: Dovecot's log does not show a connection without login:\n%s" % (what, seen))
    msgs.append(expect_error(args, dc, ca, "missing folder", "no_folder", 78,
                             url="imaps://127.0.0.1:%d/Nope" % dc.imaps_port))
    # a UIDVALIDITY persisted from before the folder was renumbered
    msgs.append(expect_error(args, dc, ca, "uidvalidity", "uidvalidity_changed", 69,
                             extra=["--uidvalidity", "12345"]))
    log(NAME, "errors: %s" % " | ".join(msgs))


def case_restart(args, dc, ca):
    p = Probe(args, dc, ca, deadline=90)
    p.until(lambda o: o.get("event") == "waiting", 30, "the probe to idle")
    time.sleep(0.3)
    dc.stop()
    killed = dc.kill_sessions()
    check(killed >= 1, "restart: no imap process of the probe's session found")
    time.sleep(1.0)
    dc.start()
    m = dc.client(ca)
    data = crlf(generated(970, "restart"))
    append(m, "INBOX", data, 970)
    m.logout()
    got = p.until(lambda o: "uid" in o, 30, "the mail appended after the restart")
    p.stop()
    events = [o.get("event") for o in p.all]
    check(got["sha256"] == sha(data), "restart: wrong mail")
    check("dropped" in events and events.count("connected") >= 2,
          "restart: no drop and reconnect seen: %s" % events)
    log(NAME, "restart: Dovecot stopped, its sessions killed, started again while the probe "
        "idled; it reconnected and fetched the new mail (%s)" % " ".join(e for e in events if e))


def case_noidle(args, dc, ca):
    dc.stop()
    dc.kill_sessions()  # sessions left from before write their rawlog late
    dc.start("IMAP4rev1 LITERAL+ UIDPLUS MOVE")
    dc.raw_commands()
    p = Probe(args, dc, ca)
    lag = await_new_mail(p, dc, ca, "noidle", POLL_MS / 1000 + 1.0, 980)
    p.stop()
    check(p.all[0].get("idle") is False, "imap_capability without IDLE, probe saw IDLE")
    raw = dc.raw_commands()
    check(" IDLE" not in raw and " NOOP" in raw,
          "without IDLE the probe sent IDLE or no NOOP:\n%s" % raw[-3000:])
    log(NAME, "noidle: polled every %d ms (NOOP, no IDLE); the new mail after %.3f s"
        % (POLL_MS, lag))


def case_nomove(args, dc, ca):
    dc.stop()
    dc.kill_sessions()  # sessions left from before write their rawlog late
    dc.start("IMAP4rev1 LITERAL+ UIDPLUS IDLE")
    m = dc.client(ca)
    before = count(m, DONE)
    mails = [crlf(generated(990 + i, "nomove")) for i in range(5)]
    for i, data in enumerate(mails):
        append(m, "INBOX", data, 990 + i)
    m.logout()
    dc.raw_commands()
    p = Probe(args, dc, ca, expect=len(mails))
    rc = p.finish()
    check(rc == 0 and len(p.mails()) == 5, "nomove: exit %d, lines %s" % (rc, p.all))
    check(p.all[0].get("move") is False, "imap_capability without MOVE, probe saw MOVE")
    raw = dc.raw_commands()
    check("UID COPY" in raw and "UID STORE" in raw and "UID EXPUNGE" in raw
          and "MOVE" not in raw, "nomove: not COPY/STORE/UID EXPUNGE:\n%s" % raw[-2000:])
    m = dc.client(ca)
    check(count(m, "INBOX") == 0, "nomove: INBOX not empty")
    check(count(m, DONE) == before + 5, "nomove: %s holds %d, want %d"
          % (DONE, count(m, DONE), before + 5))
    m.logout()
    log(NAME, "nomove: UID COPY + UID STORE \\Deleted + UID EXPUNGE moved 5 mails")


def test(args):
    for tool in ("dovecot", "openssl"):
        if not (shutil.which(tool) or os.path.exists("/usr/sbin/" + tool)):
            raise Skip("%s is not installed (Debian packages dovecot-core, dovecot-imapd, "
                       "openssl)" % tool)
    if not os.path.exists("/usr/lib/dovecot/imap"):
        raise Skip("dovecot-imapd is not installed")
    if os.getuid() != 0:
        raise Skip("dovecot needs root to start")
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    work = fresh_dir(args.workdir)
    os.chmod(work, 0o755)
    nobody = pwd.getpwnam("nobody")
    home = tempfile.mkdtemp(prefix="fbl-imap-home-")
    os.chmod(home, 0o755)
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    ca_key, ca = make_ca(work, "ca")
    _, other_ca = make_ca(work, "other-ca")
    key, cert = make_server_cert(work, ca_key, ca)
    args.password_file = os.path.join(work, "password")
    with open(args.password_file, "w") as fh:
        fh.write(PASSWORD + "\n")
    os.chmod(args.password_file, 0o600)
    dc = Dovecot(work, home, cert, key, nobody.pw_uid, nobody.pw_gid)
    dc.start()
    try:
        log(NAME, "dovecot %s: imaps on 127.0.0.1:%d, imap on :%d"
            % (run(["dovecot", "--version"]).strip(), dc.imaps_port, dc.imap_port))
        case_fetch(args, dc, ca)
        case_idle(args, dc, ca)
        case_starttls(args, dc, ca)
        case_large(args, dc, ca)
        case_errors(args, dc, ca, other_ca)
        case_restart(args, dc, ca)
        case_noidle(args, dc, ca)
        case_nomove(args, dc, ca)
    except Failure as e:
        raise Failure("%s\n--- dovecot log ---\n%s" % (e, dc.logs()))
    finally:
        dc.cleanup()
        shutil.rmtree(home, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--corpus", help="real report mails (CMake's FBL_CORPUS_DIR), optional")
    args = ap.parse_args()

    def body():
        try:
            test(args)
        except Skip as e:
            log(NAME, "SKIP: %s" % e)
            sys.exit(SKIP)

    run_main(NAME, body)


if __name__ == "__main__":
    main()
