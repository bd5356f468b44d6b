#!/usr/bin/python3
"""The compose stack (docker/) for real: images built from Debian's packages, run by podman.

usage: containers.py --workdir DIR [--cache DIR] [--project NAME] [--keep]

1. podman must be able to run a container here (a static binary in a bare root file
   system, on the default bridge network), else exit 77 (skip) saying why: no podman,
   podman-compose or debootstrap, not root, or a sandbox that forbids containers (a chroot
   without namespaces, no cgroups, rlimits that cannot be set...). The test writes its
   own containers.conf (CONTAINERS_CONF): runc when it is installed, and default ulimits
   no higher than this process's hard limits (podman's default nofile of 1048576 fails
   where the hard limit is lower).
2. The base image: docker/make-base-image (debootstrap of bookworm from Debian's mirror)
   once a week, kept as localhost/fbl-base:bookworm-YYYY-wWW and tagged
   docker.io/library/debian:bookworm, the name "FROM debian:bookworm" resolves to.
3. The images of docker/compose.yaml (fbl, fbl-postgres, fbl-redis, fbl-rspamd), each
   built by `podman-compose build SERVICE` only when the SHA-256 of its inputs (the base
   image, its Dockerfile and every file its COPY lines take) differs from the last build
   (CACHE/images/), so a re-run with nothing changed builds nothing; podman's layer cache
   keeps the apt-get layers when only fbl's sources changed.
4. `podman-compose -p PROJECT up -d` with the metrics published on free loopback ports;
   the stack is up when the init service exited 0, the three fbl daemons answer on their
   metrics ports, the sink has migrated the schema, and rspamd answers /ping.
5. What broke before, checked on the running stack: every secret file in the secrets
   volume is owned by fbl and mode 0600; rspamd's controller refuses /stat without the
   password from the fbl containers' network and answers it with the password; PostgreSQL
   refuses the role fbl over TCP without the password.
6. One report mail delivered into the watcher's Maildir as an MTA would (tmp/, then a
   rename into new/, via podman exec): its report is in PostgreSQL (psql via podman exec),
   the mail moved to cur/, the sink's metrics count it, its outbox row for rspamd is
   'sent' and rspamd's /stat "learned" went up.
7. fbl's containers stopped with SIGTERM (`podman stop -t 60`) exit 0; then
   `podman-compose down -v`, and no container, volume or network of the project is left.

Measured and printed: the base image, each image build (or "cached"), the stack's start,
mail -> row in PostgreSQL, mail -> learned by rspamd, and the stop.
Runs alone (ctest RUN_SERIAL) and takes a lock in CACHE, so that two runs on one machine
(two build trees) never share a project or a port. Dangling podman images are pruned after
a build (the superseded fbl images); the tagged images and their layers stay.
"""
import argparse
import datetime
import fcntl
import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOCKER = os.path.join(ROOT, "docker")
COMPOSE = os.path.join(DOCKER, "compose.yaml")
SKIP = 77
BASE_REPO = "localhost/fbl-base"
DEBIAN = "docker.io/library/debian:bookworm"
FBL_ROLES = ("sink", "watch", "forward")
T0 = time.monotonic()


class Failure(Exception):
    pass


def log(msg):
    print("[%7.1fs] containers: %s" % (time.monotonic() - T0, msg), flush=True)


def check(cond, what):
    if not cond:
        raise Failure(what)


def skip(why):
    log("SKIP: " + why)
    sys.exit(SKIP)


class Podman:
    def __init__(self, env, workdir, project):
        self.env = env
        self.workdir = workdir
        self.project = project

    def run(self, argv, check_rc=True, timeout=600, input=None, logname=None):
        """Runs argv; returns (rc, output). A log file keeps long outputs."""
        try:
            stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
            p = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout, **stdin)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            raise Failure("%s: no answer in %ds\n%s" % (shlex.join(argv), timeout, out[-3000:]))
        out = p.stdout.decode(errors="replace")
        if logname:
            with open(os.path.join(self.workdir, logname), "w") as f:
                f.write("$ %s\n%s" % (shlex.join(argv), out))
        if check_rc and p.returncode != 0:
            raise Failure("%s exited %d:\n%s" % (shlex.join(argv), p.returncode, out[-3000:]))
        return p.returncode, out

    def podman(self, *args, **kw):
        return self.run(["podman"] + list(args), **kw)

    def compose(self, *args, **kw):
        return self.run(["podman-compose", "-p", self.project, "-f", COMPOSE] + list(args), **kw)

    def container(self, service):
        return "%s_%s_1" % (self.project, service)

    def exec(self, service, argv, user=None, **kw):
        u = ["-u", user] if user else []
        return self.podman("exec", "-i", *u, self.container(service), *argv, **kw)

    def image_id(self, ref):
        rc, out = self.podman("image", "inspect", "--format", "{{.Id}}", ref, check_rc=False)
        return out.strip() if rc == 0 else None


