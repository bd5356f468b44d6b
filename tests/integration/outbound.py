#!/usr/bin/python3
"""Outbound abuse: complaints about mail our own users sent, with the real programs.

usage: outbound.py store|postfix --fbl BIN --pg-conninfo-file FILE --workdir DIR

Every mode writes real ARF reports whose reported message carries our
submission server's Received with "(Authenticated sender: USER)" (Postfix's
smtpd_sasl_authenticated_header), stores them through `fbl run --once` into a
database of its own in the "pg" fixture's cluster ([local] networks and
domains in the config), and reads fbl.outbound_accounts through the commands.

store    the table of cases: an account over min_complaints without volumes
         (act), one under (warn), accounts with loaded volumes (`fbl outbound
         import-volumes`, CSV with a header and a day column) at 1 % (act),
         0.2 % (warn) and 0.02 % (ok); one reporter's five reports (five
         complaints, one reporter); an account found through DKIM d= alone (its
         envelope sender); a not-spam report (not counted); mail that is not
         ours (absent); an account with a '#' (locked, left out of the table).
         `fbl export accounts` must write exactly the locked ones, in both
         formats; `fbl outbound clear` (audited: db user, OS user, reason) takes
         one out; one complaint after the clear warns, three lock it again.
         fbl_security reads the names; fbl_analyst may not read
         fbl.outbound_accounts, and fbl.outbound_account_keys, fbl.outbound_ips
         and `fbl report` show it no address. `fbl reparse` marks reports
         stored before [local] was set. Bad CSV is exit 65, usage errors 64.
postfix  a Postfix of its own (peers.py's) with check_sender_access on the
         exported, postmapped postfix-sender table: swaks MAIL FROM the locked
         account is refused with 554 5.7.1 and lock_text; an unlocked account
         is accepted; after `fbl outbound clear` and a re-export (postmap,
         postfix reload) the cleared account is accepted. The same Postfix
         authenticates with SASL against a Dovecot of its own (imap_dovecot.py's,
         Postfix's smtpd_sasl_type = dovecot over the auth service's inet
         listener) and has check_sasl_access on the exported postfix-sasl table:
         the locked login is refused with lock_text after AUTH, and accepted
         after its clear and a re-export (skipped, said so, without dovecot).

Exit 77 (skip) when postfix/swaks are missing or (postfix) the test is not root.
Standard library only.
"""
import argparse
import os
import pwd
import shutil
import subprocess
import sys
import time

from ops_common import Database, Failure, Skip, check, fresh_dir, log, need, run, run_main

SKIP = 77
NAME = "outbound"
LOCK = "CHTR 301: account locked after spam complaints; contact abuse@example.com"


_n = [0]


def arf(reporter, account, ip="192.0.2.25", from_addr=None, dkim=None, feedback="abuse"):
    """An ARF report by @reporter about a mail @account sent through our submission server."""
    _n[0] += 1
    i = _n[0]
    rdom = reporter.split("@")[1]
    from_addr = from_addr or (account if "@" in account else account + "@example.com")
    sig = ""
    if dkim:
        sig = "DKIM-Signature: v=1; a=rsa-sha256; d=%s; s=s1; h=from; bh=x; b=y\n" % dkim
    return ("""Return-Path: <%(rep)s>
From: Feedback <%(rep)s>
To: abuse@example.com
Subject: Complaint %(i)d
Date: Mon, 07 Dec 2026 08:00:00 +0000
Message-ID: <arf-%(i)d@%(rdom)s>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b%(i)d"

--b%(i)d
Content-Type: text/plain; charset=us-ascii

A complaint about mail from your network.

--b%(i)d
Content-Type: message/feedback-report

Feedback-Type: %(fb)s
User-Agent: obtest/1
Version: 1
Source-IP: %(ip)s

--b%(i)d
Content-Type: message/rfc822

Received: from smtp.example.com (smtp.example.com [%(ip)s]) by mx.%(rdom)s with ESMTPS id q%(i)d;
 Mon, 07 Dec 2026 07:00:01 +0000
Received: from [10.1.2.3] (unknown [198.51.100.%(o)d])
 (Authenticated sender: %(acct)s)
 by smtp.example.com (Postfix) with ESMTPSA id s%(i)d;
 Mon, 07 Dec 2026 07:00:00 +0000
%(sig)sFrom: <%(frm)s>
To: someone@%(rdom)s
Subject: Offer %(i)d
Date: Mon, 07 Dec 2026 07:00:00 +0000
Message-ID: <spam-%(i)d@example.com>

Buy now: http://shop.example/offer/%(i)d

--b%(i)d--
""" % dict(rep=reporter, i=i, rdom=rdom, fb=feedback, ip=ip, acct=account, frm=from_addr,
           sig=sig, o=i % 250)).replace("\n", "\r\n").encode()


