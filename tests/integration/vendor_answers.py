#!/usr/bin/python3
"""Every answer a real HTTP server can give, against a running `fbl run`.

usage: vendor_answers.py --fbl BIN --conninfo-file F --workdir DIR

One [vendor:NAME] per row of the table below, each pointed at its own path on a raw
HTTP(S) server on loopback (raw_http.py) that answers with exactly the bytes of that
row: every common status with and without a body (204 included: rspamd answers it to
short messages), bodies that are not JSON, not UTF-8 or 64 MiB long, a body that drips,
a connection reset mid-body, silence, a close without an answer, bytes that are not
HTTP, redirects to another host and to file://, and a certificate nobody vouches for.

For each row it checks what becomes of the vendor's outbox rows (sent, dead letter
after max_attempts, dead at once, kept pending) and what is recorded as the reason,
that no redirect was followed (the other host sees no request), and above all that
`fbl run` lives through all of it: it stores every mail, keeps running, and stops
cleanly (exit 0) on SIGTERM. Rows run in rounds of a dozen vendors (each vendor holds
a PostgreSQL connection).
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import raw_http as rh  # noqa: E402
import vendor_feed as vf  # noqa: E402

ROUND = 12
MAILS_PER_ROUND = 2
JSON = b'{"accepted": 1}'
NOT_UTF8 = b'{"error": "\xff\xfe\xc3\x28 bad \xe2\x82 bytes\x00\x01"}'

# (name, server behaviour, expected outcome). Outcomes:
#   sent      every row sent
#   refused   every row dead at once, last_error "HTTP <status>…"
#   gave_up   every row dead after max_attempts (2) failed attempts
#   stopped   credentials refused: rows stay pending, untried; the log says STOPPED
#   throttled rows stay pending, not counted as attempts, last_error "HTTP 429…"
def table(other):
    rows = []
    for status in (200, 202, 204, 400, 401, 403, 404, 409, 413, 429, 500, 502, 503):
        expect = ("sent" if status < 300 else "stopped" if status in (401, 403)
                  else "throttled" if status == 429 else "gave_up" if status >= 500
                  else "refused")
        rows.append(("s%d-body" % status, rh.answer(status, JSON, (("Content-Type",
                                                                     "application/json"),)),
                     expect))
        rows.append(("s%d-empty" % status, rh.answer(status), expect))
    rows += [
        ("s204-no-length", rh.answer(204, b"", length="omit"), "sent"),
        ("s200-html", rh.answer(200, b"<html><body>It works!</body></html>",
                                (("Content-Type", "text/html"),)), "sent"),
        ("s200-not-utf8", rh.answer(200, NOT_UTF8), "sent"),
        ("s500-not-utf8", rh.answer(500, NOT_UTF8), "gave_up"),
        ("s400-not-utf8", rh.answer(400, NOT_UTF8), "refused"),
        ("s200-64mib", rh.big(200, 64 << 20), "sent"),
        ("s500-64mib", rh.big(500, 64 << 20), "gave_up"),
        ("s200-short-body", rh.answer(200, b"{}", length=5000), "gave_up"),
        ("s200-drip", rh.drip(200, 100, 0.5), "gave_up"),
        ("s200-reset", rh.reset_after(200, 10000, 100), "gave_up"),
        ("hang", rh.silence(), "gave_up"),
        ("close", rh.close_now(), "gave_up"),
        ("not-http", rh.raw(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), "gave_up"),
        ("r301-other-host", rh.answer(301, b"", (("Location", other + "steal"),)), "gave_up"),
        ("r302-other-host", rh.answer(302, b"moved", (("Location", other + "steal"),)),
         "gave_up"),
        ("r307-other-host", rh.answer(307, b"", (("Location", other + "steal"),)), "gave_up"),
        ("r302-file", rh.answer(302, b"", (("Location", "file:///etc/shadow"),)), "gave_up"),
        ("r301-same-host", rh.answer(301, b"", (("Location", "/s200-body"),)), "gave_up"),
    ]
    return rows


def self_signed(work):
    d = os.path.join(work, "tls")
    os.makedirs(d, exist_ok=True)
    key, crt = os.path.join(d, "self.key"), os.path.join(d, "self.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return crt, key


def vendor_section(name, url, token):
    return """
