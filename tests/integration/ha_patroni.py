#!/usr/bin/python3
"""PostgreSQL failover under a running `fbl run`: Patroni + etcd as Debian ships them.

usage: ha_patroni.py failover|switchover|replica|commit-unknown --fbl BIN --workdir DIR [--mails N] [--seed S]

The test starts a single-member etcd and two Patroni nodes, each managing a
PostgreSQL 15 instance on a loopback port (synchronous_mode: a commit is on the
standby before it returns, the setting doc/DESIGN.md names for "nothing lost on
failover"). `fbl run` is given the multi-host conninfo
    host=127.0.0.1,127.0.0.1 port=P1,P2 target_session_attrs=read-write
and ingests N generated mails delivered into its Maildir over about 20 s,
forwarding every report to a vendor (vendor_server.py, http-json).

failover    once a random part of the mails is stored, the primary's Patroni and
            postmaster are killed with SIGKILL (a host lost); the standby is
            promoted after the leader key's TTL; the dead node is started again
            and rejoins as a standby.
switchover  the same moment, `patronictl switchover` to the standby instead.
replica     no disruption; while the mails arrive, the standby's replay lag is
            sampled (pg_stat_replication on the primary) and printed; then `fbl
            report --format json` through `target_session_attrs=prefer-standby`
            (which lands on the hot standby: pg_is_in_recovery) equals the same
            report on the primary once the standby has replayed the primary's WAL.

commit-unknown
            a COMMIT whose outcome the sink cannot know: the synchronous
            standby's processes are stopped (SIGSTOP), so the primary's COMMITs
            wait for it (wait event SyncRep); the waiting sink backends are then
            terminated (pg_terminate_backend): their transactions committed
            locally, their connections broke before the answer. The standby is
            continued; the sink writes those batches again, and the store's
            idempotency keeps each mail once.

In every mode `fbl run` is never restarted: in the end it still runs, new/ is empty,
and the new primary holds every mail of the generator's manifest exactly once,
with the expected reports or reject (pipeline.py's verify), cur/ every file;
every outbox row is sent and every report reached the vendor, a repeat only in a
batch of the same Idempotency-Key.

Exit 77 (skip) without patroni, etcd or PostgreSQL 15, or not as root (the
nodes run as the user postgres). Standard library only.
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
import urllib.request

import pipeline
from ops_common import free_port
from vendor_server import VendorServer

SKIP = 77
PG_BIN = "/usr/lib/postgresql/15/bin"


T0 = time.monotonic()


def log(msg):
    print("ha_patroni: [%5.1f s] %s" % (time.monotonic() - T0, msg), flush=True)


def as_postgres(argv):
    return ["runuser", "-u", "postgres", "--"] + argv


class Node:
    """One Patroni node and its PostgreSQL."""

    def __init__(self, work, name, etcd_port):
        self.name, self.work = name, work
        self.pg_port, self.api_port = free_port(), free_port()
        self.data = os.path.join(work, name)
        self.conf = os.path.join(work, name + ".yml")
        self.log = os.path.join(work, name + ".log")
        with open(self.conf, "w") as fh:
            fh.write(NODE_YML % dict(name=name, api=self.api_port, etcd=etcd_port,
                                     pg=self.pg_port, data=self.data, bin=PG_BIN, work=work))
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        out = open(self.log, "a")
        self.proc = subprocess.Popen(as_postgres(["patroni", self.conf]), stdout=out,
                                     stderr=subprocess.STDOUT)

    def role(self):
        """'primary', 'replica' or None (Patroni's REST API)."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/patroni" % self.api_port,
                                        timeout=2) as r:
                state = json.load(r)
        except OSError:
            return None
        if state.get("state") != "running":
            return None
        role = state.get("role")
        return "primary" if role == "master" else role  # Patroni 3.0 says "master"

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as fh:
                return int(fh.readline())
        except (OSError, ValueError):
            return None

    def processes(self):
        """The postmaster and its children."""
        pm = self.postmaster_pid()
        out = [pm] if pm else []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/stat" % pid) as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if pm and ppid == pm:
                out.append(int(pid))
        return out

    def signal_all(self, sig):
        for pid in self.processes():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def crash(self):
        """SIGKILL Patroni and the postmaster: the host is gone."""
        pid = self.postmaster_pid()
        # runuser's child is patroni itself (runuser execs it)
        for p in filter(None, (self.patroni_pid(), pid)):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def patroni_pid(self):
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    cmd = fh.read().split(b"\0")
            except OSError:
                continue
            if len(cmd) >= 3 and cmd[1].endswith(b"/patroni") and cmd[2] == self.conf.encode():
                return int(pid)
        return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.crash()


