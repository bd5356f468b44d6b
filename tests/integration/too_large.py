#!/usr/bin/python3
"""A mail over max_mail_bytes keeps its headers and the start of its body.

usage: too_large.py --fbl BIN --conninfo-file FILE --workdir DIR

An 11 MiB report mail (headers, then a base64 attachment) and a small report are
delivered into a Maildir that a real `fbl run --once` watches, with the default limit
of 10 MiB. In PostgreSQL: one reject too_large, whose detail says the size and the
limit; fbl.mails.size is the file's size, mail_id the SHA-256 of the whole file,
raw exactly its header block and the first 64 KiB of its body, raw_complete false;
the small mail is stored whole (raw_complete true). `fbl reparse` changes nothing
and leaves the too_large mail alone (a control run that marks its raw complete
shows that reparse would otherwise take the prefix for a mail). `fbl parse` on the
file prints the same reject. Its own database in the "pg" fixture's cluster.
Standard library only.
"""
import argparse
import hashlib
import json
import os
import subprocess

from ops_common import (SAMPLES, Database, Failure, check, count, deliver, fresh_dir, log,
                        make_maildir, run_main)

NAME = "too_large"
MAILBOX = "spamalert"
LIMIT = 10 * 1024 * 1024  # the default [limits] max_mail_bytes
BODY_KEEP = 64 * 1024  # what a too_large mail keeps after its header block
SIZE = 11 * 1024 * 1024

HEADERS = (b"Return-Path: <fbl@feedback.example.net>\n"
           b"Received: from fbl.example.net (fbl.example.net [198.51.100.10])\n"
           b"\tby mx.example.com (Postfix) with ESMTPS id 4AbC1\n"
           b"\tfor <spamalert@example.com>; Wed, 17 Dec 2025 10:00:05 +0000\n"
           b"From: Example Feedback Loop <fbl@feedback.example.net>\n"
           b"To: spamalert@example.com\n"
           b"Subject: A very large report\n"
           b"Date: Wed, 17 Dec 2025 10:00:00 +0000\n"
           b"Message-ID: <huge@feedback.example.net>\n"
           b"MIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=\"=_huge\"\n"
           b"\n")


def big_mail():
    """HEADERS, then a body of base64 lines up to SIZE bytes in all."""
    body = (b"--=_huge\nContent-Type: text/plain\n\nThe spam is attached.\n\n"
            b"--=_huge\nContent-Type: application/octet-stream; name=\"spam.eml\"\n"
            b"Content-Transfer-Encoding: base64\n\n")
    line = b"U3BhbSBzcGFtIHNwYW0gc3BhbSBzcGFtIHNwYW0gc3BhbSBzcGFtIHNwYW0gc3BhbSBzcGFt\n"
    mail = bytearray(HEADERS + body)
    n = 0
    while len(mail) < SIZE:  # numbered lines: a prefix cut anywhere else shows
        mail += b"%08d" % n + line[8:]
        n += 1
    return bytes(mail[:SIZE])


def sha(data):
    return hashlib.sha256(data).hexdigest()


def run(argv, what):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if p.returncode != 0:
        raise Failure("%s: exit %d\n%s" % (what, p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout.decode()


def mail_row(db, mail_id):
    return db.query("SELECT m.size, m.raw_complete, octet_length(m.raw), "
                    "encode(sha256(m.raw), 'hex'), j.reason, j.detail, j.size, j.parsed_at "
                    "FROM fbl.mails m LEFT JOIN fbl.rejects j USING (mail_id, received_at) "
                    "WHERE m.mail_id = '%s'" % mail_id).split("|")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbl", required=True)
    ap.add_argument("--conninfo-file", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    work = fresh_dir(args.workdir)
    db = Database(args.conninfo_file, "fbl_too_large")
    mbox = make_maildir(os.path.join(work, "Maildir"))
    conf = os.path.join(work, "fbl.conf")
    with open(conf, "w") as fh:
        fh.write("[postgres]\nconninfo = %s\n\n[mailbox:%s]\npath = %s\n"
                 % (db.conninfo, MAILBOX, mbox))

    big = big_mail()
    small = open(os.path.join(SAMPLES, "arf-not-spam.eml"), "rb").read()
    name = deliver(mbox, big)
    deliver(mbox, small)
    run([args.fbl, "run", "--once", "--config", conf], "fbl run --once")
    check(count(mbox, "new") == 0 and count(mbox, "cur") == 2,
          "both mails moved to cur/: new %d, cur %d" % (count(mbox, "new"), count(mbox, "cur")))

    # The reject, and what fbl.mails keeps of the mail.
    big_id, want = sha(big), big[:len(HEADERS) + BODY_KEEP]
    check(db.query("SELECT count(*) FROM fbl.rejects WHERE reason = 'too_large'") == "1",
          "one too_large reject")
    row = mail_row(db, big_id)
    check(len(row) == 8, "the mail is stored under the SHA-256 of the whole file: %r" % row)
    size, complete, kept, kept_sha, reason, detail, reject_size, parsed_at = row
    check(size == str(SIZE) and reject_size == str(SIZE),
          "size is the file's: mails %s, rejects %s, want %d" % (size, reject_size, SIZE))
    check(reason == "too_large", "reason %s" % reason)
    check(detail == "%d bytes, over the limit of %d" % (SIZE, LIMIT), "detail %r" % detail)
    check(complete == "f", "raw_complete is false for the prefix: %s" % complete)
    check(kept == str(len(want)) and kept_sha == sha(want),
          "raw is the header block and 64 KiB of body: %s bytes, want %d" % (kept, len(want)))
    small_row = mail_row(db, sha(small))
    check(small_row[1:4] == ["t", str(len(small)), sha(small)],
          "the small mail is stored whole and complete: %r" % small_row[1:4])
    log(NAME, "stored: too_large, %d bytes kept of %d, raw_complete false" % (len(want), SIZE))

    # fbl reparse leaves it alone.
    out = run([args.fbl, "reparse", "--config", conf], "fbl reparse")
    check(out.startswith("fbl reparse: 0 mails changed"), "reparse: %r" % out)
    check(mail_row(db, big_id) == row, "reparse left the too_large mail as it was")
    # Control: were its raw taken for complete, reparse would parse the prefix.
    db.query("UPDATE fbl.mails SET raw_complete = true WHERE mail_id = '%s'" % big_id)
    out = run([args.fbl, "reparse", "--config", conf], "fbl reparse (control)")
    check(out.startswith("fbl reparse: 1 mail changed"), "control reparse: %r" % out)
    log(NAME, "reparse: the prefix is skipped (the control run takes it)")

    # fbl parse prints the same reject.
    out = run([args.fbl, "parse", os.path.join(mbox, "cur", name + ":2,S")], "fbl parse")
    docs = [json.loads(line) for line in out.splitlines()]  # one document a line
    check(len(docs) == 1, "fbl parse: one document, got %d" % len(docs))
    doc = docs[0]
    check(doc["kind"] == "reject" and doc["reason"] == "too_large" and doc["size"] == SIZE
          and doc["mail_id"] == big_id and doc["detail"] == detail, "fbl parse: %r" % doc)
    log(NAME, "fbl parse: %s" % doc["detail"])


if __name__ == "__main__":
    run_main(NAME, main)
