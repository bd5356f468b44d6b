#!/usr/bin/python3
"""golden.py - compare `fbl parse` output for a sample mail with its golden file.

Usage:
  golden.py --fbl PATH check SAMPLE.eml      one sample; exit 1 with a diff on mismatch
  golden.py --fbl PATH update DIR|SAMPLE...  rewrite the .json of every sample given

Each tests/corpus/samples/NAME.eml has NAME.json beside it: a JSON array of the
documents fbl prints for it, parsed with a fixed delivery time and mailbox so the
output does not depend on the file's time stamp. Samples named reject-too-large*
are parsed with a small size limit (FBL_TOO_LARGE_LIMIT) so they stay small.

A golden is a claim of correctness, not a snapshot: after `update`, read the diff.
Standard library only.
"""
import argparse
import difflib
import json
import os
import subprocess
import sys

RECEIVED_AT = "2026-01-01T00:00:00Z"
MAILBOX = "spamalert"
TOO_LARGE_PREFIX = "reject-too-large"
TOO_LARGE_LIMIT = 1024


def fbl_args(sample):
    """The `fbl parse` options a sample is parsed with (shared with validate_schema.py)."""
    args = ["parse", "--received-at", RECEIVED_AT, "--mailbox", MAILBOX]
    if os.path.basename(sample).startswith(TOO_LARGE_PREFIX):
        args += ["--max-mail-bytes", str(TOO_LARGE_LIMIT)]
    return args


def run_fbl(fbl, sample, extra=()):
    """Every document fbl prints for @sample, in order."""
    cmd = [fbl] + fbl_args(sample) + list(extra) + [sample]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise RuntimeError("%s exited with %d: %s" % (" ".join(cmd), proc.returncode,
                                                      proc.stderr.decode("utf-8", "replace")))
    docs = []
    for n, line in enumerate(proc.stdout.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                docs.append(json.loads(line))
            except ValueError as e:
                raise RuntimeError("%s: output line %d is not JSON: %s" % (sample, n, e))
    return docs


def golden_path(sample):
    return os.path.splitext(sample)[0] + ".json"


def dump(docs):
    return json.dumps(docs, indent=2, ensure_ascii=False) + "\n"


def differences(want, got, path="$"):
    """Yield 'path: expected X, actual Y' for every leaf that differs."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in list(want) + [k for k in got if k not in want]:
            if k not in got:
                yield "%s.%s: missing (expected %s)" % (path, k, json.dumps(want[k], ensure_ascii=False))
            elif k not in want:
                yield "%s.%s: unexpected %s" % (path, k, json.dumps(got[k], ensure_ascii=False))
            else:
                yield from differences(want[k], got[k], "%s.%s" % (path, k))
    elif isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (w, g) in enumerate(zip(want, got)):
            yield from differences(w, g, "%s[%d]" % (path, i))
    elif want != got:
        yield "%s: expected %s, actual %s" % (path, json.dumps(want, ensure_ascii=False)[:200],
                                              json.dumps(got, ensure_ascii=False)[:200])


def check(fbl, sample):
    gpath = golden_path(sample)
    try:
        with open(gpath, encoding="utf-8") as f:
            want = json.load(f)
    except FileNotFoundError:
        print("%s: no golden file; run `cmake --build BUILD --target update-golden`" % gpath)
        return 1
    got = run_fbl(fbl, sample)
    if got == want:
        print("%s: %d document(s) as expected" % (os.path.basename(sample), len(got)))
        return 0
    # Sorted keys make the diff about values, not key order.
    w = json.dumps(want, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    g = json.dumps(got, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    print("%s: fbl output differs from %s" % (sample, gpath))
    for d in differences(want, got):
        print("  " + d)
    print("(- expected, the golden; + actual, fbl)")
    for line in difflib.unified_diff(w, g, "expected", "actual", lineterm="", n=4):
        print(line)
    return 1


def samples_in(paths):
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(os.path.join(p, n) for n in os.listdir(p) if n.endswith(".eml"))
        else:
            out.append(p)
    return out


def update(fbl, paths):
    changed = 0
    for sample in samples_in(paths):
        text = dump(run_fbl(fbl, sample))
        gpath = golden_path(sample)
        old = None
        if os.path.exists(gpath):
            with open(gpath, encoding="utf-8") as f:
                old = f.read()
        if old != text:
            with open(gpath, "w", encoding="utf-8") as f:
                f.write(text)
            changed += 1
            print("updated %s" % gpath)
    print("%d golden file(s) changed; review the diff before committing" % changed)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fbl", required=True, help="the built fbl program")
    ap.add_argument("mode", choices=["check", "update"])
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    try:
        if a.mode == "update":
            return update(a.fbl, a.paths)
        return max(check(a.fbl, s) for s in a.paths)
    except RuntimeError as e:
        print(e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
