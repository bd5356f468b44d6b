#!/usr/bin/python3
"""Watchers and sinks on four hosts: Linux network namespaces on one machine.

usage: multihost.py --fbl BIN --pg-conninfo-file FILE --workdir DIR
                    [--mails N] [--deliver-seconds S] [--cut-seconds C] [--seed S]

Each host is a network namespace of its own (named after this process's pid,
so runs never share one): two mail hosts w1, w2 and two sink hosts s1, s2,
each with a veth link (eth0) into a switch namespace that bridges them, on
10.231.0.0/24 (w1 .11, w2 .12, s1 .21, s2 .22). The root namespace is not on
that network; the sinks reach PostgreSQL (the "pg" fixture's cluster) over its
Unix socket, as a sink next to its database would.

- `fbl sink` runs in s1 and in s2 (nsenter --net), bound to tcp://ADDR:5771
  with CURVE. fbl's watcher has one curve_server_public_file for all its
  endpoints, so both sinks share one key pair (fbl keygen); their
  curve_clients_dir holds the two watchers' public keys.
- `fbl watch` runs in w1 and in w2, each on its own Maildir (two mail hosts),
  connected to both sinks over tcp:// with its own key pair.
- N generated mails (genmail, half per Maildir) are delivered over about
  DELIVER seconds; a quarter of the way in, s1's link goes down
  (`ip link set eth0 down` in s1) for CUT seconds, then up again.
- A third watcher with a key pair no sink knows runs in w2 with a Maildir of
  its own: both sinks refuse it (logged on both sides) and its mails stay in
  new/.

In the end: both Maildirs' new/ are empty, every mail of the manifest is
stored exactly once with its reports or reject (pipeline.verify) and nothing
else (the stranger's mails neither), each sink's log names both watchers'
keys and their namespace addresses (so the mail crossed the namespaces over
CURVE), every process was still running and exits 0 on SIGTERM. Prints the
mails, the resends the watchers logged, the cut and the time to drain after
the link came back, and where it ran.

Exit 77 (skip) when not root or when the kernel or the environment refuses
network namespaces, veth or bridge links (a container, a chroot without
/run/netns, ...). The namespaces are deleted at the end, also on failure.
Standard library only.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pipeline
from ops_common import Database, Proc, SAMPLES, deliver, make_maildir

SKIP = 77
NAME = "multihost"
NET = "10.231.0"
PORT = 5771
HOSTS = {"w1": NET + ".11", "w2": NET + ".12", "s1": NET + ".21", "s2": NET + ".22"}
T0 = time.monotonic()


def log(msg):
    print("%s: [%5.1f s] %s" % (NAME, time.monotonic() - T0, msg), flush=True)


class Skip(Exception):
    pass


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def in_ns(name, argv):
    """@argv run in network namespace @name. nsenter(1) enters only the network namespace;
    `ip netns exec` and `ip -n` also remount / and /sys, which a chroot refuses."""
    return ["nsenter", "--net=/run/netns/" + name] + list(argv)


def ip(*argv):
    """Run ip(8) (`-n NS ...`: inside namespace NS); (exit status, output)."""
    cmd = ["ip"] + list(argv)
    if argv[:1] == ("-n",):
        cmd = in_ns(argv[1], ["ip"] + list(argv[2:]))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout.strip()


def where():
    """One line on the machine: kernel, and container or VM when systemd-detect-virt knows."""
    virt = "unknown"
    if shutil.which("systemd-detect-virt"):
        p = subprocess.run(["systemd-detect-virt"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        virt = p.stdout.strip() or "unknown"
    return "host %s, kernel %s %s, virtualization: %s" % (
        platform.node(), platform.system(), platform.release(), virt)


class Network:
    """The namespaces: one per host and a switch namespace bridging their veth links."""

    def __init__(self):
        self.prefix = "fblmh%d" % os.getpid()
        self.switch = self.prefix + "-sw"
        self.made = []

    def ns(self, host):
        return "%s-%s" % (self.prefix, host)

    def _add(self, name):
        rc, out = ip("netns", "add", name)
        if rc != 0:
            raise Skip("`ip netns add` failed: %s" % out)
        self.made.append(name)

    def up(self):
        if os.getuid() != 0:
            raise Skip("network namespaces need root (uid %d)" % os.getuid())
        for tool in ("ip", "nsenter"):
            if shutil.which(tool) is None:
                raise Skip("%s is not installed (iproute2, util-linux)" % tool)
        self._add(self.switch)
        steps = [("-n", self.switch, "link", "add", "br0", "type", "bridge")]
        for host, addr in HOSTS.items():
            self._add(self.ns(host))
            port = "p-" + host
            steps += [("-n", self.ns(host), "link", "add", "eth0", "type", "veth", "peer",
                       "name", port, "netns", self.switch),
                      ("-n", self.switch, "link", "set", "dev", port, "master", "br0"),
                      ("-n", self.switch, "link", "set", "dev", port, "up"),
                      ("-n", self.ns(host), "addr", "add", addr + "/24", "dev", "eth0"),
                      ("-n", self.ns(host), "link", "set", "dev", "eth0", "up"),
                      ("-n", self.ns(host), "link", "set", "dev", "lo", "up")]
        steps.append(("-n", self.switch, "link", "set", "dev", "br0", "up"))
        for argv in steps:
            rc, out = ip(*argv)
            if rc != 0:
                raise Skip("`ip %s` failed (no veth or bridge here?): %s"
                           % (" ".join(argv), out))

    def link(self, host, state):
        rc, out = ip("-n", self.ns(host), "link", "set", "dev", "eth0", state)
        check(rc == 0, "ip link set eth0 %s in %s: %s" % (state, host, out))

    def down(self):
        for name in reversed(self.made):
            rc, out = ip("netns", "del", name)
            if rc != 0:
                print("%s: WARNING: ip netns del %s: %s" % (NAME, name, out), flush=True)
        self.made = []


def keygen(fbl, prefix):
    p = subprocess.run([fbl, "keygen", prefix], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    check(p.returncode == 0, "fbl keygen %s: %s" % (prefix, p.stdout + p.stderr))
    key = p.stdout.split()[0]
    check(re.match(r"^\S{40}$", key), "fbl keygen printed %r" % p.stdout)
    return key


def deliver_stage(stage, mbox, seconds):
    names = sorted(os.listdir(os.path.join(stage, "new")))
    pause = seconds / max(len(names), 1)
    for name in names:
        tmp = os.path.join(mbox, "tmp", name)
        shutil.copyfile(os.path.join(stage, "new", name), tmp)
        os.rename(tmp, os.path.join(mbox, "new", name))
        time.sleep(pause)


def pending(mboxes):
    return sum(len(os.listdir(os.path.join(m, "new"))) for m in mboxes)


def wait_drained(mboxes, procs, timeout):
    """Every new/ empty for 3 s in a row (acks come after the commit); when it emptied."""
    deadline = time.monotonic() + timeout
    empty_since = None
    while time.monotonic() < deadline:
        for name, p in procs.items():
            check(p.running(), "%s exited early (%s):\n%s"
                  % (name, p.p.returncode, p.output()[-2000:]))
        if pending(mboxes):
            empty_since = None
        elif empty_since is None:
            empty_since = time.monotonic()
        elif time.monotonic() - empty_since >= 3:
            return empty_since
        time.sleep(0.2)
    raise Failure("%d mail(s) still in new/ after %d s" % (pending(mboxes), timeout))


def test(a, net):
    work = a.workdir
    shutil.rmtree(work, ignore_errors=True)
    keys = make_dir(work, "keys")
    clients = make_dir(work, "clients")
    logs = make_dir(work, "logs")

    # Key pairs: one for the sinks (fbl watch takes one server key for all its
    # endpoints), one per watcher, one nobody knows.
    pubs = {who: keygen(a.fbl, os.path.join(keys, who))
            for who in ("sink", "w1", "w2", "stranger")}
    for who in ("w1", "w2"):
        shutil.copy(os.path.join(keys, who + ".pub"), clients)

    # The mails: a Maildir per mail host, a manifest for both.
    manifest, stages, mboxes = [], {}, {}
    for i, host in enumerate(("w1", "w2")):
        stages[host] = os.path.join(work, "stage-" + host)
        path = os.path.join(work, "manifest-%s.jsonl" % host)
        subprocess.run([sys.executable, pipeline.GENMAIL, "--seed", "%s-%s" % (a.seed, host),
                        "--count", str(a.mails // 2 + (a.mails % 2 if i == 0 else 0)),
                        "--out", stages[host], "--maildir", "--manifest", path], check=True)
        manifest += [json.loads(line) for line in open(path)]
        mboxes[host] = make_maildir(os.path.join(work, "mail-" + host))
    check(len({m["mail_id"] for m in manifest}) == len(manifest),
          "the two generators made the same mail twice")
    stranger_box = make_maildir(os.path.join(work, "mail-stranger"))
    sample = open(os.path.join(SAMPLES, "arf-not-spam.eml"), "rb").read()
    for i in range(3):
        deliver(stranger_box, sample.replace(b"Cheap watches", b"Cheap watches mh%d" % i))
    log("generated %d mails for w1 and w2, 3 for the stranger" % len(manifest))

    db = Database(a.pg_conninfo_file, "t_multihost")
    procs = {}

    def start(name, host, role, conf, level):
        argv = in_ns(net.ns(host), [a.fbl, role, "--config", conf, "--log-level", level])
        procs[name] = Proc(argv, os.path.join(logs, name + ".log"))

    try:
        for host in ("s1", "s2"):
            conf = os.path.join(work, host + ".conf")
            with open(conf, "w") as fh:
                fh.write("[postgres]\nconninfo = %s\n\n[sink]\nbind = tcp://%s:%d\n"
                         "curve_secret_file = %s\ncurve_clients_dir = %s\n"
                         "batch_max_mails = 200\nbatch_max_wait = 100ms\n"
                         % (db.conninfo, HOSTS[host], PORT, os.path.join(keys, "sink.key"),
                            clients))
            start(host, host, "sink", conf, "info")  # info: the watchers it let in
        # one key, a list (a second `connect =` line would replace the first)
        connect = "connect = %s\n" % ", ".join("tcp://%s:%d" % (HOSTS[s], PORT)
                                               for s in ("s1", "s2"))
        for name, host, box in (("w1", "w1", mboxes["w1"]), ("w2", "w2", mboxes["w2"]),
                                ("stranger", "w2", stranger_box)):
            conf = os.path.join(work, name + ".conf")
            with open(conf, "w") as fh:
                fh.write("[mailbox:%s]\npath = %s\n\n[watch]\n%s"
                         "curve_secret_file = %s\ncurve_server_public_file = %s\n"
                         "window = 64\nack_timeout = 2s\nqueue_max = 300\n"
                         % (name, box, connect, os.path.join(keys, name + ".key"),
                            os.path.join(keys, "sink.pub")))
            start(name, host, "watch", conf, "notice")
        log("fbl sink in %s and %s, fbl watch in %s and %s (and the stranger in %s)"
            % (net.ns("s1"), net.ns("s2"), net.ns("w1"), net.ns("w2"), net.ns("w2")))

        threads = [threading.Thread(target=deliver_stage,
                                    args=(stages[h], mboxes[h], a.deliver_seconds), daemon=True)
                   for h in ("w1", "w2")]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(max(1.0, (a.deliver_seconds - a.cut_seconds) / 2))  # the cut mid-stream
        net.link("s1", "down")
        t_cut, wall_cut = time.monotonic(), time.time()
        log("s1 cut off (eth0 down); %d mail(s) waiting in new/" % pending(mboxes.values()))
        time.sleep(a.cut_seconds)
        net.link("s1", "up")
        t_back, wall_back = time.monotonic(), time.time()
        log("s1 back after %.1f s; %d mail(s) waiting in new/"
            % (t_back - t_cut, pending(mboxes.values())))
        for t in threads:
            t.join()
        log("delivered %d mails in %.1f s" % (len(manifest), time.monotonic() - t_start))
        drained = wait_drained(list(mboxes.values()), procs, timeout=240)
        log("new/ empty %.1f s after s1 came back (%.1f s after the last delivery)"
            % (drained - t_back, drained - (t_start + a.deliver_seconds)))
        # s1 is in use again: what its watchers had queued for it during the cut
        # reaches it once TCP retransmits (the connections outlive a 10 s cut);
        # those mails were stored through s2 meanwhile, so s1's store adds nothing.
        wait_until("a commit by s1 after its link came back",
                   lambda: commits(procs["s1"], wall_back), 120)
        s1_back = commits(procs["s1"], wall_back)[0] - wall_back
        s1_during = len(commits(procs["s1"], wall_cut)) - len(commits(procs["s1"], wall_back))
        log("s1 committed again %.1f s after its link came back (%d batch(es) committed "
            "while it was cut off, received before)" % (s1_back, s1_during))

        # CURVE across the namespaces: each sink let both watchers in by their
        # key file, from their namespace's address, and refused the stranger.
        for s in ("s1", "s2"):
            out = procs[s].output()
            for w in ("w1", "w2"):
                check("watcher %s.pub (%s) authenticated" % (w, HOSTS[w]) in out,
                      "%s's log lacks the CURVE handshake of %s from %s" % (s, w, HOSTS[w]))
            check(re.search(r"refused a watcher: its public key is not in curve_clients_dir "
                            r"endpoint=%s" % re.escape(HOSTS["w2"]), out),
                  "%s did not log the stranger's refusal" % s)
            check(pubs["stranger"] in out, "%s did not log the refused key" % s)
            check(pubs["w1"] not in out and pubs["w2"] not in out,
                  "%s logged a known watcher's key as refused" % s)
        check("the sink refused our key" in procs["stranger"].output(),
              "the stranger did not log the refusal")
        check(len(os.listdir(os.path.join(stranger_box, "new"))) == 3 and
              not os.listdir(os.path.join(stranger_box, "cur")),
              "the stranger's mails left new/")
        for w in ("w1", "w2"):
            check("CURVE on, our public key %s" % pubs[w] in procs[w].output(),
                  "%s did not log its public key" % w)
        log("both sinks let in w1 (%s) and w2 (%s) by key, refused the stranger's key"
            % (HOSTS["w1"], HOSTS["w2"]))

        rcs = {}
        for name in ("stranger", "w1", "w2", "s1", "s2"):
            check(procs[name].running(), "%s is no longer running" % name)
            rcs[name] = procs[name].stop(signal.SIGTERM, timeout=120)
        check(all(rc == 0 for rc in rcs.values()), "exit codes after SIGTERM: %s" % rcs)
        log("every process exited 0 on SIGTERM")

        errors = pipeline.verify(db, manifest, list(mboxes.values()))
        check(not errors, "; ".join(errors))
        resends = {w: procs[w].output().count("stage=resend") for w in ("w1", "w2")}
        batches = {s: len(commits(procs[s], 0)) for s in ("s1", "s2")}
        log("figures: %d mails over %.0f s, s1 cut for %.1f s, new/ empty %.1f s after it came "
            "back, s1 committing again after %.1f s, resends logged: w1 %d, w2 %d, batches "
            "committed: s1 %d, s2 %d"
            % (len(manifest), a.deliver_seconds, t_back - t_cut, drained - t_back, s1_back,
               resends["w1"], resends["w2"], batches["s1"], batches["s2"]))
        log("OK: every mail stored exactly once across 4 namespaces")
    finally:
        for p in procs.values():
            p.kill()


def commits(proc, since):
    """Wall-clock times of the sink's logged commits after @since (epoch seconds)."""
    times = []
    for m in re.finditer(r"^ts=(\S+)Z .*stage=pg_commit", proc.output(), re.M):
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
        t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
        if t > since:
            times.append(t)
    return times


def wait_until(what, cond, timeout):
    end = time.monotonic() + timeout
    while not cond():
        check(time.monotonic() < end, "timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(0.2)


def make_dir(*parts):
    path = os.path.join(*parts)
    os.makedirs(path, exist_ok=True)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--pg-conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--mails", type=int, default=2000)
    ap.add_argument("--deliver-seconds", type=float, default=15.0)
    ap.add_argument("--cut-seconds", type=float, default=10.0)
    ap.add_argument("--seed", default="4242")
    a = ap.parse_args()
    log("running on %s" % where())
    net = Network()
    try:
        net.up()
        log("namespaces %s-{sw,w1,w2,s1,s2} on %s.0/24" % (net.prefix, NET))
        test(a, net)
    except Skip as e:
        print("%s: SKIP: %s" % (NAME, e), flush=True)
        return SKIP
    except Failure as e:
        print("%s: FAIL: %s" % (NAME, e), flush=True)
        print("logs in %s" % os.path.join(a.workdir, "logs"), flush=True)
        return 1
    finally:
        net.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
