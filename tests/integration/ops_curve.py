#!/usr/bin/python3
"""CURVE between real `fbl watch` and `fbl sink` processes over TCP on loopback.

usage: ops_curve.py --fbl BIN --pg-conninfo-file FILE --workdir DIR

- `fbl keygen` writes PREFIX.key (mode 0600) and PREFIX.pub, refuses to
  overwrite them without --force;
- --check-config: plain tcp:// is refused unless allow_plaintext = true, a
  lone key, a missing key file and a world-readable secret key are errors
  naming the file, the line and the key; ipc:// needs nothing;
- the sink allows only the watcher key in its curve_clients_dir:
  * the known watcher delivers (its mails end in cur/ and in PostgreSQL);
  * a watcher with an unknown key is refused (logged on both sides, counted
    in fbl_curve_refused_total) and its mails stay in new/;
  * a watcher with the wrong server public key never delivers either;
- every process exits 0 on SIGTERM.
"""
import argparse
import os
import re
import signal
import stat
import subprocess
import time

from ops_common import (SAMPLES, Database, Proc, check, count, deliver, free_port, fresh_dir,
                        log, make_maildir, parse_metrics, run_main, scrape, wait_for)

NAME = "ops_curve"


def fbl_out(fbl, *argv):
    p = subprocess.run([fbl] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    return p.returncode, p.stdout + p.stderr


def keygen(args, keys):
    for who in ("sink", "watcher", "stranger"):
        rc, out = fbl_out(args.fbl, "keygen", os.path.join(keys, who))
        check(rc == 0, "fbl keygen %s: %s" % (who, out))
        check(re.match(r"^\S{40}$", out.splitlines()[0]), "keygen printed %r" % out)
        mode = stat.S_IMODE(os.stat(os.path.join(keys, who + ".key")).st_mode)
        check(mode == 0o600, "%s.key has mode %o" % (who, mode))
        pub = open(os.path.join(keys, who + ".pub")).read()
        check(out.splitlines()[0] in pub, "the printed key is not in %s.pub" % who)
    rc, out = fbl_out(args.fbl, "keygen", os.path.join(keys, "sink"))
    check(rc == 73 and "exists" in out, "keygen over an existing key: %d %s" % (rc, out))
    log(NAME, "keygen: modes 0600/0644, no silent overwrite")


def check_configs(args, work, keys):
    """(config text, role, expected exit, text the error must hold)"""
    k = lambda name: os.path.join(keys, name)
    loose = os.path.join(work, "loose.key")
    with open(k("watcher.key")) as src, open(loose, "w") as dst:
        dst.write(src.read())
    os.chmod(loose, 0o644)
    cases = [
        ("[watch]\nconnect = tcp://127.0.0.1:1\n", "watch", 78, ":2: [watch] connect:"),
        ("[watch]\nconnect = tcp://127.0.0.1:1\nallow_plaintext = true\n", "watch", 0, "OK"),
        ("[watch]\nconnect = ipc:///tmp/x.sock\n", "watch", 0, "OK"),
        ("[sink]\nbind = tcp://127.0.0.1:1\n", "sink", 78, ":2: [sink] bind:"),
        ("[sink]\nbind = tcp://127.0.0.1:1\nallow_plaintext = yes\n", "sink", 0, "OK"),
        ("[watch]\nconnect = tcp://127.0.0.1:1\ncurve_secret_file = %s\n" % k("watcher.key"),
         "watch", 78, "[watch] curve_server_public_file:"),
        ("[watch]\nconnect = tcp://127.0.0.1:1\ncurve_secret_file = %s\n"
         "curve_server_public_file = %s\n" % (loose, k("sink.pub")), "watch", 78,
         ":3: [watch] curve_secret_file: %s: a secret key readable by every user" % loose),
        ("[watch]\nconnect = tcp://127.0.0.1:1\ncurve_secret_file = %s\n"
         "curve_server_public_file = %s\n" % (k("watcher.key"), k("nope.pub")), "watch", 78,
         ":4: [watch] curve_server_public_file:"),
        ("[watch]\nconnect = tcp://127.0.0.1:1\ncurve_secret_file = %s\n"
         "curve_server_public_file = %s\n" % (k("watcher.key"), k("sink.pub")), "watch", 0,
         "OK"),
        ("[sink]\nbind = tcp://127.0.0.1:1\ncurve_secret_file = %s\n" % k("sink.key"), "sink",
         78, "[sink] curve_clients_dir:"),
        ("[sink]\nbind = tcp://127.0.0.1:1\ncurve_secret_file = %s\ncurve_clients_dir = %s\n"
         % (k("sink.key"), keys), "sink", 0, "OK"),
    ]
    conf = os.path.join(work, "check.conf")
    for sub in ("new", "cur", "tmp"):  # --check-config checks the Maildir too
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    for text, role, want_rc, want_text in cases:
        with open(conf, "w") as fh:
            fh.write("[mailbox:m]\npath = %s\n\n" % work + text if role == "watch" else text)
        rc, out = fbl_out(args.fbl, role, "--config", conf, "--check-config")
        # The mailbox section comes first: the lines named above are counted from it.
        if role == "watch":
            want_text = re.sub(r"^:(\d+):", lambda m: ":%d:" % (int(m.group(1)) + 3),
                               want_text)
        check(rc == want_rc and want_text in out,
              "%s --check-config on\n%s\nexited %d: %s (want %d, %r)"
              % (role, text, rc, out.strip(), want_rc, want_text))
    log(NAME, "--check-config: %d cases" % len(cases))


def watcher(args, work, name, secret, server, sink_port, db):
    mbox = make_maildir(os.path.join(work, name))
    conf = os.path.join(work, name + ".conf")
    with open(conf, "w") as fh:
        fh.write("[mailbox:%s]\npath = %s\n\n[watch]\nconnect = tcp://127.0.0.1:%d\n"
                 "ack_timeout = 1s\ncurve_secret_file = %s\ncurve_server_public_file = %s\n"
                 % (name, mbox, sink_port, secret, server))
    return mbox, Proc([args.fbl, "watch", "--config", conf, "--log-level", "info"],
                      os.path.join(work, name + ".log"))


def test(args):
    work = fresh_dir(args.workdir)
    keys = fresh_dir(os.path.join(work, "keys"))
    keygen(args, keys)
    check_configs(args, work, keys)

    clients = fresh_dir(os.path.join(work, "clients"))
    os.link(os.path.join(keys, "watcher.pub"), os.path.join(clients, "watcher.pub"))
    db = Database(args.pg_conninfo_file, "t_ops_curve")
    sink_port, metrics_port = free_port(), free_port()
    sink_conf = os.path.join(work, "sink.conf")
    with open(sink_conf, "w") as fh:
        fh.write("[postgres]\nconninfo = %s\n\n[sink]\nbind = tcp://127.0.0.1:%d\n"
                 "batch_max_wait = 50ms\ncurve_secret_file = %s\ncurve_clients_dir = %s\n\n"
                 "[metrics]\nsink = 127.0.0.1:%d\n"
                 % (db.conninfo, sink_port, os.path.join(keys, "sink.key"), clients,
                    metrics_port))
    sink = Proc([args.fbl, "sink", "--config", sink_conf], os.path.join(work, "sink.log"))
    procs = [sink]
    try:
        wait_for("the sink's metrics", lambda: "fbl run" in sink.output() or
                 "running" in sink.output() or not sink.running(), 60)
        check(sink.running(), "fbl sink exited:\n" + sink.output())
        mail = open(os.path.join(SAMPLES, "arf-not-spam.eml"), "rb").read()
        k = lambda name: os.path.join(keys, name)
        good_box, good = watcher(args, work, "good", k("watcher.key"), k("sink.pub"), sink_port,
                                 db)
        bad_box, bad = watcher(args, work, "unknown", k("stranger.key"), k("sink.pub"),
                               sink_port, db)
        wrong_box, wrong = watcher(args, work, "wrongserver", k("watcher.key"),
                                   k("stranger.pub"), sink_port, db)
        procs += [good, bad, wrong]
        for i, box in enumerate((good_box, good_box, bad_box, wrong_box)):
            deliver(box, mail.replace(b"Cheap watches", b"Cheap watches %d" % i))
        wait_for("the known watcher's mails in cur/", lambda: count(good_box, "cur") == 2, 60)
        check(db.query("SELECT count(*) FROM fbl.reports") == "2", "PostgreSQL lacks the mails")
        log(NAME, "the known watcher delivered over CURVE")
        wait_for("the refusal", lambda: parse_metrics(scrape(metrics_port)[2]).get(
            "fbl_curve_refused_total", 0) >= 1, 30)
        time.sleep(2)  # a few reconnects and resends (ack_timeout 1s)
        check(count(bad_box, "new") == 1 and count(bad_box, "cur") == 0,
              "the unknown watcher's mail left new/")
        check(count(wrong_box, "new") == 1 and count(wrong_box, "cur") == 0,
              "the wrong-server-key watcher's mail left new/")
        check(db.query("SELECT count(*) FROM fbl.reports") == "2", "a refused mail was stored")
        check("refused a watcher" in sink.output(), "the sink did not log the refusal")
        check("the sink refused our key" in bad.output(), "the unknown watcher did not log it:\n"
              + bad.output())
        log(NAME, "unknown key refused, wrong server key never delivers; mails stay in new/")
        for p, what, sig in ((good, "good watcher", signal.SIGINT),
                             (bad, "unknown watcher", signal.SIGTERM),
                             (wrong, "wrong-server watcher", signal.SIGTERM),
                             (sink, "sink", signal.SIGINT)):
            rc = p.stop(sig)
            check(rc == 0, "%s exited %s on %s:\n%s" % (what, rc, sig.name,
                                                        p.output()[-2000:]))
        log(NAME, "every process exited 0 on SIGTERM or SIGINT")
    finally:
        for p in procs:
            p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--pg-conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    run_main(NAME, lambda: test(args))


if __name__ == "__main__":
    main()
