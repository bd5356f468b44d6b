#!/usr/bin/python3
"""The forwarder's lease on outbox rows (sink/outbox.h, schema/009_outbox_lease.sql).

usage: outbox_lease.py idle|expired --fbl BIN --conninfo-file F --workdir DIR

Each mode makes its own database in the "pg" fixture's cluster, stores a few
reports with `fbl run --once`, gives them to the vendor "acme" with `fbl forward
--backfill`, and runs a real `fbl forward` against vendor_server.py.

idle     while the vendor takes 4 s to answer (it has the request, the rows are
         leased), no backend of the forwarder is in a transaction:
         pg_stat_activity, sampled every 0.1 s, never shows one of them "idle in
         transaction" or with a transaction open. Then the answer comes: every
         report sent once, every lease cleared.
expired  the vendor never answers the first request, and the forwarder is killed
         with SIGKILL while it waits: the rows stay pending under the lease it
         left. A second forwarder does not take them before that lease runs out;
         then it sends them exactly once more, under the same Idempotency-Key,
         and they end sent with the lease cleared.

Standard library only; psql runs the queries.
"""
import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vendor_feed  # noqa: E402
from vendor_feed import Db, Maildir, Proc, check, log, make_arf, outbox_states, run, \
    wait_until, write  # noqa: E402
from vendor_server import VendorServer  # noqa: E402

REPORTS = 3


class ArrivalServer(VendorServer):
    """vendor_server.py that also notes each request as it arrives (before any scripted hang)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.arrived = []  # (time, Idempotency-Key)

    def _handle(self, h):
        with self.lock:
            self.arrived.append((time.time(), h.headers.get("Idempotency-Key")))
        super()._handle(h)

    def arrivals(self):
        with self.lock:
            return list(self.arrived)


def setup(a, db, work, server, timeout):
    """REPORTS reports stored, pending for acme; returns the config with acme."""
    mbox = Maildir(os.path.join(work, "mbox"))
    for i in range(REPORTS):
        mbox.deliver(make_arf(i, "r%d@isp.example.net" % i, "v%d@c.example.net" % i))
    base = "[postgres]\nconninfo = %s\n\n[mailbox:spamalert]\npath = %s\n\n[log]\nlevel = info\n" \
        % (db.conninfo, mbox.path)
    r = run([a.fbl, "run", "--config", write(os.path.join(work, "store.conf"), base), "--once"])
    check(r.returncode == 0, "fbl run --once exited %d: %s" % (r.returncode, r.stdout[-800:]))
    tok = write(os.path.join(work, "token"), "lease-token")
    conf = write(os.path.join(work, "fbl.conf"), base + """
[vendor:acme]
type = http-json
url = %s
token_file = %s
batch_size = 5
parallel = 1
timeout = %s
""" % (server.url(), tok, timeout))
    r = run([a.fbl, "forward", "--config", conf, "--backfill", "--vendor", "acme",
             "--since", "1d"])
    check(r.returncode == 0 and outbox_states(db, "acme") == {"pending": REPORTS},
          "--backfill: exit %d, outbox %s" % (r.returncode, outbox_states(db, "acme")))
    return conf


def leased(db):
    return db.count("SELECT count(*) FROM fbl.vendor_outbox WHERE vendor = 'acme' "
                    "AND state = 'pending' AND claimed_until > now()")


def forwarder_backends(db):
    """[(state, has a transaction)] of the forwarder's backends in this database."""
    return [(s, x == "t") for s, x in db.rows(
        "SELECT state, xact_start IS NOT NULL FROM pg_stat_activity "
        "WHERE application_name = 'fbl-forward' AND datname = current_database()")]


def check_done(db, server):
    states = outbox_states(db, "acme")
    check(states == {"sent": REPORTS}, "outbox: %s" % states)
    check(db.count("SELECT count(*) FROM fbl.vendor_outbox WHERE claimed_until IS NOT NULL "
                   "OR claimed_by IS NOT NULL") == 0, "a lease was left on a sent row")
    ok = server.ok_counts()
    ids = set(x[0] for x in db.rows("SELECT id FROM fbl.reports"))
    check(len(ids) == REPORTS and all(ok.get(i, 0) == 1 for i in ids),
          "each report answered 2xx once: %s" % ok)