def plain_arf(reporter, ip, from_addr, return_path):
    """A report about mail without any authenticated user: the envelope sender is the account."""
    _n[0] += 1
    i = _n[0]
    return ("""From: <%(rep)s>
To: abuse@example.com
Subject: Complaint %(i)d
Message-ID: <arf-%(i)d@x.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b%(i)d"

--b%(i)d
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: obtest/1
Version: 1
Source-IP: %(ip)s

--b%(i)d
Content-Type: message/rfc822

Return-Path: <%(rp)s>
DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; h=from; bh=x; b=y
From: <%(frm)s>
Subject: Hello %(i)d
Message-ID: <plain-%(i)d@x.example>

Hello.

--b%(i)d--
""" % dict(rep=reporter, i=i, ip=ip, frm=from_addr, rp=return_path)).replace(
        "\n", "\r\n").encode()


class World:
    """A database, a config with [local], a Maildir, and `fbl run --once` to store."""

    def __init__(self, args, work, dbname, local=True):
        self.args, self.work = args, work
        self.db = Database(args.pg_conninfo_file, dbname)
        self.md = os.path.join(work, "maildir")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(self.md, sub))
        self.config = os.path.join(work, "fbl.conf")
        self.write_config(local)
        self.fbl("migrate", "--log-level", "warning")
        self.serial = 0

    def write_config(self, local):
        with open(self.config, "w") as fh:
            fh.write("[postgres]\nconninfo = %s\n\n" % self.db.conninfo)
            if local:
                fh.write("[local]\nnetworks = 192.0.2.0/24\ndomains = example.com\n\n")
            fh.write("[outbound]\nmin_complaints = 3\nlock_text = %s\n" % LOCK)

    def fbl(self, *argv, expect=0, db=None):
        cmd = [self.args.fbl, argv[0], "--config", self.config] + list(argv[1:])
        if db is not None:
            cmd += ["--db", db]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if expect is not None and p.returncode != expect:
            raise Failure("fbl %s: exit %d, expected %d:\n%s%s" % (" ".join(argv), p.returncode,
                                                                  expect, p.stdout, p.stderr))
        return p

    def deliver(self, data, age_s=3600):
        self.serial += 1
        name = "%d.M%dP%dQ%d.obtest" % (int(time.time()) - age_s, self.serial, os.getpid(),
                                        self.serial)
        tmp = os.path.join(self.md, "tmp", name)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.rename(tmp, os.path.join(self.md, "new", name))

    def complaints(self, account, n, prefix="u", age_s=3600, **kw):
        """@n complaints about @account, each by another reporter."""
        for k in range(n):
            self.deliver(arf("%s%d@isp%d.example" % (prefix, k, k), account, **kw), age_s)

    def store(self):
        self.fbl("run", "--once", "--maildir", self.md, "--log-level", "warning")

    def export(self, fmt="postfix-sender", path=None):
        path = path or os.path.join(self.work, "locked." + fmt)
        out = self.fbl("export", "accounts", "--format", fmt, "--output", path).stdout
        with open(path) as fh:
            return fh.read(), out

    def states(self):
        rows = self.db.query("SELECT account || '=' || state FROM fbl.outbound_accounts("
                             "now() - interval '1 day', 'infinity', 1000, 3000, 3)")
        return dict(line.split("=", 1) for line in rows.splitlines() if line)


