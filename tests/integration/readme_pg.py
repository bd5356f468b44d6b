#!/usr/bin/python3
"""PostgreSQL as the README sets it up, and as it fails.

usage: readme_pg.py setup       --fbl BIN --workdir DIR
       readme_pg.py roles       --fbl BIN --workdir DIR
       readme_pg.py unavailable --fbl BIN --workdir DIR --conninfo-file FILE

setup        the README's PostgreSQL steps (the ```sh block after the comment
             "<!-- test: pg-setup"), run line by line as written, as root,
             against a throwaway cluster of the test's own (pg-cluster, without
             its database "fbl", as on a fresh Debian host; PGHOST points the
             clients at it, runuser keeps it). `apt-get install` lines are not
             run: the test checks that dpkg has the packages they name. Then
             `fbl run --once` with the README's /etc/fbl/fbl.conf (its socket
             directory, Maildir and metrics ports moved into the scratch
             directory; PGUSER=fbl stands for peer authentication of the user
             fbl) stores a sample mail and moves it to cur/.
roles        the steps without the roles fbl_analyst and fbl_writer: `fbl run
             --once` and `fbl migrate` stop at once with exit status 77 and one
             error line that gives the SQL to run; the test runs exactly that
             SQL as the superuser, and `fbl run --once` then stores the mail.
unavailable  `fbl run --once` with PostgreSQL down, and with a login it refuses
             (a role that does not exist, in the "pg" fixture's cluster),
             retries for [postgres] unreachable_timeout (3 s here), then exits
             69 with one error line and the mail still in new/; `fbl sink`
             (a daemon) keeps retrying past it and stops cleanly on SIGTERM.
Exit 77 (ctest: skipped) when not root (runuser) or a package is missing.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
README = os.path.join(ROOT, "README.md")
PG_CLUSTER = os.path.join(HERE, "pg-cluster")
SAMPLE = os.path.join(ROOT, "tests", "corpus", "samples", "arf-not-spam.eml")
SKIP = 77
FAILURES = []


class Skip(Exception):
    pass


def log(msg):
    print("readme_pg: %s" % msg, flush=True)


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        log("FAIL: %s" % what)
    return cond


def run(argv, env=None, timeout=120):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
        return subprocess.CompletedProcess(argv, -1, "(timed out after %ds) %s"
                                           % (timeout, out or ""))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def maildir(path, mails=1):
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for n in range(mails):
        shutil.copy(SAMPLE, os.path.join(path, "new", "%d.readme%d.example" % (time.time(), n)))
    return path


def count(path, sub):
    return len(os.listdir(os.path.join(path, sub)))


# ---- the README --------------------------------------------------------------------------

def marked_block(text, marker):
    """The lines of the ```sh block after <!-- test: MARKER, continuations joined."""
    m = re.search(r"<!-- test: %s\b.*?-->\n```sh\n(.*?)^```" % re.escape(marker), text,
                  re.S | re.M)
    if m is None:
        raise AssertionError("README.md has no ```sh block marked <!-- test: %s -->" % marker)
    return m.group(1).replace("\\\n", " ").splitlines()


def readme_conf(text, path):
    """The text README.md writes to @path with cat >@path <<'END' ... END."""
    m = re.search(r"^cat >%s <<'(\w+)'\n(.*?)^\1$" % re.escape(path), text, re.M | re.S)
    if m is None:
        raise AssertionError("README.md writes no %s" % path)
    return m.group(2)


# ---- a cluster of the test's own -----------------------------------------------------------

class Cluster:
    """pg-cluster in @dir, without its database fbl: a fresh server, as Debian installs it."""

    def __init__(self, workdir):
        if os.geteuid() != 0:
            raise Skip("not root: the README's steps run as root (runuser -u postgres)")
        self.dir = os.path.join(workdir, "pg")
        env = dict(os.environ, FBL_PG_OPTIONS="-c fsync=off")
        out = run([PG_CLUSTER, "start", self.dir], env=env)
        if out.returncode == 69:
            raise Skip("no PostgreSQL server: %s" % out.stdout.strip())
        if out.returncode != 0:
            raise AssertionError("pg-cluster start: %s" % out.stdout)
        self.host = open(os.path.join(self.dir, "base")).read().strip()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self.env["PGHOST"] = self.host
        self.psql("DROP DATABASE fbl", "postgres")

    def psql(self, sql, db="fbl"):
        out = run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-U", "postgres",
                   "-d", db, "-c", sql])
        if out.returncode != 0:
            raise AssertionError("psql %r: %s" % (sql, out.stdout))
        return out.stdout.strip()

    def shell(self, line):
        """One line of the README, as an administrator types it (as root)."""
        return run(["sh", "-ec", line], env=self.env)

    def stop(self):
        run([PG_CLUSTER, "stop", self.dir])


