# SPDX-License-Identifier: Apache-2.0
"""Shared parts of linecert's CA emulators (aws_pca.py, gcp_cas.py, ejbca.py).

Debian packages only: python3 and python3-cryptography. Everything here is
test infrastructure: a throw-away PKI, an HTTPS server on 127.0.0.1 port 0
that reports its real port through a port file (curl's test servers do
the same), a plain-HTTP control server for the test (faults, pacing,
counters), fault injection and a token-bucket pacer.

Control API (plain HTTP on 127.0.0.1, port in --control-port-file):
  GET  /stats                 counters as JSON
  POST /faults                {"kind": K, "count": N, "op": OP,
                               "retry_after": S, "http_date": bool,
                               "delay_ms": MS, "hang_s": S}
       kinds: throttle, error500, error503, timeout, slow, plus the
       emulator's own (in_progress, approval, ...)
  POST /pace                  {"op": OP or "*", "rate": R, "burst": B}
                              (rate 0 turns pacing off)
  POST /reset                 counters to zero, faults and pacing cleared
  POST /clear-faults          faults still queued dropped (counters kept)
  POST /listener              {"up": false}: the HTTPS port is closed, so
                              connections are refused (a CA that is down;
                              requests in progress end with the
                              connection); {"up": true}: it listens again
                              on the same port. {"up": B} as the answer
  GET  /keys                  every certificate issued, per public key:
                              {"keys": {SPKI_SHA256_HEX: {"cn", "n",
                              "serials": [HEX...]}}} (kept across /reset:
                              it is what the CA holds, not a counter)
Counters every emulator keeps: requests, connections (TLS handshakes that
completed: connection reuse shows as few), throttled, paced_429, issued.
  POST /<emulator specific>   see each emulator

Faults that act after the CA did its work (Handler.answer_faults):
  lose_answer  issued, then no answer at all (hang_s, then close)
  hold         issued, then the answer is held back hold_s seconds; the
               counter "held" is bumped (and the file "marker" created,
               when given) the moment the work is done, so a test can
               SIGKILL the client between the CA's answer and the
               client's commit of it
"""

import argparse
import datetime
import hashlib
import email.utils
import json
import os
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MAX_BODY = 1024 * 1024
SHUTDOWN_POLL_S = 0.02


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def not_after(cert):
    """notAfter as a naive UTC datetime, on cryptography 38 (Debian 12)
    and on newer releases that deprecate the naive property."""
    t = getattr(cert, "not_valid_after_utc", None)
    return t.replace(tzinfo=None) if t else cert.not_valid_after


def not_before(cert):
    t = getattr(cert, "not_valid_before_utc", None)
    return t.replace(tzinfo=None) if t else cert.not_valid_before


# ---- PKI ----------------------------------------------------------------


def write_file(path, data, mode=0o644):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class CA:
    """A CA certificate and its key (EC P-256). parent=None: a root."""

    def __init__(self, cn, parent=None, org="linecert-emulator", days=7300):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])
        self.parent = parent
        now = utcnow()
        issuer_name = parent.name if parent else self.name
        issuer_key = parent.key if parent else self.key
        b = (x509.CertificateBuilder()
             .subject_name(self.name).issuer_name(issuer_name)
             .public_key(self.key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                            critical=True)
             .add_extension(x509.KeyUsage(
                 digital_signature=False, content_commitment=False,
                 key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=True, crl_sign=True,
                 encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                 self.key.public_key()), critical=False))
        if parent:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    parent.key.public_key()), critical=False)
        self.cert = b.sign(issuer_key, hashes.SHA256())

    def chain(self):
        """This CA and its parents up to the root, issuer first."""
        out, c = [], self
        while c:
            out.append(c.cert)
            c = c.parent
        return out

    def issue(self, public_key, subject, end, eku=None, san=None,
              start=None):
        now = utcnow()
        start = start or now - datetime.timedelta(minutes=5)
        end = min(end, not_after(self.cert))
        b = (x509.CertificateBuilder()
             .subject_name(subject).issuer_name(self.name)
             .public_key(public_key)
             .serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(end)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                            critical=True)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 self.key.public_key()), critical=False)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                 public_key), critical=False))
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san),
                                critical=False)
        return b.sign(self.key, hashes.SHA256())


