#!/usr/bin/python3
"""Pipeline tests on real processes: fbl watch + fbl sink + a throwaway PostgreSQL.

usage: pipeline.py crash|pgdown|fanout --fbl BIN --workdir DIR [--mails N] [--kills K] [--seed S]
                   [--parse-threads N]

crash   N mails (genmail) are delivered into a Maildir while `fbl watch` and
        `fbl sink` (separate processes over ipc://) are killed with SIGKILL K
        times at random moments - the watcher, the sink, or both - and
        restarted each time.
fanout  two watchers on the same Maildir, each connected to two sinks; one sink
        is killed with SIGKILL K times and restarted: watchers and sinks work
        together, and two watchers racing for one file store it once.
pgdown  N mails are delivered while PostgreSQL is stopped for PGDOWN seconds
        (--pg-down, default 30) in the middle; the resident memory of both
        processes is sampled every 0.2 s and must stay under --rss-limit MiB.

--parse-threads N sets the watchers' [watch] parse_threads (default: the
config's default, one per CPU).

Both end the same way: once every mail is delivered and new/ is empty, the
processes get SIGTERM (and must exit 0), and the database must hold every
mail of the generator's manifest exactly once - as reports or as a reject,
with the expected report count - and nothing else; cur/ must hold every file.
Prints its figures (kills, resends, peak RSS, time) as it goes.
Standard library only; psql from postgresql-client runs the queries.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GENMAIL = os.path.join(ROOT, "tests", "tools", "genmail")
PG_CLUSTER = os.path.join(HERE, "pg-cluster")


def log(msg):
    print("pipeline: %s" % msg, flush=True)


class Cluster:
    """A throwaway PostgreSQL (pg-cluster), which this test may stop and start."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        out = subprocess.run([PG_CLUSTER, "start", self.dir], check=True,
                             stdout=subprocess.PIPE, text=True)
        self.conninfo = out.stdout.strip()
        self.base = open(os.path.join(self.dir, "base")).read().strip()
        bins = sorted(d for d in (os.path.join("/usr/lib/postgresql", v, "bin")
                                  for v in os.listdir("/usr/lib/postgresql"))
                      if os.path.exists(os.path.join(d, "pg_ctl")))
        self.pg_ctl = os.path.join(bins[-1], "pg_ctl")

    def _ctl(self, *args):
        cmd = [self.pg_ctl, "-D", os.path.join(self.base, "data")] + list(args)
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        self._ctl("-m", "fast", "-w", "stop")

    def start(self):
        self._ctl("-l", os.path.join(self.base, "server.log"), "-w", "-t", "60", "-o",
                  "-c listen_addresses= -k %s -c fsync=off" % self.base, "start")

    def query(self, sql):
        out = subprocess.run(["psql", self.conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1",
                              "-c", sql], check=True, stdout=subprocess.PIPE, text=True)
        return out.stdout.strip()

    def destroy(self):
        subprocess.run([PG_CLUSTER, "stop", self.dir], check=False)


class Proc:
    """One fbl daemon, restartable."""

    def __init__(self, name, argv, logdir):
        self.name, self.argv, self.logdir = name, argv, logdir
        self.p = None
        self.starts = 0

    def start(self):
        self.starts += 1
        logf = open(os.path.join(self.logdir, "%s.%d.log" % (self.name, self.starts)), "w")
        # Under AddressSanitizer, a small quarantine: the RSS bound is about fbl's
        # memory, not about the 256 MiB of freed blocks ASan keeps by default.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + \
            ":quarantine_size_mb=8:malloc_context_size=5"
        self.p = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT, env=env)

    def kill9(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()

    def stop(self, timeout=120):
        self.p.send_signal(signal.SIGTERM)
        return self.p.wait(timeout=timeout)

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.p.pid) as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0


def deliver(stage, mbox, seconds, done):
    """Move the generated mails into mbox the way an MTA does: tmp/, then rename to new/."""
    names = sorted(os.listdir(os.path.join(stage, "new")))
    pause = seconds / max(len(names), 1)
    for name in names:
        tmp = os.path.join(mbox, "tmp", name)
        shutil.copyfile(os.path.join(stage, "new", name), tmp)
        os.rename(tmp, os.path.join(mbox, "new", name))
        time.sleep(pause)
    done.set()


