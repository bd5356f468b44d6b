#!/usr/bin/python3
"""Static checks of what runs fbl as a service (no database, no network, no root).

usage: ops_check.py config  --fbl BIN
       ops_check.py install --build DIR --workdir DIR
       ops_check.py docker

config   the key table in the code (`fbl sink --print-config-table`: the fixed
         keys, [mailbox:NAME] and [vendor:NAME]) against etc/fbl.conf.example
         (every key, commented out, with its default and its unit) and
         doc/fbl.conf.5 (every key under its group): a key one has and another
         lacks, a different default or unit fails. No key takes a secret as
         its value (only *_file keys); the example passes --check-config and
         leaves every key at its default.
install  `cmake --install` into a temporary root: the binary, both man pages
         (rendered without warnings when man is there), the example, the
         sysusers entry and the systemd units, which `systemd-analyze verify`
         must accept without a word and which must keep their hardening.
docker   docker/compose.yaml parses and runs PostgreSQL, fbl watch, sink and
         forward and rspamd from the project's image; every COPY source of
         docker/Dockerfile exists and passes its .dockerignore; every Debian
         package comes from scripts/packages.txt through scripts/install-deps.
Exit 77 (ctest: skipped) when a tool the check needs is missing.
"""
import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "credential")


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kw)


def generic(group):
    return re.sub(r"^(mailbox|vendor):.*", r"\1:NAME", group)


# ---- config ----------------------------------------------------------------------------

def code_table(fbl):
    out = run([fbl, "sink", "--print-config-table"])
    check(out.returncode == 0, "fbl sink --print-config-table: %s" % out.stdout)
    rows = {}
    for line in out.stdout.splitlines():
        group, key, unit, default, rng, _help = line.split("\t")
        rows[(group, key)] = (unit, default, rng)
    check(rows, "the key table is empty")
    return rows


def example_table(path):
    """{(group, key): (unit line, default)} of the commented-out keys."""
    rows, group, unit = {}, None, None
    for n, line in enumerate(open(path), 1):
        line = line.rstrip("\n")
        m = re.match(r"^#?\[([^\]]+)\]$", line)
        if m:
            group, unit = generic(m.group(1)), None
            continue
        m = re.match(r"^# \[(\w+)(.*)\]$", line)
        if m:
            unit = m.group(1)
            continue
        m = re.match(r"^#([a-z0-9_]+) =(?: (.*))?$", line)
        if m:
            check(group is not None, "%s:%d: a key before any group" % (path, n))
            check(unit is not None, "%s:%d: %s has no [unit] line above it" % (path, n,
                                                                             m.group(1)))
            check((group, m.group(1)) not in rows, "%s:%d: [%s] %s twice" % (path, n, group,
                                                                             m.group(1)))
            rows[(group, m.group(1))] = (unit, m.group(2) or "")
            unit = None
    return rows


def man_keys(path):
    keys, group = set(), None
    for line in open(path):
        m = re.match(r"^\.SS \[(.*)\]$", line)
        if m:
            group = m.group(1).replace("\\fI", "").replace("\\fR", "")
        m = re.match(r'^\.BR ([a-z0-9_]+) " = "', line)
        if m and group is not None:
            keys.add((group, m.group(1)))
    return keys