def tls_server_files(directory, prefix="tls"):
    """A TLS CA and a server certificate for 127.0.0.1/localhost.
    Writes <prefix>-ca.pem, <prefix>-server.pem, <prefix>-server.key."""
    ca = CA("emulator TLS root")
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = ca.issue(key.public_key(),
                    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                  "127.0.0.1")]),
                    utcnow() + datetime.timedelta(days=2),
                    eku=[ExtendedKeyUsageOID.SERVER_AUTH],
                    san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                         x509.DNSName("localhost")])
    paths = {k: os.path.join(directory, f"{prefix}-{k}")
             for k in ("ca.pem", "server.pem", "server.key")}
    write_file(paths["ca.pem"], cert_pem(ca.cert))
    write_file(paths["server.pem"], cert_pem(cert))
    write_file(paths["server.key"], key_pem(key), 0o600)
    return paths


def load_csr(data):
    """PEM bytes -> CSR whose signature verifies, or raise ValueError."""
    csr = x509.load_pem_x509_csr(data)
    if not csr.is_signature_valid:
        raise ValueError("CSR signature does not verify")
    return csr


# ---- counters, faults, pacing ----------------------------------------------


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}

    def inc(self, name, n=1):
        with self.lock:
            self.c[name] = self.c.get(name, 0) + n

    def snapshot(self):
        with self.lock:
            return dict(self.c)

    def reset(self):
        with self.lock:
            self.c = {}


class Faults:
    """A queue of faults; each CA operation consumes the first that
    applies to it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.q = []

    def add(self, spec):
        spec = dict(spec)
        spec.setdefault("count", 1)
        with self.lock:
            self.q.append(spec)

    def take(self, op, kinds=None, cn=None):
        """A fault with a "cn" member applies only to a request about the
        certificate subject with that CN (where the emulator knows it: a
        test aims at one device)."""
        with self.lock:
            for f in self.q:
                if f.get("op") not in (None, "*", op):
                    continue
                if kinds is not None and f["kind"] not in kinds:
                    continue
                if "cn" in f and f["cn"] != cn:
                    continue
                f["count"] -= 1
                if f["count"] <= 0:
                    self.q.remove(f)
                return dict(f)
        return None

    def clear(self):
        with self.lock:
            self.q = []


class Pacer:
    """Token bucket per operation: `rate` per second, `burst` at once.
    A request finding the bucket empty is answered "throttled". What the
    CA let through is in /stats: paced_ok:OP (count) and
    paced_span_ms:OP (first to last), the rate the CA saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.b = {}

    def set(self, op, rate, burst):
        with self.lock:
            if not rate:
                self.b.pop(op, None)
            else:
                burst = max(1, int(burst or rate))
                # rate, burst, tokens, last; let through: n, first, last
                self.b[op] = [float(rate), burst, float(burst),
                              time.monotonic(), 0, 0.0, 0.0]

    def allow(self, op):
        with self.lock:
            b = self.b.get(op) or self.b.get("*")
            if not b:
                return True
            rate, burst, tokens, last = b[:4]
            now = time.monotonic()
            tokens = min(burst, tokens + (now - last) * rate)
            b[3] = now
            if tokens >= 1.0:
                b[2] = tokens - 1.0
                b[4] += 1
                if b[4] == 1:
                    b[5] = now
                b[6] = now
                return True
            b[2] = tokens
            return False

    def clear(self):
        with self.lock:
            self.b = {}

    def snapshot(self):
        with self.lock:
            out = {}
            for op, b in self.b.items():
                out["paced_ok:" + op] = b[4]
                out["paced_span_ms:" + op] = int((b[6] - b[5]) * 1000)
            return out


def parse_pace(specs, pacer):
    """--pace OP=RATE[:BURST], repeatable; OP may be '*'."""
    for s in specs or []:
        op, _, rb = s.partition("=")
        rate, _, burst = rb.partition(":")
        pacer.set(op, float(rate), int(burst) if burst else None)


def parse_fault(specs, faults):
    """--fault KIND[:COUNT[:OP]], repeatable."""
    for s in specs or []:
        parts = s.split(":")
        spec = {"kind": parts[0]}
        if len(parts) > 1 and parts[1]:
            spec["count"] = int(parts[1])
        if len(parts) > 2 and parts[2]:
            spec["op"] = parts[2]
        faults.add(spec)


