#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A strict loopback emulator of AWS Private CA (acm-pca), for linecert's
tests. Python 3 + python3-cryptography (Debian).

Wire contract (shared/reference/ca_apis.md sections 2 and 3):
  POST / over HTTPS, AWS JSON 1.1: Content-Type application/x-amz-json-1.1,
  X-Amz-Target ACMPrivateCA.IssueCertificate | ACMPrivateCA.GetCertificate
  | ACMPrivateCA.RevokeCertificate,
  signed with SigV4 (service acm-pca). Every request's signature is
  recomputed here from what arrived, with the configured secret, and
  compared; the date must be within 15 minutes; a configured session
  token must be present and signed.

IssueCertificate: CertificateAuthorityArn, Csr (base64 of the PEM file),
SigningAlgorithm (ECDSA family: the CA key is EC P-256), Validity
{Value, Type}, optional TemplateArn and IdempotencyToken (1-36 chars; the
same token within --idem-window seconds returns the same ARN and issues
nothing). The certificate is ready after --issue-delay-ms; until then,
and for the next N GetCertificate calls after an "in_progress" fault,
GetCertificate answers RequestInProgressException.

RevokeCertificate: CertificateAuthorityArn, CertificateSerial, RevocationReason
(all required; the reason one of the RevocationReason enum). The serial
must be in the form AWS documents, as `openssl x509 -text` prints it:
octets of two hex digits joined by ':' ("67:07:44:..."; a leading 00 octet
allowed); anything else (plain hex, odd digits, over 128 characters) is
InvalidRequestException. A serial this CA never issued is
ResourceNotFoundException; a serial revoked before is
RequestAlreadyProcessedException (revoked serials are remembered: GET
/revoked lists them with their reasons). 200 with an empty JSON object.

Files written to --dir: tls-ca.pem (trust for the HTTPS server),
ca-root.pem (root of the issuing CA), info.json (ca_arn, region).

