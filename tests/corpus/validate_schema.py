#!/usr/bin/python3
"""validate_schema.py - every document `fbl parse` emits must match schema/report.schema.json.

Usage: validate_schema.py --fbl PATH --schema FILE --samples DIR [--corpus DIR]

Runs `fbl parse --with-path` over the golden samples (with the options the golden
runner uses, so the too_large sample really is rejected as too large) and over the
shared real corpus when it exists (skipped with a message when it does not), and
validates every output line. Exits 1 naming the path and the error of each failure.
"""
import argparse
import json
import os
import subprocess
import sys

import jsonschema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402  (fbl_args: the options each sample is parsed with)


def fbl_lines(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    # 66: some file could not be read; the documents printed are still checked.
    if proc.returncode not in (0, 66):
        raise RuntimeError("%s exited with %d: %s" % (" ".join(cmd), proc.returncode,
                                                      proc.stderr.decode("utf-8", "replace")))
    return proc.stdout.decode("utf-8").splitlines()


def validate(validator, lines, where):
    bad = 0
    n = 0
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        n += 1
        try:
            doc = json.loads(line)
        except ValueError as e:
            print("FAIL %s: output line %d is not JSON: %s" % (where, i, e))
            bad += 1
            continue
        path = doc.get("path", where) if isinstance(doc, dict) else where
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        for e in errors:
            print("FAIL %s: %s: %s" % (path, e.json_path, e.message))
        if errors:
            bad += 1
    return n, bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--corpus")
    a = ap.parse_args()

    with open(a.schema, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)

    total = failed = 0
    samples = sorted(os.path.join(a.samples, n) for n in os.listdir(a.samples)
                     if n.endswith(".eml"))
    if not samples:
        print("FAIL no samples in %s" % a.samples)
        return 1
    for sample in samples:
        cmd = [a.fbl] + golden.fbl_args(sample) + ["--with-path", sample]
        n, bad = validate(validator, fbl_lines(cmd), sample)
        total += n
        failed += bad
    print("samples: %d document(s) from %d mail(s), %d invalid" % (total, len(samples), failed))

    if a.corpus and os.path.isdir(a.corpus):
        cmd = [a.fbl, "parse", "--with-path", a.corpus]
        n, bad = validate(validator, fbl_lines(cmd), a.corpus)
        total += n
        failed += bad
        print("real corpus %s: %d document(s), %d invalid" % (a.corpus, n, bad))
    else:
        print("real corpus %s is absent: that half is skipped" % a.corpus)

    if failed:
        print("%d of %d document(s) do not match %s" % (failed, total, a.schema))
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print("FAIL %s" % e)
        sys.exit(1)