def keys(table):
    """The keys of an access table (first word of each non-comment line)."""
    return sorted(line.split()[0] for line in table.splitlines()
                  if line.strip() and not line.startswith("#"))


# ---- store -------------------------------------------------------------------------------

def test_store(args, work):
    w = World(args, work, "t_outbound_store", local=False)
    # Stored before [local] was set: not outbound until fbl reparse.
    w.complaints("early@example.com", 3, prefix="e")
    w.store()
    check(w.db.query("SELECT count(*) FROM fbl.reports WHERE doc->'outbound' <> 'null'") == "0",
          "reports are outbound without [local]")
    w.write_config(True)
    w.fbl("reparse", "--log-level", "warning")
    check(w.states().get("early@example.com") == "act",
          "fbl reparse did not mark the stored reports: %s" % w.states())

    w.complaints("alice@example.com", 3, prefix="a")          # no volume, 3 = min: act
    w.complaints("bob", 2, prefix="b")                         # bare login, 2 < 3: warn
    w.complaints("carol@example.com", 10, prefix="c")         # 10 / 1000 = 1 %: act
    w.complaints("dave@example.com", 2, prefix="d")           # 2 / 10000 = 0.02 %: ok
    w.complaints("erin@example.com", 2, prefix="f")           # 2 / 1000 = 0.2 %: warn
    for k in range(5):                                         # one reporter, five spams: act
        w.deliver(arf("lone@isp.example", "heidi@example.com"))
    w.complaints("we#ird@example.com", 3, prefix="g")         # act, but no safe table key
    w.complaints("alice@example.com", 2, prefix="ns", feedback="not-spam")  # not counted
    w.complaints("mallory@other.example", 4, prefix="o", ip="203.0.113.5")  # not ours
    # Ours through DKIM d= alone: no authenticated user, so the envelope sender.
    for k in range(3):
        w.deliver(plain_arf("p%d@isp%d.example" % (k, k), "203.0.113.9", "x@gmail.example",
                            "frank@bulk.example"))
    w.store()
    csv = os.path.join(work, "volumes.csv")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    with open(csv, "w") as fh:
        fh.write("account,sent,day\ncarol@example.com,1000,%s\n"
                 "Dave@Example.com,10000\nerin@example.com,1000,%s\n# a comment\n"
                 % (today, today))
    w.fbl("outbound", "import-volumes", csv)
    with open(os.path.join(work, "bad.csv"), "w") as fh:
        fh.write("carol@example.com,many\n")
    check(w.fbl("outbound", "import-volumes", os.path.join(work, "bad.csv"),
                expect=None).returncode == 65, "a bad CSV line is not exit 65")
    check(w.fbl("outbound", "import-volumes", os.path.join(work, "none.csv"),
                expect=None).returncode == 66, "a missing file is not exit 66")
    want = {"early@example.com": "act", "alice@example.com": "act", "bob": "warn",
            "carol@example.com": "act", "dave@example.com": "ok", "erin@example.com": "warn",
            "heidi@example.com": "act", "we#ird@example.com": "act",
            "frank@bulk.example": "act"}
    got = w.states()
    check(got == want, "states %s, want %s" % (got, want))
    row = w.db.query("SELECT complaints, reporters, sent, rate_percent, source_ips, "
                     "cardinality(fingerprints) FROM fbl.outbound_accounts("
                     "now() - interval '1 day') WHERE account = 'carol@example.com'")
    check(row == "10|10|1000|1.0000|1|1", "carol's row: %s" % row)
    row = w.db.query("SELECT complaints, reporters FROM fbl.outbound_accounts("
                     "now() - interval '1 day') WHERE account = 'heidi@example.com'")
    check(row == "5|1", "heidi's row (one reporter, five reports): %s" % row)
    row = w.db.query("SELECT complaints, accounts FROM fbl.outbound_ips("
                     "now() - interval '1 day') WHERE source_ip = '192.0.2.25'")
    check(row == "30|8", "192.0.2.25's row: %s" % row)

    table, out = w.export()
    locked = ["alice@example.com", "carol@example.com", "early@example.com",
              "frank@bulk.example", "heidi@example.com"]
    check(keys(table) == locked, "postfix-sender keys %s, want %s" % (keys(table), locked))
    check("alice@example.com REJECT 5.7.1 %s\n" % LOCK in table, "no lock text:\n%s" % table)
    check("1 left out" in out, "the '#' account is not said to be left out: %s" % out)
    sasl, _ = w.export("postfix-sasl")
    check(keys(sasl) == locked, "postfix-sasl keys %s" % keys(sasl))

    # Clear alice: audited, out of the table; one complaint after it warns, three lock again.
    w.fbl("outbound", "clear", "Alice@Example.com", "--reason", "password reset, ticket 42")
    audit = w.db.query("SELECT account, db_user, os_user IS NOT NULL, reason "
                       "FROM fbl.outbound_clears")
    check(audit.startswith("alice@example.com|") and audit.endswith("|t|password reset, ticket 42"),
          "audit row: %s" % audit)
    check(w.states()["alice@example.com"] == "cleared", "alice is not cleared: %s" % w.states())
    check("alice@example.com" not in keys(w.export()[0]), "a cleared account is exported")
    time.sleep(2)
    w.complaints("alice@example.com", 1, prefix="late", age_s=0)
    w.store()
    check(w.states()["alice@example.com"] == "warn", "one new complaint: %s" % w.states())
    check("alice@example.com" not in keys(w.export()[0]), "exported after one new complaint")
    w.complaints("alice@example.com", 2, prefix="later", age_s=0)
    w.store()
    check("alice@example.com" in keys(w.export()[0]), "not locked again after three new")

    # Roles: fbl_security reads names; fbl_analyst sees none.
    pid = os.getpid()
    sec, ana = "ob_security_%d" % pid, "ob_analyst_%d" % pid
    w.db.query("CREATE ROLE %s LOGIN IN ROLE fbl_security" % sec)
    w.db.query("CREATE ROLE %s LOGIN IN ROLE fbl_analyst" % ana)
    try:
        as_sec = "%s user=%s" % (w.db.conninfo, sec)
        as_ana = "%s user=%s" % (w.db.conninfo, ana)
        names = Database.psql(as_sec, "SELECT account FROM fbl.outbound_accounts")
        check("carol@example.com" in names, "fbl_security cannot read names: %s" % names)
        w.fbl("export", "accounts", "--format", "postfix-sender", "--output",
              os.path.join(work, "sec.table"), db=as_sec)
        p = subprocess.run(["psql", as_ana, "-XAtq", "-c", "SELECT * FROM fbl.outbound_accounts"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(p.returncode != 0 and "permission denied" in p.stdout,
              "fbl_analyst reads fbl.outbound_accounts: %s" % p.stdout)
        p = subprocess.run(["psql", as_ana, "-XAtq", "-c", "SELECT * FROM fbl.outbound_clears"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(p.returncode != 0, "fbl_analyst reads the audit table: %s" % p.stdout)
        keyed = Database.psql(as_ana, "SELECT * FROM fbl.outbound_account_keys")
        ips = Database.psql(as_ana, "SELECT * FROM fbl.outbound_ips")
        check(keyed.count("\n") + 1 == len(want) and "@" not in keyed and "carol" not in keyed,
              "fbl_analyst's keys show an address or miss rows:\n%s" % keyed)
        check("192.0.2.25" in ips and "@" not in ips, "fbl_analyst's IPs:\n%s" % ips)
        for fmt in ("text", "csv", "json"):
            rep = w.fbl("report", "--format", fmt, db=as_ana).stdout
            check("outbound" in rep.lower() and "@" not in rep and "carol" not in rep,
                  "fbl report --format %s as fbl_analyst:\n%s" % (fmt, rep))
        rep = w.fbl("report", "--format", "text", db=as_sec).stdout
        check("carol@example.com" in rep and "act" in rep, "fbl report as fbl_security:\n%s" % rep)
    finally:
        w.db.query("DROP OWNED BY %s, %s; DROP ROLE %s; DROP ROLE %s" % (sec, ana, sec, ana))
    check(w.fbl("outbound", "clear", "two words", expect=None).returncode == 64,
          "clear of a non-account is not 64")
    check(w.fbl("export", "accounts", "--format", "postfix", "--output", "x",
                expect=None).returncode == 64, "--format postfix for accounts is not 64")
    log(NAME, "store: %d accounts in the expected states; %d locked exported; clear, "
        "re-lock and roles as expected" % (len(want), len(locked)))


# ---- postfix -----------------------------------------------------------------------------

def swaks(port, sender):
    out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--from",
                          sender, "--to", "spamalert@fbl.test", "--xclient-addr", "192.0.2.77",
                          "--quit-after", "RCPT", "--timeout", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    return out.stdout


def sasl_dovecot(work):
    """A Dovecot whose auth service listens for Postfix's SASL on a loopback port, or None
    (and why) when Dovecot is missing."""
    if not (shutil.which("dovecot") or os.path.exists("/usr/sbin/dovecot")):
        return None, "dovecot is not installed"
    import imap_dovecot as dv
    from ops_common import free_port
    nobody = pwd.getpwnam("nobody")
    home = os.path.join(work, "dovecot-home")
    os.makedirs(home)
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    ca_key, ca = dv.make_ca(work, "sasl-ca")
    key, cert = dv.make_server_cert(work, ca_key, ca)
    dc = dv.Dovecot(work, home, cert, key, nobody.pw_uid, nobody.pw_gid)
    dc.sasl_port = free_port()
    dc.extra = ("service auth {\n  inet_listener postfix-sasl {\n    address = 127.0.0.1\n"
                "    port = %d\n  }\n}\n" % dc.sasl_port)
    dc.start()
    return dc, None


def swaks_auth(port, user, password):
    out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--from",
                          "someone@example.com", "--to", "spamalert@fbl.test", "--auth",
                          "PLAIN", "--auth-user", user, "--auth-password", password,
                          "--quit-after", "RCPT", "--timeout", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    return out.stdout


def test_postfix(args, work):
    for tool in ("postfix", "postconf", "postmap", "swaks"):
        need(shutil.which(tool), "%s is not installed (Debian packages postfix and swaks)" % tool)
    need(os.getuid() == 0, "postfix -c DIR start needs root")
    import peers
    w = World(args, work, "t_outbound_postfix")
    dc, no_sasl = sasl_dovecot(work)
    import imap_dovecot as dv
    w.complaints("locked@example.com", 3, prefix="l")
    w.complaints("fine@example.com", 1, prefix="f")
    w.complaints(dv.USER, 3, prefix="s")  # the SASL login Dovecot knows
    w.store()
    tables = os.path.join(work, "tables")
    os.makedirs(tables)
    senders = os.path.join(tables, "locked-senders")
    logins = os.path.join(tables, "locked-logins")
    w.export("postfix-sender", senders)
    w.export("postfix-sasl", logins)
    run(["postmap", "hash:" + senders])
    run(["postmap", "hash:" + logins])
    nobody = pwd.getpwnam("nobody")
    home = peers.mail_home(work, "nobody")
    peers.make_maildir(os.path.join(home, "mail", "spamalert"), nobody.pw_uid, nobody.pw_gid)
    try:
        pf = peers.Postfix(work, os.path.join(home, "mail"), nobody.pw_uid, nobody.pw_gid)
    except peers.Skip as e:
        raise Skip(str(e))
    pf.postconf("smtpd_authorized_xclient_hosts=127.0.0.1",
                "smtpd_sender_restrictions=check_sasl_access hash:%s, "
                "check_sender_access hash:%s" % (logins, senders))
    if dc is not None:
        pf.postconf("smtpd_sasl_auth_enable=yes", "smtpd_sasl_type=dovecot",
                    "smtpd_sasl_path=inet:127.0.0.1:%d" % dc.sasl_port,
                    "smtpd_tls_auth_only=no")
    pf.start()
    try:
        out = swaks(pf.port, "locked@example.com")
        check("554 5.7.1 <locked@example.com>: Sender address rejected: %s" % LOCK in out,
              "MAIL FROM the locked account is not refused with the lock text:\n%s" % out)
        out = swaks(pf.port, "fine@example.com")
        check("<** " not in out and "250 2.1.5" in out, "the unlocked account is refused:\n%s"
              % out)
        w.fbl("outbound", "clear", "locked@example.com", "--reason", "test")
        w.export("postfix-sender", senders)
        run(["postmap", "hash:" + senders])
        run(["postfix", "-c", pf.dir, "reload"])
        time.sleep(1)
        out = swaks(pf.port, "locked@example.com")
        check("<** " not in out and "250 2.1.5" in out,
              "the cleared account is still refused after the re-export:\n%s" % out)
        out = swaks(pf.port, "fine@example.com")
        check("250 2.1.5" in out, "the unlocked account is refused after the re-export:\n%s"
              % out)
        log(NAME, "postfix %s refused the locked account with the lock text, accepted it after "
            "the clear, accepted the other throughout"
            % run(["postconf", "-c", pf.dir, "-h", "mail_version"]).strip())
        if dc is None:
            log(NAME, "check_sasl_access not exercised: %s" % no_sasl)
        else:
            sasl_case(w, pf, senders, logins, dv)
    except Failure:
        log(NAME, "postfix log:\n%s" % pf.logs())
        raise
    finally:
        pf.stop()
        if dc is not None:
            dc.cleanup()


def sasl_case(w, pf, senders, logins, dv):
    """check_sasl_access: the locked SASL login refused after AUTH; accepted once cleared."""
    out = swaks_auth(pf.port, dv.USER, dv.PASSWORD)
    check("235 2.7.0 Authentication successful" in out,
          "AUTH PLAIN through Dovecot failed:\n%s" % out)
    check("554 5.7.1" in out and "SASL login name rejected: %s" % LOCK in out,
          "MAIL FROM by the locked SASL login is not refused with the lock text:\n%s" % out)
    out = swaks_auth(pf.port, dv.USER, "not-the-password")
    check("535 5.7.8" in out, "a wrong SASL password was not refused:\n%s" % out)
    w.fbl("outbound", "clear", dv.USER, "--reason", "test")
    w.export("postfix-sasl", logins)
    run(["postmap", "hash:" + logins])
    run(["postfix", "-c", pf.dir, "reload"])
    time.sleep(1)
    out = swaks_auth(pf.port, dv.USER, dv.PASSWORD)
    check("235 2.7.0" in out and "250 2.1.5" in out,
          "the cleared SASL login is still refused after the re-export:\n%s" % out)
    log(NAME, "check_sasl_access: the locked login %s refused after AUTH (Dovecot SASL) with "
        "the lock text, accepted after the clear and a re-export" % dv.USER)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("store", "postfix"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--pg-conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    work = fresh_dir(os.path.abspath(args.workdir))
    fn = {"store": test_store, "postfix": test_postfix}[args.mode]

    def body():
        t0 = time.monotonic()
        try:
            fn(args, work)
        except Skip as e:
            log(NAME, "SKIP: %s" % e)
            sys.exit(SKIP)
        log(NAME, "%s done in %.1f s" % (args.mode, time.monotonic() - t0))

    run_main(NAME, body)


if __name__ == "__main__":
    main()
