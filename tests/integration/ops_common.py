"""Helpers shared by the ops_*.py tests: a database of their own in the "pg"
fixture's cluster, Maildir delivery the way an MTA does it, fbl processes,
metrics scrapes. Standard library only; psql runs the queries."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SAMPLES = os.path.join(ROOT, "tests", "corpus", "samples")


class Failure(Exception):
    pass


class Skip(Exception):
    """The test cannot run here (a program, root or a kernel feature missing): exit 77."""


def need(cond, why):
    if not cond:
        raise Skip(why)


def run(argv, **kw):
    """Run @argv, its output kept; a failure names the command and says what it printed."""
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if out.returncode != 0:
        raise Failure("%s exited %d:\n%s" % (" ".join(argv), out.returncode, out.stdout))
    return out.stdout


def check(cond, what):
    if not cond:
        raise Failure(what)


def log(name, msg):
    print("%s: %s" % (name, msg), flush=True)


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Database:
    """A database of our own in the fixture's cluster (dropped and made again)."""

    def __init__(self, conninfo_file, name):
        base = open(conninfo_file).read().strip()
        self.base = base
        self.conninfo = "%s dbname=%s" % (base, name)
        self.psql(base, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        self.psql(base, "CREATE DATABASE %s" % name)

    @staticmethod
    def psql(conninfo, sql):
        env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
        out = subprocess.run(["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             check=True, stdout=subprocess.PIPE, text=True, env=env)
        return out.stdout.strip()

    def query(self, sql):
        return self.psql(self.conninfo, sql)


def make_maildir(path):
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    return path


_serial = [0]


def deliver(maildir, data):
    """Write into tmp/, then rename into new/, as an MTA does."""
    _serial[0] += 1
    name = "%d.P%dQ%d.ops.example" % (int(time.time()), os.getpid(), _serial[0])
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.rename(tmp, os.path.join(maildir, "new", name))
    return name


def count(maildir, sub):
    return len([n for n in os.listdir(os.path.join(maildir, sub)) if not n.startswith(".")])


def wait_for(what, cond, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(step)
    raise Failure("timed out after %ss waiting for %s" % (timeout, what))


class Proc:
    """One fbl process, its output in a file."""

    def __init__(self, argv, logpath, env=None):
        self.argv, self.logpath = argv, logpath
        full = dict(os.environ)
        full.update(env or {})
        self.fh = open(logpath, "w")
        self.p = subprocess.Popen(argv, stdout=self.fh, stderr=subprocess.STDOUT, env=full)

    def output(self):
        with open(self.logpath, errors="replace") as fh:
            return fh.read()

    def running(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=timeout)
        finally:
            self.fh.close()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.fh.close()


def scrape(port, path="/metrics"):
    """(status, content type, body) of one GET on the metrics endpoint."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode("utf-8")


def parse_metrics(text):
    """{'name{labels}': value} from the exposition format; checks its shape on the way."""
    values = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        check(key and value, "malformed metrics line %r" % line)
        base = key.split("{")[0]
        check(any(base == t or base.startswith(t + "_") for t in typed),
              "%s has no # TYPE line" % key)
        values[key] = float(value)
    return values


def run_main(name, fn):
    """Run @fn(), print a closing line ctest and CI read, exit 0/1."""
    try:
        fn()
    except Failure as e:
        log(name, "FAIL: %s" % e)
        print("0 passed, 1 failed", flush=True)
        sys.exit(1)
    print("1 passed, 0 failed", flush=True)


def edit_conf(etc, name, old, new):
    """Replace @old by @new in the copied Debian config file @etc/@name; fail if Debian's
    file no longer has @old (the test would silently run on another configuration)."""
    path = os.path.join(etc, name)
    with open(path) as fh:
        text = fh.read()
    check(old in text, "Debian's %s no longer has %r" % (name, old))
    with open(path, "w") as fh:
        fh.write(text.replace(old, new))


def start_dovecot(conf, work, imap_port, logs):
    """`dovecot -c CONF`, then wait (30 s at most) for its IMAP greeting on @imap_port;
    @logs() gives its log for the failure message."""
    # Its daemon keeps our stdout: a pipe would never end.
    with open(os.path.join(work, "dovecot.out"), "w") as out:
        rc = subprocess.run(["dovecot", "-c", conf], stdout=out,
                            stderr=subprocess.STDOUT).returncode
    check(rc == 0, "dovecot exited %d:\n%s" % (rc, open(out.name).read()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", imap_port), timeout=2) as s:
                if s.recv(512).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.2)
    raise Failure("dovecot does not answer on port %d:\n%s" % (imap_port, logs()))