NODE_YML = """scope: fbl-ha
name: %(name)s
restapi:
  listen: 127.0.0.1:%(api)d
  connect_address: 127.0.0.1:%(api)d
etcd3:
  hosts: 127.0.0.1:%(etcd)d
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_log_hints: "on"
  initdb:
  - encoding: UTF8
  - auth: trust
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:%(pg)d
  connect_address: 127.0.0.1:%(pg)d
  data_dir: %(data)s
  bin_dir: %(bin)s
  pgpass: %(work)s/pgpass-%(name)s
  authentication:
    superuser: {username: postgres}
    replication: {username: postgres}
    rewind: {username: postgres}
  parameters:
    unix_socket_directories: %(work)s
    max_connections: 50
"""


class Cluster:
    def __init__(self, work):
        self.work = work
        self.etcd_port, peer = free_port(), free_port()
        self.etcd = subprocess.Popen(
            as_postgres(["etcd", "--name", "e1", "--data-dir", os.path.join(work, "etcd"),
                         "--listen-client-urls", "http://127.0.0.1:%d" % self.etcd_port,
                         "--advertise-client-urls", "http://127.0.0.1:%d" % self.etcd_port,
                         "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
                         "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
                         "--initial-cluster", "e1=http://127.0.0.1:%d" % peer]),
            stdout=open(os.path.join(work, "etcd.log"), "w"), stderr=subprocess.STDOUT)
        self.nodes = [Node(work, "pg1", self.etcd_port), Node(work, "pg2", self.etcd_port)]
        self.nodes[0].start()
        self.wait_roles({"primary"}, 90, nodes=self.nodes[:1])
        self.nodes[1].start()
        self.wait_roles({"primary", "replica"}, 90)
        self.wait_sync(60)
        self.conninfo = ("host=127.0.0.1,127.0.0.1 port=%d,%d dbname=fbl user=postgres "
                         "target_session_attrs=read-write connect_timeout=3"
                         % tuple(n.pg_port for n in self.nodes))
        self.psql("postgres", "CREATE DATABASE fbl")

    def roles(self, nodes=None):
        return {n.name: n.role() for n in nodes or self.nodes}

    def wait_roles(self, want, timeout, nodes=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self.roles(nodes).values()) == want:
                return
            time.sleep(0.5)
        raise SystemExit("FAIL: roles %s, want %s after %d s\n%s"
                         % (self.roles(nodes), want, timeout, self.logs()))

    def wait_sync(self, timeout):
        """Until the replica is the synchronous standby (commits wait for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.patronictl("list").count("Sync Standby") == 1:
                return
            time.sleep(0.5)
        raise SystemExit("FAIL: no synchronous standby after %d s:\n%s"
                         % (timeout, self.patronictl("list")))

    def primary(self):
        return next((n for n in self.nodes if n.role() == "primary"), None)

    def patronictl(self, *args):
        return subprocess.run(["patronictl", "-c", self.nodes[0].conf] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True).stdout

    def psql(self, db, sql):
        p = self.primary()
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(p.pg_port), "-U", "postgres",
                              "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             check=True, stdout=subprocess.PIPE, text=True)
        return out.stdout.strip()

    def query(self, sql):
        """pipeline.verify's interface: on the primary, through the multi-host conninfo."""
        out = subprocess.run(["psql", self.conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1",
                              "-c", sql], check=True, stdout=subprocess.PIPE, text=True)
        return out.stdout.strip()

    def stored(self):
        out = subprocess.run(["psql", self.conninfo, "-XAtq", "-c",
                              "SELECT count(*) FROM fbl.mails"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        return int(out.stdout) if out.returncode == 0 and out.stdout.strip() else 0

    def logs(self):
        text = []
        for n in self.nodes:
            try:
                with open(n.log, errors="replace") as fh:
                    text.append("--- %s ---\n%s" % (n.name, fh.read()[-3000:]))
            except OSError:
                pass
        return "\n".join(text)

    def destroy(self):
        for n in self.nodes:
            n.stop()
        self.etcd.terminate()
        self.etcd.wait()


def write_config(path, mbox, conninfo, vendor_url, token_file):
    with open(path, "w") as fh:
        fh.write("""[postgres]
conninfo = %s

[mailbox:spamalert]
path = %s

[vendor:ha]
type = http-json
url = %s
token_file = %s
batch_size = 50
# a loopback vendor: a short timeout, and so a short lease (fbl/forward_loop.c), the
# at-least-once window in which a batch whose marking was lost is sent again
timeout = 2s

[watch]
window = 64
ack_timeout = 3s

[sink]
batch_max_mails = 200
batch_max_wait = 100ms
retry_max_wait = 2s

[log]
level = notice
""" % (conninfo, mbox, vendor_url, token_file))


class LagSampler(threading.Thread):
    """The standby's replay lag on the primary (pg_stat_replication), every 0.2 s."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster, self.samples, self.stop = cluster, [], threading.Event()

    def run(self):
        sql = ("SELECT coalesce(extract(epoch FROM replay_lag), 0), "
               "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication")
        while not self.stop.wait(0.2):
            out = subprocess.run(["psql", self.cluster.conninfo, "-XAtq", "-F", " ", "-c", sql],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for line in out.stdout.split("\n"):
                if line.strip():
                    secs, lag_bytes = line.split()
                    self.samples.append((float(secs), float(lag_bytes)))


def report_json(a, conninfo, since, until):
    out = subprocess.run([a.fbl, "report", "--db", conninfo, "--format", "json", "--since",
                          since, "--until", until, "--top", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit("FAIL: fbl report on %s exited %d: %s"
                         % (conninfo, out.returncode, out.stderr))
    return json.loads(out.stdout)


def check_replica(a, cluster):
    """fbl report on the hot standby equals the primary's once it has replayed."""
    standby = next(n for n in cluster.nodes if n.role() == "replica")
    reader = cluster.conninfo.replace("read-write", "prefer-standby")
    on = subprocess.run(["psql", reader, "-XAtq", "-c", "SELECT pg_is_in_recovery()"],
                        stdout=subprocess.PIPE, text=True).stdout.strip()
    if on != "t":
        raise SystemExit("FAIL: prefer-standby did not land on the standby (%s)" % on)
    target = cluster.query("SELECT pg_current_wal_lsn()")
    t0 = time.monotonic()
    while True:
        behind = subprocess.run(
            ["psql", reader, "-XAtq", "-c",
             "SELECT pg_wal_lsn_diff('%s', pg_last_wal_replay_lsn()) > 0" % target],
            stdout=subprocess.PIPE, text=True).stdout.strip()
        if behind == "f":
            break
        if time.monotonic() - t0 > 60:
            raise SystemExit("FAIL: the standby has not replayed %s after 60 s" % target)
        time.sleep(0.1)
    caught_up = time.monotonic() - t0
    since, until = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"
    primary = report_json(a, cluster.conninfo, since, until)
    replica = report_json(a, reader, since, until)
    if primary != replica:
        diff = [k for k in set(primary) | set(replica) if primary.get(k) != replica.get(k)]
        raise SystemExit("FAIL: fbl report differs on the standby %s: %s" % (standby.name, diff))
    return standby.name, caught_up, len(json.dumps(primary))


def unknown_commits(cluster):
    """Break connections in the middle of their COMMIT (see commit-unknown above);
    returns how many backends were terminated while waiting for the standby."""
    standby = next(n for n in cluster.nodes if n.role() == "replica")
    primary = cluster.primary()
    standby.signal_all(signal.SIGSTOP)
    waiting = "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
    try:
        deadline = time.monotonic() + 60
        pids = []
        while not pids and time.monotonic() < deadline:
            pids = cluster.psql("fbl", waiting).split()
            time.sleep(0.05)
        if not pids:
            raise SystemExit("FAIL: no COMMIT waited for the stopped standby in 60 s")
        time.sleep(0.5)  # let every writer reach its COMMIT
        pids = cluster.psql("fbl", waiting).split()
        cluster.psql("fbl", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE wait_event = 'SyncRep'")
    finally:
        standby.signal_all(signal.SIGCONT)
    if cluster.primary() is not primary:
        raise SystemExit("FAIL: the primary changed while the standby was stopped")
    return len(pids)


def disrupt(mode, cluster):
    """Take the primary away; returns a line saying what happened."""
    old = cluster.primary()
    t0 = time.monotonic()
    if mode == "failover":
        old.crash()
        cluster.wait_roles({"primary"}, 60, nodes=[n for n in cluster.nodes if n is not old])
        took = time.monotonic() - t0
        old.start()  # it rejoins as a standby (pg_rewind when it must)
        cluster.wait_roles({"primary", "replica"}, 120)
        return "%s's Patroni and postmaster SIGKILLed; the standby promoted after %.1f s, " \
               "%s rejoined as a standby" % (old.name, took, old.name)
    other = next(n for n in cluster.nodes if n is not old)
    out = cluster.patronictl("switchover", "--leader", old.name, "--candidate", other.name,
                             "--force")
    cluster.wait_roles({"primary", "replica"}, 60)
    if cluster.primary() is not other:
        raise SystemExit("FAIL: switchover did not make %s primary:\n%s" % (other.name, out))
    return "switchover %s -> %s in %.1f s" % (old.name, other.name, time.monotonic() - t0)


def check_vendor(cluster, vendor, timeout=120):
    """Every outbox row sent and every report delivered (2xx) to the vendor; a report
    delivered twice (the at-least-once window: a lease that ran out while the primary
    changed) came again in a batch of the same Idempotency-Key, which the vendor drops.
    Returns how many reports were delivered more than once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = cluster.query("SELECT count(*) FROM fbl.vendor_outbox WHERE state <> 'sent'")
        if left == "0":
            break
        time.sleep(0.5)
    else:
        raise SystemExit("FAIL: %s outbox rows not sent after %d s: %s" % (
            left, timeout, cluster.query("SELECT state, count(*) FROM fbl.vendor_outbox "
                                         "GROUP BY 1")))
    ids = set(cluster.query("SELECT report_id FROM fbl.vendor_outbox").split())
    ok = vendor.ok_counts()
    missing = [i for i in ids if ok.get(i, 0) == 0]
    if missing or not ids:
        raise SystemExit("FAIL: %d of %d reports never delivered to the vendor"
                         % (len(missing), len(ids)))
    keys = {}
    with vendor.lock:
        for r in vendor.requests:
            if isinstance(r["status"], int) and 200 <= r["status"] < 300:
                for i in r["ids"]:
                    keys.setdefault(i, set()).add(r["key"])
    other_key = [i for i, k in keys.items() if len(k) > 1]
    if other_key:
        raise SystemExit("FAIL: %d reports delivered again under another Idempotency-Key"
                         % len(other_key))
    return sum(1 for i in ids if ok[i] > 1)


def semaphores_work():
    """Whether the user postgres can make a POSIX semaphore (Patroni's thread pools do)."""
    # Debian's python3, as Patroni's own (a test runner's may be one postgres cannot run)
    probe = as_postgres(["/usr/bin/python3", "-c",
                         "import multiprocessing; multiprocessing.Lock()"])
    return subprocess.run(probe, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def provide_shm():
    """A chroot may have /dev/shm as a plain directory: POSIX semaphores fail (EACCES) and
    Patroni with them. Mount a tmpfs there for the test. Returns (mounted, why not)."""
    if semaphores_work():
        return False, None
    with open("/proc/mounts") as fh:
        if any(line.split()[1] == "/dev/shm" for line in fh):
            return False, "POSIX semaphores fail for the user postgres although /dev/shm is a " \
                "mount of its own (its mode?)"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=64m", "fbl-test-shm",
                        "/dev/shm"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        return False, "POSIX semaphores fail and a tmpfs on /dev/shm cannot be mounted: %s" \
            % r.stdout.strip()
    if not semaphores_work():
        subprocess.run(["umount", "/dev/shm"], check=False)
        return False, "POSIX semaphores fail even on a tmpfs at /dev/shm"
    log("/dev/shm did not take POSIX semaphores (a chroot?): a tmpfs mounted there for "
        "this test")
    return True, None


def test(a):
    if os.getuid() != 0:
        return "not root (the nodes run as postgres)"
    for tool in ("patroni", "patronictl", "etcd"):
        if shutil.which(tool) is None:
            return "%s is not installed (Debian packages patroni, etcd-server)" % tool
    if not os.path.exists(os.path.join(PG_BIN, "postgres")):
        return "PostgreSQL 15 is not installed"
    mounted, why = provide_shm()
    if why:
        return why
    try:
        return run_test(a)
    finally:
        if mounted:
            subprocess.run(["umount", "/dev/shm"], check=False)


def run_test(a):
    rnd = random.Random(a.seed)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    os.chmod(a.workdir, 0o755)
    work = os.path.join(a.workdir, "cluster")
    os.makedirs(work)
    shutil.chown(work, "postgres", "postgres")
    stage, mbox = os.path.join(a.workdir, "stage"), os.path.join(a.workdir, "mbox")
    for d in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(mbox, d))
    manifest_path = os.path.join(a.workdir, "manifest.jsonl")
    subprocess.run([sys.executable, pipeline.GENMAIL, "--seed", str(a.seed), "--count",
                    str(a.mails), "--out", stage, "--maildir", "--manifest", manifest_path],
                   check=True, stdout=subprocess.DEVNULL)
    manifest = [json.loads(line) for line in open(manifest_path)]
    t0 = time.monotonic()
    cluster = Cluster(work)
    log("etcd + 2 Patroni nodes up, synchronous standby in place, in %.1f s"
        % (time.monotonic() - t0))
    fbl = None
    vendor = VendorServer(token="ha-token").start()
    try:
        token = os.path.join(a.workdir, "token")
        with open(token, "w") as fh:
            fh.write("ha-token\n")
        os.chmod(token, 0o600)
        conf = os.path.join(a.workdir, "fbl.conf")
        write_config(conf, mbox, cluster.conninfo, vendor.url(), token)
        fbl = pipeline.Proc("run", [a.fbl, "run", "--config", conf], a.workdir)
        fbl.start()
        done = threading.Event()
        threading.Thread(target=pipeline.deliver, args=(stage, mbox, 20.0, done),
                         daemon=True).start()
        target = rnd.randint(a.mails // 5, a.mails // 2)
        deadline = time.monotonic() + 120
        while cluster.stored() < target:
            if time.monotonic() > deadline or fbl.p.poll() is not None:
                raise SystemExit("FAIL: %d of %d stored before the disruption; fbl %s"
                                 % (cluster.stored(), target, fbl.p.poll()))
            time.sleep(0.05)
        at = cluster.stored()
        sampler = None
        if a.mode == "replica":
            sampler = LagSampler(cluster)
            sampler.start()
        elif a.mode == "commit-unknown":
            n = unknown_commits(cluster)
            log("%d connection(s) terminated in their COMMIT, committed locally, at %d "
                "of %d mails stored" % (n, at, a.mails))
        else:
            what = disrupt(a.mode, cluster)
            log("%s at %d of %d mails stored" % (what, at, a.mails))
        done.wait(120)
        pipeline.wait_drained(mbox, [fbl], 300)
        if fbl.p.poll() is not None:
            raise SystemExit("FAIL: fbl run exited with %s" % fbl.p.returncode)
        errors = pipeline.verify(cluster, manifest, mbox)
        if errors:
            raise SystemExit("FAIL: " + "; ".join(errors))
        log("new/ empty, the store verified")
        if sampler is not None:
            sampler.stop.set()
            sampler.join()
            lags = sorted(s[0] for s in sampler.samples) or [0.0]
            lag_bytes = max((s[1] for s in sampler.samples), default=0.0)
            log("replica: replay lag while ingesting (%d samples): median %.3f s, max %.3f s, "
                "max %.0f bytes of WAL behind" % (len(lags), lags[len(lags) // 2], lags[-1],
                                                   lag_bytes))
            name, caught_up, size = check_replica(a, cluster)
            log("replica: fbl report --format json on the standby %s equals the primary's "
                "(%d bytes), replayed %.2f s after the last commit was read" % (name, size,
                                                                               caught_up))
        if a.mode == "commit-unknown":
            with open(os.path.join(a.workdir, "run.1.log"), errors="replace") as fh:
                lost = [l for l in fh if "writing a batch failed" in l and "commit:" in l]
            if not lost:
                raise SystemExit("FAIL: the sink never saw a COMMIT without an answer")
            log("the sink: %s" % lost[0].split("msg=", 1)[1].strip()[:160])
        repeats = check_vendor(cluster, vendor)
        rc = fbl.stop()
        if rc != 0:
            raise SystemExit("FAIL: fbl run exited %d after SIGTERM" % rc)
        log("%s: every one of %d mails stored once on the primary (%s), every report "
            "delivered to the vendor (%d delivered again, each in a batch of the same "
            "Idempotency-Key), fbl run never restarted"
            % (a.mode, a.mails, cluster.primary().name, repeats))
    finally:
        if fbl is not None:
            fbl.kill9()
        vendor.stop()
        cluster.destroy()
        log("cluster stopped")
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("failover", "switchover", "replica", "commit-unknown"))
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--mails", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    log("seed %d" % a.seed)
    why = test(a)
    if why:
        log("SKIP: " + why)
        sys.exit(SKIP)


if __name__ == "__main__":
    main()
