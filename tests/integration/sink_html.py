#!/usr/bin/python3
"""The sink's HTML report ([report] html_file) on a running `fbl run`, with a PostgreSQL of
its own (pg-cluster), which the test stops and starts.

usage: sink_html.py --fbl BIN --samples DIR --workdir DIR

`fbl run` with html_interval = 2s and html_top = 5 watches a Maildir into which every
sample of tests/corpus/samples is delivered. Then:

page      once the Maildir is drained, a page written after it appears: mode 0644, no
          temporary file left beside it, a 24-hour window until now (data-until-now),
          the summary counting reports; `fbl report --format html --now U
          --since S --top 5` (U and S: the page's data-until and data-since) makes the
          same bytes, and every number of the page equals `fbl report --format json`'s
          for that window (report_html.py's comparison).
atomic    while a reader opens and reads the file again and again, the page is replaced
          (a new inode each time, at least twice); every read is a whole page.
pgdown    PostgreSQL stopped: the daemon runs on, logs a warning naming the html report
          and PostgreSQL, and leaves the page as it was; mails delivered meanwhile wait.
          PostgreSQL started again: the page is written again (a notice says so), counts
          the mails delivered while it was down, and is again fbl report's, byte for byte.
unwritable  the page's directory replaced by a file: a warning naming the page, the
          daemon runs on; the directory back: the page is written again.
stop      a report query held on a lock (fbl.vendor_outbox locked by another session):
          SIGTERM ends the daemon within a few seconds, exit 0, and the server log shows
          the statement cancelled.

Standard library only; psql runs the queries. About 30 s.
"""
import argparse
import calendar
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_html  # noqa: E402
from pipeline import Cluster  # noqa: E402

FAILURES = []
TOP = 5


def log(msg):
    print("sink_html: %s" % msg, flush=True)


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        log("FAIL: %s" % msg)
    return cond


