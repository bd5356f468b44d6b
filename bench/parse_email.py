#!/usr/bin/python3
"""bench/parse_email.py - parse throughput of Python's email package on one core.

    parse_email.py [--reps N] [--warmup N] [--cpu N] [--list FILE] PATH...

What a Python user of the standard library would write to pull fbl's key
fields out of a report mail: email.parser.BytesParser(policy=policy.default),
then for the mail and every message inside it (message/rfc822 parts, .eml
attachments, text/rfc822-headers, whose bytes are parsed again) the From
addresses, Subject, Message-ID, Date (parsed), and the IPs of the Received
fields; the ARF fields of message/feedback-report parts (Feedback-Type,
Source-IP, Original-Mail-From, Reported-Domain); the URLs of every text/plain
and text/html body (decoded to str, one regular expression); the name, type
and size of every attachment.

Method as bench_parse: all mails read into memory first, the process pinned
to one CPU, one untimed warm-up pass, then N timed passes, each timed with
the process CPU clock and the wall clock; one JSON line per timed pass on
stdout (the same keys as bench_parse). Debian's /usr/bin/python3, standard
library only.
"""

import argparse
import json
import os
import re
import sys
import time
from email import policy
from email.parser import BytesParser

URL_RE = re.compile(r"(?:https?|ftp)://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
IP_RE = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]{3,})\]")
ARF_FIELDS = ("feedback-type", "source-ip", "original-mail-from", "reported-domain")
MAX_DEPTH = 8

PARSER = BytesParser(policy=policy.default)


def header_fields(msg, out):
    """From, Subject, Message-ID, Date and Received IPs of one message."""
    rec = {}
    frm = msg["from"]
    try:
        rec["from"] = [a.addr_spec.lower() for a in frm.addresses] if frm is not None else []
    except Exception:  # a From the policy could not read
        rec["from"] = [str(frm)]
    rec["subject"] = str(msg["subject"]) if msg["subject"] is not None else None
    mid = msg["message-id"]
    rec["message_id"] = str(mid).strip().strip("<>") if mid is not None else None
    date = msg["date"]
    try:
        dt = date.datetime if date is not None else None
        rec["date"] = dt.isoformat() if dt is not None else None
    except Exception:
        rec["date"] = None
    ips = []
    for h in msg.get_all("received", []):
        ips.extend(IP_RE.findall(str(h)))
    rec["received_ips"] = ips
    out["messages"].append(rec)


def text_of(part):
    try:
        return part.get_content()
    except Exception:  # an unknown charset: what a careful user falls back to
        payload = part.get_payload(decode=True) or b""
        return payload.decode("latin-1")


def extract(msg, out, depth):
    header_fields(msg, out)
    for part in msg.walk():
        if part is msg:
            continue
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            for inner in part.get_payload():
                header_fields(inner, out)  # walk() goes on into its parts
            continue
        if ctype == "message/feedback-report":
            for inner in part.get_payload():
                out["arf"].append({k: inner.get(k) for k in ARF_FIELDS})
            continue
        if part.is_multipart():
            continue
        name = part.get_filename()
        if ctype in ("text/plain", "text/html") and name is None:
            out["urls"].extend(URL_RE.findall(text_of(part)))
            continue
        data = part.get_payload(decode=True) or b""
        if depth < MAX_DEPTH and ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            header_fields(PARSER.parsebytes(data, headersonly=True), out)
        elif depth < MAX_DEPTH and name is not None and name.lower().endswith(".eml"):
            extract(PARSER.parsebytes(data), out, depth + 1)
        out["attachments"].append({"name": name, "type": ctype, "size": len(data)})


def parse_one(data):
    out = {"messages": [], "arf": [], "urls": [], "attachments": []}
    extract(PARSER.parsebytes(data), out, 0)
    return out


def collect(paths, list_file):
    files = []
    if list_file:
        with open(list_file, encoding="utf-8") as f:
            files.extend(line.rstrip("\n") for line in f if line.strip())
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                files.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith("."))
        else:
            files.append(p)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cpu", type=int, default=-1)
    ap.add_argument("--list")
    a = ap.parse_args()
    files = collect(a.paths, a.list)
    if not files:
        ap.error("no mail given")
    mails = []
    for f in files:
        with open(f, "rb") as fh:
            mails.append(fh.read())
    total = sum(len(m) for m in mails)
    cpu = a.cpu if a.cpu >= 0 else os.sched_getaffinity(0).pop()
    os.sched_setaffinity(0, {cpu})
    print("parse_email: pinned to CPU %d" % cpu, file=sys.stderr)
    best = None
    for rep in range(-a.warmup, a.reps):
        n_msgs = n_urls = n_atts = errors = 0
        c0, w0 = time.process_time(), time.perf_counter()
        for data in mails:
            try:
                out = parse_one(data)
            except Exception:  # the package gave up on this mail
                errors += 1
                continue
            n_msgs += len(out["messages"])
            n_urls += len(out["urls"])
            n_atts += len(out["attachments"])
        c, w = time.process_time() - c0, time.perf_counter() - w0
        if rep < 0:
            continue
        best = c if best is None else min(best, c)
        print(json.dumps({"engine": "python", "rep": rep, "mails": len(mails), "bytes": total,
                          "cpu_s": round(c, 6), "wall_s": round(w, 6), "reports": n_msgs,
                          "rejects": errors, "headers": 0, "outbytes": n_urls,
                          "attachments": n_atts}), flush=True)
    print("parse_email: %d mails: %.0f mails/s (best of %d)" % (len(mails), len(mails) / best,
                                                                 a.reps), file=sys.stderr)


if __name__ == "__main__":
    main()