def mode_idle(a, db, work):
    hang = 4.0  # a slow vendor: every answer takes this long, well within the timeout
    server = ArrivalServer(token="lease-token", delay=hang).start()
    conf = setup(a, db, work, server, "10s")
    fwd = Proc("forward", [a.fbl, "forward", "--config", conf], work).start()
    try:
        wait_until(lambda: len(server.arrivals()) == 1, 30, "the first request at the vendor")
        samples, in_tx, seen = 0, [], 0
        while time.time() < server.arrivals()[0][0] + hang - 0.5:
            check(leased(db) == REPORTS, "the rows are not leased while their request is out")
            backends = forwarder_backends(db)
            seen += len(backends)
            in_tx += [b for b in backends if b[0].startswith("idle in transaction") or b[1]]
            samples += 1
            time.sleep(0.1)
        log("%d samples of pg_stat_activity while the vendor held the request: %d forwarder "
            "backends seen, %d in a transaction" % (samples, seen, len(in_tx)))
        check(samples >= 10, "only %d samples during the send" % samples)
        check(seen >= samples, "the forwarder's backend was not in pg_stat_activity")
        check(not in_tx, "a transaction was open during the send: %s" % in_tx[:3])
        wait_until(lambda: outbox_states(db, "acme").get("sent", 0) == REPORTS, 30,
                   "the reports sent once the vendor answered")
        time.sleep(1.0)
    finally:
        rc = fwd.stop()
        server.stop()
    check(rc == 0, "fbl forward exited %s" % rc)
    check(len(server.arrivals()) == 1, "%d requests, want 1" % len(server.arrivals()))
    check_done(db, server)


def mode_expired(a, db, work):
    server = ArrivalServer(token="lease-token").start()
    server.script({"hang": 60})  # the first request is never answered in time
    conf = setup(a, db, work, server, "2s")
    first = Proc("forward1", [a.fbl, "forward", "--config", conf], work).start()
    second = Proc("forward2", [a.fbl, "forward", "--config", conf], work)
    try:
        wait_until(lambda: len(server.arrivals()) == 1, 30, "the first request at the vendor")
        first.kill9()  # mid-send: the vendor has the request, nothing is marked
        key = server.arrivals()[0][1]
        until = float(db.q("SELECT extract(epoch FROM max(claimed_until)) FROM "
                           "fbl.vendor_outbox WHERE vendor = 'acme'") or 0)
        log("killed the forwarder mid-send; its lease runs out in %.1f s" % (until - time.time()))
        check(leased(db) == REPORTS and outbox_states(db, "acme") == {"pending": REPORTS},
              "after the kill: %d leased, outbox %s" % (leased(db), outbox_states(db, "acme")))
        check(until - time.time() > 3, "a lease of %.1f s is shorter than a send"
              % (until - time.time()))
        second.start()
        wait_until(lambda: len(server.arrivals()) >= 2, until - time.time() + 30,
                   "the second forwarder's request after the lease ran out")
        arrivals = server.arrivals()
        if len(arrivals) >= 2:
            log("sent again %.2f s after the lease ran out" % (arrivals[1][0] - until))
            check(arrivals[1][0] >= until - 0.5, "sent again %.2f s before the lease ran out"
                  % (until - arrivals[1][0]))
            check(arrivals[1][1] == key, "sent again under another key: %s, first %s"
                  % (arrivals[1][1], key))
        wait_until(lambda: outbox_states(db, "acme").get("sent", 0) == REPORTS, 30,
                   "the reports sent by the second forwarder")
        time.sleep(2.0)  # a third send would show by now
    finally:
        first.kill9()
        rc = second.stop()
        server.stop()
    check(rc == 0, "the second fbl forward exited %s" % rc)
    check(len(server.arrivals()) == 2, "%d requests, want 2 (one killed, one more)"
          % len(server.arrivals()))
    check_done(db, server)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("idle", "expired"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    db = Db(a.conninfo_file, "t_outbox_lease_%s" % a.mode)
    try:
        {"idle": mode_idle, "expired": mode_expired}[a.mode](a, db, a.workdir)
    finally:
        db.drop()
    if vendor_feed.FAILURES:
        log("FAILED: %d checks" % len(vendor_feed.FAILURES))
        return 1
    log("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