def retry_after_value(fault, default_s=1):
    s = int(fault.get("retry_after", default_s))
    if fault.get("http_date"):
        return email.utils.formatdate(time.time() + s, usegmt=True)
    return str(s)


# ---- servers ---------------------------------------------------------------


class Emulator:
    """State every emulator has; subclasses add theirs."""

    name = "emulator"

    def __init__(self, args):
        self.args = args
        self.stats = Stats()
        self.faults = Faults()
        self.pacer = Pacer()
        self.verbose = args.verbose
        self.keys_lock = threading.Lock()
        self.keys = {}  # SPKI SHA-256 hex -> {"cn", "n", "serials"}
        self.listener_lock = threading.Lock()
        self.httpd = None  # the HTTPS server while it listens (serve())
        self.conns = set()  # its open connections
        self.conns_lock = threading.Lock()
        parse_pace(args.pace, self.pacer)
        parse_fault(args.fault, self.faults)

    def set_listener(self, up):
        """Close or reopen the HTTPS listener (POST /listener): a CA that
        refuses connections, then answers again on the same port."""
        with self.listener_lock:
            if up and self.httpd is None:
                self.httpd = TLSServer(self.handler, self.ctx, self,
                                       self.port)
                threading.Thread(target=self.httpd.serve_forever,
                                 daemon=True).start()
            elif not up and self.httpd is not None:
                self.httpd.shutdown()
                self.httpd.server_close()
                self.httpd = None
                # Kept-alive connections end too: nothing gets through.
                with self.conns_lock:
                    conns, self.conns = self.conns, set()
                for c in conns:
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            return self.httpd is not None

    def log(self, msg):
        if self.verbose:
            sys.stderr.write(f"{self.name}: {msg}\n")
            sys.stderr.flush()

    def control(self, path, body, headers=None):
        """Emulator-specific control endpoints: return a dict or None."""
        return None

    def record_issue(self, cert):
        """Every certificate the CA makes, per public key: how a test
        checks "exactly one certificate per (device, role) at the CA" (the
        simulator's devices use one key per role). The fingerprint is the
        SHA-256 of the DER SubjectPublicKeyInfo, as linecert's store keeps
        it."""
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        fpr = hashlib.sha256(spki).hexdigest()
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        with self.keys_lock:
            e = self.keys.setdefault(fpr, {"cn": cns[0].value if cns else "",
                                           "n": 0, "serials": []})
            e["n"] += 1
            e["serials"].append(format(cert.serial_number, "x"))

    def keys_snapshot(self):
        with self.keys_lock:
            return {k: dict(v, serials=list(v["serials"]))
                    for k, v in self.keys.items()}


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, handler, ctx, emu, port=0):
        self.ctx = ctx
        self.emu = emu
        super().__init__(("127.0.0.1", port), handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handshake runs in the connection's own thread (setup()), so
        # a client that connects and stalls cannot block accept().
        conn = self.ctx.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False)
        with self.emu.conns_lock:
            self.emu.conns.add(conn)
        return conn, addr

    def shutdown_request(self, request):
        with self.emu.conns_lock:
            self.emu.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, socket.timeout,
                            OSError)):
            self.emu.stats.inc("tls_or_connection_errors")
            self.emu.log(f"connection error: {exc}")
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Base of the emulators' HTTPS handlers."""

    protocol_version = "HTTP/1.1"
    server_version = "linecert-emulator"
    timeout = 60

    def setup(self):
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        self.emu.stats.inc("connections")
        super().setup()

    @property
    def emu(self):
        return self.server.emu

    def log_message(self, fmt, *a):
        self.emu.log(fmt % a)

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is None:
            if self.command == "GET":
                return b""
            return None
        try:
            n = int(n)
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def send_raw(self, status, body, ctype="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, obj, headers=None, ctype="application/json"):
        self.send_raw(status, json.dumps(obj).encode(), ctype, headers)

    def hang(self, fault):
        """The 'timeout' fault: read the request, never answer."""
        self.emu.stats.inc("fault_timeout")
        time.sleep(float(fault.get("hang_s", 5)))
        self.close_connection = True

    def answer_faults(self, op):
        """After the CA did the work of `op`: 'lose_answer' hangs and
        never answers, 'hold' holds the answer back (see the module
        docstring). True when the caller must not answer."""
        f = self.emu.faults.take(op, ("lose_answer", "hold"))
        if not f:
            return False
        if f["kind"] == "lose_answer":
            self.hang(f)
            return True
        marker = f.get("marker")
        if marker:
            write_file(marker, b"held\n")
        self.emu.stats.inc("held")
        time.sleep(float(f.get("hold_s", 5)))
        self.emu.stats.inc("held_answered")
        return False

    def pre_faults(self, op):
        """Faults every emulator applies before its own logic. Returns
        the fault the subclass must answer (throttle/error), or None.
        'slow' sleeps and lets the request through; 'timeout' hangs and
        returns "hung"."""
        f = self.emu.faults.take(op, ("slow", "timeout", "throttle",
                                      "error500", "error503"))
        if not f:
            if not self.emu.pacer.allow(op):
                self.emu.stats.inc("paced_429")
                return {"kind": "throttle", "paced": True,
                        "retry_after": 1}
            return None
        if f["kind"] == "slow":
            self.emu.stats.inc("fault_slow")
            time.sleep(float(f.get("delay_ms", 1000)) / 1000.0)
            return None
        if f["kind"] == "timeout":
            self.hang(f)
            return "hung"
        self.emu.stats.inc("fault_" + f["kind"])
        return f


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        emu = self.server.emu
        if self.path == "/stats":
            return self.reply(200, dict(emu.stats.snapshot(),
                                        **emu.pacer.snapshot()))
        if self.path == "/keys":
            return self.reply(200, {"keys": emu.keys_snapshot()})
        out = emu.control(self.path, None, self.headers)
        if out is None:
            return self.reply(404, {"error": "unknown"})
        return self.reply(200, out)

    def do_POST(self):
        emu = self.server.emu
        n = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(n) if n else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.reply(400, {"error": "bad json"})
        if self.path == "/faults":
            emu.faults.add(body)
            return self.reply(200, {"ok": True})
        if self.path == "/pace":
            emu.pacer.set(body.get("op", "*"), body.get("rate", 0),
                          body.get("burst"))
            return self.reply(200, {"ok": True})
        if self.path == "/clear-faults":
            emu.faults.clear()
            return self.reply(200, {"ok": True})
        if self.path == "/listener":
            return self.reply(200, {"up": emu.set_listener(
                bool(body.get("up", True)))})
        if self.path == "/reset":
            emu.stats.reset()
            emu.faults.clear()
            emu.pacer.clear()
            return self.reply(200, {"ok": True})
        out = emu.control(self.path, body, self.headers)
        if out is None:
            return self.reply(404, {"error": "unknown"})
        return self.reply(200, out)


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, emu):
        self.emu = emu
        super().__init__(("127.0.0.1", 0), ControlHandler)