# ---- 1. can podman run a container here? -----------------------------------------------

def containers_conf(workdir):
    """runc when installed; ulimits within this process's hard limits."""
    def limit(res, cap):
        hard = resource.getrlimit(res)[1]
        return cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    nofile = limit(resource.RLIMIT_NOFILE, 1048576)
    nproc = limit(resource.RLIMIT_NPROC, 32768)
    text = "# Written by tests/integration/containers.py\n"
    if shutil.which("runc"):
        text += '[engine]\nruntime = "runc"\n'
    text += '[containers]\ndefault_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]\n' % (
        nofile, nofile, nproc, nproc)
    path = os.path.join(workdir, "containers.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def probe(pm, workdir):
    """A static binary (glibc's ldconfig) in a bare root file system, default network."""
    ldconfig = next((p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.path.exists(p)),
                    None)
    if not ldconfig:
        skip("no static binary (ldconfig) to probe podman with")
    rootfs = os.path.join(workdir, "probe-rootfs")
    shutil.rmtree(rootfs, ignore_errors=True)
    os.makedirs(rootfs)
    shutil.copy(ldconfig, os.path.join(rootfs, "ldconfig"))
    rc, out = pm.podman("run", "--rm", "--rootfs", rootfs, "/ldconfig", "--version",
                        check_rc=False, timeout=120)
    shutil.rmtree(rootfs, ignore_errors=True)
    if rc != 0 or "ldconfig" not in out:
        skip("podman cannot run a container here (a chroot or sandbox without user or network "
             "namespaces, cgroups or rlimits?): `podman run --rootfs` exited %d:\n%s"
             % (rc, out.strip()[-1500:]))
    if not shutil.which("netavark") and not os.path.exists("/usr/lib/podman/netavark"):
        log("note: netavark not found; podman's network backend may be CNI")


# ---- 2. the base image -----------------------------------------------------------------

def base_image(pm, cache):
    year, week, _ = datetime.datetime.now(datetime.timezone.utc).date().isocalendar()
    tag = "%s:bookworm-%d-w%02d" % (BASE_REPO, year, week)
    t = time.monotonic()
    built = False
    if not pm.image_id(tag):
        log("making the base image %s with debootstrap (once a week)" % tag)
        env = dict(pm.env, DEBOOTSTRAP_CACHE=os.path.join(cache, "debs"), TMPDIR=cache,
                   ENGINE="podman")
        rc, out = pm.run([os.path.join(DOCKER, "make-base-image"), tag], check_rc=False,
                         timeout=1200, logname="make-base-image.log")
        if rc == SKIP:
            skip("docker/make-base-image: " + out.strip()[-500:])
        check(rc == 0, "docker/make-base-image exited %d:\n%s" % (rc, out[-3000:]))
        built = True
    pm.podman("tag", tag, DEBIAN)
    return tag, built, time.monotonic() - t


def drop_old_bases(pm, tag):
    """Older weeks' bases go once the images made from them are gone (pruned)."""
    _, out = pm.podman("images", "--format", "{{.Repository}}:{{.Tag}}", BASE_REPO,
                       check_rc=False)
    for old in out.split():
        if old != tag and old.startswith(BASE_REPO + ":"):
            rc, _ = pm.podman("rmi", old, check_rc=False)
            log("old base image %s: %s" % (old, "removed" if rc == 0 else
                                           "still used, kept for now"))


# ---- 3. the images, cached by the hash of their inputs ----------------------------------

def copy_sources(dockerfile):
    """The sources of the COPY/ADD lines that take files from the build context."""
    text = open(dockerfile).read().replace("\\\n", " ")
    srcs = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        if any(w.startswith("--from") for w in words):
            continue
        srcs += [w for w in words[1:-1] if not w.startswith("--")]
    return srcs


def hash_path(h, base, rel):
    path = os.path.join(base, rel)
    if os.path.isdir(path):
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                p = os.path.join(dirpath, name)
                hash_file(h, base, os.path.relpath(p, base))
    elif os.path.exists(path):
        hash_file(h, base, rel)
    else:
        h.update(b"missing:" + rel.encode())


def hash_file(h, base, rel):
    p = os.path.join(base, rel)
    st = os.lstat(p)
    h.update(b"%s\0%o\0" % (rel.encode(), st.st_mode & 0o7777))
    if os.path.islink(p):
        h.update(os.readlink(p).encode())
    else:
        with open(p, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())


def images_of_compose():
    """{image: (service, context, dockerfile)}, the first service that builds each image."""
    import yaml
    compose = yaml.safe_load(open(COMPOSE))
    images = {}
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if not build or svc["image"] in images:
            continue
        if isinstance(build, str):
            build = {"context": build}
        ctx = os.path.normpath(os.path.join(DOCKER, build.get("context", ".")))
        images[svc["image"]] = (name, ctx, os.path.join(ctx, build.get("dockerfile",
                                                                        "Dockerfile")))
    return images


def build_images(pm, cache, base_id):
    record_dir = os.path.join(cache, "images")
    os.makedirs(record_dir, exist_ok=True)
    times = {}
    built_any = False
    for image, (service, ctx, dockerfile) in images_of_compose().items():
        h = hashlib.sha256(b"base\0" + base_id.encode() + b"\0")
        hash_file(h, os.path.dirname(dockerfile), os.path.basename(dockerfile))
        for src in copy_sources(dockerfile):
            hash_path(h, ctx, src.rstrip("/"))
        inputs = h.hexdigest()
        record = os.path.join(record_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", image))
        have = pm.image_id(image)
        try:
            rec_inputs, rec_id = open(record).read().split()
        except (OSError, ValueError):
            rec_inputs, rec_id = None, None
        if have and rec_inputs == inputs and rec_id == have:
            times[image] = None
            log("image %s: cached (inputs %s)" % (image, inputs[:12]))
            continue
        t = time.monotonic()
        if service == "init" or image.startswith("fbl:"):
            # The build stage of docker/Dockerfile tagged too: its layers (the apt-get one)
            # then survive the prune below.
            pm.podman("build", "--target", "build", "-t", "localhost/fbl-build:cache",
                      "-f", dockerfile, ctx, timeout=1500, logname="build-fbl-stage.log")
        pm.compose("build", service, timeout=1500, logname="build-%s.log" % service)
        times[image] = time.monotonic() - t
        built_any = True
        new_id = pm.image_id(image)
        check(new_id, "podman-compose build %s made no image %s" % (service, image))
        with open(record, "w") as f:
            f.write("%s %s\n" % (inputs, new_id))
        log("image %s: built in %.1fs" % (image, times[image]))
    if built_any:
        pm.podman("image", "prune", "-f", check_rc=False, timeout=600)
    return times


# ---- 4.-7. the stack -------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode(errors="replace")
    except OSError:
        return None


def wait_until(what, fn, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failure("%s: not within %ds" % (what, timeout))
        time.sleep(step)


def psql(pm, sql):
    rc, out = pm.exec("postgres", ["psql", "-X", "-At", "-h", "/run/postgresql", "-U", "fbl",
                                   "-d", "fbl", "-v", "ON_ERROR_STOP=1", "-c", sql],
                      check_rc=False, timeout=60)
    return out.strip() if rc == 0 else None


def http_in_stack(pm, host, port, path, password=None):
    """An HTTP/1.0 GET from the forward container (bash's /dev/tcp): (status, body)."""
    script = r'''exec 3<>"/dev/tcp/$1/$2" || exit 3
printf 'GET %s HTTP/1.0\r\nHost: %s\r\n' "$3" "$1" >&3
[ -z "${4:-}" ] || printf 'Password: %s\r\n' "$4" >&3
printf '\r\n' >&3
cat <&3'''
    argv = ["bash", "-c", script, "http", host, str(port), path] + ([password] if password else [])
    rc, out = pm.exec("forward", argv, check_rc=False, timeout=30)
    if rc != 0 or not out.startswith("HTTP/"):
        return None, out
    head, _, body = out.partition("\r\n\r\n")
    return int(head.split()[1]), body


def rspamd_learned(pm, password):
    status, body = http_in_stack(pm, "rspamd", 11334, "/stat", password)
    if status != 200:
        return None
    return int(json.loads(body).get("learned", 0))


def report_mail(tag):
    """An ARF report of a spam long enough for rspamd to learn (min_tokens 11)."""
    d = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    words = ("limited offer cheap replica watches discount pharmacy pills casino bonus "
             "winner lottery claim prize unsubscribe click here today exclusive deal "
             "guaranteed income work from home investment crypto wallet verify account")
    body = "\n".join("%s %s %d" % (words, tag, i) for i in range(6))
    text = """From: Feedback Loop <fbl@isp.example.net>
To: spamalert@abuse.example.net
Subject: Abuse report %(tag)s
Date: %(d)s
Message-ID: <arf-%(tag)s@isp.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b%(tag)s"

--b%(tag)s
Content-Type: text/plain

This is an abuse report for a message received from IP 192.0.2.77.
--b%(tag)s
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ContainersTest/1.0
Version: 1
Original-Mail-From: <deals@spammer.example.com>
Original-Rcpt-To: <victim@customer.example.net>
Source-IP: 192.0.2.77
Arrival-Date: %(d)s

--b%(tag)s
Content-Type: message/rfc822

Received: from mail.spammer.example.com (mail.spammer.example.com [192.0.2.77])
	by mx.isp.example.net with ESMTP id %(tag)s; %(d)s
From: Deals <deals@spammer.example.com>
To: victim@customer.example.net
Subject: Exclusive offer %(tag)s
Message-ID: <spam-%(tag)s@spammer.example.com>
Date: %(d)s
Content-Type: text/plain; charset=us-ascii

%(body)s
--b%(tag)s--
""" % dict(tag=tag, d=d, body=body)
    return text.replace("\n", "\r\n").encode()


def clean_project(pm):
    pm.compose("down", "-v", "-t", "10", check_rc=False, timeout=300, logname="down-stale.log")
    # What podman-compose 1.0.3 leaves: its network always, and a container or volume it
    # could not remove while a restart policy was at work.
    label = "label=io.podman.compose.project=%s" % pm.project
    _, cs = pm.podman("ps", "-a", "--format", "{{.Names}}", "--filter", label, check_rc=False)
    if cs.split():
        pm.podman("rm", "-f", "-t", "5", *cs.split(), check_rc=False, timeout=120)
    _, vs = pm.podman("volume", "ls", "--format", "{{.Name}}", "--filter", label,
                      check_rc=False)
    if vs.split():
        pm.podman("volume", "rm", "-f", *vs.split(), check_rc=False)
    pm.podman("network", "rm", "-f", "%s_default" % pm.project, check_rc=False)


def leftovers(pm):
    label = "label=io.podman.compose.project=%s" % pm.project
    _, cs = pm.podman("ps", "-a", "--format", "{{.Names}}", "--filter", label)
    _, vs = pm.podman("volume", "ls", "--format", "{{.Name}}", "--filter", label)
    _, ns = pm.podman("network", "ls", "--format", "{{.Name}}")
    nets = [n for n in ns.split() if n.startswith(pm.project + "_")]
    return cs.split() + vs.split() + nets


def stack(pm, a, timings):
    ports = {r: free_port() for r in FBL_ROLES}
    pm.env.update({"FBL_%s_METRICS" % r.upper(): "127.0.0.1:%d" % p for r, p in ports.items()})
    clean_project(pm)
    t = time.monotonic()
    pm.compose("up", "-d", timeout=600, logname="up.log")
    up_cmd = time.monotonic() - t

    def init_done():
        rc, out = pm.podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                            pm.container("init"), check_rc=False)
        st = out.split()
        check(not (st and st[0] == "exited" and st[1] != "0"),
              "the init service exited %s:\n%s" % (st[1:], logs(pm, "init")))
        return st == ["exited", "0"]

    wait_until("the init service", init_done, 120)
    for r in FBL_ROLES:
        wait_until("fbl %s's metrics on 127.0.0.1:%d" % (r, ports[r]),
                   lambda: http_get("http://127.0.0.1:%d/metrics" % ports[r]), 180)
    wait_until("the schema in PostgreSQL (the sink's migrations)",
               lambda: psql(pm, "SELECT count(*) FROM fbl.schema_migrations") not in
               (None, "0"), 180, step=0.5)
    wait_until("rspamd's /ping", lambda: http_in_stack(pm, "rspamd", 11334, "/ping")[0] == 200,
               300, step=1)
    timings["stack start"] = time.monotonic() - t
    log("stack up in %.1fs (podman-compose up -d: %.1fs)" % (timings["stack start"], up_cmd))

    # ---- what broke before ----
    rc, out = pm.exec("sink", ["sh", "-c", "cd /var/lib/fbl/secrets && "
                               "stat -c '%a %U %n' . watchers * watchers/* .ready"])
    modes = {l.split()[2]: (l.split()[0], l.split()[1]) for l in out.splitlines() if l.strip()}
    log("secrets volume: %s" % ", ".join("%s %s" % (n, m[0]) for n, m in sorted(modes.items())))
    for name in ("sink.key", "watch.key", "pg_password", "pgpass", "rspamd_password"):
        check(modes.get(name) == ("600", "fbl"), "secrets/%s is %s, not 0600 fbl" %
              (name, modes.get(name)))
    for name, (mode, owner) in modes.items():
        check(owner == "fbl" and int(mode, 8) & 0o022 == 0, "secrets/%s: %s %s" %
              (name, mode, owner))
    for svc in ("postgres", "rspamd"):
        rc, out = pm.exec(svc, ["stat", "-c", "%a %U", "/run/fbl-secret/password"])
        check(out.split() == ["600", "root"], "%s's password file is %s" % (svc, out.strip()))
    password = pm.exec("forward", ["cat", "/var/lib/fbl/secrets/rspamd_password"])[1].strip()
    status, body = http_in_stack(pm, "rspamd", 11334, "/stat")
    check(status in (401, 403), "rspamd's controller answered /stat without a password: %s %s"
          % (status, body[:200]))
    before = rspamd_learned(pm, password)
    check(before is not None, "rspamd's /stat with the password failed")
    status, _ = http_in_stack(pm, "rspamd", 11334, "/stat", "not-" + password)
    check(status in (401, 403), "rspamd took a wrong password (%s)" % status)
    rc, out = pm.exec("postgres", ["psql", "-X", "-w", "-h", "postgres", "-U", "fbl", "-d", "fbl",
                                   "-c", "SELECT 1"], check_rc=False)
    check(rc != 0 and "password" in out, "PostgreSQL let fbl in over TCP without a password: %s"
          % out.strip())
    log("secrets 0600 fbl; rspamd refuses /stat without the password (401); PostgreSQL asks "
        "for a password over TCP")
    bayes = pm.exec("rspamd", ["rspamadm", "configdump", "classifier"], check_rc=False)[1]
    check('backend = "redis"' in bayes, "rspamd has no Bayes classifier on redis:\n%s"
          % bayes[:1500])

    # ---- one mail, Maildir -> PostgreSQL -> rspamd ----
    tag = "ct%d" % int(time.time())
    name = "%d.%s.containers-test" % (int(time.time()), tag)
    t = time.monotonic()
    pm.exec("watch", ["sh", "-c", 'cat >"Maildir/tmp/$1" && mv "Maildir/tmp/$1" "Maildir/new/$1"',
                      "deliver", name], input=report_mail(tag))
    wait_until("the report in fbl.reports",
               lambda: psql(pm, "SELECT count(*) FROM fbl.reports") == "1", 120, step=0.1)
    timings["mail -> row"] = time.monotonic() - t
    log("mail -> PostgreSQL row: %.2fs" % timings["mail -> row"])
    wait_until("the mail in cur/", lambda: pm.exec("watch", [
        "sh", "-c", 'ls Maildir/cur | grep -c "^$1"', "ls", name], check_rc=False)[1].strip()
        == "1", 60)
    feedback = psql(pm, "SELECT feedback_type FROM fbl.reports")
    check(feedback == "abuse", "the report's feedback_type is %r" % feedback)
    wait_until("the report sent to rspamd (outbox row 'sent')",
               lambda: psql(pm, "SELECT state FROM fbl.vendor_outbox WHERE vendor = 'rspamd'")
               == "sent", 180, step=0.2)
    wait_until("rspamd's learned count", lambda: (rspamd_learned(pm, password) or 0) > before,
               60, step=0.5)
    timings["mail -> rspamd learned"] = time.monotonic() - t
    log("mail -> learned by rspamd: %.2fs (learned %d -> %d)"
        % (timings["mail -> rspamd learned"], before, rspamd_learned(pm, password)))
    metrics = http_get("http://127.0.0.1:%d/metrics" % ports["sink"]) or ""
    m = re.search(r"^fbl_sink_mails_total(?:\{[^}]*\})? (\d+)", metrics, re.M)
    check(m and int(m.group(1)) >= 1, "the sink's metrics count no mail:\n%s" % metrics[:1500])
    if a.keep:
        log("--keep: the stack stays up (podman-compose -p %s -f %s down -v -t 60)"
            % (pm.project, COMPOSE))
        return

    # ---- stop ----
    t = time.monotonic()
    names = [pm.container(r) for r in FBL_ROLES]
    pm.podman("stop", "-t", "60", *names, timeout=200)
    for n in names:
        _, out = pm.podman("inspect", "--format", "{{.State.ExitCode}}", n)
        check(out.strip() == "0", "%s exited %s after SIGTERM:\n%s"
              % (n, out.strip(), logs(pm, n.split("_")[-2])))
    pm.compose("down", "-v", "-t", "60", timeout=600, logname="down.log")
    pm.podman("network", "rm", "-f", "%s_default" % pm.project, check_rc=False)
    timings["stack stop"] = time.monotonic() - t
    left = leftovers(pm)
    check(not left, "left after down -v: %s" % left)
    log("stack stopped and removed in %.1fs; fbl exited 0 on SIGTERM" % timings["stack stop"])


def on_signal(signum, _frame):
    raise Failure("stopped by signal %d" % signum)


def logs(pm, service):
    _, out = pm.podman("logs", "--tail", "40", pm.container(service), check_rc=False)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--cache", default="/var/tmp/fbl-containers")
    ap.add_argument("--project", default="fblctest")
    ap.add_argument("--keep", action="store_true", help="leave the stack running")
    a = ap.parse_args()

    for tool in ("podman", "podman-compose", "debootstrap"):
        if not shutil.which(tool):
            skip("%s is not installed (scripts/install-deps build)" % tool)
    if os.geteuid() != 0:
        skip("needs root (rootful podman, debootstrap)")
    try:
        import yaml  # noqa: F401
    except ImportError:
        skip("python3-yaml is not installed")
    os.makedirs(a.workdir, exist_ok=True)
    os.makedirs(a.cache, exist_ok=True)
    env = dict(os.environ, CONTAINERS_CONF=containers_conf(a.workdir))
    pm = Podman(env, a.workdir, a.project)

    lock = open(os.path.join(a.cache, "lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log("waiting for another containers test on this machine (%s/lock)" % a.cache)
        fcntl.flock(lock, fcntl.LOCK_EX)

    # ctest's TIMEOUT and ^C: clean up on the way out (the next run would otherwise).
    signal.signal(signal.SIGTERM, on_signal)
    probe(pm, a.workdir)
    timings = {}
    ok = False
    try:
        tag, built, secs = base_image(pm, a.cache)
        timings["base image"] = secs if built else None
        log("base image %s: %s" % (tag, "made in %.1fs" % secs if built else "cached"))
        t = time.monotonic()
        builds = build_images(pm, a.cache, pm.image_id(DEBIAN))
        timings["images"] = time.monotonic() - t
        drop_old_bases(pm, tag)
        stack(pm, a, timings)
        ok = True
    except Failure as e:
        log("FAIL: %s" % e)
        if "stack start" in timings or "images" in timings:
            for svc in ("init", "postgres", "sink", "watch", "forward", "rspamd", "redis"):
                print("---- podman logs %s (last 40 lines) ----\n%s" % (svc, logs(pm, svc)),
                      flush=True)
    finally:
        # On success stack() removed everything and checked it did; --keep keeps a failed
        # stack up too, to look at (the next run removes it first).
        if not ok and not a.keep:
            try:
                clean_project(pm)
            except Failure as e:
                log("cleaning up: %s" % e)
    if not ok:
        print("0 passed, 1 failed")
        return 1
    parts = ["base image %s" % ("%.1fs" % timings["base image"] if timings["base image"]
                                else "cached")]
    parts += ["%s %s" % (img, "%.1fs" % s if s is not None else "cached")
              for img, s in builds.items()]
    parts += ["images in all %.1fs" % timings["images"]]
    parts += ["%s %.2fs" % (k, v) for k, v in timings.items()
              if k not in ("base image", "images")]
    log("timings: " + "; ".join(parts))
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
