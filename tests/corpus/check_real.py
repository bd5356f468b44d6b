#!/usr/bin/python3
"""Compare `fbl parse` over the real report corpus with real-manifest.json.

usage: check_real.py FBL_BINARY CORPUS_DIR MANIFEST

The manifest pins, per corpus file (path relative to CORPUS_DIR), either
  {"reports": [ {format, feedback_type, source_ip, message_id, from_domain,
                 subject, reporter, reporter_via}, ... ], "note": ...}
(reporter_via, the list or desk that relayed the complaint, is null when absent)
or
  {"reject": reason, "note": ...}.

A known gap - where the manifest holds the truth and fbl does not reach it
yet - is marked in the entry, with why: "gaps": {"source_ip": "why"} in a
report object (those fields may differ), or "gap": "why" on the whole entry
(its kind, reason or count may differ). A gap is checked both ways: the value
must still differ, else the marker is stale and the test fails ("gap closed").

Prints one line per mismatch and per known gap, and a summary "N files, M
match, G known gaps, K differ". Exit 0 when nothing differs but the known
gaps, 1 on any other mismatch (including corpus files missing from the
manifest) or a stale gap marker, 77 when the corpus is absent (ctest SKIP).
Python 3 standard library only.
"""
import json
import os
import subprocess
import sys

FIELDS = ("format", "feedback_type", "source_ip", "message_id",
          "from_domain", "subject", "reporter", "reporter_via")
RECEIVED_AT = "2026-01-01T00:00:00Z"


