#!/usr/bin/python3
"""Blocklists published from complaints, with the programs that serve them.

usage: blocklist.py policy|rbldnsd|rspamd|postfix|sink --fbl BIN
                    --pg-conninfo-file FILE --workdir DIR

Every mode stores real ARF reports through `fbl run --once` (the Maildir file
names set their delivery times, so "4 days ago" is real) into a database of its
own in the "pg" fixture's cluster, then exports with `fbl export`.

policy   the listing policy over what the store counted: distinct reporters
         (one reporter's five reports count once), a verified reporter
         ([parse] authserv_id) weighing 2, a not-spam reporter subtracting,
         complaints older than delist_after (delisted) or than the window (not
         counted), [parse] trusted_networks, allowlist_file networks and domains,
         a big provider's relay (and list_provider_relays = true), --since and
         --min-reporters; From domains and URL hosts in the domain list. The
         exported set must be exactly the expected one, and `fbl blocklist
         explain` must print the decision and the arithmetic of each case (as
         fbl_analyst too, with no address in its output).
rbldnsd  Debian's rbldnsd serves the exported ip4trie, ip6trie and dnset datasets
         on a loopback port (-c 1: it looks at the files' mtimes every second);
         dig finds the listed IPs (reversed octets, and IPv6 nibbles) and
         domains with 127.0.0.2 and the TXT naming the entry, and does not find
         the allowlisted, delisted, trusted or unlisted ones; a re-export with
         a newly listed IP while rbldnsd runs is answered within seconds.
rspamd   Debian's rspamd (stock /etc/rspamd, as rspamd_stock.py starts it) with a
         multimap rule on the exported radix and domain maps: /checkv2 of a mail
         from a listed IP scores the rule's symbol, from an unlisted IP it does
         not; a mail from a listed sender domain scores the domain symbol.
postfix  a Postfix of its own (peers.py's: Debian's main.cf) with
         check_client_access cidr: on the exported IP table and check_sender_access
         hash: on the exported (postmapped) domain table: swaks through XCLIENT
         from a listed IP is refused with 554 5.7.1 and the answer text, from an
         unlisted IP accepted; MAIL FROM a listed domain refused, another accepted.
sink     `fbl run` with [blocklist] export_* files and export_interval 1s keeps
         the files up to date: written at start, rewritten once a newly listed IP
         arrives, not rewritten while nothing changes; the metrics
         fbl_blocklist_listed and fbl_blocklist_last_export_timestamp_seconds say so.

Exit 77 (skip) when rbldnsd/dig, rspamd or postfix/swaks are missing or (postfix,
rbldnsd) the test is not root. Standard library only.
"""
import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from ops_common import (Database, Failure, Proc, Skip, check, free_port, fresh_dir, log, need,
                        parse_metrics, run, run_main, scrape, wait_for)

SKIP = 77
NAME = "blocklist"
AUTHSERV = "mx.bl.test"
ORG = "Example Abuse Desk"
URL = "https://abuse.example.net/bl"


# ---- the reports -------------------------------------------------------------------------

_n = [0]


def arf(reporter, ip, from_domain, url_host, feedback="abuse", verified=False):
    """An ARF report by @reporter about a spam from @ip, From @from_domain, linking @url_host."""
    _n[0] += 1
    i = _n[0]
    rdom = reporter.split("@")[1]
    auth = ""
    if verified:
        auth = ("Authentication-Results: %s; dkim=pass header.d=%s header.s=s1;"
                " spf=pass smtp.mailfrom=%s\n" % (AUTHSERV, rdom, reporter))
    return ("""Return-Path: <%(rep)s>
%(auth)sFrom: Feedback <%(rep)s>
To: abuse@bl.test
Subject: Abuse report %(i)d
Date: Mon, 07 Dec 2026 08:00:00 +0000
Message-ID: <arf-%(i)d@%(rdom)s>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b%(i)d"

--b%(i)d
Content-Type: text/plain; charset=us-ascii

An abuse report.

--b%(i)d
Content-Type: message/feedback-report

Feedback-Type: %(fb)s
User-Agent: bltest/1
Version: 1
Source-IP: %(ip)s

--b%(i)d
Content-Type: message/rfc822

Received: from out.%(fd)s (out.%(fd)s [%(ip)s]) by mx.%(rdom)s with ESMTP id q%(i)d;
 Mon, 07 Dec 2026 07:00:00 +0000
From: Sales <sales@%(fd)s>
To: someone@%(rdom)s
Subject: Offer %(i)d
Date: Mon, 07 Dec 2026 07:00:00 +0000
Message-ID: <spam-%(i)d@%(fd)s>

Buy now: http://%(url)s/offer/%(i)d

--b%(i)d--
""" % dict(rep=reporter, auth=auth, i=i, rdom=rdom, fb=feedback, ip=ip, fd=from_domain,
           url=url_host)).replace("\n", "\r\n").encode()


