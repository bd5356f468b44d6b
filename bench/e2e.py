"""bench/e2e.py - end-to-end and memory measurements of fbl, for bench/run.

Debian's /usr/bin/python3, standard library only. Each measurement starts real
processes (`fbl run`, or `fbl watch` + `fbl sink`) against a throwaway
PostgreSQL cluster (tests/integration/pg-cluster, started with
track_commit_timestamp=on so every row's commit time can be read back), and
watches them through /proc:

  - every 100 ms: VmRSS of each fbl process (the RSS timeline, its maximum),
    and CPU time per thread (the parse thread, the sink thread);
  - at exit: the kernel's peak RSS of the process (wait4() ru_maxrss, exact,
    whatever happened between two samples);
  - PostgreSQL's CPU time: the postmaster's own and its children's (live ones
    read from /proc, exited ones from the postmaster's cutime/cstime).

Latency: a deliverer writes each mail to tmp/ and renames it into new/ at a
fixed offered rate, recording the wall-clock time of each rename; the commit
time of each mail is pg_xact_commit_timestamp(xmin) of its fbl.mails row.
"""

import base64
import hashlib
import os
import random
import shutil
import signal
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
PG_CLUSTER = os.path.join(SRC, "tests", "integration", "pg-cluster")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# ---------------------------------------------------------------- /proc


def proc_times(path):
    """utime+stime (s) and children's (s) from a /proc/.../stat file, and comm."""
    with open(path, "rb") as f:
        s = f.read().decode("latin-1")
    comm = s[s.index("(") + 1:s.rindex(")")]
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return comm, own, children, int(fields[1])