[vendor:%s]
type = http-json
url = %s
token_file = %s
timeout = 2s
max_attempts = 2
retry_max_wait = 1s
""" % (name, url, token)


def rows_of(db, vendor):
    """(state, attempts, last_error) of each outbox row of @vendor."""
    try:
        out = db.q("SELECT state, attempts, coalesce(last_error, '') FROM fbl.vendor_outbox "
                   "WHERE vendor = '%s' ORDER BY report_id" % vendor)
    except subprocess.CalledProcessError:
        return []  # not migrated yet
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line]


def settled(rows, expect):
    if len(rows) != MAILS_PER_ROUND:
        return False
    if expect == "sent":
        return all(s == "sent" for s, _, _ in rows)
    if expect in ("refused", "gave_up"):
        return all(s == "dead" for s, _, _ in rows)
    if expect == "stopped":  # untouched; the log says why (checked by the caller)
        return all(s == "pending" for s, _, _ in rows)
    return all(s == "pending" and e != "" for s, _, e in rows)  # throttled


def verdict(name, rows, expect):
    """What is wrong with @rows for @expect, or None."""
    if not settled(rows, expect):
        return "expected %s, outbox rows %s" % (expect, rows)
    for state, attempts, error in rows:
        if len(error.encode()) > 800:
            return "last_error is %d bytes: not bounded" % len(error.encode())
        if any(ord(ch) < 0x20 for ch in error):
            return "last_error holds control characters: %r" % error
        if expect == "refused" and not error.startswith("HTTP 4"):
            return "refused, but last_error is %r" % error
        if expect == "gave_up" and not error.startswith("gave up after 2 attempts"):
            return "dead, but last_error is %r" % error
        if expect == "throttled" and (attempts != "0" or not error.startswith("HTTP 429")):
            return "throttled: attempts %s, last_error %r" % (attempts, error)
        if expect == "stopped" and attempts != "0":
            return "credentials refused, yet attempts %s" % attempts
        if name.startswith("r30") and "not followed" not in error:
            return "a redirect, but last_error does not say it was not followed: %r" % error
    return None


def run_round(a, db, work, k, rows, server, tls_server, token):
    mbox = vf.Maildir(os.path.join(work, "mbox%d" % k))
    sections = []
    for name, _, _ in rows:
        srv = tls_server if name == "tls-self-signed" else server
        sections.append(vendor_section(name, srv.url(name), token))
    conf = vf.write(os.path.join(work, "fbl%d.conf" % k),
                    vf.base_config(db, mbox.path, "".join(sections)))
    fbl = vf.Proc("run%d" % k, [a.fbl, "run", "--config", conf], work).start()
    try:
        for i in range(MAILS_PER_ROUND):
            n = k * 100 + i
            mbox.deliver(vf.make_arf(n, "rep%d@isp.example.net" % n,
                                     "victim%d@customer.example.net" % n))
        def done():
            text = fbl.text()
            return all(settled(rows_of(db, n), e) and
                       (e != "stopped" or "vendor=%s STOPPED" % n in text) for n, _, e in rows)
        vf.wait_until(done, 120, "round %d: every vendor's rows settled" % k, step=0.5)
        stored = db.count("SELECT count(*) FROM fbl.mails")
        vf.check(stored == (k + 1) * MAILS_PER_ROUND,
                 "round %d: %d mails stored, expected %d" % (k, stored,
                                                             (k + 1) * MAILS_PER_ROUND))
        vf.check(fbl.alive(), "round %d: fbl run died: %s" % (k, fbl.text()[-3000:]))
        for name, _, expect in rows:
            why = verdict(name, rows_of(db, name), expect)
            vf.check(why is None, "%s: %s" % (name, why))
            if why is None:
                r = rows_of(db, name)[0]
                vf.log("%-18s %-9s state=%s attempts=%s last_error=%.90s"
                       % (name, expect, r[0], r[1], r[2]))
    finally:
        rc = fbl.stop(timeout=60)
    text = fbl.text()
    vf.check(rc == 0, "round %d: fbl run exited %s after SIGTERM:\n%s" % (k, rc, text[-3000:]))
    for name, _, expect in rows:
        if expect == "stopped":
            vf.check("vendor=%s STOPPED" % name in text,
                     "%s: no loud STOPPED line for refused credentials" % name)
    for bad in ("AddressSanitizer", "runtime error:", "SIGSEGV", "GLib-CRITICAL"):
        vf.check(bad not in text, "round %d: %r in fbl's log" % (k, bad))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--only", help="run only the rows whose name contains this")
    a = ap.parse_args()
    a.fbl = os.path.abspath(a.fbl)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    work = a.workdir
    t0 = time.time()
    elsewhere = rh.RawServer({"steal": rh.answer(200, JSON)}).start()
    rows = table(elsewhere.url())
    server = rh.RawServer({name: how for name, how, _ in rows}).start()
    tls_server = rh.RawServer({"tls-self-signed": rh.answer(200, JSON)},
                              tls=self_signed(work)).start()
    rows.append(("tls-self-signed", None, "gave_up"))
    if a.only:
        rows = [r for r in rows if a.only in r[0]]
    token = vf.write(os.path.join(work, "token"), "a-test-token\n")
    db = vf.Db(a.conninfo_file, "t_vendor_answers")
    try:
        for k in range(0, len(rows), ROUND):
            run_round(a, db, work, k // ROUND, rows[k:k + ROUND], server, tls_server, token)
    finally:
        db.drop()
        for s in (server, tls_server, elsewhere):
            s.stop()
    vf.check(elsewhere.count() == 0,
             "a redirect was followed: the other host got %d request(s)" % elsewhere.count())
    vf.check(tls_server.count() == 0, "a request went through an unverified TLS connection")
    vf.log("%d answers in %.1f s" % (len(rows), time.time() - t0))
    if vf.FAILURES:
        print("%d failure(s); logs in %s" % (len(vf.FAILURES), work))
        return 1
    vf.log("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
