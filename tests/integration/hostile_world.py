#!/usr/bin/python3
"""Personal data, forged reporters and loose secrets ("hostile world"), on real processes.

usage: hostile_world.py analyst|redact|answers|forgery|secrets --fbl BIN
                        --conninfo-file F --workdir DIR

Each mode makes its own database in the "pg" fixture's cluster, runs the real `fbl`
binary, and checks what leaves it.

analyst  reports whose subject, domains, URL host, mailbox and vendor name hold
         addresses (stored by `fbl run --once`, and planted in every text column the
         analyst views read): as fbl_analyst, no row of any view or function and no line
         of `fbl report` shows an address in any spelling; the outbox's last_error stays
         out of the analyst's reach.
redact   `fbl run` feeding an http-json vendor (redact = recipients, include_raw) spam
         that writes its recipient every hostile way: display names (also in encoded
         words), quoted-printable soft breaks inside the address, %40 in URLs, =40,
         &#64;, RFC 2047 encoded words (B and Q, split over two words), a base64 part.
         Decoded every way a reader would, nothing the vendor gets names the recipient.
answers  a vendor that refuses a report with a 400 echoing it (reporter and
         recipients): no log line above debug holds an address, the debug line and the
         outbox row keep the whole answer, `fbl forward --status` masks it.
forgery  [limits] reports_per_reporter_per_hour = 3 with [parse] authserv_id: forged
         reports claiming a feedback loop's address (no Authentication-Results of ours)
         do not use up the loop's verified quota; [limits] exempt_reporters exempts an
         address and a *.domain, but never a report our MTA found unverified.
secrets  --check-config of `fbl forward`, `fbl run` and `fbl watch`: token, password,
         redaction key and CURVE key files that others may read or change, or that
         another user owns, exit 78 naming the file, line, key and mode, unless
         allow_insecure_file_modes = true; a token or password over plain http:// to a
         host other than loopback exits 78 naming url, unless allow_plain_http = true.

Standard library only; psql runs the queries.
"""
import argparse
import base64
import email
import email.header
import email.policy
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vendor_feed as vf  # noqa: E402  (Db, Maildir, Proc, run, write, check, ...)
from vendor_server import VendorServer  # noqa: E402


# An address in any spelling fbl's masks know: the at sign as @, %40, =40, &#64;, &#x40;,
# &commat;, \u0040 or fullwidth, between a local part and a domain.
ADDRESS = re.compile(r"[\w.!#$%'*+^`{|}~-]+(@|%40|=40|&#0*64;|&#x0*40;|&commat;|\\u0040|\uff20)"
                     r"(?P<domain>[\w-]+(\.[\w-]+)*)", re.I)


def log(msg):
    print("hostile_world: %s" % msg, flush=True)


def check(cond, msg):
    """vendor_feed's check, under this test's name."""
    if not cond:
        vf.FAILURES.append(msg)
        log("FAIL: %s" % msg)
    return cond


def addresses_in(text):
    # "=40" (a quoted-printable @) before a domain without a dot is a log field, not an
    # address: pid=4086, or an id such as rid=40cd76cbe6c8 that happens to begin with 40.
    return [m.group(0) for m in ADDRESS.finditer(text)
            if m.group(1) != "=40" or "." in m.group("domain")]


def arf(reporter, spam, i, name="Feedback Loop", rcpt="victim@customer.example",
        auth=None):
    """A report mail by @reporter about the message @spam (bytes, CRLF)."""
    d = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    head = ("Authentication-Results: %s\r\n" % auth) if auth else ""
    return (head + """From: %(name)s <%(rep)s>\r
To: spamalert@abuse.example.net\r
Subject: Abuse report %(i)d\r
Date: %(d)s\r
Message-ID: <hw-%(i)d-%(t)d@feedback.example.org>\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report; boundary="b%(i)d"\r
\r
--b%(i)d\r
Content-Type: text/plain\r
\r
An abuse report.\r
--b%(i)d\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: TestFBL/1.0\r
Version: 1\r
Original-Rcpt-To: <%(rcpt)s>\r
Source-IP: 192.0.2.%(ip)d\r
Arrival-Date: %(d)s\r
\r
--b%(i)d\r
Content-Type: message/rfc822\r
\r
""" % dict(name=name, rep=reporter, i=i, d=d, t=int(time.time() * 1000), rcpt=rcpt,
           ip=1 + i % 250)).encode() + spam + ("\r\n--b%d--\r\n" % i).encode()


