#!/usr/bin/python3
"""The documentation followed as written: its configuration examples load, and
what the command line says of itself holds (no database, no network, no root).

usage: docs_examples.py config --fbl BIN --workdir DIR
       docs_examples.py cli    --fbl BIN --workdir DIR

config  every configuration example loads with `fbl run --check-config` (and
        `fbl watch`, `fbl sink`, `fbl forward --check-config` when it has
        their groups), its text unchanged: each ```ini block of README.md, each
        file README.md writes with `cat >FILE.conf <<'END'`, the EXAMPLE of
        fbl.conf(5) and etc/fbl.conf.example. Only the absolute paths of path
        keys are moved under a scratch root, where the test makes what they
        name (Maildirs, CURVE keys with `fbl keygen`, token and key files of
        mode 0600, directories); an example without a mailbox gets --maildir.
        `--print-config` of each loads back and prints the same. Then broken
        files: --check-config exits 78 naming the file and the line (a bad
        network, a Maildir without cur/, a vendor URL that does not parse, an
        unwritable log file's directory, text after a [group], a line that is
        no key), and trailing comments are comments.
cli     `fbl CMD --help` starts "Usage: fbl CMD [OPTION…]" in the C locale, for
        every subcommand; a password in --db is refused (64) by every
        subcommand that takes --db, and in [postgres] conninfo (78), before any
        connection is tried; `--print-config` of the built-in defaults loads
        back, lists every key of the table, and shows the [vendor:NAME] keys
        with the defaults etc/fbl.conf.example gives; with an http-json and
        an rspamd vendor configured, it prints every vendor key of the table
        in each, marks that type's defaults, leaves the values set unmarked,
        comments out the other type's keys, and loads back printing the same.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
README = os.path.join(ROOT, "README.md")
MAN5 = os.path.join(ROOT, "doc", "fbl.conf.5")
EXAMPLE = os.path.join(ROOT, "etc", "fbl.conf.example")

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("docs_examples: FAIL: %s" % what, flush=True)
    return cond


def run(argv, env=None, timeout=60):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, timeout=timeout)


# ---- the examples, as the documents hold them -------------------------------------------

def readme_ini_blocks(text):
    """[(name, text)] of every ```ini block."""
    out = []
    for m in re.finditer(r"^```ini\n(.*?)^```", text, re.M | re.S):
        line = text.count("\n", 0, m.start()) + 1
        out.append(("README.md:%d (ini block)" % line, m.group(1)))
    return out


def readme_heredocs(text):
    """[(name, text)] of the configuration files README's shell blocks write."""
    out = []
    for m in re.finditer(r"^cat >(\S+\.conf) <<'(\w+)'\n(.*?)^\2$", text, re.M | re.S):
        line = text.count("\n", 0, m.start()) + 1
        out.append(("README.md:%d (%s)" % (line, m.group(1)), m.group(3)))
    return out


def man_example(path):
    """The .nf block of fbl.conf(5)'s EXAMPLE section, with roff's escapes rendered."""
    text = open(path).read()
    m = re.search(r"^\.SH EXAMPLE\n\.nf\n(.*?)^\.fi$", text, re.M | re.S)
    check(m is not None, "%s has no EXAMPLE section with a .nf block" % path)
    body = m.group(1) if m else ""
    return [("fbl.conf.5 EXAMPLE", body.replace("\\-", "-").replace("\\e", "\\"))]


def all_examples():
    readme = open(README).read()
    examples = readme_ini_blocks(readme) + readme_heredocs(readme) + man_example(MAN5)
    examples.append(("etc/fbl.conf.example", open(EXAMPLE).read()))
    return examples


# ---- making what an example names ----------------------------------------------------------

PATH_KEY = re.compile(r"^(\s*)(path|file|[a-z_]+_file|[a-z_]+_dir)(\s*=\s*)(/\S*)", re.M)


def relocate(text, root):
    """The example with every path key's absolute path under @root; [(key, group, path)]."""
    named = []
    group = None
    lines = []
    for line in text.split("\n"):
        g = re.match(r"^\s*\[([^\]]+)\]", line)
        if g:
            group = g.group(1)
        m = PATH_KEY.match(line)
        if m:
            moved = root + m.group(4)
            named.append((m.group(2), group, moved))
            line = line[:m.start(4)] + moved + line[m.end(4):]
        lines.append(line)
    return "\n".join(lines), named


def keygen(fbl, path):
    prefix = re.sub(r"\.(key|pub)$", "", path)
    if os.path.exists(prefix + ".key"):
        return prefix
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    out = run([fbl, "keygen", prefix])
    check(out.returncode == 0, "fbl keygen %s: %s" % (prefix, out.stdout))
    return prefix


def secret(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def make_named(fbl, key, group, path):
    """Make what @key of [@group] names at @path, as an administrator would have."""
    if key == "path" and group and group.startswith("mailbox:"):
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
    elif key in ("curve_secret_file", "curve_server_public_file"):
        prefix = keygen(fbl, path)
        if not os.path.exists(path):  # a name other than PREFIX.key / PREFIX.pub
            shutil.copy(prefix + (".key" if key == "curve_secret_file" else ".pub"), path)
            os.chmod(path, 0o600)
    elif key == "curve_clients_dir":
        os.makedirs(path, exist_ok=True)
        keygen(fbl, os.path.join(path, "watcher"))
        os.unlink(os.path.join(path, "watcher.key"))
    elif key in ("token_file", "password_file"):
        secret(path, "an-example-secret\n")
    elif key == "redact_key_file":
        secret(path, "0123456789abcdef0123456789abcdef\n")
    elif key == "ca_file":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    elif key == "allowlist_file":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write("# never listed\n198.51.100.0/24\npartner.example\n")
    elif key == "file" and group == "log":
        os.makedirs(os.path.dirname(path), exist_ok=True)
    else:
        check(False, "the test does not know what [%s] %s names" % (group, key))


def groups_of(text):
    return set(re.findall(r"^\s*\[([^\]:]+)(?::[^\]]*)?\]", text, re.M))


def load_example(a, name, text, n):
    failures = len(FAILURES)
    root = os.path.join(a.workdir, "ex%d" % n)
    os.makedirs(root)
    moved, named = relocate(text, root)
    for key, group, path in named:
        make_named(a.fbl, key, group, path)
    conf = os.path.join(root, "fbl.conf")
    with open(conf, "w") as fh:
        fh.write(moved)
    groups = groups_of(text)
    extra = []
    if "mailbox" not in groups:
        extra = ["--maildir", os.path.join(root, "flag-maildir")]
        make_named(a.fbl, "path", "mailbox:flag", extra[1])
    commands = [["run"] + extra]
    if "watch" in groups:
        commands.append(["watch"] + extra)
    if "sink" in groups:
        commands.append(["sink"])
    if "vendor" in groups:
        commands.append(["forward"])
    for cmd in commands:
        out = run([a.fbl] + cmd + ["--config", conf, "--check-config"])
        check(out.returncode == 0 and "configuration OK" in out.stdout,
              "%s: fbl %s --check-config exits %d: %s" % (name, cmd[0], out.returncode,
                                                         out.stdout.strip()))
    # --print-config: a file that loads, and says the same once loaded.
    printed = run([a.fbl, "run", "--config", conf, "--print-config"] + extra)
    check(printed.returncode == 0, "%s: --print-config exits %d" % (name, printed.returncode))
    again_conf = os.path.join(root, "printed.conf")
    with open(again_conf, "w") as fh:
        fh.write(printed.stdout)
    out = run([a.fbl, "run", "--config", again_conf, "--check-config"])
    check(out.returncode == 0, "%s: its --print-config fails --check-config: %s"
          % (name, out.stdout.strip()))
    again = run([a.fbl, "run", "--config", again_conf, "--print-config"])
    body = lambda t: [l for l in t.splitlines() if not l.startswith("# The configuration")]
    check(body(again.stdout) == body(printed.stdout),
          "%s: --print-config of its --print-config differs" % name)
    if failures == len(FAILURES):
        print("docs_examples: %s loads (%s)" % (name, ", ".join("fbl " + c[0] for c in commands)),
              flush=True)


# Broken files: (what, text, the expected exit status, what the output must hold).
# ROOT in a text is the scratch root.
BROKEN = [
    ("a word that is no network", "[parse]\ntrusted_networks = 192.0.2.0/24, our relays\n",
     78, ":2: [parse] trusted_networks: "),
    ("text after a group", "[sink] batch_max_mails = 10\n", 78, ":1: text after ']'"),
    ("a line that is no key", "[sink]\nbatch_max_mails 10\n", 78, ":2: expected a [group]"),
    ("a key before any group", "level = debug\n[log]\n", 78, ":1: a key before the first"),
    ("a Maildir without cur/", "[mailbox:box]\n\npath = ROOT/nocur   # made without cur/\n", 78,
     ":3: [mailbox:box] path: ROOT/nocur is not a usable Maildir: cur/: No such file"),
    ("a Maildir that is not there", "[mailbox:box]\npath = ROOT/nothing\n", 78,
     ":2: [mailbox:box] path: ROOT/nothing is not a usable Maildir: new/: No such file"),
    ("a vendor URL that does not parse",
     "[vendor:v]                # a vendor\ntype = http-json\nurl = https://exa mple.net/v1\n",
     78, ":3: [vendor:v] url: holds a blank"),
    ("a vendor URL with a port out of range",
     "[vendor:v]\ntype = rspamd\nurl = http://127.0.0.1:99999\n", 78, ":3: [vendor:v] url: Port"),
    ("a log file in no directory", "[log]\nfile = ROOT/no/such/dir/fbl.log\n", 78,
     ":2: [log] file: ROOT/no/such/dir/fbl.log: cannot create it"),
    ("trailing comments everywhere",
     "[postgres]   ; the store\nconninfo = dbname=fbl   # peer authentication\n"
     "; a whole-line comment\n[parse]\ntrusted_networks = 192.0.2.0/24, 2001:db8::/32  # relays\n"
     "[log]\nlevel = info ; more\n[limits]\nmax_mail_bytes = 20MiB\t# tab before\n",
     0, "configuration OK"),
    ("a '#' inside a value is no comment", "[postgres]\nconninfo = dbname=fbl#1\n", 0,
     "configuration OK"),
]


def check_broken(a):
    root = os.path.join(a.workdir, "broken")
    os.makedirs(os.path.join(root, "nocur", "new"))
    os.makedirs(os.path.join(root, "nocur", "tmp"))
    os.makedirs(os.path.join(root, "box", "new"))
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(root, "box", sub), exist_ok=True)
    conf = os.path.join(root, "fbl.conf")
    for what, text, status, want in BROKEN:
        with open(conf, "w") as fh:
            fh.write(text.replace("ROOT", root))
        maildir = [] if "[mailbox:" in text else ["--maildir", os.path.join(root, "box")]
        out = run([a.fbl, "run", "--config", conf, "--check-config"] + maildir)
        want = want.replace("ROOT", root)
        if status != 0:
            want = conf + want
        check(out.returncode == status and want in out.stdout,
              "--check-config, %s: exit %d, %r (want %d and %r)"
              % (what, out.returncode, out.stdout.strip(), status, want))
    # A Maildir given by flag is checked as well, and named by its flag.
    out = run([a.fbl, "run", "--check-config", "--maildir", os.path.join(root, "nocur")])
    check(out.returncode == 78 and ("--maildir %s/nocur: not a usable Maildir: cur/" % root)
          in out.stdout, "--check-config --maildir without cur/: %d %r"
          % (out.returncode, out.stdout.strip()))
    # Start-up refuses what --check-config refuses, with the same words.
    out = run([a.fbl, "run", "--once", "--maildir", os.path.join(root, "nocur"), "--db",
               "host=/nonexistent dbname=x"])
    check(out.returncode == 78 and "not a usable Maildir: cur/" in out.stdout,
          "fbl run --once on a Maildir without cur/: %d %r" % (out.returncode,
                                                                out.stdout.strip()[-300:]))


def mode_config(a):
    for n, (name, text) in enumerate(all_examples()):
        load_example(a, name, text, n)
    check(len(all_examples()) >= 6, "fewer examples than expected: %d" % len(all_examples()))
    check_broken(a)


# ---- cli ---------------------------------------------------------------------------------

COMMANDS = ["run", "watch", "sink", "forward", "migrate", "reparse", "report", "prune",
            "parse", "keygen", "export", "blocklist"]
DB_COMMANDS = ["run", "sink", "forward", "migrate", "reparse", "report", "prune", "export",
               "blocklist"]


def mode_cli(a):
    c_locale = dict(os.environ, LC_ALL="C", LANG="C")
    for cmd in COMMANDS:
        out = run([a.fbl, cmd, "--help"], env=c_locale)
        check(out.returncode == 0 and out.stdout.startswith("Usage:\n  fbl %s [OPTION…]" % cmd),
              "fbl %s --help: %d %r" % (cmd, out.returncode, out.stdout[:60]))
    # A password in a conninfo is refused alike everywhere, before any connection:
    # host=/nonexistent would fail at once with 69 if one were tried.
    conf = os.path.join(a.workdir, "password.conf")
    with open(conf, "w") as fh:
        fh.write("[postgres]\nconninfo = host=/nonexistent dbname=fbl password=hunter2\n")
    for cmd in DB_COMMANDS:
        extra = ["--maildir", a.workdir] if cmd == "run" else []
        extra += ["--older-than", "180d"] if cmd == "prune" else []
        extra += ["ips", "--format", "rspamd", "--output", os.path.join(a.workdir, "ips.map")] \
            if cmd == "export" else []
        extra += ["explain", "203.0.113.7"] if cmd == "blocklist" else []
        out = run([a.fbl, cmd, "--db", "host=/nonexistent dbname=fbl password=hunter2"] + extra)
        check(out.returncode == 64 and "holds a password" in out.stdout
              and "hunter2" not in out.stdout,
              "fbl %s --db with a password: %d %r" % (cmd, out.returncode, out.stdout.strip()))
        out = run([a.fbl, cmd, "--config", conf] + extra)
        check(out.returncode == 78 and ":2: [postgres] conninfo: holds a password" in out.stdout,
              "fbl %s, conninfo with a password: %d %r" % (cmd, out.returncode,
                                                           out.stdout.strip()))
    # --print-config of the defaults: a file that loads, with every key.
    printed = run([a.fbl, "sink", "--print-config"])
    path = os.path.join(a.workdir, "defaults.conf")
    with open(path, "w") as fh:
        fh.write(printed.stdout)
    out = run([a.fbl, "sink", "--config", path, "--check-config"])
    check(out.returncode == 0, "--print-config of the defaults does not load: %s"
          % out.stdout.strip())
    table = run([a.fbl, "sink", "--print-config-table"]).stdout
    for row in table.splitlines():
        group, key = row.split("\t")[:2]
        pattern = r"^#?%s =( |$)" % re.escape(key)
        check(re.search(pattern, printed.stdout, re.M) is not None,
              "--print-config lacks [%s] %s" % (group, key))
    # The vendor keys' defaults are those of etc/fbl.conf.example.
    shown = dict(re.findall(r"^#(\w+) = (\S+)  # default", printed.stdout.split(
        "#[vendor:NAME]")[-1], re.M))
    example = open(EXAMPLE).read().split("#[vendor:example]")[-1]
    for key, value in re.findall(r"^#(\w+) = (\S+)$", example, re.M):
        if key in ("type", "url", "token_file"):  # the example's sample values
            continue
        check(shown.get(key) == value, "--print-config shows [vendor:NAME] %s = %r, "
              "etc/fbl.conf.example %r" % (key, shown.get(key), value))
    check_vendor_print(a, table)
    if not FAILURES:
        print("docs_examples: --help, --db and --print-config agree", flush=True)


VENDORS = """[vendor:acme]
type = http-json
url = https://api.vendor.example/v1/reports
batch_size = 250
timeout = 30S
include_raw = yes

[vendor:rs]
type = rspamd
url = http://127.0.0.1:11334
fuzzy_flag = 11
"""


def vendor_groups(text):
    """{group: [line, ...]} of the [vendor:...] groups of a --print-config output."""
    groups, name = {}, None
    for line in text.splitlines():
        m = re.match(r"^\[(.*)\]$", line)
        name = m.group(1) if m else (name if line else None)
        if m and name.startswith("vendor:"):
            groups[name] = []
        elif name in groups and line:
            groups[name].append(line)
    return groups


def check_vendor_print(a, table):
    """--print-config of configured vendors: every vendor key, the type's defaults marked,
    the values set unmarked; it loads back and prints the same."""
    conf = os.path.join(a.workdir, "vendors.conf")
    with open(conf, "w") as fh:
        fh.write(VENDORS)
    printed = run([a.fbl, "sink", "--config", conf, "--print-config"])
    check(printed.returncode == 0, "--print-config with vendors: %s" % printed.stdout.strip())
    again_conf = os.path.join(a.workdir, "vendors-printed.conf")
    with open(again_conf, "w") as fh:
        fh.write(printed.stdout)
    again = run([a.fbl, "sink", "--config", again_conf, "--print-config"])
    body = lambda t: [l for l in t.splitlines() if not l.startswith("# The configuration")]
    check(again.returncode == 0 and body(again.stdout) == body(printed.stdout),
          "--print-config of the vendors' --print-config differs or fails: %s"
          % again.stdout.strip()[-300:])
    groups = vendor_groups(printed.stdout)
    check(sorted(groups) == ["vendor:acme", "vendor:rs"], "vendor groups printed: %s"
          % sorted(groups))
    keys = [row.split("\t")[1] for row in table.splitlines() if row.startswith("vendor:NAME\t")]
    for group, lines in groups.items():
        for key in keys:
            check(any(re.match(r"^#?%s =( |$)" % re.escape(key), l) for l in lines),
                  "--print-config lacks [%s] %s" % (group, key))
    want = {
        "vendor:acme": ["batch_size = 250", "timeout = 30s", "include_raw = true",
                        "parallel = 4  # default", "#learn =   # only for type rspamd"],
        "vendor:rs": ["batch_size = 32  # default", "fuzzy_flag = 11", "learn = true  # default",
                      "#token_file =   # only for type http-json"],
    }
    for group, lines in want.items():
        for line in lines:
            check(line in groups.get(group, []), "--print-config [%s] lacks %r" % (group, line))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["config", "cli"])
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    a.fbl = os.path.abspath(a.fbl)
    a.workdir = os.path.abspath(a.workdir)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    {"config": mode_config, "cli": mode_cli}[a.mode](a)
    if FAILURES:
        print("%d passed, %d failed" % (0, len(FAILURES)))
        return 1
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