def base_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dir", required=True,
                   help="directory for the PKI and key files it writes")
    p.add_argument("--port-file", required=True,
                   help="written with the HTTPS port once listening")
    p.add_argument("--control-port-file", required=True,
                   help="written with the control port once listening")
    p.add_argument("--pace", action="append",
                   help="OP=RATE[:BURST]: answer throttled above RATE/s")
    p.add_argument("--fault", action="append",
                   help="KIND[:COUNT[:OP]] injected at start")
    p.add_argument("--verbose", action="store_true")
    return p


def serve(emu, handler, ctx, before_ports=None):
    """Bind, run before_ports(server) (which may write files that need the
    port), write the port files, serve until SIGTERM/SIGINT."""
    httpd = TLSServer(handler, ctx, emu)
    ctl = ControlServer(emu)
    emu.port = httpd.server_address[1]
    emu.handler, emu.ctx, emu.httpd = handler, ctx, httpd
    if before_ports:
        before_ports(httpd)
    # serve_forever() looks at shutdown() between select() calls, so its
    # poll interval is how long a stop takes (default 0.5 s, twice: a
    # second per emulator, and the tests start one per case).
    for srv in (ctl, httpd):
        threading.Thread(target=srv.serve_forever, args=(SHUTDOWN_POLL_S,),
                         daemon=True).start()
    write_file(emu.args.control_port_file,
               f"{ctl.server_address[1]}\n".encode())
    write_file(emu.args.port_file, f"{emu.port}\n".encode())
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(0.5):
        pass
    emu.set_listener(False)
    ctl.shutdown()
    sys.stderr.write(f"{emu.name}: stats {json.dumps(emu.stats.snapshot())}\n")
    return 0


def new_token(prefix=""):
    return prefix + secrets.token_urlsafe(32)