def plain_spam(i, rcpt="victim@customer.example", subject=None, frm="deals@spammer.example.com",
               url=None):
    subject = subject or "Offer %d" % i
    url = url or "http://spammer.example.com/offer?id=%d" % i
    return ("""Received: from mail.spammer.example.com (mail.spammer.example.com [192.0.2.9])\r
\tby mx1.example.net with ESMTP id X%(i)d; Mon, 1 Dec 2025 10:00:00 +0000\r
From: Deals <%(frm)s>\r
To: %(rcpt)s\r
Subject: %(subject)s\r
Message-ID: <spam-%(i)d@spammer.example.com>\r
Content-Type: text/plain; charset=utf-8\r
\r
Buy now: %(url)s\r
""" % dict(i=i, rcpt=rcpt, subject=subject, frm=frm, url=url)).encode()


class Maildir(vf.Maildir):
    def deliver_at(self, data, when):
        """A mail whose delivery time (the Maildir name's timestamp) is @when."""
        self.n += 1
        name = "%d.M%dP%dQ%d.hostile" % (int(when), self.n, os.getpid(), self.n)
        tmp = os.path.join(self.path, "tmp", name)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.rename(tmp, os.path.join(self.path, "new", name))


def run_once(a, conf, work, what):
    r = vf.run([a.fbl, "run", "--config", conf, "--once"], timeout=300)
    with open(os.path.join(work, what + ".log"), "w") as fh:
        fh.write(r.stdout)
    check(r.returncode == 0, "%s: fbl run --once exited %d: %s" % (what, r.returncode,
                                                                     r.stdout[-500:]))
    return r


# ---- analyst -----------------------------------------------------------------------------

PLANTED = [
    # table, column list, values: every text column an analyst view reads, with an address
    ("fbl.reports", "id, received_at, mail_id, part, mailbox, format, feedback_type, "
     "reporter_address, redacted, headers_only, from_domain, return_path_domain, subject, "
     "fingerprint, doc, source_ip",
     "'p1', now() - interval '1 hour', 'm1', 0, 'box.owner@example.net', 'arf', 'not-spam', "
     "'ann.smith%40example.net', false, false, 'ann.smith@example.net', "
     "'bob=40example.org', 'Bob <bob.jones@example.org>, your parcel', "
     "'fp.carl@example.net', '{}', '192.0.2.77'"),
    ("fbl.report_dkim", "report_id, received_at, position, d, s",
     "'p1', now() - interval '1 hour', 0, 'dora&#64;example.net', 's1'"),
    ("fbl.report_urls", "report_id, received_at, position, url, host",
     "'p1', now() - interval '1 hour', 0, 'http://x/', 'erin.doe@example.net'"),
    ("fbl.rejects", "mail_id, received_at, mailbox, reason, detail, size",
     "'m2', now() - interval '1 hour', 'fred@example.net', 'bounce', 'x', 10"),
    ("fbl.vendor_outbox", "report_id, received_at, vendor, state, last_error",
     "'p1', now() - interval '1 hour', 'gina@example.net', 'dead', "
     "'HTTP 400: {\"to\": [\"gina.secret@example.net\"]}'"),
]


def analyst_rows(db, as_analyst):
    """Every row of every view and function fbl_analyst may read, as text."""
    views = db.rows("SELECT c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'fbl' "
                    "AND has_table_privilege('fbl_analyst', c.oid, 'SELECT') ORDER BY 1")
    # The windowed functions: every set-returning one that takes a window.
    funcs = db.rows("SELECT p.proname, pg_get_function_identity_arguments(p.oid) "
                    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'fbl' AND p.proretset "
                    "AND pg_get_function_identity_arguments(p.oid) LIKE 'since %' "
                    "AND has_function_privilege('fbl_analyst', p.oid, 'EXECUTE') ORDER BY 1")
    check(len(views) >= 10 and len(funcs) >= 10, "analyst: %d views and %d functions"
          % (len(views), len(funcs)))
    out = {}
    for (v,) in views:
        out["view " + v] = vf.Db.psql(as_analyst, "SELECT * FROM fbl.%s" % v)
    for name, _args in funcs:
        out["function " + name] = vf.Db.psql(
            as_analyst, "SELECT * FROM fbl.%s(now() - interval '30 days')" % name)
    return out


