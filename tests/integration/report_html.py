#!/usr/bin/python3
"""`fbl report --format html` end to end, on a database of its own in the "pg" fixture's
cluster, opened in Debian's headless Chromium.

usage: report_html.py --fbl BIN --conninfo-file F --samples DIR --workdir DIR [--chromium BIN]

Every sample of tests/corpus/samples and one hostile report (a subject, From and URL
written to break out of HTML and SVG) are delivered into a Maildir an hour ago and
stored by `fbl run --once`; outbox rows of two vendors (one named like an <img> tag)
are added, and the hostile strings are also written into the stored domains and URL
host (what a parser bug could let through). Then, for one --since/--until window:

numbers   every number and text of the HTML page (read with html.parser from its
          data-* attributes) equals the JSON format's, section by section: rows,
          "others" and "total", the summary and the window.
file      the page references nothing outside itself: no http(s)://, no //, no
          src=, href=, url(, @import, no <script>, no on* attribute.
browser   Chromium opens it through the DevTools protocol (--remote-debugging-pipe,
          JSON over fds 3 and 4): no console message, no exception, no log entry of
          level warning or error, no network request but the file itself; the DOM
          has each chart with as many bars as the JSON section has rows (columns:
          as many segments as non-zero cells), no <script>, no on* attribute, and
          the hostile strings as text; a 1280 px screenshot is kept in the workdir
          (report-html.png, and its first 1500 px: report-html-top.png).

Exits 77 when chromium is missing. Standard library only; psql runs the queries.
"""
import argparse
import base64
import html.parser
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rollup_check  # noqa: E402

FAILURES = []
HOSTILE_SUBJECT = '<script>alert(1)</script> "><svg onload=alert(2)> & \'x\''
HOSTILE_DOMAIN = '"><svg onload=alert(3)>.example'
HOSTILE_HOST = "<img src=x onerror=alert(4)>"
HOSTILE_VENDOR = "<img src=//evil.example/x onerror=alert(5)>"
CHARTS = {  # chart id -> (section, what counts as its bars)
    "chart-ips": ("top_source_ips", "rows"),
    "chart-senders": ("top_sender_domains", "rows"),
    "chart-hosts": ("top_url_hosts", "rows"),
    "chart-campaigns": ("campaigns", "rows"),
    "chart-fp": ("false_positives", "rows"),
    "chart-reporters": ("reporters", "rows"),
    "chart-lag": ("vendor_feed", "rows"),
    "chart-dead": ("vendor_feed", "rows"),
    "chart-rejects": ("rejects_by_reason", "rows"),
    "chart-complaints": ("complaints_over_time", "cells"),
}

HOSTILE_MAIL = """Return-Path: <fbl@feedback.example.net>
From: Example Feedback Loop <fbl@feedback.example.net>
To: spamalert@example.com
Subject: FBL report
Date: Wed, 17 Dec 2025 10:00:00 +0000
Message-ID: <hostile-html@feedback.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="=_b"

--=_b
Content-Type: text/plain; charset=us-ascii

An abuse report.

--=_b
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/2.1
Version: 1
Source-IP: 192.0.2.66

--=_b
Content-Type: message/rfc822

Received: from mail.evil.example (mail.evil.example [192.0.2.66])
\tby mx3.feedback.example.net with ESMTP id q7Hx3; Tue, 16 Dec 2025 21:14:03 +0100
From: "<script>alert(6)</script>" <x@evil.example>
To: alice@example.net
Subject: %s
Date: Tue, 16 Dec 2025 21:13:59 +0100
Message-ID: <hostile@evil.example>
Content-Type: text/plain; charset=us-ascii

Visit http://evil.example/"><svg/onload=alert(7)> now.

--=_b--
""" % HOSTILE_SUBJECT


def log(msg):
    print("report_html: %s" % msg, flush=True)


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        log("FAIL: %s" % msg)