def installed(package):
    out = run(["dpkg-query", "-W", "-f=${Status}", package])
    return out.returncode == 0 and out.stdout.endswith("installed")


def follow(cluster, lines):
    """Run the README's lines in order; `apt-get install P...` checks that P... are installed."""
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = line.split()
        if words[:2] == ["apt-get", "install"]:
            missing = [p for p in words[2:] if not p.startswith("-") and not installed(p)]
            if missing:
                raise Skip("not installed: %s (the README installs it)" % " ".join(missing))
            log("README: %s: installed" % line)
            continue
        out = cluster.shell(line)
        check(out.returncode == 0, "README line %r exits %d: %s" % (line, out.returncode,
                                                                   out.stdout.strip()))
        log("README: %s" % line)


def fbl_env(cluster):
    """How the user fbl reaches the cluster: its socket directory, its own name."""
    return dict(cluster.env, PGUSER="fbl")


# ---- setup ---------------------------------------------------------------------------------

def mode_setup(a):
    text = open(README).read()
    cluster = Cluster(a.workdir)
    try:
        follow(cluster, marked_block(text, "pg-setup"))
        conf_text = readme_conf(text, "/etc/fbl/fbl.conf")
        box = maildir(os.path.join(a.workdir, "var", "mail", "spamalert"))
        conf_text = conf_text.replace("host=/run/postgresql", "host=" + cluster.host)
        conf_text = conf_text.replace("/var/mail/spamalert", box)
        conf_text = re.sub(r"127\.0\.0\.1:97\d\d", lambda m: "127.0.0.1:%d" % free_port(),
                           conf_text)
        conf = os.path.join(a.workdir, "fbl.conf")
        with open(conf, "w") as fh:
            fh.write(conf_text)
        out = run([a.fbl, "run", "--config", conf, "--check-config"], env=fbl_env(cluster))
        check(out.returncode == 0, "the README's fbl.conf: --check-config: %s" % out.stdout)
        out = run([a.fbl, "run", "--config", conf, "--once"], env=fbl_env(cluster))
        check(out.returncode == 0, "fbl run --once with the README's setup exits %d: %s"
              % (out.returncode, out.stdout.strip()[-2000:]))
        stored = cluster.psql("SELECT count(*) FROM fbl.mails")
        check(stored == "1", "%s mail(s) stored, want 1" % stored)
        check(count(box, "cur") == 1 and count(box, "new") == 0, "the mail did not move to cur/")
        owner = cluster.psql("SELECT tableowner FROM pg_tables WHERE schemaname = 'fbl' "
                             "AND tablename = 'mails'")
        check(owner == "fbl", "fbl.mails belongs to %r, not fbl" % owner)
        if not FAILURES:
            log("the README's steps, as written: the mail is stored")
    finally:
        cluster.stop()


# ---- roles ---------------------------------------------------------------------------------

