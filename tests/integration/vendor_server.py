#!/usr/bin/python3
"""vendor_server - a scriptable vendor API for fbl's forwarder tests and benchmark.

A real HTTP server (http.server, one thread per connection, HTTP/1.1
keep-alive) that speaks the http-json protocol of sink/vendor.h: POST of a
gzip'd JSON batch {"v": 1, "batch": KEY, "reports": [doc, ...]} with
"Authorization: Bearer TOKEN" and "Idempotency-Key: KEY".

Every request is checked and recorded:
  - the token (401 when wrong), the idempotency key (it must equal the body's
    "batch"), the gzip and the JSON (400 when broken);
  - privacy: no string of `forbidden` may appear (ASCII case ignored) in the
    decompressed body nor in any report's base64 "raw_message"; a hit is
    recorded in `violations` (and the request is answered as usual);
  - every report id in the batch, with the time and the status answered, in
    `deliveries` (status "timeout" for a request the script made hang past the
    client's timeout).

What it answers is scripted:
  refuse_ids     a set of report ids: a batch holding one gets 400 naming it
  refuse_marker  the same for reports whose JSON holds this string
  echo_refused   the 400 also echoes the refused report's reporter and recipients, as
                 some APIs echo the request
  script(rule)   rules used in order, each for `count` requests:
                 {"status": 500|503|429|..., "count": N, "retry_after": S}
                 {"hang": SECONDS, "count": N}  (sleep, then 200: too late)
  delay          seconds to wait before every answer (a slow vendor)
  otherwise      200 {"accepted": n}

Use it in-process (VendorServer(...).start()) or as a program:
  vendor_server.py [--port P] [--token T] [--state-file F]
which serves until SIGTERM and then writes its records to F as JSON.
Standard library only.
"""
import argparse
import base64
import gzip
import json
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class VendorServer:
    def __init__(self, token=None, forbidden=(), tls=None, delay=0.0, keep_bodies=False):
        self.token = token
        self.keep_bodies = keep_bodies
        self.bodies = []  # decompressed bodies, when keep_bodies
        self.forbidden = [f.lower().encode() for f in forbidden if f]
        self.tls = tls  # (certfile, keyfile) or None
        self.delay = delay
        self.lock = threading.Lock()
        self.rules = []
        self.refuse_ids = set()
        self.refuse_marker = None  # refuse a batch with a report whose JSON holds this
        self.echo_refused = False  # put the refused report into the 400's answer
        self.requests = []  # dicts: t, path, status, ids, key, bytes
        self.deliveries = {}  # id -> [(t, status)]
        self.violations = []
        self.errors = []  # protocol errors seen (bad key, bad gzip, ...)
        self.httpd = None
        self.thread = None

    # ---- control -----------------------------------------------------------
    def script(self, *rules):
        with self.lock:
            for r in rules:
                r = dict(r)
                r.setdefault("count", 1)
                self.rules.append(r)

    def clear_script(self):
        with self.lock:
            self.rules = []

    def start(self, port=0):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # quiet
                pass

            def do_POST(self):
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def port(self):
        return self.httpd.server_address[1]

    def url(self, path="/v1/reports"):
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    # ---- records -----------------------------------------------------------
    def ok_counts(self):
        """id -> number of 2xx answers that carried it."""
        with self.lock:
            return {i: sum(1 for _, s in d if isinstance(s, int) and 200 <= s < 300)
                    for i, d in self.deliveries.items()}

    def state(self):
        with self.lock:
            return {"requests": list(self.requests), "deliveries": dict(self.deliveries),
                    "violations": list(self.violations), "errors": list(self.errors)}

    # ---- one request -------------------------------------------------------
    def _next_rule(self):
        with self.lock:
            while self.rules and self.rules[0]["count"] <= 0:
                self.rules.pop(0)
            if not self.rules:
                return None
            self.rules[0]["count"] -= 1
            return dict(self.rules[0])

    def _check_privacy(self, raw, reports):
        blobs = [raw.lower()]
        for r in reports:
            if isinstance(r, dict) and isinstance(r.get("raw_message"), str):
                try:
                    blobs.append(base64.b64decode(r["raw_message"]).lower())
                except ValueError:
                    self.errors.append("raw_message is not base64")
        for f in self.forbidden:
            for b in blobs:
                if f in b:
                    with self.lock:
                        self.violations.append(f.decode())
                    break

    def _handle(self, h):
        t = time.time()
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length)
        status, answer, headers = 200, None, {}
        ids, key, reports = [], h.headers.get("Idempotency-Key"), []
        if self.token is not None and h.headers.get("Authorization") != "Bearer " + self.token:
            status, answer = 401, {"error": "bad token"}
        else:
            try:
                raw = gzip.decompress(body) if h.headers.get("Content-Encoding") == "gzip" \
                    else body
                doc = json.loads(raw)
                reports = doc["reports"]
                ids = [r["id"] for r in reports]
                if key is None or key != doc.get("batch"):
                    with self.lock:
                        self.errors.append("idempotency key %r, body batch %r"
                                           % (key, doc.get("batch")))
                self._check_privacy(raw, reports)
                if self.keep_bodies:
                    with self.lock:
                        self.bodies.append(doc)
            except (OSError, ValueError, KeyError, TypeError) as e:
                status, answer = 400, {"error": "unreadable batch: %s" % e}
                with self.lock:
                    self.errors.append(answer["error"])
        recorded = status
        if status == 200:
            refused = [i for i in ids if i in self.refuse_ids]
            if self.refuse_marker:
                refused += [r["id"] for r in reports
                            if self.refuse_marker in json.dumps(r, ensure_ascii=False)]
            rule = None if refused else self._next_rule()
            if refused:
                status = 400
                answer = {"error": "report %s refused: field message.subject is not allowed"
                          % refused[0]}
                if self.echo_refused:
                    r = [r for r in reports if r["id"] == refused[0]][0]
                    answer["echo"] = {"reporter": r.get("reporter"),
                                      "arf": {"original_rcpt_to":
                                              (r.get("arf") or {}).get("original_rcpt_to")},
                                      "message": {"to": (r.get("message") or {}).get("to")}}
            elif rule and "hang" in rule:
                time.sleep(rule["hang"])
                recorded = "timeout"
            elif rule:
                status = rule["status"]
                answer = {"error": "scripted %d" % status}
                if rule.get("retry_after") is not None:
                    headers["Retry-After"] = str(rule["retry_after"])
            if recorded != "timeout":
                recorded = status
        if self.delay and recorded != "timeout":
            time.sleep(self.delay)
        with self.lock:
            self.requests.append({"t": t, "path": h.path, "status": recorded, "ids": ids,
                                  "key": key, "bytes": len(body)})
            for i in ids:
                self.deliveries.setdefault(i, []).append((t, recorded))
        out = json.dumps(answer if answer is not None else {"accepted": len(ids)}).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(out)))
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(out)
        except OSError:
            pass  # the client gave up (a scripted hang)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token")
    ap.add_argument("--state-file")
    ap.add_argument("--delay", type=float, default=0.0)
    a = ap.parse_args()
    s = VendorServer(token=a.token, delay=a.delay).start(a.port)
    print(s.url(), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    s.stop()
    if a.state_file:
        with open(a.state_file, "w") as fh:
            json.dump(s.state(), fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