def psql(conninfo, sql):
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    out = subprocess.run(["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, stdout=subprocess.PIPE, text=True, env=env)
    return out.stdout.strip()


def fbl(args, *argv, expect=0):
    p = subprocess.run([args.fbl, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if expect is not None and p.returncode != expect:
        check(False, "fbl %s: exit %d, expected %d: %s" % (" ".join(argv), p.returncode, expect,
                                                           p.stderr.strip()))
    return p


def fresh_db(admin, name):
    psql(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    psql(admin, "CREATE DATABASE %s" % name)
    psql(admin, "ALTER DATABASE %s SET fbl.duplicate_window = '0'" % name)
    return "%s dbname=%s" % (admin, name)


def fill(args, db, work):
    fbl(args, "migrate", "--db", db, "--log-level", "warning")
    md = os.path.join(work, "spamalert")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub))
    t = int(time.time()) - 3600
    names = sorted(n for n in os.listdir(args.samples) if n.endswith(".eml"))
    for i, name in enumerate(names):
        shutil.copy(os.path.join(args.samples, name),
                    os.path.join(md, "new", "%d.M%dP1Q%d.html" % (t + i, i, i)))
    # Eight reports of the hostile message, so it ranks in every --top 5 table.
    for i in range(8):
        with open(os.path.join(md, "new", "%d.M%dP2Q0.hostile" % (t, i)), "w") as f:
            f.write(HOSTILE_MAIL.replace("<hostile-html@", "<hostile-html-%d@" % i)
                    .replace("\n", "\r\n"))
    fbl(args, "run", "--once", "--maildir", md, "--db", db, "--log-level", "warning")
    esc = lambda s: s.replace("'", "''")  # noqa: E731
    psql(db, "UPDATE fbl.reports SET from_domain = '%s' "
             "WHERE subject LIKE '%%<script>%%'" % esc(HOSTILE_DOMAIN))
    psql(db, "UPDATE fbl.report_urls SET host = '%s' WHERE host = 'evil.example'"
         % esc(HOSTILE_HOST))
    psql(db, "INSERT INTO fbl.vendor_outbox (report_id, received_at, vendor) "
             "SELECT id, received_at, v FROM fbl.reports, "
             "unnest(ARRAY['example', '%s']) v" % esc(HOSTILE_VENDOR))
    psql(db, "UPDATE fbl.vendor_outbox SET state = 'sent', sent_at = now() "
             "WHERE report_id < '8' AND vendor = 'example'")
    psql(db, "UPDATE fbl.vendor_outbox SET state = 'dead' WHERE report_id < '4' AND vendor <> "
             "'example'")
    # The edits above went through the rollups' update triggers (schema 012).
    bad = rollup_check.mismatches(db)
    check(not bad, "rollups after editing reports and URLs: %s" % bad)


# ---- the page, as data -------------------------------------------------------------

class Page(html.parser.HTMLParser):
    """The data-* structure of report_html.h: window, summary, sections' lines."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.window, self.summary, self.sections = {}, None, {}
        self.kinds, self.section, self.line = {}, None, None
        self.tags, self.attrs_seen = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        self.attrs_seen += [k for k, _ in attrs]
        if tag == "html":
            self.window = {"since": a.get("data-since"), "until": a.get("data-until"),
                           "period": a.get("data-period"),
                           "until_now": a.get("data-until-now") == "true"}
        elif tag == "dl" and a.get("data-section") == "summary":
            self.summary = {}
        elif tag == "dd" and self.summary is not None and "data-col" in a:
            self.summary[a["data-col"]] = int(a["data-v"]) if "data-v" in a else None
        elif tag == "table" and "data-section" in a:
            self.section = a["data-section"]
            self.sections[self.section] = {"rows": []}
            self.kinds = {}
        elif tag == "th" and "data-col" in a:
            self.kinds[a["data-col"]] = a["data-kind"]
        elif tag == "tr" and self.section and a.get("data-kind"):
            self.line = {}
            if a["data-kind"] == "row":
                self.sections[self.section]["rows"].append(self.line)
            else:
                self.line["rows"] = int(a["data-rows"])
                self.sections[self.section][a["data-kind"]] = self.line
        elif tag == "td" and self.line is not None and "data-col" in a:
            self.line[a["data-col"]] = typed(self.kinds[a["data-col"]], a.get("data-v"))

    def handle_endtag(self, tag):
        if tag == "table":
            self.section = None
        elif tag == "tr":
            self.line = None


def typed(kind, v):
    if v is None:
        return None
    if kind in ("int", "seconds", "bytes"):
        return int(v)
    if kind == "share":
        return float(v)
    return v


def same(a, b):
    """JSON values and the page's: floats within rounding."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) < 1e-9
    return a == b


def compare(doc, page):
    for key in ("since", "until", "period", "until_now"):
        check(doc[key] == page.window.get(key), "window %s: json %r, html %r"
              % (key, doc[key], page.window.get(key)))
    check(doc["summary"] == page.summary, "summary: json %s, html %s"
          % (doc["summary"], page.summary))
    names = [k for k in doc if isinstance(doc[k], dict) and "rows" in doc[k]]
    check(sorted(names) == sorted(page.sections), "sections: json %s, html %s"
          % (sorted(names), sorted(page.sections)))
    compared = 0
    for name in names:
        want, got = doc[name], page.sections.get(name, {})
        for line in ("others", "total"):
            w, g = want.get(line), got.get(line)
            check(w is not None and g is not None and w.keys() == g.keys() and
                  all(same(w[k], g[k]) for k in w), "%s %s: json %s, html %s"
                  % (name, line, w, g))
        check(len(want["rows"]) == len(got.get("rows", [])), "%s: %d rows in json, %d in html"
              % (name, len(want["rows"]), len(got.get("rows", []))))
        for i, (w, g) in enumerate(zip(want["rows"], got.get("rows", []))):
            ok = w.keys() == g.keys() and all(same(w[k], g[k]) for k in w)
            check(ok, "%s row %d: json %s, html %s" % (name, i + 1, w, g))
            compared += len(w)
    return compared


class Markup(html.parser.HTMLParser):
    """The page's tags, attributes and style sheet: what a browser could fetch or run."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.style, self.in_style = set(), [], "", False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        self.in_style = tag == "style"

    def handle_endtag(self, tag):
        self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            self.style += data


FETCHING_TAGS = {"script", "img", "iframe", "frame", "link", "object", "embed", "base", "image",
                 "use", "video", "audio", "source", "picture", "form", "a", "foreignobject"}
FETCHING_ATTRS = {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster",
                  "data", "background", "ping"}


def file_is_closed(text):
    """Nothing outside the page: no element or attribute that fetches, no handler, no URL in
    the style; the text (escaped) may say what it likes."""
    m = Markup()
    m.feed(text)
    check(not m.tags & FETCHING_TAGS, "the page has the tags %s" % (m.tags & FETCHING_TAGS))
    bad = [a for a in m.attrs if a[1] in FETCHING_ATTRS or a[1].startswith("on")]
    check(not bad, "the page has the attributes %s" % bad[:3])
    urls = [a for a in m.attrs if a[1] not in ("data-v", "content") and
            re.search(r"url\(|://|^//", a[2], re.I)]
    check(not urls, "attribute values with URLs: %s" % urls[:3])
    check(not re.search(r"url\(|@import|//", m.style, re.I), "the style sheet fetches")
    check(text.count("<style>") == 1 and "<script" not in text, "one style, no script")
    metas = [dict([(k, v)]) for t, k, v in m.attrs if t == "meta"]
    check(any("default-src 'none'" in d.get("content", "") for d in metas),
          "the page has a Content-Security-Policy of default-src 'none'")


# ---- Chromium through the DevTools protocol -----------------------------------------

class Browser:
    """Chromium with --remote-debugging-pipe: NUL-terminated JSON in on fd 3, out on fd 4."""

    def __init__(self, chromium, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)
        argv = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-pipe", "--user-data-dir=%s" % profile,
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,2000",
                "about:blank"]
        # pass_fds keeps 3 and 4 open: the child closes other descriptors after preexec_fn.
        self.proc = subprocess.Popen(argv, preexec_fn=fds, pass_fds=(3, 4),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.next_id, self.buf, self.events = 0, b"", []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def read(self, timeout):
        end = time.monotonic() + timeout
        while b"\0" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.from_chrome], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=30):
        want = self.send(method, params, session)
        while True:
            msg = self.read(timeout)
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method, timeout=30):
        for i, msg in enumerate(self.events):
            if msg.get("method") == method:
                return self.events.pop(i)
        while True:
            msg = self.read(timeout)
            self.events.append(msg)
            if msg.get("method") == method:
                return msg

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (OSError, TimeoutError, EOFError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)


DOM_PROBE = """(() => {
  const charts = {};
  for (const svg of document.querySelectorAll('svg.chart')) {
    charts[svg.id] = {bars: svg.querySelectorAll('rect.bar').length,
                      first: svg.querySelectorAll('rect.bar[data-series="0"]').length,
                      title: !!svg.querySelector('title'), desc: !!svg.querySelector('desc')};
  }
  let handlers = 0;
  for (const el of document.querySelectorAll('*'))
    for (const a of el.attributes) if (/^on/i.test(a.name)) handlers++;
  return JSON.stringify({charts, handlers,
    scripts: document.querySelectorAll('script').length,
    images: document.querySelectorAll('img, iframe, object, embed, link').length,
    text: document.body.innerText,
    width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight});
})()"""


def browse(chromium, path, shot, work):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=work)
    b = Browser(chromium, profile)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.call(domain + ".enable", session=session)
        b.events.clear()
        url = "file://" + os.path.abspath(path)
        start = time.monotonic()
        b.call("Page.navigate", {"url": url}, session=session)
        b.wait_event("Page.loadEventFired")
        loaded = time.monotonic() - start
        probe = json.loads(b.call("Runtime.evaluate", {"expression": DOM_PROBE,
                                                       "returnByValue": True},
                                  session=session)["result"]["value"])
        png = b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                "clip": {"x": 0, "y": 0, "width": 1280,
                                                         "height": probe["height"],
                                                         "scale": 1}},
                     session=session)["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(png))
        # The first screen alone, small enough for the README (doc/report-html.png).
        png = b.call("Page.captureScreenshot", {"format": "png", "clip": {
            "x": 0, "y": 0, "width": 1280, "height": min(1500, probe["height"]), "scale": 1}},
            session=session)["data"]
        with open(shot.replace(".png", "-top.png"), "wb") as f:
            f.write(base64.b64decode(png))
        events = list(b.events)
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)
    requests = [e["params"]["request"]["url"] for e in events
                if e.get("method") == "Network.requestWillBeSent"]
    check(requests == [url], "network requests: %s" % requests)
    console = [e["params"] for e in events if e.get("method") in (
        "Runtime.consoleAPICalled", "Runtime.exceptionThrown")]
    check(not console, "console messages: %s" % console[:3])
    logged = [e["params"]["entry"] for e in events if e.get("method") == "Log.entryAdded"
              and e["params"]["entry"]["level"] in ("warning", "error")]
    check(not logged, "log entries: %s" % logged[:3])
    return probe, loaded


def check_dom(doc, probe):
    check(probe["scripts"] == 0 and probe["handlers"] == 0 and probe["images"] == 0,
          "the DOM has %d scripts, %d on* attributes, %d images/frames/links"
          % (probe["scripts"], probe["handlers"], probe["images"]))
    for needle in ("<script>alert(1)</script>", HOSTILE_DOMAIN, HOSTILE_HOST, HOSTILE_VENDOR):
        check(needle in probe["text"], "the page shows %r as text" % needle)
    check(probe["width"] <= 1280, "no horizontal scroll at 1280 px: %d" % probe["width"])
    for chart, (section, what) in CHARTS.items():
        got = probe["charts"].get(chart)
        rows = doc[section]["rows"]
        if what == "rows":
            want, count = len(rows), (got or {}).get("first")
        else:
            want = sum(1 for r in rows for k in ("abuse", "not_spam", "other") if r[k] > 0)
            count = (got or {}).get("bars")
        check(got is not None and count == want and got["title"] and got["desc"],
              "%s: %s bars, %d rows in json (%s)" % (chart, count, want, got))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()
    if not os.access(args.chromium, os.X_OK):
        log("SKIP: chromium is not installed (apt-get install chromium)")
        return 77
    with open(args.conninfo_file) as f:
        admin = f.read().strip()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    started = time.monotonic()
    db = fresh_db(admin, "t_report_html")
    fill(args, db, args.workdir)

    now = int(time.time())
    window = ["--db", db, "--since", str(now - 3 * 3600), "--until", str(now + 3600), "--top", "5"]
    doc = json.loads(fbl(args, "report", *window, "--format", "json").stdout)
    check(doc["summary"]["reports"] > 20, "stored %s reports" % doc["summary"]["reports"])
    check(HOSTILE_SUBJECT in json.dumps(doc["campaigns"], ensure_ascii=False) or
          any(r["sample_subject"] and "<script>" in r["sample_subject"]
              for r in doc["campaigns"]["rows"]), "the hostile subject is among the campaigns")
    page_path = os.path.join(args.workdir, "report.html")
    t = time.monotonic()
    p = fbl(args, "report", *window, "--format", "html", "--output", page_path)
    made = time.monotonic() - t
    check(p.stdout == "", "--output writes nothing to stdout")
    with open(page_path, encoding="utf-8") as f:
        text = f.read()
    page = Page()
    page.feed(text)
    compared = compare(doc, page)
    file_is_closed(text)
    log("numbers: %d values compared; page %d bytes, made in %.2f s" % (compared, len(text),
                                                                       made))
    # --output for the other formats too: the same bytes as stdout.
    json_path = os.path.join(args.workdir, "report.json")
    fbl(args, "report", *window, "--format", "json", "--output", json_path)
    with open(json_path) as f:
        check(json.load(f) == doc, "--format json --output writes the same document")
    fbl(args, "report", *window, "--format", "html", "--output", "/nonexistent/x.html",
        expect=74)

    shot = os.path.join(args.workdir, "report-html.png")
    probe, loaded = browse(args.chromium, page_path, shot, args.workdir)
    check_dom(doc, probe)
    with open(shot, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "the screenshot is a PNG")
    log("browser: loaded in %.2f s, page %dx%d px, screenshot %s (%d bytes)"
        % (loaded, probe["width"], probe["height"], shot, os.path.getsize(shot)))
    log("%s in %.1f s" % ("ok" if not FAILURES else "FAILED", time.monotonic() - started))
    if FAILURES:
        log("%d failure(s)" % len(FAILURES))
        return 1
    log("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