def wait_drained(mbox, procs, timeout):
    """new/ stays empty for 3 s (acks arrive after commit, so empty means committed)."""
    deadline = time.time() + timeout
    empty_since = None
    while time.time() < deadline:
        for p in procs:
            if p.p.poll() is not None:
                raise SystemExit("FAIL: %s exited early with %s" % (p.name, p.p.returncode))
        if os.listdir(os.path.join(mbox, "new")):
            empty_since = None
        elif empty_since is None:
            empty_since = time.time()
        elif time.time() - empty_since >= 3:
            return
        time.sleep(0.2)
    left = len(os.listdir(os.path.join(mbox, "new")))
    raise SystemExit("FAIL: %d mail(s) still in new/ after %d s" % (left, timeout))


def verify(cluster, manifest, mbox):
    """The checks above; @mbox is a Maildir or a list of them (cur/ counted over all)."""
    mboxes = [mbox] if isinstance(mbox, str) else list(mbox)
    errors = []
    want = {m["mail_id"]: m for m in manifest}
    stored = cluster.query("SELECT mail_id FROM fbl.mails").split()
    if len(stored) != len(set(stored)):
        errors.append("fbl.mails holds a mail twice")
    missing = set(want) - set(stored)
    extra = set(stored) - set(want)
    if missing:
        errors.append("%d mail(s) lost, e.g. %s" % (len(missing), sorted(missing)[:3]))
    if extra:
        errors.append("%d mail(s) stored that were never delivered" % len(extra))
    rows = cluster.query("SELECT mail_id, count(*) FROM fbl.reports GROUP BY 1")
    reports = dict(line.split("|") for line in rows.splitlines() if line)
    rejects = set(cluster.query("SELECT mail_id FROM fbl.rejects").split())
    dup = cluster.query("SELECT count(*) - count(DISTINCT (mail_id, part)) FROM fbl.reports")
    if dup != "0":
        errors.append("%s report(s) doubled" % dup)
    dup_rej = cluster.query("SELECT count(*) - count(DISTINCT mail_id) FROM fbl.rejects")
    if dup_rej != "0":
        errors.append("%s reject(s) doubled" % dup_rej)
    wrong = 0
    for mid, m in want.items():
        n = int(reports.get(mid, 0))
        expected = m.get("reports", 0)
        if expected == 0 and mid not in rejects:
            wrong += 1
        elif expected > 0 and n != expected:
            wrong += 1
        elif n > 0 and mid in rejects:
            wrong += 1
    if wrong:
        errors.append("%d mail(s) with the wrong reports or reject" % wrong)
    if any(os.listdir(os.path.join(m, "new")) for m in mboxes):
        errors.append("new/ is not empty")
    cur = sum(len(os.listdir(os.path.join(m, "cur"))) for m in mboxes)
    if cur != len(want):
        errors.append("cur/ holds %d files, expected %d" % (cur, len(want)))
    total = cluster.query("SELECT count(*) FROM fbl.reports")
    log("stored: %d mails, %s reports, %d rejects" % (len(stored), total, len(rejects)))
    return errors