def corpus_files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name == "SOURCES.md" or name.endswith(".meta.json"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            out.append(rel.replace(os.sep, "/"))
    return out


def norm_text(v):
    """Subjects: whitespace runs collapse to one space, ends trimmed."""
    if v is None:
        return None
    return " ".join(str(v).split())


def actual_fields(doc):
    msg = doc.get("message") or {}
    rep = doc.get("reporter") or {}
    if not isinstance(rep, dict):
        rep = {"address": rep}
    return {
        "format": doc.get("format"),
        "feedback_type": doc.get("feedback_type"),
        "source_ip": doc.get("source_ip"),
        "message_id": msg.get("message_id"),
        "from_domain": msg.get("from_domain"),
        "subject": msg.get("subject"),
        "reporter": rep.get("address"),
        "reporter_via": rep.get("via"),
    }


def normalise(field, v):
    """Only folding white space in subjects is forgiven: the contract says
    IPs are canonical, addresses and domains lower case, message ids bare,
    so fbl must print them that way and the comparison is exact."""
    if field == "subject":
        return norm_text(v)
    return v


def sidecar_is_raw(corpus, rel):
    """The corpus' envelope sidecar marks mails that came from a raw feedback
    loop or a spam trap: fbl reads those as a mailbox configured raw."""
    try:
        with open(os.path.join(corpus, rel + ".meta.json"), encoding="utf-8") as fh:
            tags = json.load(fh).get("tags") or []
    except (OSError, ValueError):
        return False
    return "DATA-TYPE-FBL" in tags or "DATA-TYPE-SPAMTRAP" in tags


# The raw mailboxes of this corpus (a spam-trap network and feedback loops) are fed
# by forwarders, which their operator trusts as a deployment would, by name
# (trusted_hosts) or address (trusted_networks): the IP each of them says it
# received the spam from is the source. Without them fbl blames the forwarder,
# as it must for a relay nobody vouches for (tests/unit/test_fbl_source.c).
RAW_RELAY_HOSTS = ("mx.digibros.cz", "intel1.peregrinehw.com", "s15328764.rootmaster.info",
                   "imap1.imapgateway.com", "u15366316.onlinehome-server.com")
RAW_RELAY_NETWORKS = ("195.201.28.161",)


def raw_options():
    out = ["--raw"]
    for h in RAW_RELAY_HOSTS:
        out += ["--trusted-host", h]
    for n in RAW_RELAY_NETWORKS:
        out += ["--trusted-network", n]
    return out


def run_fbl(fbl, extra, paths):
    if not paths:
        return ""
    proc = subprocess.run(
        [fbl, "parse", "--with-path", "--received-at", RECEIVED_AT] + extra + paths,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode("utf-8", "replace"))
        print("fbl parse exited with %d" % proc.returncode)
    return proc.stdout.decode("utf-8", "replace")


def show(v):
    return json.dumps(v, ensure_ascii=False)


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    fbl, corpus, manifest_path = argv[1], argv[2], argv[3]
    if not os.path.isdir(corpus):
        print("SKIP: corpus not found at %s" % corpus)
        return 77
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)

    files = corpus_files(corpus)
    raw = [os.path.join(corpus, f) for f in files if sidecar_is_raw(corpus, f)]
    plain = [os.path.join(corpus, f) for f in files if not sidecar_is_raw(corpus, f)]
    output = run_fbl(fbl, [], plain) + run_fbl(fbl, raw_options(), raw)

    corpus_abs = os.path.realpath(corpus)
    by_path = {}
    bad_lines = 0
    for line in output.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            bad_lines += 1
            print("unparsable output line: %s" % line[:200])
            continue
        path = doc.get("path")
        if path is None:
            bad_lines += 1
            print("output document without path: %s" % line[:200])
            continue
        p = os.path.realpath(path if os.path.isabs(path)
                             else os.path.join(corpus_abs, path))
        rel = os.path.relpath(p, corpus_abs).replace(os.sep, "/")
        by_path.setdefault(rel, []).append(doc)

    n_match = n_differ = n_gaps = 0
    for rel in files:
        problems = []
        gaps = []
        docs = by_path.get(rel, [])
        exp = manifest.get(rel)
        if exp is None:
            problems.append("%s: - : manifest: expected an entry, actual "
                            "none (file missing from the manifest)" % rel)
        elif not docs:
            problems.append("%s: - : output: expected documents, actual "
                            "none" % rel)
        elif "reject" in exp:
            rejects = [d for d in docs if d.get("kind") == "reject"]
            reports = [d for d in docs if d.get("kind") == "report"]
            if reports or not rejects:
                problems.append("%s: - : kind: expected %s, actual %s" % (
                    rel, show("reject"),
                    show("%d report(s)" % len(reports))))
            elif rejects[0].get("reason") != exp["reject"]:
                problems.append("%s: - : reason: expected %s, actual %s" % (
                    rel, show(exp["reject"]), show(rejects[0].get("reason"))))
        else:
            want = exp.get("reports") or []
            reports = [d for d in docs if d.get("kind") == "report"]
            reports.sort(key=lambda d: d.get("part") or 0)
            if not reports:
                rj = [d.get("reason") for d in docs if d.get("kind") == "reject"]
                problems.append("%s: - : kind: expected %s, actual %s" % (
                    rel, show("%d report(s)" % len(want)),
                    show("reject " + ",".join(str(r) for r in rj))))
            else:
                if len(reports) != len(want):
                    problems.append("%s: - : count: expected %d, actual %d"
                                    % (rel, len(want), len(reports)))
                for i, (w, d) in enumerate(zip(want, reports)):
                    got = actual_fields(d)
                    known = w.get("gaps") or {}
                    for f in FIELDS:
                        ev = normalise(f, w.get(f))
                        av = normalise(f, got.get(f))
                        line = "%s: %d : %s: expected %s, actual %s" % (
                            rel, i, f, show(w.get(f)), show(got.get(f)))
                        if f in known and ev != av:
                            gaps.append(line + " [known gap: %s]" % known[f])
                        elif f in known:
                            problems.append("%s: %d : %s: gap closed (fbl now gives %s): "
                                            "remove the marker" % (rel, i, f, show(ev)))
                        elif ev != av:
                            problems.append(line)
        entry_gap = exp.get("gap") if exp is not None else None
        if entry_gap is not None and problems:
            gaps.extend(p + " [known gap: %s]" % entry_gap for p in problems)
            problems = []
        elif entry_gap is not None and not gaps:
            problems.append("%s: - : gap closed (fbl now agrees): remove the marker" % rel)
        if problems:
            n_differ += 1
            for p in problems:
                print(p)
        elif gaps:
            n_gaps += 1
            for g in gaps:
                print(g)
        else:
            n_match += 1

    stale = sorted(set(manifest) - set(files))
    for rel in stale:
        print("%s: - : manifest: entry for a file not in the corpus" % rel)
    skipped = [p for p in by_path if p == "SOURCES.md" or
               p.endswith(".meta.json")]
    extra = sorted(set(by_path) - set(files) - set(skipped))
    for rel in extra:
        print("%s: - : output: documents for a file not in the corpus list"
              % rel)

    print("%d files, %d match, %d known gaps, %d differ" % (len(files), n_match, n_gaps,
                                                          n_differ))
    if n_differ or bad_lines or stale:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