def rss_kb(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return None


def hwm_kb(pid):
    """VmHWM: the kernel's high-water mark of the process's RSS since exec."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return None


class Sampler(threading.Thread):
    """RSS and per-thread CPU of some processes, every @interval seconds."""

    def __init__(self, pids, interval=0.1):
        super().__init__(daemon=True)
        self.pids = list(pids)
        self.interval = interval
        self.peak_rss = {p: 0 for p in self.pids}
        self.hwm = {p: 0 for p in self.pids}
        self.timeline = []  # (t, {pid: rss_kb})
        self.threads = {}  # (pid, tid) -> (comm, cpu_s), last seen
        self.stop_event = threading.Event()

    def sample(self):
        now = time.monotonic()
        point = {}
        for p in self.pids:
            r = rss_kb(p)
            if r is None:
                continue
            point[p] = r
            self.peak_rss[p] = max(self.peak_rss[p], r)
            self.hwm[p] = max(self.hwm[p], hwm_kb(p) or 0)
            try:
                tids = os.listdir("/proc/%d/task" % p)
            except OSError:
                continue
            for t in tids:
                try:
                    comm, own, _, _ = proc_times("/proc/%d/task/%s/stat" % (p, t))
                except (OSError, ValueError, IndexError):
                    continue
                self.threads[(p, int(t))] = (comm, own)
        self.timeline.append((now, point))

    def run(self):
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join()

    def thread_cpu(self, pid):
        """CPU seconds per thread name of @pid (threads of one name summed)."""
        out = {}
        for (p, _), (comm, cpu) in self.threads.items():
            if p == pid:
                out[comm] = out.get(comm, 0.0) + cpu
        return out


class Proc:
    """A child process: CPU time from wait4(), peak RSS from VmHWM.

    Not wait4()'s ru_maxrss: a child forked from this (large) Python process
    carries the parent's RSS into its high-water mark until exec, so ru_maxrss
    would report Python's size. VmHWM counts from exec; it is read every 10 ms
    while the process runs, so the last reading is at most 10 ms before exit.
    """

    def __init__(self, argv, log_path, env=None):
        self.argv = argv
        self.log = open(log_path, "ab")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.p.pid
        self.status = None
        self.rusage = None
        self.wall = None
        self.hwm = 0

    def poll(self):
        if self.status is not None:
            return True
        self.hwm = max(self.hwm, hwm_kb(self.pid) or 0)
        pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self._done(status, ru)
        return True

    def _done(self, status, ru):
        self.wall = time.monotonic() - self.t0
        self.status = os.waitstatus_to_exitcode(status)
        self.rusage = ru
        self.p.returncode = self.status
        self.log.close()

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("%s did not end in %ss" % (self.argv[:2], timeout))
            time.sleep(0.01)
        return self.status

    def stop(self, timeout=60):
        if self.status is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.wait(timeout)
        except TimeoutError:
            os.kill(self.pid, signal.SIGKILL)
            return self.wait()

    @property
    def maxrss_kb(self):
        return self.hwm or None

    @property
    def cpu_s(self):
        return self.rusage.ru_utime + self.rusage.ru_stime if self.rusage else None


# ---------------------------------------------------------------- PostgreSQL


class Cluster:
    """A throwaway cluster (pg-cluster) with track_commit_timestamp=on."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        env = dict(os.environ)
        env["FBL_PG_OPTIONS"] = (env.get("FBL_PG_OPTIONS", "") +
                                 " -c track_commit_timestamp=on").strip()
        self.conninfo = subprocess.run([PG_CLUSTER, "start", self.dir], env=env, check=True,
                                       capture_output=True, text=True).stdout.strip()
        with open(os.path.join(self.dir, "base")) as f:
            self.base = f.read().strip()
        self.serial = 0

    def stop(self):
        subprocess.run([PG_CLUSTER, "stop", self.dir], check=False)

    def version(self):
        return self.query("fbl", "SHOW server_version").strip()

    def db(self, name):
        return self.conninfo.replace("dbname=fbl", "dbname=" + name)

    def new_db(self, fbl):
        """A fresh, migrated database; its conninfo."""
        self.serial += 1
        name = "bench%d" % self.serial
        self.query("fbl", "CREATE DATABASE %s" % name)
        subprocess.run([fbl, "migrate", "--db", self.db(name)], check=True,
                       capture_output=True)
        return self.db(name)

    def query(self, dbname_or_conninfo, sql):
        conn = dbname_or_conninfo if "=" in dbname_or_conninfo else self.db(dbname_or_conninfo)
        return subprocess.run(["psql", "-XAtq", "-F", "\t", "-d", conn, "-c", sql], check=True,
                              capture_output=True, text=True).stdout

    def postmaster_pid(self):
        with open(os.path.join(self.base, "data", "postmaster.pid")) as f:
            return int(f.readline())

    def cpu_s(self):
        """CPU seconds of the whole cluster so far (exited backends included)."""
        pm = self.postmaster_pid()
        _, own, children, _ = proc_times("/proc/%d/stat" % pm)
        total = own + children
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                _, o, _, ppid = proc_times("/proc/%s/stat" % d)
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pm:
                total += o
        return total


# ---------------------------------------------------------------- mail


def maildir(path):
    shutil.rmtree(path, ignore_errors=True)
    for d in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(path, d))
    return path


def load_mails(paths):
    out = []
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        out.append((hashlib.sha256(data).hexdigest(), data))
    return out