def write_config(path, workdir, cluster, mbox, parse_threads=None):
    bus = "ipc://%s/bus.sock" % workdir
    threads = "" if parse_threads is None else "parse_threads = %d\n" % parse_threads
    with open(path, "w") as fh:
        fh.write("""[postgres]
conninfo = %s

[mailbox:spamalert]
path = %s

[watch]
connect = %s
window = 64
window_bytes = 16MiB
ack_timeout = 3s
# far below the backlogs these tests build: the rest of new/ is listed again
queue_max = 300
%s
[sink]
bind = %s
batch_max_mails = 200
batch_max_bytes = 8MiB
batch_max_wait = 100ms
retry_max_wait = 2s

[log]
level = notice
""" % (cluster.conninfo, mbox, bus, threads, bus))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("crash", "pgdown", "fanout"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--mails", type=int, default=5000)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--deliver-seconds", type=float, default=25.0)
    ap.add_argument("--pg-down", type=float, default=30.0)
    ap.add_argument("--rss-limit", type=int, default=128, help="MiB, per process")
    ap.add_argument("--parse-threads", type=int, default=None,
                    help="[watch] parse_threads (default: the config's default)")
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    stage = os.path.join(a.workdir, "stage")
    mbox = os.path.join(a.workdir, "mbox")
    logs = os.path.join(a.workdir, "logs")
    for d in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(mbox, d))
    os.makedirs(logs)
    manifest_path = os.path.join(a.workdir, "manifest.jsonl")
    t0 = time.time()
    subprocess.run([sys.executable, GENMAIL, "--seed", str(a.seed), "--count", str(a.mails),
                    "--out", stage, "--maildir", "--manifest", manifest_path], check=True)
    manifest = [json.loads(line) for line in open(manifest_path)]
    log("generated %d mails in %.1f s" % (len(manifest), time.time() - t0))

    cluster = Cluster(a.workdir)
    try:
        conf = os.path.join(a.workdir, "fbl.conf")
        write_config(conf, a.workdir, cluster, mbox, a.parse_threads)
        sink = Proc("sink", [a.fbl, "sink", "--config", conf], logs)
        watch = Proc("watch", [a.fbl, "watch", "--config", conf], logs)
        extra = []
        if a.mode == "fanout":
            bus1, bus2 = ("ipc://%s/bus.sock" % a.workdir, "ipc://%s/bus2.sock" % a.workdir)
            watch.argv += ["--connect", bus1, "--connect", bus2]
            extra = [Proc("sink2", [a.fbl, "sink", "--config", conf, "--bind", bus2], logs),
                     Proc("watch2", [a.fbl, "watch", "--config", conf, "--connect", bus1,
                                     "--connect", bus2], logs)]
        sink.start()
        for p in extra:
            p.start()
        watch.start()
        done = threading.Event()
        t_start = time.time()
        threading.Thread(target=deliver, args=(stage, mbox, a.deliver_seconds, done),
                         daemon=True).start()
        peak = {"sink": 0, "watch": 0}

        def sample():
            for p in (sink, watch):
                peak[p.name] = max(peak[p.name], p.rss_kib())

        if a.mode == "fanout":
            for _ in range(a.kills):
                time.sleep(rnd.uniform(0.5, 2.0))
                victim = rnd.choice((sink, extra[0]))
                victim.kill9()
                time.sleep(rnd.uniform(0.2, 1.0))
                victim.start()
            log("SIGKILLs of one of two sinks: %d" % a.kills)
        elif a.mode == "crash":
            kills = {"watch": 0, "sink": 0, "both": 0}
            for _ in range(a.kills):
                time.sleep(rnd.uniform(0.3, 1.5))
                victim = rnd.choice(("watch", "sink", "both"))
                kills[victim] += 1
                targets = (watch, sink) if victim == "both" else ((watch,) if victim == "watch"
                                                                  else (sink,))
                for p in targets:
                    p.kill9()
                time.sleep(rnd.uniform(0.0, 0.4))
                for p in targets:
                    p.start()
            log("SIGKILLs: watcher %(watch)d, sink %(sink)d, both %(both)d" % kills)
        else:
            time.sleep(min(5.0, a.deliver_seconds / 4))
            log("stopping PostgreSQL for %.0f s" % a.pg_down)
            cluster.stop()
            end = time.time() + a.pg_down
            while time.time() < end:
                sample()
                time.sleep(0.2)
            cluster.start()
            log("PostgreSQL is back; peak RSS so far: sink %d KiB, watcher %d KiB"
                % (peak["sink"], peak["watch"]))

        while not done.is_set():
            sample()
            time.sleep(0.2)
        wait_drained(mbox, [sink, watch] + extra, timeout=300)
        sample()
        elapsed = time.time() - t_start
        rc_extra = [p.stop() for p in extra]
        rc_w, rc_s = watch.stop(), sink.stop()
        if any(rc != 0 for rc in rc_extra):
            print("FAIL: exit codes of the second watcher and sink: %s" % rc_extra)
            return 1
        errors = verify(cluster, manifest, mbox)
        if rc_w != 0 or rc_s != 0:
            errors.append("exit codes after SIGTERM: watch %s, sink %s" % (rc_w, rc_s))
        log("done in %.1f s; peak RSS: sink %.1f MiB, watcher %.1f MiB (limit %d MiB)"
            % (elapsed, peak["sink"] / 1024, peak["watch"] / 1024, a.rss_limit))
        if a.mode == "pgdown":
            for name, kib in peak.items():
                if kib > a.rss_limit * 1024:
                    errors.append("%s peak RSS %.1f MiB over the limit" % (name, kib / 1024))
        resends = 0
        for f in os.listdir(logs):
            with open(os.path.join(logs, f), errors="replace") as fh:
                resends += sum(1 for line in fh if "stage=resend" in line)
        log("resends logged at notice or above: %d" % resends)
        if errors:
            for e in errors:
                print("FAIL: %s" % e)
            print("logs in %s" % logs)
            return 1
        log("OK: every mail stored exactly once")
        return 0
    finally:
        cluster.destroy()


if __name__ == "__main__":
    sys.exit(main())