class World:
    """A database, a config, a Maildir, and `fbl run --once` to store what is delivered."""

    def __init__(self, args, work, dbname, extra=""):
        self.args, self.work = args, work
        self.db = Database(args.pg_conninfo_file, dbname)
        self.md = os.path.join(work, "maildir")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(self.md, sub))
        self.allowlist = os.path.join(work, "allowlist")
        with open(self.allowlist, "w") as fh:
            fh.write("# never listed\n198.51.100.0/28\nallowed.example   # a partner\n")
        self.config = os.path.join(work, "fbl.conf")
        with open(self.config, "w") as fh:
            fh.write("""[postgres]
conninfo = %s

[parse]
trusted_networks = 192.0.2.0/24
authserv_id = %s

[blocklist]
min_reporters = 3
verified_weight = 2
not_spam_weight = 1
delist_after = 3d
allowlist_file = %s
org = %s
url = %s
nameservers = ns1.bl.test
%s
""" % (self.db.conninfo, AUTHSERV, self.allowlist, ORG, URL, extra))
        self.fbl("migrate", "--log-level", "warning")
        self.serial = 0

    def fbl(self, *argv, expect=0):
        p = subprocess.run([self.args.fbl, argv[0], "--config", self.config] + list(argv[1:]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if expect is not None and p.returncode != expect:
            raise Failure("fbl %s: exit %d, expected %d:\n%s%s" % (" ".join(argv), p.returncode,
                                                                  expect, p.stdout, p.stderr))
        return p

    def deliver(self, data, age_s=3600):
        """Into new/, named as delivered @age_s ago (the store's received_at)."""
        self.serial += 1
        name = "%d.M%dP%dQ%d.bltest" % (int(time.time()) - age_s, self.serial, os.getpid(),
                                        self.serial)
        tmp = os.path.join(self.md, "tmp", name)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.rename(tmp, os.path.join(self.md, "new", name))

    def complaints(self, ip, n, from_domain="shop.example", url_host="click.example", age_s=3600,
                   prefix="u", **kw):
        for k in range(n):
            self.deliver(arf("%s%d@isp%d.example" % (prefix, k, k), ip, from_domain, url_host,
                             **kw), age_s)

    def store(self):
        self.fbl("run", "--once", "--maildir", self.md, "--log-level", "warning")

    def export(self, kind, fmt, path, *extra):
        self.fbl("export", kind, "--format", fmt, "--output", path, *extra)
        with open(path) as fh:
            return fh.read()


def listed(text):
    """The entries of an rspamd map (one a line, '#' comments)."""
    return sorted(line.strip() for line in text.splitlines()
                  if line.strip() and not line.startswith("#"))


# ---- policy ------------------------------------------------------------------------------

def policy_world(w):
    """The cases; returns (expected IPs, expected domains)."""
    c = w.complaints
    c("203.0.113.1", 3)                                    # three reporters: listed
    c("203.0.113.2", 2)                                    # two: not
    for _ in range(5):                                     # one reporter, five reports: not
        w.deliver(arf("alone@isp.example", "203.0.113.3", "shop.example", "click.example"))
    c("203.0.113.4", 1, prefix="v", verified=True)         # verified 2 + 1 = 3: listed
    c("203.0.113.4", 1, prefix="w")
    c("203.0.113.5", 3)                                    # 3 - 1 not-spam = 2: not
    c("203.0.113.5", 1, prefix="ns", feedback="not-spam")
    c("203.0.113.6", 4, age_s=4 * 86400)                   # last complaint 4 days ago: delisted
    c("203.0.113.7", 4, age_s=8 * 86400)                   # out of the 7-day window
    c("192.0.2.9", 4)                                      # our trusted network
    c("198.51.100.5", 4)                                   # allowlisted network
    c("209.85.128.5", 4)                                   # Google's relay
    c("2001:db8:5::1", 3)                                  # IPv6
    # Domains: From domains and URL hosts, each with their own reporters.
    c("203.0.113.50", 3, from_domain="spam-from.example", url_host="spam-url.example",
      prefix="d")
    c("203.0.113.51", 2, from_domain="two-from.example", url_host="two-url.example", prefix="e")
    c("203.0.113.52", 3, from_domain="allowed.example", url_host="sub.allowed.example",
      prefix="f")
    c("203.0.113.53", 3, from_domain="gmail.com", url_host="old.example", prefix="g",
      age_s=5 * 86400)
    w.store()
    ips = ["2001:db8:5::1", "203.0.113.1", "203.0.113.4", "203.0.113.50", "203.0.113.52"]
    # shop.example and click.example: every case above names them.
    domains = ["click.example", "shop.example", "spam-from.example", "spam-url.example"]
    return ips, domains


def explain_checks(w):
    """IP or domain -> what `fbl blocklist explain` must print."""
    return {
        "203.0.113.1": ["3 distinct complainers", "score 3 >= min_reporters 3",
                        "Decision: listed"],
        "203.0.113.2": ["score 2 < min_reporters 3", "Decision: below_threshold"],
        "203.0.113.3": ["1 distinct complainers", "Decision: below_threshold"],
        "203.0.113.4": ["1 verified x verified_weight 2 = 2", "score 3", "Decision: listed"],
        "203.0.113.5": ["1 not-spam reporters x not_spam_weight 1 = -1", "score 2",
                        "Decision: below_threshold"],
        "203.0.113.6": ["Decision: delisted"],
        "203.0.113.7": ["0 distinct complainers", "Reports (newest first", "none in the window"],
        "192.0.2.9": ["Decision: trusted (192.0.2.0/24)"],
        "198.51.100.5": ["Decision: allowlisted (198.51.100.0/28)"],
        "209.85.128.5": ["Decision: provider (google)"],
        "sub.allowed.example": ["Decision: allowlisted (allowed.example)"],
        "gmail.com": ["Decision: provider (google)"],
        "spam-url.example": ["url_host", "Decision: listed"],
    }


def test_policy(args, work):
    w = World(args, work, "t_blocklist_policy")
    want_ips, want_domains = policy_world(w)
    out = os.path.join(work, "out")
    got = listed(w.export("ips", "rspamd", out))
    check(got == want_ips, "listed IPs %s, want %s" % (got, want_ips))
    got = listed(w.export("domains", "rspamd", out))
    check(got == want_domains, "listed domains %s, want %s" % (got, want_domains))
    # --min-reporters 2 lists the two-reporter cases (and the lone verified reporter's).
    got = listed(w.export("ips", "rspamd", out, "--min-reporters", "2"))
    check("203.0.113.2" in got and "203.0.113.51" in got and "203.0.113.3" not in got,
          "--min-reporters 2: %s" % got)
    # --since 2d: the same (everything listed is recent); --since 30m: nothing.
    got = listed(w.export("ips", "rspamd", out, "--since", "2d"))
    check(got == want_ips, "--since 2d: %s" % got)
    got = listed(w.export("ips", "rspamd", out, "--since", "30m"))
    check(got == [], "--since 30m: %s" % got)
    for entry, wants in explain_checks(w).items():
        text = w.fbl("blocklist", "explain", entry).stdout
        for want in wants:
            check(want in text, "explain %s: no %r in:\n%s" % (entry, want, text))
        check("@" not in text, "explain %s shows an address:\n%s" % (entry, text))
    # As fbl_analyst: the same, without any right on the tables.
    role = "bl_analyst_%d" % os.getpid()
    w.db.query("CREATE ROLE %s LOGIN IN ROLE fbl_analyst" % role)
    try:
        p = subprocess.run([args.fbl, "blocklist", "explain", "203.0.113.4", "--config",
                            w.config, "--db", "%s user=%s" % (w.db.conninfo, role)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        check(p.returncode == 0 and "Decision: listed" in p.stdout and "verified" in p.stdout,
              "explain as fbl_analyst: %d %s %s" % (p.returncode, p.stdout, p.stderr))
    finally:
        w.db.query("DROP ROLE %s" % role)
    # Usage and config errors are sysexits codes.
    check(w.fbl("export", "ips", "--format", "bind", "--output", out,
                expect=None).returncode == 64, "--format bind is not 64")
    check(w.fbl("export", "people", "--format", "rspamd", "--output", out,
                expect=None).returncode == 64, "export people is not 64")
    check(w.fbl("blocklist", "explain", "not a thing", expect=None).returncode == 64,
          "explain of a non-entry is not 64")
    # list_provider_relays = true: Google's relay is listed like any other.
    with open(w.config, "a") as fh:
        fh.write("list_provider_relays = true\n")
    got = listed(w.export("ips", "rspamd", out))
    check("209.85.128.5" in got, "list_provider_relays = true: %s" % got)
    log(NAME, "policy: %d IPs and %d domains listed as expected; %d cases explained"
        % (len(want_ips), len(want_domains), len(explain_checks(w))))


# ---- rbldnsd -----------------------------------------------------------------------------

def dig(port, name, rtype="A"):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=2", "+tries=1",
                          name, rtype], stdout=subprocess.PIPE, text=True, timeout=20)
    return out.stdout.strip()


def reverse4(ip):
    return ".".join(reversed(ip.split(".")))


def reverse6(ip):
    import ipaddress
    return ".".join(reversed(ipaddress.ip_address(ip).exploded.replace(":", "")))


def test_rbldnsd(args, work):
    need(shutil.which("rbldnsd") and shutil.which("dig"),
         "rbldnsd or dig is not installed (Debian packages rbldnsd, dnsutils)")
    need(os.getuid() == 0, "rbldnsd refuses to run as root and needs root to change user")
    w = World(args, work, "t_blocklist_rbldnsd")
    w.complaints("203.0.113.10", 3)                         # listed
    w.complaints("198.51.100.3", 3)                         # allowlisted
    w.complaints("192.0.2.10", 3)                           # trusted
    w.complaints("203.0.113.12", 3, age_s=4 * 86400)        # delisted
    w.complaints("203.0.113.13", 1)                         # one reporter
    w.complaints("2001:db8:6::10", 3)                       # listed, IPv6
    w.complaints("203.0.113.14", 3, from_domain="spam-a.example", url_host="allowed.example",
                 prefix="d")
    w.store()
    zones = os.path.join(work, "zones")
    os.makedirs(zones)
    os.chmod(work, 0o755)
    os.chmod(zones, 0o755)
    ips, doms = os.path.join(zones, "ips"), os.path.join(zones, "domains")
    text = w.export("ips", "rbldnsd", ips)
    check(text.count("$SOA ") == 1 and "$NS 300 ns1.bl.test." in text and "$TTL 300" in text
          and ":127.0.0.2:Listed by %s for spam complaints, see %s/$" % (ORG, URL) in text,
          "the ip4trie dataset's header:\n%s" % text)
    check(os.path.exists(ips + ".ip6"), "no %s.ip6 beside it" % ips)
    w.export("domains", "rbldnsd", doms)
    port = free_port()
    rbl = Proc(["rbldnsd", "-n", "-u", "rbldns", "-b", "127.0.0.1/%d" % port, "-c", "1",
                "bl.test:ip4trie:%s" % ips, "bl.test:ip6trie:%s.ip6" % ips,
                "dbl.test:dnset:%s" % doms], os.path.join(work, "rbldnsd.log"))
    try:
        wait_for("rbldnsd to answer", lambda: dig(port, "bl.test", "SOA") != "", 20, 0.3)
        t0 = time.monotonic()
        a = dig(port, reverse4("203.0.113.10") + ".bl.test")
        check(a == "127.0.0.2", "203.0.113.10 (listed): %r" % a)
        txt = dig(port, reverse4("203.0.113.10") + ".bl.test", "TXT")
        check("Listed by %s for spam complaints, see %s/203.0.113.10" % (ORG, URL) in txt,
              "TXT of 203.0.113.10: %r" % txt)
        a = dig(port, reverse6("2001:db8:6::10") + ".bl.test")
        check(a == "127.0.0.2", "2001:db8:6::10 (listed): %r" % a)
        for ip, why in (("198.51.100.3", "allowlisted"), ("192.0.2.10", "trusted"),
                        ("203.0.113.12", "delisted"), ("203.0.113.13", "one reporter"),
                        ("203.0.113.99", "never reported")):
            a = dig(port, reverse4(ip) + ".bl.test")
            check(a == "", "%s (%s) is answered: %r" % (ip, why, a))
        a = dig(port, "spam-a.example.dbl.test")
        check(a == "127.0.0.2", "spam-a.example (listed): %r" % a)
        for d in ("allowed.example", "clean.example"):
            a = dig(port, d + ".dbl.test")
            check(a == "", "%s is answered: %r" % (d, a))
        queries = time.monotonic() - t0
        # A newly listed IP, exported while rbldnsd runs: answered once it sees the mtime.
        w.complaints("203.0.113.20", 3, prefix="late")
        w.store()
        time.sleep(1.1)  # mtimes in whole seconds: the next export's must differ
        w.export("ips", "rbldnsd", ips)
        t1 = time.monotonic()
        wait_for("rbldnsd to answer the re-exported 203.0.113.20",
                 lambda: dig(port, reverse4("203.0.113.20") + ".bl.test") == "127.0.0.2", 15, 0.2)
        log(NAME, "rbldnsd: 12 queries in %.2f s; a re-export answered after %.1f s"
            % (queries, time.monotonic() - t1))
        check(dig(port, reverse4("203.0.113.10") + ".bl.test") == "127.0.0.2",
              "203.0.113.10 gone after the re-export")
    finally:
        rbl.stop()
        if rbl.p.returncode not in (0, -signal.SIGTERM):
            log(NAME, "rbldnsd output:\n%s" % rbl.output())


# ---- rspamd ------------------------------------------------------------------------------

def test_rspamd(args, work):
    need(shutil.which("rspamd"), "rspamd is not installed")
    w = World(args, work, "t_blocklist_rspamd")
    w.complaints("203.0.113.30", 3, from_domain="spam-b.example", prefix="r")
    w.complaints("203.0.113.31", 1, from_domain="ok-b.example", prefix="s")
    w.store()
    d = os.path.join(work, "rspamd")
    local = os.path.join(d, "etc", "local.d")
    for sub in ("etc/local.d", "db", "run", "log"):
        os.makedirs(os.path.join(d, sub))
    ips, doms = os.path.join(d, "fbl-ips.map"), os.path.join(d, "fbl-domains.map")
    w.export("ips", "rspamd", ips)
    w.export("domains", "rspamd", doms)
    ports = {k: free_port() for k in ("controller", "normal", "proxy", "fuzzy")}
    files = {
        "worker-controller.inc": 'bind_socket = "127.0.0.1:%d";\n' % ports["controller"],
        "worker-normal.inc": 'bind_socket = "127.0.0.1:%d";\n' % ports["normal"],
        "worker-proxy.inc": 'bind_socket = "127.0.0.1:%d";\n' % ports["proxy"],
        "worker-fuzzy.inc": 'bind_socket = "127.0.0.1:%d";\n' % ports["fuzzy"],
        "options.inc": 'dns { nameserver = ["127.0.0.1:1"]; timeout = 0.2s; retransmits = 1; }\n',
        "logging.inc": 'type = "file"; filename = "%s/log/rspamd.log"; level = "info";\n' % d,
        "multimap.conf": """FBL_LISTED_IP {
  type = "ip";
  map = "file://%s";
  score = 7.5;
  description = "Source IP listed for spam complaints";
}
FBL_LISTED_FROM {
  type = "from";
  filter = "email:domain";
  map = "file://%s";
  score = 4.5;
  description = "Sender domain listed for spam complaints";
}
""" % (ips, doms),
    }
    for name, text in files.items():
        with open(os.path.join(local, name), "w") as fh:
            fh.write(text)
    argv = ["rspamd", "-f", "-i", "-c", "/etc/rspamd/rspamd.conf",
            "--var", "LOCAL_CONFDIR=%s/etc" % d, "--var", "DBDIR=%s/db" % d,
            "--var", "RUNDIR=%s/run" % d, "--var", "LOGDIR=%s/log" % d]
    proc = Proc(argv, os.path.join(work, "rspamd.out"))
    base = "http://127.0.0.1:%d" % ports["normal"]

    def ping():
        try:
            with urllib.request.urlopen(base + "/ping", timeout=1) as r:
                return r.read().strip() == b"pong"
        except OSError:
            return False

    def checkv2(ip, sender):
        body = ("From: <%s>\r\nTo: <rcpt@bl.test>\r\nSubject: hello\r\nMessage-ID: <m-%s@x>\r\n"
                "Date: Mon, 07 Dec 2026 08:00:00 +0000\r\n\r\nHello there, a short mail.\r\n"
                % (sender, ip)).encode()
        req = urllib.request.Request(base + "/checkv2", data=body, method="POST",
                                     headers={"IP": ip, "From": sender, "Rcpt": "rcpt@bl.test",
                                              "Helo": "client.example", "Hostname": "client.example"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    try:
        t0 = time.monotonic()
        wait_for("rspamd to answer /ping", ping, 180, 0.5)
        log(NAME, "rspamd up after %.1f s" % (time.monotonic() - t0))
        res = checkv2("203.0.113.30", "sales@clean-c.example")
        sym = res.get("symbols", {})
        check("FBL_LISTED_IP" in sym and abs(sym["FBL_LISTED_IP"]["score"] - 7.5) < 0.01,
              "a mail from listed 203.0.113.30: no FBL_LISTED_IP 7.5 in %s" % sorted(sym))
        check(res.get("score", 0) >= 7.5, "its score %s" % res.get("score"))
        res = checkv2("203.0.113.31", "sales@clean-c.example")
        sym = res.get("symbols", {})
        check("FBL_LISTED_IP" not in sym, "unlisted 203.0.113.31 scored FBL_LISTED_IP")
        check("FBL_LISTED_FROM" not in sym, "clean-c.example scored FBL_LISTED_FROM")
        res = checkv2("203.0.113.31", "sales@spam-b.example")
        sym = res.get("symbols", {})
        check("FBL_LISTED_FROM" in sym, "MAIL FROM listed spam-b.example: no FBL_LISTED_FROM in %s"
              % sorted(sym))
        log(NAME, "rspamd: listed IP scored %.2f, listed sender domain matched"
            % checkv2("203.0.113.30", "x@clean-c.example")["score"])
    except Failure:
        log(NAME, "rspamd log:\n%s" % open(os.path.join(d, "log", "rspamd.log"),
                                            errors="replace").read()[-3000:])
        raise
    finally:
        proc.stop(timeout=30)


# ---- postfix -----------------------------------------------------------------------------

def swaks(port, sender, client_ip):
    out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--from",
                          sender, "--to", "spamalert@fbl.test", "--xclient-addr", client_ip,
                          "--quit-after", "RCPT", "--timeout", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    return out.stdout


def test_postfix(args, work):
    for tool in ("postfix", "postconf", "postmap", "swaks"):
        need(shutil.which(tool), "%s is not installed (Debian packages postfix and swaks)" % tool)
    need(os.getuid() == 0, "postfix -c DIR start needs root")
    import peers
    w = World(args, work, "t_blocklist_postfix")
    w.complaints("203.0.113.40", 3, from_domain="spam-p.example", prefix="p")
    w.complaints("203.0.113.41", 1, from_domain="ok-p.example", prefix="q")
    w.store()
    tables = os.path.join(work, "tables")
    os.makedirs(tables)
    ips, doms = os.path.join(tables, "ips.cidr"), os.path.join(tables, "senders")
    w.export("ips", "postfix", ips)
    w.export("domains", "postfix", doms)
    run(["postmap", "hash:" + doms])
    nobody = pwd.getpwnam("nobody")
    home = peers.mail_home(work, "nobody")
    peers.make_maildir(os.path.join(home, "mail", "spamalert"), nobody.pw_uid, nobody.pw_gid)
    try:
        pf = peers.Postfix(work, os.path.join(home, "mail"), nobody.pw_uid, nobody.pw_gid)
    except peers.Skip as e:
        raise Skip(str(e))
    pf.postconf("smtpd_authorized_xclient_hosts=127.0.0.1",
                "smtpd_client_restrictions=check_client_access cidr:%s" % ips,
                "smtpd_sender_restrictions=check_sender_access hash:%s" % doms)
    pf.start()
    try:
        text = "Listed by %s for spam complaints, see %s/" % (ORG, URL)
        out = swaks(pf.port, "someone@clean-p.example", "203.0.113.40")
        check("554 5.7.1" in out and "%s203.0.113.40" % text in out,
              "a client at listed 203.0.113.40 is not refused with the text:\n%s" % out)
        out = swaks(pf.port, "someone@clean-p.example", "203.0.113.41")
        check("<** " not in out and "250 2.1.5" in out,
              "a client at unlisted 203.0.113.41 is refused:\n%s" % out)
        out = swaks(pf.port, "sales@spam-p.example", "203.0.113.41")
        check("554 5.7.1 <sales@spam-p.example>: Sender address rejected: %sspam-p.example"
              % text in out, "MAIL FROM listed spam-p.example is not refused:\n%s" % out)
        out = swaks(pf.port, "sales@ok-p.example", "203.0.113.41")
        check("<** " not in out and "250 2.1.5" in out,
              "MAIL FROM unlisted ok-p.example is refused:\n%s" % out)
        log(NAME, "postfix %s refused the listed IP and sender domain, accepted the others"
            % run(["postconf", "-c", pf.dir, "-h", "mail_version"]).strip())
    except Failure:
        log(NAME, "postfix log:\n%s" % pf.logs())
        raise
    finally:
        pf.stop()


# ---- sink --------------------------------------------------------------------------------

def test_sink(args, work):
    out = os.path.join(work, "out")
    os.makedirs(out)
    ips = os.path.join(out, "ips.map")
    rbl = os.path.join(out, "ips.rbldnsd")
    doms = os.path.join(out, "domains.map")
    w = World(args, work, "t_blocklist_sink",
              "export_interval = 1s\nexport_ips_rspamd = %s\nexport_ips_rbldnsd = %s\n"
              "export_domains_rspamd = %s\n" % (ips, rbl, doms))
    w.complaints("203.0.113.60", 3, from_domain="spam-s.example", prefix="a")
    port = free_port()
    proc = Proc([args.fbl, "run", "--config", w.config, "--maildir", w.md, "--metrics",
                 "127.0.0.1:%d" % port], os.path.join(work, "fbl-run.log"))

    def file_has(path, entry):
        try:
            with open(path) as fh:
                return entry in listed(fh.read())
        except OSError:
            return False

    def metrics():
        return parse_metrics(scrape(port)[2])

    try:
        wait_for("203.0.113.60 in the exported map", lambda: file_has(ips, "203.0.113.60"), 30)
        check(file_has(doms, "spam-s.example"), "spam-s.example not in %s" % doms)
        check(os.path.exists(rbl + ".ip6"), "no %s.ip6" % rbl)
        wait_for("the listed gauge", lambda: metrics().get(
            'fbl_blocklist_listed{kind="ip"}') == 1, 10)
        m = metrics()
        first = m.get('fbl_blocklist_last_export_timestamp_seconds{kind="ip"}', 0)
        check(abs(first - time.time()) < 60, "last export time %s" % first)
        exports = m.get('fbl_blocklist_exports_total{kind="ip"}')
        mtime = os.stat(ips).st_mtime
        time.sleep(3.5)  # three turns without a change: nothing rewritten
        check(os.stat(ips).st_mtime == mtime, "%s rewritten without a change" % ips)
        check(metrics().get('fbl_blocklist_exports_total{kind="ip"}') == exports,
              "exports counted without a change")
        t0 = time.monotonic()
        w.complaints("203.0.113.61", 3, prefix="b")
        wait_for("203.0.113.61 in the exported map", lambda: file_has(ips, "203.0.113.61"), 30)
        log(NAME, "sink: a newly listed IP in the files %.1f s after its reports arrived"
            % (time.monotonic() - t0))
        wait_for("the listed gauge at 2", lambda: metrics().get(
            'fbl_blocklist_listed{kind="ip"}') == 2, 10)
        check(metrics().get('fbl_blocklist_exports_total{kind="ip"}') == exports + 1,
              "not one more export")
        with open(rbl) as fh:
            check("203.0.113.61" in fh.read(), "203.0.113.61 not in the rbldnsd dataset")
    finally:
        rc = proc.stop()
        if rc != 0:
            log(NAME, "fbl run exited %s:\n%s" % (rc, proc.output()[-3000:]))
    check(rc == 0, "fbl run exited %s" % rc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("policy", "rbldnsd", "rspamd", "postfix", "sink"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--pg-conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    work = fresh_dir(os.path.abspath(args.workdir))
    fn = {"policy": test_policy, "rbldnsd": test_rbldnsd, "rspamd": test_rspamd,
          "postfix": test_postfix, "sink": test_sink}[args.mode]

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