def big_mail(size, seed=10):
    """An attachment forward of @size bytes: a spam with a base64 attachment in it."""
    rng = random.Random(seed)
    head = ("From: Jane Reporter <jane@example.org>\n"
            "To: spamalert@abuse.example.net\n"
            "Subject: Fwd: huge spam\n"
            "Date: Thu, 01 Jan 2026 10:00:00 +0000\n"
            "Message-ID: <big-%d@example.org>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"outer\"\n\n"
            "--outer\nContent-Type: text/plain\n\nSee the attached spam.\n\n"
            "--outer\nContent-Type: message/rfc822\n"
            "Content-Disposition: attachment; filename=\"spam.eml\"\n\n"
            "Received: from mail.spam.test (mail.spam.test [192.0.2.77])\n"
            "\tby mx1.example.org with ESMTP; Thu, 01 Jan 2026 09:59:00 +0000\n"
            "From: Big Deals <deals@spam.test>\nTo: jane@example.org\n"
            "Subject: Your invoice\nDate: Thu, 01 Jan 2026 09:58:00 +0000\n"
            "Message-ID: <inv-%d@spam.test>\nMIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"inner\"\n\n"
            "--inner\nContent-Type: text/plain\n\nPay now: http://spam.test/pay?x=1\n\n"
            "--inner\nContent-Type: application/pdf; name=\"invoice.pdf\"\n"
            "Content-Disposition: attachment; filename=\"invoice.pdf\"\n"
            "Content-Transfer-Encoding: base64\n\n") % (seed, seed)
    tail = "\n--inner--\n\n--outer--\n"
    room = size - len(head) - len(tail)
    lines = room // 77  # base64: 57 bytes make a line of 76 characters and a newline
    body = base64.encodebytes(rng.randbytes(lines * 57)).decode("ascii")
    # The few bytes left over: blank lines, which base64 decoders skip.
    mail = head + body + "\n" * (room - len(body)) + tail
    return mail.encode("ascii")


def write_config(path, settings):
    """An fbl INI file: {section: {key: value}}."""
    with open(path, "w") as f:
        for section, kv in settings.items():
            f.write("[%s]\n" % section)
            for k, v in kv.items():
                f.write("%s = %s\n" % (k, v))
    return path


# ---------------------------------------------------------------- runs


def fbl_cmd(fbl, role, config, mdir=None, db=None, extra=()):
    argv = [fbl, role, "--config", config]
    if mdir is not None:
        argv += ["--maildir", mdir]
    if db is not None:
        argv += ["--db", db]
    return argv + list(extra)


def committed(cluster, db):
    return int(cluster.query(db, "SELECT count(*) FROM fbl.mails").strip() or 0)


def throughput(fbl, cluster, config, files, workdir, log):
    """`fbl run --once` over @files copied into new/ first: rates, CPU, RSS."""
    db = cluster.new_db(fbl)
    mdir = maildir(os.path.join(workdir, "tp-maildir"))
    # A backlog, as fbl finds one at start: mails delivered a while ago. Copied just
    # now, in place, they would look like files still being written, and the
    # watcher would wait up to FBL_WATCH_SETTLE_MS (1 s) for them to settle
    # (fbl/maildir_arrival.h): measured as up to a third of this run's wall time.
    old = time.time() - 3600
    for p in files:
        dst = os.path.join(mdir, "new", os.path.basename(p))
        shutil.copy(p, dst)
        os.utime(dst, (old, old))
    pg0 = cluster.cpu_s()
    proc = Proc(fbl_cmd(fbl, "run", config, mdir, db, ["--once"]), log)
    s = Sampler([proc.pid])
    s.start()
    proc.wait(timeout=3600)
    s.stop()
    pg = cluster.cpu_s() - pg0
    n = committed(cluster, db)
    reports = int(cluster.query(db, "SELECT count(*) FROM fbl.reports").strip())
    rejects = int(cluster.query(db, "SELECT count(*) FROM fbl.rejects").strip())
    return {"status": proc.status, "mails": n, "expected": len(files), "reports": reports,
            "rejects": rejects, "wall_s": proc.wall, "fbl_cpu_s": proc.cpu_s, "pg_cpu_s": pg,
            "threads": s.thread_cpu(proc.pid), "maxrss_kb": proc.maxrss_kb,
            "sampled_peak_kb": s.peak_rss[proc.pid]}


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def deliver(mdir, mails, rate, stop_after=None):
    """Rename each mail into new/ at @rate mails/s; {mail_id: delivery time}."""
    delivered = {}
    t0 = time.time() + 0.05
    pid = os.getpid()
    for i, (mail_id, data) in enumerate(mails):
        target = t0 + i / rate
        now = time.time()
        if target > now:
            time.sleep(target - now)
        name = "%d.M%dP%dQ%d.bench" % (int(target), int(target * 1e6) % 1000000, pid, i)
        tmp = os.path.join(mdir, "tmp", name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)
        os.rename(tmp, os.path.join(mdir, "new", name))
        delivered.setdefault(mail_id, time.time())
        if stop_after is not None and i + 1 >= stop_after:
            break
    elapsed = time.time() - t0
    return delivered, elapsed


