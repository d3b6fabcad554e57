#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A strict loopback emulator of Google Cloud Certificate Authority Service
v1 (CreateCertificate, GetCertificate) and of Google's OAuth 2.0 token
endpoint, for linecert's tests. Python 3 + python3-cryptography (Debian).

Token endpoint (POST /token, application/x-www-form-urlencoded, exactly
grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and assertion=JWT):
the JWT's RS256 signature is verified with the service account's public
key, and its claims: iss = client_email, aud = token_uri, scope holds
cloud-platform, iat not in the future, exp after now and at most an hour
after iat. The answer is an opaque access token valid --token-ttl s.

CAS: POST /v1/projects/P/locations/L/caPools/POOL/certificates
  ?requestId=UUID[&certificateId=ID], Authorization: Bearer <token it
issued, unexpired>, body = the Certificate resource (pemCsr, lifetime "Ns",
optional certificateTemplate in the same location; unknown members are
INVALID_ARGUMENT, as Google's JSON parser does). Enterprise pools need a
certificateId ([a-zA-Z0-9_-]{1,63}) and keep certificates (GET by name);
DevOps pools ignore it and keep nothing. A requestId seen within
--request-window s returns the certificate made for it; a certificateId in
use answers 409 ALREADY_EXISTS.

RevokeCertificate: POST /v1/{certificate name}:revoke, body
{"reason": RevocationReason (required, an enum name of the v1 API),
"requestId": UUID (optional)}; unknown members INVALID_ARGUMENT. Only an
Enterprise pool stores certificates: on a DevOps pool, and for a name it
never issued, the answer is 404 NOT_FOUND. 200 answers the Certificate with
revocationDetails {revocationState, revocationTime}. A requestId seen within
--request-window s answers the same again; revoking a revoked certificate
under another requestId is 400 FAILED_PRECONDITION (what CAS says then is
not documented; linecert reads revocationDetails before it revokes).
GET answers revocationDetails too once revoked. GET /revoked (control)
lists the revoked names.

Files written to --dir: tls-ca.pem, ca-root.pem, sa.json (the service
account key, token_uri pointing here), other-sa.json (same account and
key id, another key: refused by the signature check).

Control: faults throttle (429 RESOURCE_EXHAUSTED + Retry-After), error500,
error503, timeout, slow, lose_answer (done, then no answer), hold (done,
answer held back);
POST /expire-tokens; POST /forget-requests (the requestId window passed);
GET /computeMetadata/v1/instance/service-accounts/default/token with
Metadata-Flavor: Google, as the GCE metadata server (plain HTTP).
"""

import base64
import datetime
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
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa
from cryptography.hazmat.primitives.asymmetric import padding  # noqa
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CERT_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
LIFETIME_RE = re.compile(r"^([0-9]+)(\.[0-9]{1,9})?s$")
PATH_RE = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/caPools/"
                     r"([^/]+)/certificates(?:/([^/:]+)(:revoke)?)?$")
REVOCATION_REASONS = {"REVOCATION_REASON_UNSPECIFIED", "KEY_COMPROMISE",
                      "CERTIFICATE_AUTHORITY_COMPROMISE",
                      "AFFILIATION_CHANGED", "SUPERSEDED",
                      "CESSATION_OF_OPERATION", "CERTIFICATE_HOLD",
                      "PRIVILEGE_WITHDRAWN", "ATTRIBUTE_AUTHORITY_COMPROMISE"}
METADATA_PATH = ("/computeMetadata/v1/instance/service-accounts/default/"
                 "token")
BODY_MEMBERS = {"name", "pemCsr", "config", "lifetime", "certificateTemplate",
                "subjectMode", "labels"}


class GError(Exception):
    def __init__(self, status, code, msg, retry_after=None):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg
        self.retry_after = retry_after


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# Two RSA keys made once (openssl genpkey -algorithm RSA, 2048 bits),
# not at every start: an emulator starts per test case, and two RSA key
# generations were most of its start-up CPU. Parsing a private key costs
# nearly as much (its consistency check), so the service account files
# get the PEM text as it is, and the token endpoint the public key
# (gcp-sa.pub.pem). Test keys only, for loopback.
KEYS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keys")


def key_file(name):
    with open(os.path.join(KEYS_DIR, name), "rb") as f:
        return f.read()


def make_sa(path, email, token_uri, project, key_name, kid=None):
    """Writes the service account file with keys/<key_name>.pem; returns
    (the PEM text, the key id)."""
    pem = key_file(key_name + ".pem").decode()
    if "-----BEGIN PRIVATE KEY-----" not in pem:
        raise SystemExit(f"{key_name}.pem: not a PKCS#8 PEM private key")
    kid = kid or uuid.uuid4().hex
    sa = {"type": "service_account", "project_id": project,
          "private_key_id": kid,
          "private_key": pem,
          "client_email": email, "client_id": "1000000001",
          "token_uri": token_uri}
    ec_.write_file(path, json.dumps(sa, indent=2).encode(), 0o600)
    return pem, kid


class GcpCas(ec_.Emulator):
    name = "gcp_cas"

    def __init__(self, args):
        super().__init__(args)
        self.project, self.location = args.project, args.location
        self.pools = {}
        for spec in args.pool:
            n, _, tier = spec.partition(":")
            if tier not in ("enterprise", "devops"):
                raise SystemExit(f"--pool {spec}: tier enterprise|devops")
            self.pools[n] = tier
        self.root = ec_.CA("emulator CAS root")
        self.ca = ec_.CA("emulator CAS issuing", parent=self.root)
        self.lock = threading.Lock()
        self.tokens = {}          # access token -> expiry (monotonic)
        self.requests = {}        # (pool, requestId) -> (resource, time)
        self.by_id = {}           # (pool, certificateId) -> resource
        self.revoke_requests = {}  # (pool, requestId) -> (resource, time)
        self.token_ttl = args.token_ttl
        self.window = args.request_window
        self.email = f"linecert@{self.project}.iam.gserviceaccount.com"
        d = args.dir
        self.tls = ec_.tls_server_files(d)
        ec_.write_file(os.path.join(d, "ca-root.pem"),
                       ec_.cert_pem(self.root.cert))

    def write_keys(self, httpd):
        self.token_uri = f"https://127.0.0.1:{httpd.server_address[1]}/token"
        _, self.kid = make_sa(os.path.join(self.args.dir, "sa.json"),
                              self.email, self.token_uri, self.project,
                              "gcp-sa")
        self.sa_public = serialization.load_pem_public_key(
            key_file("gcp-sa.pub.pem"))
        # Same account and key id, another key: only the signature check
        # can tell.
        make_sa(os.path.join(self.args.dir, "other-sa.json"), self.email,
                self.token_uri, self.project, "gcp-sa-other", self.kid)

    def control(self, path, body, headers=None):
        if path == "/expire-tokens":
            with self.lock:
                for t in self.tokens:
                    self.tokens[t] = 0
            return {"ok": True}
        if path == METADATA_PATH:
            # The GCE metadata server, on the control port (plain HTTP).
            if headers is None or headers.get("Metadata-Flavor") != "Google":
                return None  # refused

            tok = ec_.new_token("ya29.emu-md-")
            with self.lock:
                self.tokens[tok] = time.monotonic() + self.token_ttl
            self.stats.inc("metadata_tokens")
            return {"access_token": tok, "expires_in": self.token_ttl,
                    "token_type": "Bearer"}
        if path == "/forget-requests":
            with self.lock:
                self.requests.clear()
                self.revoke_requests.clear()
            return {"ok": True}
        if path == "/revoked":
            with self.lock:
                return {"revoked": sorted(
                    r["name"] for r in self.by_id.values()
                    if "revocationDetails" in r)}
        return None

    # ---- OAuth token endpoint ------------------------------------------

    def token(self, h, body):
        def bad(desc, err="invalid_grant"):
            self.stats.inc("token_refused")
            h.send_json(400, {"error": err, "error_description": desc})

        if h.headers.get("Content-Type") != \
                "application/x-www-form-urlencoded":
            return bad("Bad Request", "invalid_request")
        try:
            form = urllib.parse.parse_qs(body.decode("ascii"),
                                         keep_blank_values=True,
                                         strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            return bad("Bad Request", "invalid_request")
        if set(form) != {"grant_type", "assertion"} or \
                any(len(v) != 1 for v in form.values()):
            return bad("Bad Request", "invalid_request")
        if form["grant_type"][0] != GRANT:
            return bad("Invalid grant_type", "unsupported_grant_type")
        parts = form["assertion"][0].split(".")
        if len(parts) != 3:
            return bad("Invalid JWT")
        try:
            hdr = json.loads(b64url_decode(parts[0]))
            cl = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            return bad("Invalid JWT")
        if not isinstance(hdr, dict) or hdr.get("alg") != "RS256":
            return bad("Invalid JWT header")
        if "kid" in hdr and hdr["kid"] != self.kid:
            return bad("Invalid JWT Signature.")
        try:
            self.sa_public.verify(sig, (parts[0] + "." + parts[1]).encode(),
                                  padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return bad("Invalid JWT Signature.")
        now = time.time()
        if not isinstance(cl, dict) or cl.get("iss") != self.email or \
                cl.get("aud") != self.token_uri:
            return bad("Invalid JWT: iss or aud")
        if SCOPE not in str(cl.get("scope", "")).split(" "):
            return bad("Invalid JWT: scope", "invalid_scope")
        iat, exp = cl.get("iat"), cl.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or \
                iat > now + 60 or exp <= now or exp - iat > 3600:
            return bad("Invalid JWT: Token must be a short-lived token (60 "
                       "minutes) and in a reasonable timeframe. Check your "
                       "iat and exp values in the JWT claim.")
        tok = ec_.new_token("ya29.emu-")
        with self.lock:
            self.tokens[tok] = time.monotonic() + self.token_ttl
        self.stats.inc("tokens_issued")
        h.send_json(200, {"access_token": tok, "expires_in": self.token_ttl,
                          "token_type": "Bearer"})

    def check_bearer(self, h):
        a = h.headers.get("Authorization", "")
        ok = False
        if a.startswith("Bearer "):
            with self.lock:
                exp = self.tokens.get(a[7:])
            ok = exp is not None and time.monotonic() < exp
        if not ok:
            self.stats.inc("unauthenticated")
            raise GError(401, "UNAUTHENTICATED",
                         "Request had invalid authentication credentials. "
                         "Expected OAuth 2 access token.")

    # ---- CAS ----------------------------------------------------------------

    def resource(self, pool, cid, cert, csr_pem, life_s, tmpl):
        name = (f"projects/{self.project}/locations/{self.location}/caPools/"
                f"{pool}/certificates/{cid}")
        return {"name": name,
                "pemCertificate": ec_.cert_pem(cert).decode(),
                "pemCertificateChain": [ec_.cert_pem(c).decode()
                                        for c in self.ca.chain()],
                "issuerCertificateAuthority":
                    f"projects/{self.project}/locations/{self.location}/"
                    f"caPools/{pool}/certificateAuthorities/emu-ca",
                "lifetime": f"{life_s}s", "pemCsr": csr_pem,
                "certificateTemplate": tmpl or "", "subjectMode": "DEFAULT",
                "createTime": ec_.utcnow().isoformat() + "Z"}

    def create(self, pool, query, body):
        allowed_q = {"certificateId", "requestId", "validateOnly",
                     "issuingCertificateAuthorityId"}
        for k, v in query.items():
            if k not in allowed_q or len(v) != 1:
                raise GError(400, "INVALID_ARGUMENT",
                             f"Invalid query parameter {k}")
        tier = self.pools[pool]
        rid = query.get("requestId", [None])[0]
        if rid is not None:
            try:
                u = uuid.UUID(rid)
            except ValueError:
                raise GError(400, "INVALID_ARGUMENT",
                             "request_id must be a valid UUID")
            if str(u) != rid or u.int == 0:
                raise GError(400, "INVALID_ARGUMENT",
                             "request_id must be a valid, non-zero UUID")
        cid = query.get("certificateId", [None])[0]
        if tier == "enterprise":
            if cid is None:
                raise GError(400, "INVALID_ARGUMENT",
                             "certificate_id is required for Enterprise "
                             "tier CA pools")
            if not CERT_ID_RE.match(cid):
                raise GError(400, "INVALID_ARGUMENT", "invalid certificate_id")
        else:
            cid = uuid.uuid4().hex[:20]
        try:
            req = json.loads(body)
        except ValueError:
            raise GError(400, "INVALID_ARGUMENT",
                         "Invalid JSON payload received.")
        if not isinstance(req, dict):
            raise GError(400, "INVALID_ARGUMENT",
                         "Invalid JSON payload received.")
        for k in req:
            if k not in BODY_MEMBERS:
                raise GError(400, "INVALID_ARGUMENT",
                             f"Invalid JSON payload received. Unknown name "
                             f"\"{k}\" at 'certificate': Cannot find field.")
        if "pemCsr" not in req or not isinstance(req["pemCsr"], str):
            raise GError(400, "INVALID_ARGUMENT",
                         "emulator: pemCsr is required")
        m = LIFETIME_RE.match(str(req.get("lifetime", "")))
        if not isinstance(req.get("lifetime"), str) or not m:
            raise GError(400, "INVALID_ARGUMENT",
                         "lifetime is required (a duration like '3600s')")
        life = int(m.group(1))
        if life < 1:
            raise GError(400, "INVALID_ARGUMENT", "lifetime must be positive")
        tmpl = req.get("certificateTemplate")
        eku = [ExtendedKeyUsageOID.CLIENT_AUTH,
               ExtendedKeyUsageOID.SERVER_AUTH]
        if tmpl is not None:
            if not isinstance(tmpl, str) or not re.match(
                    rf"^projects/[^/]+/locations/{re.escape(self.location)}/"
                    r"certificateTemplates/[^/]+$", tmpl):
                raise GError(400, "INVALID_ARGUMENT",
                             "certificate_template must be in the pool's "
                             "location")
            if "client" in tmpl:
                eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
        try:
            csr = ec_.load_csr(req["pemCsr"].encode())
        except ValueError as e:
            raise GError(400, "INVALID_ARGUMENT", f"invalid pem_csr: {e}")
        with self.lock:
            if rid is not None:
                hit = self.requests.get((pool, rid))
                if hit and time.monotonic() - hit[1] < self.window:
                    self.stats.inc("idempotent_hits")
                    return hit[0]
            if tier == "enterprise" and (pool, cid) in self.by_id:
                self.stats.inc("already_exists")
                raise GError(409, "ALREADY_EXISTS",
                             f"Resource 'projects/{self.project}/locations/"
                             f"{self.location}/caPools/{pool}/certificates/"
                             f"{cid}' already exists")
            not_after = ec_.utcnow() + datetime.timedelta(seconds=life)
            cert = self.ca.issue(csr.public_key(), csr.subject, not_after,
                                 eku=eku)
            got = int((ec_.not_after(cert) - ec_.not_before(cert))
                      .total_seconds()) - 300
            res = self.resource(pool, cid, cert, req["pemCsr"], got, tmpl)
            if rid is not None:
                self.requests[(pool, rid)] = (res, time.monotonic())
            if tier == "enterprise":
                self.by_id[(pool, cid)] = res
        self.record_issue(cert)
        self.stats.inc("issued")
        return res

    def revoke(self, pool, cid, body):
        try:
            req = json.loads(body)
        except ValueError:
            raise GError(400, "INVALID_ARGUMENT",
                         "Invalid JSON payload received.")
        if not isinstance(req, dict):
            raise GError(400, "INVALID_ARGUMENT",
                         "Invalid JSON payload received.")
        for k in req:
            if k not in ("reason", "requestId"):
                raise GError(400, "INVALID_ARGUMENT",
                             f"Invalid JSON payload received. Unknown name "
                             f"\"{k}\": Cannot find field.")
        reason = req.get("reason")
        if reason not in REVOCATION_REASONS:
            raise GError(400, "INVALID_ARGUMENT",
                         "Invalid value at 'reason' "
                         "(type.googleapis.com/google.cloud.security."
                         "privateca.v1.RevocationReason)")
        rid = req.get("requestId")
        if rid is not None:
            try:
                u = uuid.UUID(rid) if isinstance(rid, str) else None
            except ValueError:
                u = None
            if u is None or str(u) != rid or u.int == 0:
                raise GError(400, "INVALID_ARGUMENT",
                             "request_id must be a valid, non-zero UUID")
        if self.pools[pool] != "enterprise":
            raise GError(404, "NOT_FOUND",
                         "DevOps tier CA pools do not store certificates")
        with self.lock:
            if rid is not None:
                hit = self.revoke_requests.get((pool, rid))
                if hit and time.monotonic() - hit[1] < self.window:
                    self.stats.inc("revoke_idempotent_hits")
                    return hit[0]
            res = self.by_id.get((pool, cid))
            if res is None:
                raise GError(404, "NOT_FOUND", "certificate not found")
            if "revocationDetails" in res:
                self.stats.inc("revoke_already")
                raise GError(400, "FAILED_PRECONDITION",
                             "Certificate is already revoked.")
            res["revocationDetails"] = {
                "revocationState": reason,
                "revocationTime": ec_.utcnow().isoformat() + "Z"}
            if rid is not None:
                self.revoke_requests[(pool, rid)] = (res, time.monotonic())
        self.stats.inc("revoked")
        return res

    def get(self, pool, cid):
        if self.pools[pool] != "enterprise":
            raise GError(404, "NOT_FOUND",
                         "DevOps tier CA pools do not store certificates")
        with self.lock:
            res = self.by_id.get((pool, cid))
        if not res:
            raise GError(404, "NOT_FOUND", "certificate not found")
        self.stats.inc("fetched")
        return res


class H(ec_.Handler):
    def error(self, e):
        hdrs = {}
        if e.retry_after is not None:
            hdrs["Retry-After"] = e.retry_after
        self.send_json(e.status, {"error": {"code": e.status,
                                            "message": e.msg,
                                            "status": e.code}}, hdrs)

    def handle_api(self, method, body):
        emu = self.emu
        emu.stats.inc("requests")
        path, _, q = self.path.partition("?")
        m = PATH_RE.match(path)
        try:
            if not m:
                raise GError(404, "NOT_FOUND", "unknown path")
            emu.check_bearer(self)
            proj, loc, pool, cid, verb = m.groups()
            if proj != emu.project or loc != emu.location or \
                    pool not in emu.pools:
                raise GError(404, "NOT_FOUND", f"CaPool {pool} not found")
            if verb:
                op = "RevokeCertificate"
                if method != "POST":
                    raise GError(404, "NOT_FOUND", "unknown method")
            else:
                op = "CreateCertificate" if method == "POST" \
                    else "GetCertificate"
                if (method == "POST") == (cid is not None):
                    raise GError(404, "NOT_FOUND", "unknown method")
            emu.stats.inc("op:" + op)
            f = self.pre_faults(op)
            if f == "hung":
                return
            if f and f["kind"] == "throttle":
                emu.stats.inc("throttled")
                raise GError(429, "RESOURCE_EXHAUSTED",
                             "Quota exceeded for quota metric "
                             "'CreateCertificate requests'",
                             retry_after=ec_.retry_after_value(f))
            if f and f["kind"] in ("error500", "error503"):
                st = 500 if f["kind"] == "error500" else 503
                raise GError(st, "INTERNAL" if st == 500 else "UNAVAILABLE",
                             "Internal error encountered.",
                             retry_after=ec_.retry_after_value(f)
                             if "retry_after" in f else None)
            if method == "POST":
                if self.headers.get("Content-Type", "").split(";")[0] != \
                        "application/json":
                    raise GError(400, "INVALID_ARGUMENT",
                                 "Content-Type must be application/json")
                if op == "RevokeCertificate":
                    if q:
                        raise GError(400, "INVALID_ARGUMENT",
                                     "unexpected query parameters")
                    out = emu.revoke(pool, cid, body)
                else:
                    query = urllib.parse.parse_qs(q, keep_blank_values=True)
                    out = emu.create(pool, query, body)
            else:
                out = emu.get(pool, cid)
            if self.answer_faults(op):
                # Done at the CA, but the answer never arrives.
                return
            self.send_json(200, out)
        except GError as e:
            if e.status not in (401, 429) and e.status < 500:
                emu.stats.inc("rejected:" + e.code)
            self.error(e)

    def do_GET(self):
        if self.read_body() is None:
            self.close_connection = True
            return self.error(GError(400, "INVALID_ARGUMENT", "bad body"))
        self.handle_api("GET", b"")

    def do_POST(self):
        body = self.read_body()
        if body is None:
            self.close_connection = True
            return self.error(GError(411, "INVALID_ARGUMENT",
                                     "Content-Length required"))
        if self.path == "/token":
            self.emu.stats.inc("token_requests")
            f = self.pre_faults("token")
            if f == "hung":
                return
            if f:
                return self.send_json(503,
                                      {"error": "temporarily_unavailable"})
            return self.emu.token(self, body)
        self.handle_api("POST", body)


def main():
    p = ec_.base_args(__doc__.splitlines()[0])
    p.add_argument("--project", default="emu-project")
    p.add_argument("--location", default="europe-west1")
    p.add_argument("--pool", action="append",
                   default=None, help="NAME:enterprise|devops")
    p.add_argument("--token-ttl", type=int, default=3600)
    p.add_argument("--request-window", type=float, default=3600.0)
    args = p.parse_args()
    if not args.pool:
        args.pool = ["boot:enterprise", "op:devops"]
    emu = GcpCas(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(emu.tls["server.pem"], emu.tls["server.key"])
    return ec_.serve(emu, H, ctx, before_ports=emu.write_keys)


if __name__ == "__main__":
    sys.exit(main())