Control (see emu_common): faults throttle, error500, error503, timeout,
slow, lose_answer (done, then no answer), hold (done, answer held back),
in_progress (with "cn": only for that subject's certificate),
limit_exceeded, revoke_in_progress (RevokeCertificate answers
RequestInProgressException);
POST /forget-idempotency (the 5-minute window passed; with
{"fetched_only": true} only for the tokens whose certificate was asked
for by GetCertificate, i.e. whose ARN the client had stored: a client
killed during an IssueCertificate round trip keeps its window);
POST /expire-token
(the session token is now expired); GET /certs (ARNs issued).
"""

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emu_common as ec_  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402

TARGET_PREFIX = "ACMPrivateCA."
SIGNING_ALGS = {"SHA256WITHECDSA", "SHA384WITHECDSA", "SHA512WITHECDSA",
                "SHA256WITHRSA", "SHA384WITHRSA", "SHA512WITHRSA",
                "SM3WITHSM2"}
VALIDITY_TYPES = {"END_DATE", "ABSOLUTE", "DAYS", "MONTHS", "YEARS"}
TEMPLATE_RE = re.compile(
    r"^arn:aws(-[a-z-]+)?:acm-pca:::template/([A-Za-z0-9_]+)/V[0-9]+$")
REVOCATION_REASONS = {"UNSPECIFIED", "KEY_COMPROMISE",
                      "CERTIFICATE_AUTHORITY_COMPROMISE", "AFFILIATION_CHANGED",
                      "SUPERSEDED", "CESSATION_OF_OPERATION",
                      "PRIVILEGE_WITHDRAWN", "A_A_COMPROMISE"}
SERIAL_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*$")
ARN_RE = re.compile(r"^arn:aws(-[a-z-]+)?:acm-pca:[a-z0-9-]+:[0-9]{12}:"
                    r"certificate-authority/[0-9a-f-]{36}"
                    r"(/certificate/[0-9a-f]+)?$")


class AwsError(Exception):
    def __init__(self, status, code, msg, header=False, retry_after=None):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg
        self.header = header
        self.retry_after = retry_after


def uri_encode(s, keep_slash):
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def canonical_path(path):
    segs = []
    for s in path.split("/"):
        if s in ("", "."):
            continue
        if s == "..":
            if segs:
                segs.pop()
            continue
        segs.append(s)
    out = "/" + "/".join(uri_encode(urllib.parse.unquote(s), False)
                         for s in segs)
    if path.endswith("/") and segs:
        out += "/"
    return out


def canonical_query(q):
    pairs = []
    for part in q.split("&") if q else []:
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote(k), False),
                      uri_encode(urllib.parse.unquote(v), False)))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def hvalue(v):
    return " ".join(v.split())


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class AwsPca(ec_.Emulator):
    name = "aws_pca"

    def __init__(self, args):
        super().__init__(args)
        self.region = args.region
        self.akid, self.secret = args.access_key, args.secret_key
        self.session_token = args.session_token
        self.token_expired = False
        self.root = ec_.CA("emulator PCA root")
        self.ca = ec_.CA("emulator PCA issuing", parent=self.root)
        self.ca_arn = args.ca_arn or (
            f"arn:aws:acm-pca:{self.region}:123456789012:"
            f"certificate-authority/{uuid.uuid4()}")
        self.lock = threading.Lock()
        self.tokens = {}        # idempotency token -> (arn, time)
        self.certs = {}         # arn -> [cert, ready_at, in_progress_left]
        self.fetched = set()    # arns a GetCertificate asked for
        self.revoked = {}       # serial (int) -> RevocationReason
        self.idem_window = args.idem_window
        self.issue_delay = args.issue_delay_ms / 1000.0
        d = args.dir
        self.tls = ec_.tls_server_files(d)
        ec_.write_file(os.path.join(d, "ca-root.pem"),
                       ec_.cert_pem(self.root.cert))
        ec_.write_file(os.path.join(d, "info.json"), json.dumps(
            {"ca_arn": self.ca_arn, "region": self.region}).encode())

    def control(self, path, body, headers=None):
        if path == "/forget-idempotency":
            only = isinstance(body, dict) and body.get("fetched_only")
            with self.lock:
                if only:
                    self.tokens = {t: v for t, v in self.tokens.items()
                                   if v[0] not in self.fetched}
                else:
                    self.tokens.clear()
            return {"ok": True}
        if path == "/expire-token":
            self.token_expired = True
            return {"ok": True}
        if path == "/certs":
            with self.lock:
                return {"arns": list(self.certs)}
        if path == "/revoked":
            with self.lock:
                return {"revoked": {format(k, "x"): v
                                    for k, v in self.revoked.items()}}
        return None

    # ---- SigV4 verification ---------------------------------------------

    def verify(self, h, body):
        auth = h.headers.get("Authorization")
        if not auth:
            raise AwsError(403, "MissingAuthenticationTokenException",
                           "Missing Authentication Token")
        m = re.match(r"^AWS4-HMAC-SHA256 Credential=([^,]+), "
                     r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$", auth)
        if not m:
            raise AwsError(400, "IncompleteSignatureException",
                           "Authorization header is malformed")
        cred, signed, sig = m.groups()
        parts = cred.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise AwsError(400, "IncompleteSignatureException",
                           "Credential is malformed")
        akid, date8, region, service = parts[:4]
        if akid != self.akid:
            raise AwsError(403, "UnrecognizedClientException",
                           "The security token included in the request is "
                           "invalid.")
        amz_date = h.headers.get("X-Amz-Date", "")
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise AwsError(400, "IncompleteSignatureException",
                           "X-Amz-Date is missing or malformed")
        if abs((ec_.utcnow() - t).total_seconds()) > 15 * 60:
            raise AwsError(400, "InvalidSignatureException",
                           "Signature expired")
        if date8 != amz_date[:8] or region != self.region or \
                service != "acm-pca":
            raise AwsError(400, "InvalidSignatureException",
                           "Credential should be scoped to a valid region, "
                           "service and date")
        names = signed.split(";")
        if names != sorted(names) or "host" not in names or \
                "x-amz-date" not in names:
            raise AwsError(400, "InvalidSignatureException",
                           "SignedHeaders must be sorted and include host "
                           "and x-amz-date")
        tok = h.headers.get("X-Amz-Security-Token")
        if self.session_token is not None:
            if tok != self.session_token:
                raise AwsError(403, "UnrecognizedClientException",
                               "The security token included in the request "
                               "is invalid.")
            if "x-amz-security-token" not in names:
                raise AwsError(400, "InvalidSignatureException",
                               "x-amz-security-token must be signed")
            if self.token_expired:
                raise AwsError(403, "ExpiredTokenException",
                               "The security token included in the request "
                               "is expired")
        elif tok is not None:
            raise AwsError(403, "UnrecognizedClientException",
                           "The security token included in the request is "
                           "invalid.")
        lines = []
        for n in names:
            vals = h.headers.get_all(n)
            if vals is None:
                raise AwsError(400, "InvalidSignatureException",
                               f"signed header {n} is missing")
            lines.append(f"{n}:{','.join(hvalue(v) for v in vals)}\n")
        payload = hashlib.sha256(body).hexdigest()
        sent = h.headers.get("x-amz-content-sha256")
        if sent is not None and sent != payload:
            raise AwsError(400, "InvalidSignatureException",
                           "x-amz-content-sha256 does not match the body")
        path, _, query = h.path.partition("?")
        creq = "\n".join([h.command, canonical_path(path),
                          canonical_query(query), "".join(lines), signed,
                          payload])
        scope = f"{date8}/{region}/{service}/aws4_request"
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
        k = hmac256(("AWS4" + self.secret).encode(), date8)
        k = hmac256(k, region)
        k = hmac256(k, service)
        k = hmac256(k, "aws4_request")
        want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            self.stats.inc("bad_signature")
            raise AwsError(400, "InvalidSignatureException",
                           "The request signature we calculated does not "
                           "match the signature you provided.")

    # ---- operations ----------------------------------------------------

    def issue(self, req):
        allowed = {"CertificateAuthorityArn", "Csr", "SigningAlgorithm",
                   "Validity", "TemplateArn", "IdempotencyToken",
                   "ApiPassthrough", "ValidityNotBefore"}
        for k in req:
            if k not in allowed:
                raise AwsError(400, "SerializationException",
                               f"Unknown member {k}")
        for k in ("CertificateAuthorityArn", "Csr", "SigningAlgorithm",
                  "Validity"):
            if k not in req:
                raise AwsError(400, "ValidationException",
                               f"1 validation error detected: Value null at "
                               f"'{k[0].lower() + k[1:]}' failed to satisfy "
                               f"constraint: Member must not be null")
        arn = req["CertificateAuthorityArn"]
        if not isinstance(arn, str) or not ARN_RE.match(arn):
            raise AwsError(400, "InvalidArnException", "Invalid ARN")
        if arn != self.ca_arn:
            raise AwsError(400, "ResourceNotFoundException",
                           "Could not find certificate authority")
        alg = req["SigningAlgorithm"]
        if alg not in SIGNING_ALGS:
            raise AwsError(400, "ValidationException",
                           "Invalid SigningAlgorithm")
        if "ECDSA" not in alg:
            raise AwsError(400, "InvalidArgsException",
                           "The signing algorithm does not match the CA's "
                           "key algorithm")
        v = req["Validity"]
        if not isinstance(v, dict) or set(v) != {"Value", "Type"} or \
                not isinstance(v["Value"], int) or v["Type"] not in \
                VALIDITY_TYPES or v["Value"] < 1:
            raise AwsError(400, "ValidationException", "Invalid Validity")
        now = ec_.utcnow()
        unit = {"DAYS": 1, "MONTHS": 30, "YEARS": 365}.get(v["Type"])
        if unit is None:
            raise AwsError(400, "InvalidArgsException",
                           "emulator: only DAYS, MONTHS, YEARS")
        not_after = now + datetime.timedelta(days=v["Value"] * unit)
        if not_after > ec_.not_after(self.ca.cert):
            raise AwsError(400, "ValidationException",
                           "The certificate validity specified exceeds the "
                           "certificate authority validity")
        eku = [ExtendedKeyUsageOID.CLIENT_AUTH,
               ExtendedKeyUsageOID.SERVER_AUTH]
        t = req.get("TemplateArn")
        if t is not None:
            m = TEMPLATE_RE.match(t) if isinstance(t, str) else None
            if not m:
                raise AwsError(400, "InvalidArnException",
                               "Invalid TemplateArn")
            if m.group(2).startswith("EndEntityClientAuth"):
                eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
            elif m.group(2).startswith("EndEntityServerAuth"):
                eku = [ExtendedKeyUsageOID.SERVER_AUTH]
        tok = req.get("IdempotencyToken")
        if tok is not None:
            if not isinstance(tok, str) or not 1 <= len(tok) <= 36 or \
                    not all(c in "\t\n\r" or 0x20 <= ord(c) <= 0xff
                            for c in tok):
                raise AwsError(400, "ValidationException",
                               "Invalid IdempotencyToken")
        try:
            pem = base64.b64decode(req["Csr"], validate=True)
        except (binascii.Error, TypeError):
            raise AwsError(400, "SerializationException",
                           "Csr is not valid base64")
        if not pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----"):
            raise AwsError(400, "MalformedCSRException",
                           "The certificate signing request is invalid "
                           "(expected PEM)")
        try:
            csr = ec_.load_csr(pem)
        except ValueError as e:
            raise AwsError(400, "MalformedCSRException",
                           f"The certificate signing request is invalid: {e}")
        if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey) or \
                len(csr.subject) == 0:
            raise AwsError(400, "MalformedCSRException",
                           "The certificate signing request is invalid")
        with self.lock:
            if tok is not None:
                hit = self.tokens.get(tok)
                if hit and time.monotonic() - hit[1] < self.idem_window:
                    self.stats.inc("idempotent_hits")
                    return {"CertificateArn": hit[0]}
            cert = self.ca.issue(csr.public_key(), csr.subject, not_after,
                                 eku=eku)
            carn = f"{self.ca_arn}/certificate/{cert.serial_number:032x}"
            self.certs[carn] = [cert, time.monotonic() + self.issue_delay, 0]
            if tok is not None:
                self.tokens[tok] = (carn, time.monotonic())
        self.record_issue(cert)
        self.stats.inc("issued")
        return {"CertificateArn": carn}

    def get(self, req):
        for k in req:
            if k not in ("CertificateAuthorityArn", "CertificateArn"):
                raise AwsError(400, "SerializationException",
                               f"Unknown member {k}")
        for k in ("CertificateAuthorityArn", "CertificateArn"):
            if not isinstance(req.get(k), str):
                raise AwsError(400, "ValidationException", f"{k} missing")
            if not ARN_RE.match(req[k]):
                raise AwsError(400, "InvalidArnException", "Invalid ARN")
        if req["CertificateAuthorityArn"] != self.ca_arn:
            raise AwsError(400, "ResourceNotFoundException",
                           "Could not find certificate authority")
        with self.lock:
            ent = self.certs.get(req["CertificateArn"])
            self.fetched.add(req["CertificateArn"])
        if ent is None:
            raise AwsError(400, "ResourceNotFoundException",
                           "Could not find certificate")
        cns = ent[0].subject.get_attributes_for_oid(
            x509.oid.NameOID.COMMON_NAME)
        f = self.faults.take("GetCertificate", ("in_progress",),
                             cns[0].value if cns else None)
        with self.lock:
            if f:
                self.stats.inc("fault_in_progress")
                raise AwsError(400, "RequestInProgressException",
                               "The request to issue a certificate is still "
                               "in progress")
            if time.monotonic() < ent[1]:
                raise AwsError(400, "RequestInProgressException",
                               "The request to issue a certificate is still "
                               "in progress")
            cert = ent[0]
        self.stats.inc("delivered")
        chain = b"".join(ec_.cert_pem(c) for c in self.ca.chain())
        return {"Certificate": ec_.cert_pem(cert).decode(),
                "CertificateChain": chain.decode()}


    def revoke(self, req):
        for k in req:
            if k not in ("CertificateAuthorityArn", "CertificateSerial",
                         "RevocationReason"):
                raise AwsError(400, "SerializationException",
                               f"Unknown member {k}")
        for k in ("CertificateAuthorityArn", "CertificateSerial",
                  "RevocationReason"):
            if not isinstance(req.get(k), str):
                raise AwsError(400, "ValidationException",
                               f"1 validation error detected: Value null at "
                               f"'{k[0].lower() + k[1:]}' failed to satisfy "
                               f"constraint: Member must not be null")
        arn = req["CertificateAuthorityArn"]
        if not ARN_RE.match(arn) or "/certificate/" in arn:
            raise AwsError(400, "InvalidArnException", "Invalid ARN")
        if arn != self.ca_arn:
            raise AwsError(400, "ResourceNotFoundException",
                           "Could not find certificate authority")
        if req["RevocationReason"] not in REVOCATION_REASONS:
            raise AwsError(400, "ValidationException",
                           "1 validation error detected: Value at "
                           "'revocationReason' failed to satisfy constraint: "
                           "Member must satisfy enum value set")
        ser = req["CertificateSerial"]
        if len(ser) > 128 or not SERIAL_RE.match(ser):
            self.stats.inc("bad_serial_format")
            raise AwsError(400, "InvalidRequestException",
                           "The certificate serial must be hexadecimal "
                           "octets separated by colons")
        num = int(ser.replace(":", ""), 16)
        with self.lock:
            known = any(e[0].serial_number == num
                        for e in self.certs.values())
            if not known:
                raise AwsError(400, "ResourceNotFoundException",
                               "Could not find certificate")
            if num in self.revoked:
                raise AwsError(400, "RequestAlreadyProcessedException",
                               "Your request has already been completed.")
            self.revoked[num] = req["RevocationReason"]
        self.stats.inc("revoked")
        return {}


class H(ec_.Handler):
    def error(self, e):
        if e.header:
            hdrs = {"x-amzn-ErrorType":
                    f"{e.code}:http://internal.amazon.com/coral/"
                    f"com.amazonaws.acmpca/"}
            body = {"message": e.msg}
        else:
            hdrs = {}
            body = {"__type": e.code, "message": e.msg}
        hdrs["x-amzn-RequestId"] = str(uuid.uuid4())
        if e.retry_after is not None:
            hdrs["Retry-After"] = e.retry_after
        self.send_json(e.status, body, hdrs, "application/x-amz-json-1.1")

    def do_GET(self):
        self.read_body()
        self.error(AwsError(404, "UnknownOperationException",
                            "GET is not an operation"))

    def do_POST(self):
        emu = self.emu
        emu.stats.inc("requests")
        body = self.read_body()
        if body is None:
            self.close_connection = True
            return self.error(AwsError(400, "SerializationException",
                                       "Content-Length required"))
        try:
            emu.verify(self, body)
            if self.path != "/":
                raise AwsError(404, "UnknownOperationException",
                               "Unknown path")
            if self.headers.get("Content-Type") != \
                    "application/x-amz-json-1.1":
                raise AwsError(400, "SerializationException",
                               "Content-Type must be "
                               "application/x-amz-json-1.1")
            target = self.headers.get("X-Amz-Target", "")
            op = target[len(TARGET_PREFIX):] \
                if target.startswith(TARGET_PREFIX) else None
            if op not in ("IssueCertificate", "GetCertificate",
                          "RevokeCertificate"):
                raise AwsError(400, "UnknownOperationException",
                               f"Unknown operation {target}")
            emu.stats.inc("op:" + op)
            f = self.pre_faults(op)
            if f == "hung":
                return
            if f and f["kind"] == "throttle":
                emu.stats.inc("throttled")
                raise AwsError(400, "ThrottlingException", "Rate exceeded",
                               header=True,
                               retry_after=None if f.get("paced") or
                               "retry_after" not in f
                               else ec_.retry_after_value(f))
            if f and f["kind"] in ("error500", "error503"):
                raise AwsError(500 if f["kind"] == "error500" else 503,
                               "InternalFailure" if f["kind"] == "error500"
                               else "ServiceUnavailable",
                               "The request processing has failed",
                               retry_after=ec_.retry_after_value(f)
                               if "retry_after" in f else None)
            try:
                req = json.loads(body)
            except ValueError:
                raise AwsError(400, "SerializationException",
                               "Request body is not valid JSON")
            if not isinstance(req, dict):
                raise AwsError(400, "SerializationException",
                               "Request body must be a JSON object")
            lim = emu.faults.take(op, ("limit_exceeded",))
            if lim:
                emu.stats.inc("fault_limit_exceeded")
                raise AwsError(400, "LimitExceededException",
                               "The certificate authority has reached its "
                               "limit of certificates")
            if op == "RevokeCertificate" and \
                    emu.faults.take(op, ("revoke_in_progress",)):
                emu.stats.inc("fault_revoke_in_progress")
                raise AwsError(400, "RequestInProgressException",
                               "Your request is already in progress.")
            if op == "IssueCertificate":
                out = emu.issue(req)
            elif op == "GetCertificate":
                out = emu.get(req)
            else:
                out = emu.revoke(req)
            if self.answer_faults(op):
                # Done at the CA, but the answer never arrives.
                return
            self.send_json(200, out, {"x-amzn-RequestId": str(uuid.uuid4())},
                           "application/x-amz-json-1.1")
        except AwsError as e:
            if e.status < 500 and e.code != "ThrottlingException":
                emu.stats.inc("rejected:" + e.code)
            self.error(e)


def main():
    p = ec_.base_args(__doc__.splitlines()[0])
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--access-key", default="AKIDEMULATOR")
    p.add_argument("--secret-key", default="emulator/secret/key")
    p.add_argument("--session-token", default=None)
    p.add_argument("--ca-arn", default=None)
    p.add_argument("--idem-window", type=float, default=300.0)
    p.add_argument("--issue-delay-ms", type=float, default=0.0)
    args = p.parse_args()
    emu = AwsPca(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(emu.tls["server.pem"], emu.tls["server.key"])
    return ec_.serve(emu, H, ctx)


if __name__ == "__main__":
    sys.exit(main())