def wait_for(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise SystemExit("sink_html: FAIL: timed out after %d s waiting for %s" % (timeout, what))


def iso_epoch(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class Daemon:
    def __init__(self, args, config, logpath):
        self.logpath = logpath
        self.logf = open(logpath, "w")
        self.p = subprocess.Popen([args.fbl, "run", "--config", config],
                                  stdout=self.logf, stderr=subprocess.STDOUT)

    def log_lines(self):
        with open(self.logpath, errors="replace") as f:
            return f.read().splitlines()

    def wait_line(self, what, *words, after=0, timeout=30):
        def found():
            lines = self.log_lines()[after:]
            return next((l for l in lines if all(w in l for w in words)), None)
        return wait_for(what, found, timeout)

    def alive(self):
        return self.p.poll() is None


def read_page(path):
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        return f.read(), st


def page_of(data):
    page = report_html.Page()
    page.feed(data.decode("utf-8"))
    return page


def deliver(maildir, names, samples, tag):
    for i, name in enumerate(names):
        shutil.copy(os.path.join(samples, name),
                    os.path.join(maildir, "tmp", "%s.%d.eml" % (tag, i)))
        os.rename(os.path.join(maildir, "tmp", "%s.%d.eml" % (tag, i)),
                  os.path.join(maildir, "new", "%d.M%dP%s.sinkhtml" % (time.time(), i, tag)))


def drained(maildir):
    return not os.listdir(os.path.join(maildir, "new"))


def next_page(path, st, since, timeout=20):
    """A page written after @since (epoch seconds) and, when given, not the inode of @st."""
    def newer():
        try:
            data, now_st = read_page(path)
        except FileNotFoundError:
            return None
        if st is not None and now_st.st_ino == st.st_ino:
            return None
        page = page_of(data)
        until = page.window.get("until")
        return (data, now_st, page) if until and iso_epoch(until) > since else None
    return wait_for("a page written after %d" % since, newer, timeout)


def check_page(args, cfg, path, data, st, page):
    """The page against fbl report, and its file."""
    check(stat.S_IMODE(st.st_mode) == 0o644, "the page has mode %o" % stat.S_IMODE(st.st_mode))
    leftovers = [n for n in os.listdir(os.path.dirname(path)) if n != os.path.basename(path)]
    check(not leftovers, "files beside the page: %s" % leftovers)
    w = page.window
    since, until = iso_epoch(w["since"]), iso_epoch(w["until"])
    check(w["until_now"] and w["period"] == "hour" and until - since == 86400,
          "the page's window: %s" % w)
    check(page.summary and page.summary.get("reports", 0) > 0,
          "the page's summary: %s" % page.summary)
    window = ["--config", cfg, "--now", str(until), "--since", str(since), "--top", str(TOP)]
    cli = subprocess.run([args.fbl, "report", *window, "--format", "html"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(cli.returncode == 0 and cli.stdout == data,
          "fbl report --format html %s makes other bytes than the sink (exit %d, %d bytes "
          "against %d): %s" % (" ".join(window[2:]), cli.returncode, len(cli.stdout), len(data),
                               cli.stderr.decode(errors="replace").strip()))
    doc = json.loads(subprocess.run([args.fbl, "report", *window, "--format", "json"],
                                    check=True, stdout=subprocess.PIPE).stdout)
    before = len(report_html.FAILURES)
    compared = report_html.compare(doc, page)
    FAILURES.extend(report_html.FAILURES[before:])
    return compared


def atomic(path, st, seconds):
    """Read the page again and again while the sink replaces it: whole pages only."""
    reads, partial, inodes, stop = [0], [], {st.st_ino}, threading.Event()

    def reader():
        while not stop.is_set():
            try:
                data, now_st = read_page(path)
            except FileNotFoundError:
                partial.append("missing")
                continue
            reads[0] += 1
            inodes.add(now_st.st_ino)
            if not (data.startswith(b"<!DOCTYPE html>") and data.endswith(b"</html>\n")):
                partial.append(len(data))
            time.sleep(0.002)
    t = threading.Thread(target=reader)
    t.start()
    time.sleep(seconds)
    stop.set()
    t.join()
    check(not partial, "%d of %d reads saw no whole page: %s" % (len(partial), reads[0],
                                                                   partial[:5]))
    check(len(inodes) >= 3, "the page was replaced %d times in %d s" % (len(inodes) - 1,
                                                                       seconds))
    log("atomic: %d reads, %d pages, each whole" % (reads[0], len(inodes)))


def write_config(path, work, cluster, maildir, page):
    bus = "ipc://%s/bus.sock" % work
    with open(path, "w") as f:
        f.write("""[postgres]
conninfo = %s

[mailbox:spamalert]
path = %s

[watch]
connect = %s
ack_timeout = 2s

[sink]
bind = %s
retry_max_wait = 1s

[report]
html_file = %s
html_interval = 2s
html_top = %d
""" % (cluster.conninfo, maildir, bus, bus, page, TOP))


def stopped_mid_query(d, cluster):
    """SIGTERM while the report query waits for a lock: the daemon ends at once, exit 0."""
    lock = subprocess.Popen(["psql", cluster.conninfo, "-XAq"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    lock.stdin.write("BEGIN;\nLOCK TABLE fbl.vendor_outbox IN ACCESS EXCLUSIVE MODE;\n"
                     "SELECT pg_sleep(120);\n")
    lock.stdin.flush()
    try:
        wait_for("the report query waiting for the lock", lambda: cluster.query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fbl sink report' "
            "AND wait_event_type = 'Lock'") == "1", 20)
        t = time.monotonic()
        d.p.send_signal(signal.SIGTERM)
        rc = d.p.wait(timeout=60)
        took = time.monotonic() - t
    finally:
        lock.kill()
        lock.wait()
    check(rc == 0, "fbl run exited %d after SIGTERM" % rc)
    with open(os.path.join(cluster.base, "server.log"), errors="replace") as f:
        check("canceling statement due to user request" in f.read(),
              "the server log shows no cancelled report statement")
    check(took < 5, "fbl run took %.1f s to stop with a report query running" % took)
    log("stop: exit %d %.2f s after SIGTERM, a report query waiting on a lock" % (rc, took))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    started = time.monotonic()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    work = args.workdir
    cluster = Cluster(work)
    # The mails delivered while PostgreSQL is down are samples again: count them too.
    cluster.query("ALTER DATABASE fbl SET fbl.duplicate_window = '0'")
    d = None
    try:
        maildir = os.path.join(work, "spamalert")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(maildir, sub))
        www = os.path.join(work, "www")
        os.makedirs(www)
        path = os.path.join(www, "report.html")
        cfg = os.path.join(work, "fbl.conf")
        write_config(cfg, work, cluster, maildir, path)
        names = sorted(n for n in os.listdir(args.samples) if n.endswith(".eml"))

        # page
        deliver(maildir, names, args.samples, "a")
        d = Daemon(args, cfg, os.path.join(work, "fbl-run.log"))
        wait_for("the Maildir drained", lambda: drained(maildir), 60)
        t_drained = int(time.time())
        stored = int(cluster.query("SELECT count(*) FROM fbl.mails"))
        check(stored == len(names), "%d mails stored of %d" % (stored, len(names)))
        data, st, page = next_page(path, None, t_drained)
        compared = check_page(args, cfg, path, data, st, page)
        reports = page.summary["reports"]
        log("page: %d bytes, %d reports, %d values equal to fbl report's, same bytes as "
            "fbl report --format html" % (len(data), reports, compared))

        # atomic
        atomic(path, st, 5)

        # pgdown
        n = len(d.log_lines())
        cluster.stop()
        line = d.wait_line("a warning about PostgreSQL", "html report: PostgreSQL", "warning",
                           after=n, timeout=20)
        log("pgdown: %s" % line[line.index("msg="):])
        _, st = read_page(path)
        deliver(maildir, names[:3], args.samples, "b")
        time.sleep(3)
        _, st2 = read_page(path)
        check(d.alive(), "fbl run stopped with PostgreSQL down")
        check(st2.st_ino == st.st_ino, "the page changed while PostgreSQL was down")
        n = len(d.log_lines())
        cluster.start()
        d.wait_line("the page written again", "html report:", "written again", after=n,
                    timeout=30)
        wait_for("the Maildir drained", lambda: drained(maildir), 60)
        t_drained = int(time.time())
        data, st, page = next_page(path, st, t_drained)
        check(page.summary and page.summary["reports"] > reports,
              "after PostgreSQL came back the page counts %s reports, %d before"
              % (page.summary, reports))
        check_page(args, cfg, path, data, st, page)
        log("pgdown: warned, ran on, wrote again with %d reports" % page.summary["reports"])

        # unwritable
        n = len(d.log_lines())
        os.rename(www, www + ".away")
        with open(www, "w") as f:
            f.write("not a directory\n")
        line = d.wait_line("a warning about the page", "html report: cannot write the page",
                           "warning", after=n, timeout=20)
        check("report.html" in line, "the warning names the page: %s" % line)
        log("unwritable: %s" % line[line.index("msg="):])
        time.sleep(2.5)
        check(d.alive(), "fbl run stopped when the page could not be written")
        n = len(d.log_lines())
        os.unlink(www)
        os.rename(www + ".away", www)
        d.wait_line("the page written again", "html report:", "written again", after=n,
                    timeout=20)
        data, st = read_page(path)
        check(page_of(data).summary is not None, "the page written again parses")
        log("unwritable: warned, ran on, wrote again")

        # stop
        stopped_mid_query(d, cluster)
        d = None
    finally:
        if d is not None and d.alive():
            d.p.kill()
            d.p.wait()
        cluster.destroy()
    log("%s in %.1f s" % ("ok" if not FAILURES else "FAILED", time.monotonic() - started))
    if FAILURES:
        log("%d failure(s)" % len(FAILURES))
        return 1
    log("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