def wait_ready(cluster, db, procs, seconds=1.0):
    """Give the daemons time to connect and list new/ before the first delivery."""
    time.sleep(seconds)
    for p in procs:
        if p.poll():
            raise RuntimeError("%s exited early (%s)" % (p.argv[:2], p.status))


def latency(fbl, cluster, config, mails, rate, workdir, log, split=False):
    """Offered-rate run: delivery-to-commit latency percentiles."""
    db = cluster.new_db(fbl)
    mdir = maildir(os.path.join(workdir, "lat-maildir"))
    procs = []
    if split:
        endpoint = "ipc://%s" % os.path.join(workdir, "sink.sock")
        procs.append(Proc(fbl_cmd(fbl, "sink", config, None, db, ["--bind", endpoint]), log))
        procs.append(Proc(fbl_cmd(fbl, "watch", config, mdir, None, ["--connect", endpoint]),
                          log))
    else:
        procs.append(Proc(fbl_cmd(fbl, "run", config, mdir, db), log))
    s = Sampler([p.pid for p in procs])
    s.start()
    pg0 = cluster.cpu_s()
    wait_ready(cluster, db, procs)
    delivered, elapsed = deliver(mdir, mails, rate)
    # Drain: wait until every mail is committed (or nothing moves for 30 s).
    last, last_change = -1, time.monotonic()
    while True:
        n = committed(cluster, db)
        if n >= len(delivered):
            break
        if n != last:
            last, last_change = n, time.monotonic()
        if time.monotonic() - last_change > 30:
            break
        time.sleep(0.2)
    pg = cluster.cpu_s() - pg0
    for p in reversed(procs):
        p.stop()
    s.stop()
    rows = cluster.query(db, "SELECT mail_id, extract(epoch FROM "
                         "pg_xact_commit_timestamp(xmin)) FROM fbl.mails")
    lat = []
    for line in rows.splitlines():
        mail_id, ts = line.split("\t")
        if mail_id in delivered and ts:
            lat.append((float(ts) - delivered[mail_id]) * 1000.0)
    lat.sort()
    res = {"offered": rate, "achieved": len(mails) / elapsed if elapsed > 0 else None,
           "delivered": len(delivered), "committed": len(lat), "pg_cpu_s": pg,
           "p50": percentile(lat, 50), "p90": percentile(lat, 90),
           "p99": percentile(lat, 99), "max": lat[-1] if lat else None,
           "procs": [{"role": p.argv[1], "maxrss_kb": max(p.maxrss_kb or 0, s.hwm[p.pid]),
                      "cpu_s": p.cpu_s,
                      "status": p.status, "threads": s.thread_cpu(p.pid)} for p in procs]}
    return res


def backlog(fbl, cluster, config, mdir, log, expected):
    """`fbl run --once` on a Maildir whose new/ already holds the backlog."""
    db = cluster.new_db(fbl)
    pg0 = cluster.cpu_s()
    proc = Proc(fbl_cmd(fbl, "run", config, mdir, db, ["--once"]), log)
    s = Sampler([proc.pid])
    s.start()
    proc.wait(timeout=7200)
    s.stop()
    n = committed(cluster, db)
    timeline = [pt.get(proc.pid, 0) for _, pt in s.timeline]
    return {"status": proc.status, "mails": n, "expected": expected, "wall_s": proc.wall,
            "fbl_cpu_s": proc.cpu_s, "pg_cpu_s": cluster.cpu_s() - pg0,
            "maxrss_kb": proc.maxrss_kb, "sampled_peak_kb": s.peak_rss[proc.pid],
            "samples": len(timeline),
            "rss_median_kb": sorted(timeline)[len(timeline) // 2] if timeline else None}