def mode_analyst(a, db, work):
    mbox = Maildir(os.path.join(work, "spamalert"))
    subjects = ["john.doe@example.net, your invoice", "Hi jane.roe%40example.org",
                "=?utf-8?B?%s?=" % base64.b64encode(b"kim.lee@example.com: last notice").decode()]
    for i, s in enumerate(subjects):
        mbox.deliver(arf("fbl@feedback.example.org", plain_spam(i, subject=s), i))
    mbox.deliver(arf("fbl@feedback.example.org", plain_spam(
        9, url="http://victim%40example.net@evil.example/x?u=vic.tim@example.net"), 9))
    server = VendorServer(token="t").start()
    tok = vf.write(os.path.join(work, "token"), "t")
    conf = vf.write(os.path.join(work, "fbl.conf"), vf.base_config(db, mbox.path, """
[vendor:acme]
type = http-json
url = %s
token_file = %s
""" % (server.url(), tok)))
    try:
        run_once(a, conf, work, "run")
    finally:
        server.stop()
    check(db.count("SELECT count(*) FROM fbl.reports") == 4, "analyst: 4 reports stored")
    for table, cols, values in PLANTED:
        db.q("INSERT INTO %s (%s) VALUES (%s)" % (table, cols, values))
    as_analyst = "%s options='-c role=fbl_analyst'" % db.conninfo
    rows = analyst_rows(db, as_analyst)
    for where, text in sorted(rows.items()):
        found = addresses_in(text)
        check(not found, "analyst: %s shows addresses %s" % (where, found[:5]))
    campaigns = rows.get("view campaigns", "")
    log("campaigns as fbl_analyst:\n" + campaigns)
    check("[address], your invoice" in campaigns,
          "analyst: the personalised subject is not shown masked: %r" % campaigns)
    # fbl report reads the same functions, as the analyst.
    for fmt in ("text", "csv", "json"):
        r = vf.run([a.fbl, "report", "--db", as_analyst, "--since", "30d", "--format", fmt])
        check(r.returncode == 0, "analyst: fbl report --format %s exited %d: %s"
              % (fmt, r.returncode, r.stdout[-300:]))
        check(not addresses_in(r.stdout), "analyst: fbl report --format %s shows %s"
              % (fmt, addresses_in(r.stdout)[:5]))
    # The dead letter's answer is the operators' (owner, fbl_writer), never the analyst's.
    denied = subprocess.run(["psql", as_analyst, "-XAtqc",
                             "SELECT last_error FROM fbl.vendor_outbox"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(denied.returncode != 0 and "permission denied" in denied.stdout,
          "analyst: fbl_analyst can read the outbox: %r" % denied.stdout)
    writer = "%s options='-c role=fbl_writer'" % db.conninfo
    kept = vf.Db.psql(writer, "SELECT last_error FROM fbl.vendor_outbox WHERE state = 'dead'")
    check("gina.secret@example.net" in kept, "analyst: fbl_writer lost the answer: %r" % kept)


# ---- redact ------------------------------------------------------------------------------

RCPT, NAME, FIRST = "john.doe@example.net", "John Doe", "John"


def q_word(text):
    return "=?utf-8?Q?%s?=" % "".join(
        c if c.isalnum() else ("_" if c == " " else "=%02X" % ord(c)) for c in text)


def b_word(data):
    return "=?utf-8?B?%s?=" % base64.b64encode(data.encode()).decode()


def hostile_spam(i):
    """The spam, writing its recipient every hostile way."""
    greeting_b64 = base64.encodebytes(
        ("Hello %s, we wrote to %s.\r\n" % (FIRST, RCPT)).encode()).decode()
    greeting_b64 = greeting_b64.replace("\n", "\r\n")
    split = b_word("Your account john.do") + "\r\n " + b_word("e@example.net is closing")
    return ("""From: Deals <deals@spammer.example.com>\r
To: %(to_name)s <%(rcpt)s>\r
Subject: %(subject)s\r
X-Notice: %(split)s\r
Message-ID: <hostile-%(i)d@spammer.example.com>\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary="mix%(i)d"\r
\r
--mix%(i)d\r
Content-Type: text/plain; charset=utf-8\r
Content-Transfer-Encoding: quoted-printable\r
\r
Dear John Doe, your mailbox john.doe@exa=\r
mple.net is full; confirm john.doe=40example.net now.\r
Unsubscribe: http://spammer.example.com/u?e=john.doe%%40example.net&id=%(i)d\r
--mix%(i)d\r
Content-Type: text/html; charset=utf-8\r
\r
<p>Mail for john.doe&#64;example.net</p>\r
--mix%(i)d\r
Content-Type: text/plain; charset=utf-8\r
Content-Transfer-Encoding: base64\r
\r
%(b64)s--mix%(i)d--\r
""" % dict(i=i, rcpt=RCPT, to_name=b_word(NAME), subject=q_word("%s, your invoice" % RCPT),
           split=split, b64=greeting_b64)).encode()


def readings(blob):
    """A message as a reader sees it: raw, its decoded headers, its decoded parts; each also
    URL-unquoted, HTML-unescaped and with quoted-printable soft breaks joined."""
    out = [blob.decode("utf-8", "replace")]
    msg = email.message_from_bytes(blob, policy=email.policy.compat32)
    for part in msg.walk():
        for k, v in part.items():
            try:
                out.append("%s: %s" % (k, str(email.header.make_header(
                    email.header.decode_header(v)))))
            except (ValueError, LookupError, email.errors.HeaderParseError):
                out.append("%s: %s" % (k, v))
        payload = part.get_payload(decode=True)
        if payload:
            out.append(payload.decode("utf-8", "replace"))
    more = []
    for t in out:
        joined = re.sub(r"=\r?\n", "", t)
        more += [joined, urllib.parse.unquote(joined), html.unescape(joined),
                 re.sub(r"\r?\n[ \t]+", "", joined)]
    return out + more


def leaks(texts, forbidden):
    found = set()
    for t in texts:
        low = t.lower()
        for f in forbidden:
            if re.search(r"(?<![a-z0-9])%s(?![a-z0-9])" % re.escape(f.lower()), low):
                found.add(f)
    return sorted(found)


def mode_redact(a, db, work):
    mbox = Maildir(os.path.join(work, "spamalert"))
    forbidden = [RCPT, NAME, FIRST, "john.doe%40example.net", "john.doe=40example.net"]
    server = VendorServer(token="t", forbidden=forbidden, keep_bodies=True).start()
    tok = vf.write(os.path.join(work, "token"), "t")
    key = vf.write(os.path.join(work, "redact.key"), "hostile-world-test-key-0123456789")
    conf = vf.write(os.path.join(work, "fbl.conf"), vf.base_config(db, mbox.path, """
[vendor:acme]
type = http-json
url = %s
token_file = %s
redact = recipients
redact_key_file = %s
include_raw = true
""" % (server.url(), tok, key)))
    n = 3
    for i in range(n):
        mbox.deliver(arf("fbl@feedback.example.org", hostile_spam(i), i, rcpt=RCPT))
    fbl = vf.Proc("run", [a.fbl, "run", "--config", conf], work).start()
    try:
        vf.wait_until(lambda: vf.outbox_states(db, "acme").get("sent", 0) == n, 60,
                      "%d reports at the vendor" % n)
    finally:
        rc = fbl.stop()
        server.stop()
    check(rc == 0, "redact: fbl run exited %s" % rc)
    docs = [r for body in server.bodies for r in body["reports"]]
    check(len(docs) >= n, "redact: the vendor got %d reports" % len(docs))
    for doc in docs:
        raw = base64.b64decode(doc.pop("raw_message", "") or "")
        check(raw, "redact: no raw_message in report %s" % doc.get("id"))
        text = json.dumps(doc, ensure_ascii=False)
        found = leaks(readings(raw) + [text, urllib.parse.unquote(text)], forbidden)
        check(not found, "redact: report %s gave the vendor %s" % (doc.get("id"), found))
        with open(os.path.join(work, "sent-%s.eml" % doc["id"][:12]), "wb") as fh:
            fh.write(raw)  # what the vendor got, for a look when this fails
        check("pseudonymized" in doc and "message.to" in doc["pseudonymized"],
              "redact: the document does not say what was pseudonymized")
        check(b"redacted.invalid" in raw, "redact: no pseudonym in the message")
    check(not server.violations, "redact: the vendor's own check saw %s"
          % sorted(set(server.violations)))


# ---- answers -----------------------------------------------------------------------------

def mode_answers(a, db, work):
    mbox = Maildir(os.path.join(work, "spamalert"))
    server = VendorServer(token="t").start()
    server.refuse_marker = "REFUSE-AND-ECHO"
    server.echo_refused = True
    tok = vf.write(os.path.join(work, "token"), "t")
    conf = vf.write(os.path.join(work, "fbl.conf"), vf.base_config(db, mbox.path, """
[vendor:acme]
type = http-json
url = %s
token_file = %s
""" % (server.url(), tok)).replace("level = info", "level = debug"))
    for i in range(3):
        mbox.deliver(arf("reporter%d@isp.example.net" % i, plain_spam(
            i, rcpt="victim%d@customer.example" % i,
            subject="Offer %d %s" % (i, "REFUSE-AND-ECHO" if i == 1 else "")), i,
            rcpt="victim%d@customer.example" % i))
    fbl = vf.Proc("run", [a.fbl, "run", "--config", conf], work).start()
    try:
        vf.wait_until(lambda: vf.outbox_states(db, "acme") == {"sent": 2, "dead": 1}, 60,
                      "2 sent and 1 dead letter")
        status = vf.run([a.fbl, "forward", "--config", conf, "--status"]).stdout
    finally:
        rc = fbl.stop()
        server.stop()
    check(rc == 0, "answers: fbl run exited %s" % rc)
    text = fbl.text()
    dead = [line for line in text.splitlines() if "stage=vendor_dead" in line]
    log("dead letter lines:\n" + "\n".join(dead))
    check(any("level=warning" in line and "refused" in line for line in dead),
          "answers: no warning for the dead letter")
    check(any("[address]" in line for line in dead if "level=warning" in line),
          "answers: the warning does not show the answer masked")
    check(any("level=debug" in line and "victim1@customer.example" in line for line in dead),
          "answers: the debug line lacks the whole answer")
    above_debug = [line for line in text.splitlines() if "level=debug" not in line]
    leaked = [line for line in above_debug if addresses_in(line)]
    check(not leaked, "answers: %d log lines above debug hold addresses, e.g. %s"
          % (len(leaked), leaked[:3]))
    last = db.q("SELECT last_error FROM fbl.vendor_outbox WHERE state = 'dead'")
    check("victim1@customer.example" in last and "reporter1@isp.example.net" in last,
          "answers: the outbox row lost the vendor's answer: %r" % last)
    log("fbl forward --status:\n" + status)
    check("newest dead letter: HTTP 400" in status and not addresses_in(status),
          "answers: --status shows %r" % status)


# ---- forgery -----------------------------------------------------------------------------

AUTHSERV = "mx.hostile.example"


def reporter_report(i, reporter, verified):
    domain = reporter.split("@")[1]
    auth = ("%s; dkim=pass header.d=%s" % (AUTHSERV, domain)) if verified else None
    return arf(reporter, plain_spam(i, rcpt="v%d@customer.example" % i), i, auth=auth,
               rcpt="v%d@customer.example" % i)


def limited_by(db, reporter):
    """{verified: (reports, rate limited)} of @reporter."""
    out = {}
    for v, n, lim in db.rows("SELECT coalesce(reporter_verified::text, 'null'), count(*), "
                             "count(*) FILTER (WHERE rate_limited) FROM fbl.reports "
                             "WHERE reporter_address = '%s' GROUP BY 1" % reporter):
        out[v] = (int(n), int(lim))
    return out


def mode_forgery(a, db, work):
    mbox = Maildir(os.path.join(work, "spamalert"))
    server = VendorServer(token="t").start()
    tok = vf.write(os.path.join(work, "token"), "t")
    base = vf.base_config(db, mbox.path, """
[parse]
authserv_id = %s

[vendor:acme]
type = http-json
url = %s
token_file = %s
""" % (AUTHSERV, server.url(), tok))
    # A reporter's reports of one kind share a delivery second: the limit judges each by
    # the reports delivered up to its own time, so with distinct times the outcome would
    # depend on the order in which the watcher happens to pick the files.
    now = int(time.time())
    try:
        # 1. A loop's own reports, after six forgeries in its name stored within the hour.
        loop = "fbl@hotmail.example"
        conf = vf.write(os.path.join(work, "fbl.conf"), base.replace(
            "[parse]", "[limits]\nreports_per_reporter_per_hour = 3\n\n[parse]"))
        for i in range(6):
            mbox.deliver_at(reporter_report(i, loop, False), now - 600)
        run_once(a, conf, work, "forgeries")
        for i in range(6, 9):
            mbox.deliver_at(reporter_report(i, loop, True), now - 300)
        run_once(a, conf, work, "loop")
        got = limited_by(db, loop)
        log("forgery: %s: %s" % (loop, got))
        check(got.get("true") == (3, 0), "forgery: the loop's 3 verified reports: %s "
              "(reports, rate limited); forgeries spent its quota" % (got.get("true"),))
        check(got.get("false") == (6, 3), "forgery: 6 forgeries, 3 over the limit: %s"
              % (got.get("false"),))
        # 2. Exempt loops: an address and a *.domain, never for unverified reports.
        aol, yahoo = "fbl@aol.example", "feedback@arf.mail.yahoo.example"
        for i in range(10, 15):
            mbox.deliver_at(reporter_report(i, aol, True), now - 200)
            mbox.deliver_at(reporter_report(i + 100, yahoo, True), now - 200)
        for i in range(20, 24):
            mbox.deliver_at(reporter_report(i, aol, False), now - 100)
        conf = vf.write(os.path.join(work, "fbl.conf"), base.replace(
            "[parse]", "[limits]\nreports_per_reporter_per_hour = 3\n"
            "exempt_reporters = %s, *.yahoo.example\n\n[parse]" % aol))
        run_once(a, conf, work, "exempt")
    finally:
        server.stop()
    got_aol, got_yahoo = limited_by(db, aol), limited_by(db, yahoo)
    log("exempt: %s: %s; %s: %s" % (aol, got_aol, yahoo, got_yahoo))
    check(got_aol.get("true") == (5, 0), "exempt: %s verified: %s" % (aol, got_aol))
    check(got_yahoo.get("true") == (5, 0), "exempt: %s verified: %s" % (yahoo, got_yahoo))
    check(got_aol.get("false") == (4, 1), "exempt: forgeries of an exempt address are "
          "limited as any: %s" % (got_aol.get("false"),))
    states = vf.outbox_states(db, "acme")
    check(states.get("limited", 0) == 4, "forgery: outbox %s, expected 4 limited" % states)


# ---- secrets -----------------------------------------------------------------------------

def expect(a, role, conf, want_rc, want_text, what):
    r = vf.run([a.fbl, role, "--config", conf, "--check-config"])
    ok = r.returncode == want_rc and all(t in r.stdout for t in want_text)
    check(ok, "secrets: %s: fbl %s --check-config exited %d: %r (want %d and %r)"
          % (what, role, r.returncode, r.stdout.strip()[-400:], want_rc, want_text))


def line_of(text, key):
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith(key + " ="):
            return n
    return 0


def mode_secrets(a, db, work):
    def secret(name, mode, text="s3cret-token-0123456789"):
        return vf.write(os.path.join(work, name), text + "\n", mode)

    conf_path = os.path.join(work, "fbl.conf")
    mailbox = "\n[mailbox:spamalert]\npath = %s\n" % os.path.join(work, "spamalert")
    for sub in ("new", "cur", "tmp"):  # --check-config checks the Maildir too
        os.makedirs(os.path.join(work, "spamalert", sub), exist_ok=True)

    def vendor_conf(body):
        text = "[postgres]\nconninfo = %s\n\n[vendor:v]\n%s%s" % (db.conninfo, body, mailbox)
        vf.write(conf_path, text)
        return text

    good = secret("good.token", 0o600)
    cases = [
        # (what, [vendor:v] body, key, expected exit, texts)
        ("token 0644", "type = http-json\nurl = https://vendor.example/\ntoken_file = %s\n"
         % secret("open.token", 0o644), "token_file", 78,
         ["a token readable by every user is not secret (mode 0644)"]),
        ("token 0660", "type = http-json\nurl = https://vendor.example/\ntoken_file = %s\n"
         % secret("group.token", 0o660), "token_file", 78, ["(mode 0660)"]),
        ("password 0604", "type = rspamd\nurl = http://127.0.0.1:11334\npassword_file = %s\n"
         % secret("open.pw", 0o604), "password_file", 78,
         ["a password readable by every user", "(mode 0604)"]),
        ("redaction key 0644", "type = http-json\nurl = https://vendor.example/\n"
         "redact = recipients\nredact_key_file = %s\n"
         % secret("open.key", 0o644, "a-long-enough-redaction-key-0123"), "redact_key_file", 78,
         ["a redaction key readable by every user", "(mode 0644)"]),
        ("waived", "type = http-json\nurl = https://vendor.example/\ntoken_file = %s\n"
         "allow_insecure_file_modes = true\n" % os.path.join(work, "open.token"), None, 0,
         ["configuration OK"]),
        ("token 0600", "type = http-json\nurl = https://vendor.example/\ntoken_file = %s\n"
         % good, None, 0, ["configuration OK"]),
        ("token 0400", "type = http-json\nurl = https://vendor.example/\ntoken_file = %s\n"
         % secret("ro.token", 0o400), None, 0, ["configuration OK"]),
        ("plain http", "type = http-json\nurl = http://192.0.2.10/v1/reports\ntoken_file = %s\n"
         % good, "url", 78, ["is plain http to another host", "token_file"]),
        ("plain http rspamd", "type = rspamd\nurl = http://rspamd.example:11334\n"
         "password_file = %s\n" % good, "url", 78, ["password_file"]),
        ("plain http allowed", "type = http-json\nurl = http://192.0.2.10/v1/reports\n"
         "token_file = %s\nallow_plain_http = true\n" % good, None, 0, ["configuration OK"]),
        ("plain http, no secret", "type = rspamd\nurl = http://rspamd.example:11334\n", None, 0,
         ["configuration OK"]),
        ("loopback", "type = http-json\nurl = http://127.0.0.1:8080/v1\ntoken_file = %s\n"
         % good, None, 0, ["configuration OK"]),
        ("loopback v6", "type = http-json\nurl = http://[::1]:8080/v1\ntoken_file = %s\n"
         % good, None, 0, ["configuration OK"]),
        ("localhost", "type = http-json\nurl = http://localhost:8080/v1\ntoken_file = %s\n"
         % good, None, 0, ["configuration OK"]),
    ]
    if os.geteuid() == 0:
        other = secret("other.token", 0o600)
        os.chown(other, 65534, -1)
        cases.append(("owned by another user", "type = http-json\nurl = https://v.example/\n"
                      "token_file = %s\n" % other, "token_file", 78, ["owned by uid 65534"]))
        shared = secret("shared.token", 0o640)  # root:root 0640: root shares it on purpose
        cases.append(("root's 0640", "type = http-json\nurl = https://v.example/\n"
                      "token_file = %s\n" % shared, None, 0, ["configuration OK"]))
    for what, body, key, rc, texts in cases:
        text = vendor_conf(body)
        want = list(texts)
        if key is not None:
            want.append("fbl.conf:%d: [vendor:v] %s:" % (line_of(text, key), key))
        for role in ("forward", "run"):
            expect(a, role, conf_path, rc, want, what)
    # CURVE secret keys: the same rule.
    keys = os.path.join(work, "keys")
    os.makedirs(keys, exist_ok=True)
    vf.run([a.fbl, "keygen", os.path.join(keys, "w")])
    vf.run([a.fbl, "keygen", os.path.join(keys, "s")])
    os.chmod(os.path.join(keys, "w.key"), 0o660)
    watch = ("[watch]\nconnect = tcp://127.0.0.1:1\ncurve_secret_file = %s\n"
             "curve_server_public_file = %s\n" % (os.path.join(keys, "w.key"),
                                                  os.path.join(keys, "s.pub")))
    vf.write(conf_path, watch + mailbox)
    expect(a, "watch", conf_path, 78, [":3: [watch] curve_secret_file:", "(mode 0660)"],
           "CURVE key 0660")
    vf.write(conf_path, watch + "allow_insecure_file_modes = true\n" + mailbox)
    expect(a, "watch", conf_path, 0, ["configuration OK"], "CURVE key 0660 waived")


# ---- main --------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("analyst", "redact", "answers", "forgery", "secrets"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    a.fbl = os.path.abspath(a.fbl)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    t0 = time.time()
    db = vf.Db(a.conninfo_file, "t_hostile_" + a.mode)
    try:
        globals()["mode_" + a.mode](a, db, a.workdir)
    finally:
        db.drop()
    log("%s done in %.1f s" % (a.mode, time.time() - t0))
    if vf.FAILURES:
        print("%d failure(s); logs in %s" % (len(vf.FAILURES), a.workdir))
        return 1
    log("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