def check_config(args):
    code = code_table(args.fbl)
    example_path = os.path.join(ROOT, "etc", "fbl.conf.example")
    man_path = os.path.join(ROOT, "doc", "fbl.conf.5")
    example = example_table(example_path)
    man = man_keys(man_path)
    for (group, key), (unit, default, _rng) in sorted(code.items()):
        where = "[%s] %s" % (group, key)
        check((group, key) in example, "%s is in the code but not in %s" % (where, example_path))
        check((group, key) in man, "%s is in the code but not in %s" % (where, man_path))
        ex_unit, ex_default = example[(group, key)]
        check(unit == ex_unit, "%s: the code says [%s], the example [%s]" % (where, unit,
                                                                            ex_unit))
        if default or not group.endswith(":NAME"):
            check(default == ex_default, "%s: the code's default is %r, the example's %r"
                  % (where, default, ex_default))
        word = re.split(r"_", key)
        check(key.endswith(("_file", "_dir")) or not any(w in SECRET_WORDS for w in word),
              "%s looks like it takes a secret as its value: secrets come from *_file keys"
              % where)
    for where in sorted(set(example) - set(code)):
        raise Failure("[%s] %s is in the example but not in the code" % where)
    for where in sorted(man - set(code)):
        raise Failure("[%s] %s is in fbl.conf(5) but not in the code" % where)
    out = run([args.fbl, "sink", "--config", example_path, "--check-config"])
    check(out.returncode == 0, "the example fails --check-config: %s" % out.stdout)
    out = run([args.fbl, "sink", "--config", example_path, "--print-config"])
    for line in out.stdout.splitlines():
        if line.startswith("#"):  # the commented-out examples of [mailbox:NAME], [vendor:NAME]
            continue
        check(" = " not in line or line.endswith("# default"),
              "the example changes a default: %s" % line)
    # Errors name the file, the line and the key; a password is never a value.
    bad = [
        ("[log]\nlevel = notice\nfilee = /tmp/x\n", ":3: [log] filee: unknown key"),
        ("[metrics]\n\nsink = localhost:9773\n", ":3: [metrics] sink: 'localhost:9773'"),
        ("[sink]\nbatch_max_wait = 2 fortnights\n", ":2: [sink] batch_max_wait: expected a "
         "duration"),
        ("[postgres]\nconninfo = host=db user=fbl password=hunter2\n",
         ":2: [postgres] conninfo: holds a password"),
        ("[postgres]\nconninfo = postgresql://fbl:hunter2@db/fbl\n",
         ":2: [postgres] conninfo: holds a password"),
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as fh:
        for text, want in bad:
            fh.seek(0)
            fh.truncate()
            fh.write(text)
            fh.flush()
            out = run([args.fbl, "sink", "--config", fh.name, "--check-config"])
            check(out.returncode == 78 and (fh.name + want) in out.stdout,
                  "--check-config on %r: exit %d, %r (want 78 and %r)"
                  % (text, out.returncode, out.stdout.strip(), want))
    out = run([args.fbl, "sink", "--db", "host=db password=hunter2", "--check-config"])
    check(out.returncode == 64 and "password" in out.stdout, "--db with a password: %s"
          % out.stdout)
    print("ops_check: %d keys agree between the code, the example and fbl.conf(5)" % len(code))


# ---- install -----------------------------------------------------------------------------

HARDENING = ["Type=notify", "WatchdogSec=", "User=fbl", "NoNewPrivileges=yes",
             "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
             "RestrictAddressFamilies=", "SystemCallFilter=@system-service", "ExecReload="]


def check_install(args):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("ops_check: SKIP: systemd-analyze is not installed (apt-get install systemd)")
        sys.exit(77)
    root = os.path.abspath(args.workdir)
    shutil.rmtree(root, ignore_errors=True)
    out = run(["cmake", "--install", args.build, "--prefix", "/usr/local"],
              env=dict(os.environ, DESTDIR=root))
    check(out.returncode == 0, "cmake --install: %s" % out.stdout)
    prefix = os.path.join(root, "usr", "local")
    units = os.path.join(prefix, "lib", "systemd", "system")
    wanted = ["bin/fbl", "share/man/man1/fbl.1", "share/man/man5/fbl.conf.5",
              "share/doc/fbl/fbl.conf.example", "lib/sysusers.d/fbl.conf",
              "lib/systemd/system/fbl.target"] + \
        ["lib/systemd/system/fbl-%s.service" % d for d in ("run", "watch", "sink", "forward")]
    for rel in wanted:
        check(os.path.exists(os.path.join(prefix, rel)), "cmake --install left out %s" % rel)
    if shutil.which("man"):
        for page in ("share/man/man1/fbl.1", "share/man/man5/fbl.conf.5"):
            out = subprocess.run(["man", "--warnings", "-l", os.path.join(prefix, page)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                 env=dict(os.environ, MANWIDTH="80"))
            check(out.returncode == 0 and not out.stderr.strip(),
                  "man %s: %s" % (page, out.stderr))
    # The verifier resolves the units' dependencies (sysinit.target, ...) inside the
    # root: give it the host's own unit files (regular files only: their symlinks
    # are absolute and would point back into the root).
    host_units = os.path.join(root, "usr", "lib", "systemd", "system")
    os.makedirs(host_units, exist_ok=True)
    for d in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        for name in os.listdir(d) if os.path.isdir(d) else []:
            src = os.path.join(d, name)
            if os.path.isfile(src) and not os.path.islink(src):
                shutil.copy(src, host_units)
    sysusers = shutil.which("systemd-sysusers")
    if sysusers:
        out = run([sysusers, "--root=" + root, "--dry-run"])
        check(out.returncode == 0 and "fbl" in out.stdout and "rror" not in out.stdout,
              "systemd-sysusers --dry-run: %s" % out.stdout)
    names = ["fbl-run.service", "fbl-watch.service", "fbl-sink.service", "fbl-forward.service",
             "fbl.target"]
    # ... and the host's programs the units run besides fbl (ExecReload=/bin/kill).
    for name in names:
        for m in re.finditer(r"^Exec\w+=[-@:+!]*(/\S+)", open(os.path.join(units, name)).read(),
                             re.M):
            dst = os.path.join(root, m.group(1).lstrip("/"))
            if not os.path.exists(dst) and os.path.exists(m.group(1)):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy(m.group(1), dst)
    out = run([analyze, "verify", "--man=no", "--root=" + root] + names)
    ours = [l for l in out.stdout.splitlines() if "fbl" in l]
    check(out.returncode == 0 and not ours,
          "systemd-analyze verify (exit %d):\n%s" % (out.returncode, out.stdout))
    for name in names[:4]:
        text = open(os.path.join(units, name)).read()
        check("ExecStart=/usr/local/bin/fbl " in text, "%s: ExecStart is not the installed fbl"
              % name)
        for directive in HARDENING:
            check(directive in text, "%s lacks %s" % (name, directive.strip()))
        # The user fbl's home (sysusers.d) exists once any of its daemons started.
        check("\nStateDirectory=fbl\n" in text, "%s lacks StateDirectory=fbl" % name)
        out = run([analyze, "security", "--offline=true", "--root=" + root,
                   "--threshold=30", name])
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout)
        check(m and float(m.group(1)) <= 3.0, "%s: systemd-analyze security: %s"
              % (name, m.group(0) if m else out.stdout[-500:]))
        print("ops_check: %s verified, exposure %s" % (name, m.group(1)))


# ---- docker ------------------------------------------------------------------------------

def dockerignore_allows(patterns, path):
    allowed = True
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        if fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/"):
            allowed = neg
    return allowed


def check_dockerfile(path, ignore_path):
    patterns = [l.strip() for l in open(ignore_path) if l.strip() and not l.startswith("#")]
    text = open(path).read().replace("\\\n", " ")
    stages = 0
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "FROM":
            stages += 1
            check(words[1].startswith("debian:bookworm") or words[1] in ("build", "runtime"),
                  "%s: FROM %s is not Debian bookworm" % (path, words[1]))
        if words[0] == "COPY" and not any(w.startswith("--from") for w in words):
            for src in [w for w in words[1:-1] if not w.startswith("--")]:
                check(os.path.exists(os.path.join(ROOT, src)), "%s: COPY %s: no such file"
                      % (path, src))
                check(dockerignore_allows(patterns, src.rstrip("/")),
                      "%s: COPY %s is excluded by %s" % (path, src, ignore_path))
        if words[0] == "RUN":
            check("apt-get install" not in line and "apt install" not in line,
                  "%s installs packages by itself: use scripts/install-deps (one list)" % path)
    check(stages >= 2, "%s is not multi-stage" % path)
    check(text.count("install-deps build") >= 1 and text.count("install-deps run") >= 1,
          "%s does not take its packages from scripts/install-deps" % path)


def check_docker(_args):
    try:
        import yaml
    except ImportError:
        print("ops_check: SKIP: python3-yaml is not installed")
        sys.exit(77)
    docker = os.path.join(ROOT, "docker")
    check_dockerfile(os.path.join(docker, "Dockerfile"),
                     os.path.join(docker, "Dockerfile.dockerignore"))
    compose = yaml.safe_load(open(os.path.join(docker, "compose.yaml")))
    services = compose.get("services", {})
    for name in ("postgres", "watch", "sink", "forward", "rspamd"):
        check(name in services, "compose.yaml has no service %s" % name)
    kinds = {}
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            ctx = os.path.normpath(os.path.join(docker, build.get("context", ".")))
            check(os.path.isdir(ctx), "%s: no build context %s" % (name, ctx))
            check(os.path.exists(os.path.join(ctx, build.get("dockerfile", "Dockerfile"))),
                  "%s: no Dockerfile" % name)
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source")
            if src.startswith((".", "/")):
                check(os.path.exists(os.path.join(docker, src)), "%s mounts %s: missing"
                      % (name, src))
            else:
                check(src in (compose.get("volumes") or {}), "%s: volume %s is not declared"
                      % (name, src))
        for dep in svc.get("depends_on", {}):
            check(dep in services, "%s depends on the unknown %s" % (name, dep))
        cmd = svc.get("command") or []
        if isinstance(cmd, str):
            cmd = cmd.split()
        for sub in ("watch", "sink", "forward"):
            if sub in cmd:
                kinds[sub] = name
    for sub in ("watch", "sink", "forward"):
        check(sub in kinds, "no compose service runs fbl %s" % sub)
    for name, spec in (compose.get("configs") or {}).items():
        check(os.path.exists(os.path.join(docker, spec["file"])), "config %s: no file %s"
              % (name, spec["file"]))
    print("ops_check: Dockerfile and compose.yaml (%d services) check out" % len(services))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["config", "install", "docker"])
    ap.add_argument("--fbl")
    ap.add_argument("--build")
    ap.add_argument("--workdir")
    args = ap.parse_args()
    try:
        {"config": check_config, "install": check_install, "docker": check_docker}[args.what](
            args)
    except Failure as e:
        print("ops_check %s: FAIL: %s" % (args.what, e), flush=True)
        print("0 passed, 1 failed")
        sys.exit(1)
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
