#!/usr/bin/python3
"""raw_http - an HTTP(S) server on loopback that answers with exact bytes, for the
ugly answers real servers give: no body, a body that lies about its length, a body
that never ends, a reset in the middle, a redirect, silence, bytes that are not HTTP.

Each request is read whole (request line, headers, Content-Length body) and recorded
in `requests` as (path, bytes of body); the answer is chosen by the request path's last
component from `cases`, a dict NAME -> callable(sock). Every answer closes the
connection afterwards, so one case cannot leave bytes for the next request.

The helpers below build the callables:
  answer(status, body=b"", headers=(), length=None)  a whole answer; length overrides
                                                     Content-Length (None: len(body),
                                                     "omit": no Content-Length at all)
  drip(status, total, every)                         headers, then one byte per `every` s
  reset_after(status, length, sent)                  `sent` bytes of a `length` body, then RST
  silence()                                          read the request, answer nothing
  close_now()                                        read the request, close at once
  raw(data)                                          any bytes at all

Standard library only; tls=(certfile, keyfile) serves HTTPS with that certificate.
"""
import socket
import socketserver
import ssl
import struct
import threading
import time

REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
           302: "Found", 307: "Temporary Redirect", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
           413: "Content Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable"}

CHUNK = 1 << 20


def head(status, headers, length):
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Whatever"))]
    lines += ["%s: %s" % h for h in headers]
    if length is not None:
        lines.append("Content-Length: %d" % length)
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(status, body=b"", headers=(), length=None):
    def send(sock):
        n = len(body) if length is None else None if length == "omit" else length
        sock.sendall(head(status, headers, n))
        view = memoryview(body)
        for i in range(0, len(body), CHUNK):
            sock.sendall(view[i:i + CHUNK])
    return send


def big(status, size):
    """A body of @size bytes, sent without holding it all in memory twice."""
    def send(sock):
        sock.sendall(head(status, (("Content-Type", "text/plain"),), size))
        block = b"x" * CHUNK
        left = size
        while left > 0:
            n = min(left, CHUNK)
            sock.sendall(block[:n])
            left -= n
    return send


def drip(status, total, every):
    def send(sock):
        sock.sendall(head(status, (("Content-Type", "application/json"),), total))
        for _ in range(total):
            sock.sendall(b" ")
            time.sleep(every)
    return send


def reset_after(status, length, sent):
    def send(sock):
        sock.sendall(head(status, (("Content-Type", "application/json"),), length))
        sock.sendall(b"{" * sent)
        # SO_LINGER 0: close() sends a RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return send


def silence(seconds=3600):
    def send(sock):
        time.sleep(seconds)
    return send


def close_now():
    def send(sock):
        pass
    return send


def raw(data):
    def send(sock):
        sock.sendall(data)
    return send


class RawServer:
    def __init__(self, cases=None, tls=None):
        self.cases = dict(cases or {})
        self.tls = tls
        self.lock = threading.Lock()
        self.requests = []  # (path, body bytes)
        self.server = None

    def start(self):
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sock = self.request
                try:
                    path, body = read_request(sock)
                except (OSError, ValueError, ssl.SSLError):
                    return
                with outer.lock:
                    outer.requests.append((path, body))
                name = path.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
                case = outer.cases.get(name, answer(404, b'{"error":"no such case"}'))
                try:
                    case(sock)
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self):
                sock, addr = super().get_request()
                if outer.tls is not None:
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(*outer.tls)
                    sock.settimeout(10)
                    try:
                        sock = ctx.wrap_socket(sock, server_side=True)
                    except (OSError, ssl.SSLError):
                        sock.close()
                        raise OSError("TLS handshake refused")
                return sock, addr

            def handle_error(self, request, client_address):
                pass  # clients that hang up are the point of these tests

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def port(self):
        return self.server.server_address[1]

    def url(self, name=""):
        return "%s://127.0.0.1:%d/%s" % ("https" if self.tls else "http", self.port, name)

    def count(self, name=None):
        with self.lock:
            return sum(1 for p, _ in self.requests if name is None or p.endswith("/" + name))

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def read_request(sock):
    """The request's path and body; ValueError when it is not HTTP."""
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise ValueError("closed before the headers ended")
        data += more
        if len(data) > 1 << 20:
            raise ValueError("headers too long")
    headers, body = data.split(b"\r\n\r\n", 1)
    lines = headers.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 3:
        raise ValueError("not a request line: %r" % lines[0])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(body) < length:
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return parts[1], body