def mode_roles(a):
    text = open(README).read()
    cluster = Cluster(a.workdir)
    try:
        steps = [l for l in marked_block(text, "pg-setup") if "CREATE ROLE" not in l]
        check(len(steps) < len(marked_block(text, "pg-setup")),
              "the README's steps create no role")
        follow(cluster, steps)
        box = maildir(os.path.join(a.workdir, "spamalert"))
        db = ["--db", "host=%s dbname=fbl user=fbl" % cluster.host]
        t0 = time.monotonic()
        out = run([a.fbl, "run", "--once", "--maildir", box] + db, env=cluster.env, timeout=60)
        took = time.monotonic() - t0
        errors = [l for l in out.stdout.splitlines() if "level=critical" in l or
                  "level=error" in l]
        check(out.returncode == 77 and took < 30,
              "fbl run --once without the roles: exit %d after %.1f s (want 77 at once): %s"
              % (out.returncode, took, out.stdout.strip()[-1000:]))
        check(len(errors) == 1, "want one error line, got %d: %s" % (len(errors), errors))
        want = "CREATE ROLE fbl_analyst NOLOGIN; CREATE ROLE fbl_writer NOLOGIN;"
        check(want in out.stdout, "the error does not give %r: %s" % (want, out.stdout.strip()))
        check(count(box, "new") == 1, "the mail left new/ although nothing was stored")
        out = run([a.fbl, "migrate"] + db, env=cluster.env, timeout=60)
        check(out.returncode == 77 and want in out.stdout,
              "fbl migrate without the roles: exit %d: %s" % (out.returncode, out.stdout.strip()))
        m = re.search(r"run: (CREATE ROLE .*?;) then", out.stdout)
        if check(m is not None, "no SQL to run in %r" % out.stdout):
            out = run(["runuser", "-u", "postgres", "--", "psql", "-X", "-v", "ON_ERROR_STOP=1",
                       "-c", m.group(1)], env=cluster.env)
            check(out.returncode == 0, "the SQL fbl gave fails: %s" % out.stdout)
        out = run([a.fbl, "run", "--once", "--maildir", box] + db, env=cluster.env)
        check(out.returncode == 0, "fbl run --once after the SQL: exit %d: %s"
              % (out.returncode, out.stdout.strip()[-1000:]))
        stored = cluster.psql("SELECT count(*) FROM fbl.mails")
        check(stored == "1", "%s mail(s) stored after the SQL, want 1" % stored)
        if not FAILURES:
            log("missing roles: exit 77 at once with the SQL; that SQL is all it takes")
    finally:
        cluster.stop()


# ---- unavailable ---------------------------------------------------------------------------

def give_up(a, name, conninfo):
    """`fbl run --once` on @conninfo gives up after unreachable_timeout = 3s, exit 69."""
    conf = os.path.join(a.workdir, name + ".conf")
    with open(conf, "w") as fh:
        fh.write("[postgres]\nconninfo = %s\nunreachable_timeout = 3s\n" % conninfo)
    box = maildir(os.path.join(a.workdir, name))
    t0 = time.monotonic()
    out = run([a.fbl, "run", "--once", "--config", conf, "--maildir", box], timeout=60)
    took = time.monotonic() - t0
    errors = [l for l in out.stdout.splitlines() if "level=critical" in l or "level=error" in l]
    check(out.returncode == 69 and 3 <= took < 20,
          "%s: fbl run --once exits %d after %.1f s (want 69 after 3 s): %s"
          % (name, out.returncode, took, out.stdout.strip()[-1000:]))
    check(len(errors) == 1 and "giving up on PostgreSQL" in errors[0],
          "%s: want one error line that gives up, got %s" % (name, errors))
    check(count(box, "new") == 1, "%s: the mail left new/" % name)
    return conf


def mode_unavailable(a):
    base = open(a.conninfo_file).read().strip()
    down = give_up(a, "down", "host=%s dbname=fbl" % os.path.join(a.workdir, "no-server"))
    give_up(a, "refused", "%s dbname=fbl user=fbl_no_such_role" % base)
    # A daemon retries for ever: past unreachable_timeout, until it is stopped.
    endpoint = "ipc://%s" % os.path.join(a.workdir, "sink.sock")
    with open(os.path.join(a.workdir, "sink.log"), "w") as fh:
        p = subprocess.Popen([a.fbl, "sink", "--config", down, "--bind", endpoint], stdout=fh,
                             stderr=subprocess.STDOUT)
        time.sleep(5)
        alive = p.poll() is None
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
    check(alive, "fbl sink gave up on PostgreSQL (exit %s): daemons retry for ever" % p.returncode)
    check(rc == 0, "fbl sink stopped by SIGTERM while PostgreSQL is down exits %d" % rc)
    if not FAILURES:
        log("PostgreSQL down or refusing: --once exits 69 after 3 s with one line; "
            "the daemon keeps trying")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["setup", "roles", "unavailable"])
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--conninfo-file")
    a = ap.parse_args()
    a.fbl = os.path.abspath(a.fbl)
    a.workdir = os.path.abspath(a.workdir)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    try:
        {"setup": mode_setup, "roles": mode_roles, "unavailable": mode_unavailable}[a.mode](a)
    except Skip as e:
        log("SKIP: %s" % e)
        return SKIP
    except AssertionError as e:
        check(False, str(e))
    if FAILURES:
        print("0 passed, %d failed" % len(FAILURES))
        return 1
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
