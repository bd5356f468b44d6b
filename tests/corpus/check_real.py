#!/usr/bin/python3
"""Compare `fbl parse` over the real report corpus with real-manifest.json.

usage: check_real.py FBL_BINARY CORPUS_DIR MANIFEST

The manifest pins, per corpus file (path relative to CORPUS_DIR), either
  {"reports": [ {format, feedback_type, source_ip, message_id, from_domain,
                 subject, reporter}, ... ], "note": ...}
or
  {"reject": reason, "note": ...}.

Prints one line per mismatch and a summary "N files, M match, K differ".
Exit 0 when everything matches, 1 on any mismatch (including corpus files
missing from the manifest), 77 when the corpus is absent (ctest SKIP).
Python 3 standard library only.
"""
import json
import os
import subprocess
import sys

FIELDS = ("format", "feedback_type", "source_ip", "message_id",
          "from_domain", "subject", "reporter")
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
    output = run_fbl(fbl, [], plain) + run_fbl(fbl, ["--raw"], raw)

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

    n_match = n_differ = 0
    for rel in files:
        problems = []
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
                    for f in FIELDS:
                        ev = normalise(f, w.get(f))
                        av = normalise(f, got.get(f))
                        if ev != av:
                            problems.append("%s: %d : %s: expected %s, actual %s"
                                            % (rel, i, f, show(w.get(f)),
                                               show(got.get(f))))
        if problems:
            n_differ += 1
            for p in problems:
                print(p)
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

    print("%d files, %d match, %d differ" % (len(files), n_match, n_differ))
    if n_differ or bad_lines or stale:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
