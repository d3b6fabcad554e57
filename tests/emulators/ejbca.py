#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A strict loopback emulator of EJBCA's REST Certificate Management API
(v1), for linecert's tests. Python 3 + python3-cryptography (Debian).

TLS demands a client certificate signed by the emulator's admin CA
(admin-ca.pem); the certificate's CN must be the configured administrator
(--admin-cn), else 403 as EJBCA's role check answers. JSON members are
snake_case and unknown ones ignored (Jackson's mapper in EJBCA).

  GET  /ejbca/ejbca-rest-api/v1/certificate/status
  POST /ejbca/ejbca-rest-api/v1/certificate/pkcs10enroll
       certificate_request (PEM or bare base64), certificate_profile_name,
       end_entity_profile_name, certificate_authority_name, username,
       password, include_chain, response_format ("DER"; explicit null is
       400). Creates or edits the end entity and issues a NEW certificate
       every time (EJBCA has no idempotency key): 201 with certificate
       (base64 DER), serial_number, response_format, certificate_chain.
       With an "approval" fault, or an end entity profile listed in
       --approval-profile: 202 {status_code, info_message, request_id, link}.
  POST /ejbca/ejbca-rest-api/v1/certificate/{id}/finalize
       {response_format, password}: 202 while waiting, 400 when rejected or
       already finalized, 201 with the certificate once approved.
  POST /ejbca/ejbca-rest-api/v1/certificate/search
       {max_number_of_results, criteria: [{property, value, operation}]}:
       QUERY (username, subject DN or serial; EQUAL or LIKE), CA, STATUS,
       END_ENTITY_PROFILE, CERTIFICATE_PROFILE. Certificates in the answer
       are base64 twice, as EJBCA's SearchCertificatesRestResponse does.
  GET  /ejbca/ejbca-rest-api/v1/ca/{subject_dn}/certificate/download
       PEM chain of the CA.

  PUT  /ejbca/ejbca-rest-api/v1/certificate/{issuer_dn}/{serial}/revoke
       ?reason=R[&date=ISO8601] (CertificateRestResource.revokeCertificate):
       issuer_dn URL-encoded, the issuing CA's subject DN; serial hex, with
       or without 0x; R one of EJBCA's RevocationReasons CLI values
       (UNSPECIFIED, KEY_COMPROMISE, CA_COMPROMISE, AFFILIATION_CHANGED,
       SUPERSEDED, CESSATION_OF_OPERATION, CERTIFICATE_HOLD,
       PRIVILEGES_WITHDRAWN, AA_COMPROMISE), else 400 "Invalid revocation
       reason."; a bad serial 400; unknown CA or certificate 404; a
       certificate revoked already 409; a body, if any, is ignored but
       Content-Length is required. 200 RevokeStatusRestResponse
       {issuer_dn, serial_number, revocation_reason, revocation_date,
       message, revoked}. Search with STATUS CERT_REVOKED finds it then.

Errors: {"error_code": N, "error_message": "..."}.
Files written to --dir: tls-ca.pem, ca-root.pem, admin-ca.pem, admin.pem,
admin.key, rogue.pem/rogue.key (signed by another CA), stranger.pem/.key
(the admin CA, but not an administrator).
Control: faults throttle (429), error500, error503 (with "message": that
error_message instead of EJBCA's), timeout, slow,
lose_answer (done, then no answer), hold (done, answer held back), approval;
POST /approve {"reject": bool} decides every waiting approval.
"""

import base64
import binascii
import datetime
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emu_common as ec_  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

BASE = "/ejbca/ejbca-rest-api"
REVOKE_REASONS = {"UNSPECIFIED", "KEY_COMPROMISE", "CA_COMPROMISE",
                  "AFFILIATION_CHANGED", "SUPERSEDED",
                  "CESSATION_OF_OPERATION", "CERTIFICATE_HOLD",
                  "PRIVILEGES_WITHDRAWN", "AA_COMPROMISE"}


class EjError(Exception):
    def __init__(self, status, msg, retry_after=None):
        super().__init__(msg)
        self.status, self.msg, self.retry_after = status, msg, retry_after


def client_cert(ca, directory, name, cn):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(key.public_key(),
                    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]),
                    ec_.utcnow() + datetime.timedelta(days=2),
                    eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    ec_.write_file(os.path.join(directory, name + ".pem"), ec_.cert_pem(cert))
    ec_.write_file(os.path.join(directory, name + ".key"), ec_.key_pem(key),
                   0o600)


class Ejbca(ec_.Emulator):
    name = "ejbca"

    def __init__(self, args):
        super().__init__(args)
        d = args.dir
        self.root = ec_.CA("emulator EJBCA root")
        self.cas = {n: ec_.CA(n, parent=self.root)
                    for n in args.ca.split(",")}
        self.cps = set(args.certificate_profile.split(","))
        self.eeps = set(args.end_entity_profile.split(","))
        self.approval_eeps = set(args.approval_profile or [])
        self.admin_cn = args.admin_cn
        self.lock = threading.Lock()
        self.users = {}      # username -> dict(password, status, ...)
        self.certs = []      # dicts: cert, username, ca, cp, eep, status
        self.approvals = {}  # id -> dict(state, username, ...)
        self.next_approval = 1001
        self.tls = ec_.tls_server_files(d)
        admin_ca = ec_.CA("emulator EJBCA admin CA")
        ec_.write_file(os.path.join(d, "admin-ca.pem"),
                       ec_.cert_pem(admin_ca.cert))
        client_cert(admin_ca, d, "admin", self.admin_cn)
        client_cert(admin_ca, d, "stranger", "NotAnAdmin")
        client_cert(ec_.CA("some other CA"), d, "rogue", self.admin_cn)
        ec_.write_file(os.path.join(d, "ca-root.pem"),
                       ec_.cert_pem(self.root.cert))
        self.admin_ca_path = os.path.join(d, "admin-ca.pem")

    def control(self, path, body, headers=None):
        if path == "/approve":
            with self.lock:
                n = 0
                for a in self.approvals.values():
                    if a["state"] == "WAITING":
                        a["state"] = "REJECTED" if body.get("reject") \
                            else "APPROVED"
                        n += 1
            return {"decided": n}
        return None

    # ---- helpers --------------------------------------------------------

    def issue(self, csr, ca_name, cp, eep, username):
        ca = self.cas[ca_name]
        days = 5475 if "boot" in cp.lower() else 365
        eku = None if "boot" in cp.lower() else \
            [ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = ca.issue(csr.public_key(), csr.subject,
                        ec_.utcnow() + datetime.timedelta(days=days), eku=eku)
        with self.lock:
            self.certs.append({"cert": cert, "username": username,
                               "ca": ca_name, "cp": cp, "eep": eep,
                               "status": "CERT_ACTIVE"})
            self.users[username]["status"] = "GENERATED"
        self.record_issue(cert)
        self.stats.inc("issued")
        return cert

    def cert_response(self, cert, ca_name, include_chain):
        der = cert.public_bytes(serialization.Encoding.DER)
        out = {"certificate": base64.b64encode(der).decode(),
               "serial_number": format(cert.serial_number, "X"),
               "response_format": "DER"}
        if include_chain:
            out["certificate_chain"] = [
                base64.b64encode(c.public_bytes(
                    serialization.Encoding.DER)).decode()
                for c in self.cas[ca_name].chain()]
        return out

    # ---- operations -------------------------------------------------------

    def enroll(self, req, approval_fault):
        for k in ("certificate_request", "certificate_profile_name",
                  "end_entity_profile_name", "certificate_authority_name",
                  "username", "password"):
            if not isinstance(req.get(k), str) or not req[k]:
                raise EjError(400, f"Invalid input. {k} missing")
        if "response_format" in req and req["response_format"] is None:
            raise EjError(400, "Invalid input. Incorrect response format")
        fmt = str(req.get("response_format", "DER")).upper()
        if fmt not in ("DER", "PKCS7"):
            raise EjError(400, "Invalid input. Response format can only be "
                               "DER or PKCS7")
        if fmt == "PKCS7":
            raise EjError(400, "emulator: PKCS7 responses not implemented")
        ca_name = req["certificate_authority_name"]
        if ca_name not in self.cas:
            raise EjError(400, f"CA with name {ca_name} doesn't exist.")
        if req["certificate_profile_name"] not in self.cps:
            raise EjError(400, "Certificate profile "
                               f"{req['certificate_profile_name']} does not "
                               "exist.")
        if req["end_entity_profile_name"] not in self.eeps:
            raise EjError(400, "End entity profile "
                               f"{req['end_entity_profile_name']} does not "
                               "exist.")
        pem = req["certificate_request"].encode()
        if b"-----BEGIN" not in pem:
            pem = (b"-----BEGIN CERTIFICATE REQUEST-----\n" + pem +
                   b"\n-----END CERTIFICATE REQUEST-----\n")
        try:
            csr = ec_.load_csr(pem)
        except ValueError as e:
            raise EjError(400, f"Invalid CSR: {e}")
        user = req["username"]
        with self.lock:
            self.users[user] = {"password": req["password"], "status": "NEW",
                                "eep": req["end_entity_profile_name"]}
        if approval_fault or req["end_entity_profile_name"] in \
                self.approval_eeps:
            with self.lock:
                aid = self.next_approval
                self.next_approval += 1
                self.approvals[aid] = {
                    "state": "WAITING", "username": user, "csr": csr,
                    "ca": ca_name, "cp": req["certificate_profile_name"],
                    "eep": req["end_entity_profile_name"],
                    "include_chain": bool(req.get("include_chain"))}
            self.stats.inc("approvals_created")
            return 202, {"status_code": 202,
                         "info_message": f"Request with ID {aid} is waiting "
                                         "for approval",
                         "request_id": aid,
                         "link": f"https://127.0.0.1:{self.port}{BASE}/v1/"
                                 f"certificate/{aid}/finalize"}
        cert = self.issue(csr, ca_name, req["certificate_profile_name"],
                          req["end_entity_profile_name"], user)
        return 201, self.cert_response(cert, ca_name,
                                       bool(req.get("include_chain")))

    def finalize(self, aid, req):
        with self.lock:
            a = self.approvals.get(aid)
        if a is None:
            raise EjError(400, f"Could not find request with Id '{aid}'")
        if req.get("response_format") not in ("DER", "PEM", "P12", "JKS",
                                              "BCFKS", "PKCS7"):
            raise EjError(400, "Invalid parameter: response_format")
        if a["state"] == "WAITING":
            return 202, {"status_code": 202,
                         "info_message": f"Request with Id '{aid}' is still "
                                         "waiting for approval",
                         "request_id": aid,
                         "link": f"https://127.0.0.1:{self.port}{BASE}/"
                                 f"{aid}/finalize"}
        if a["state"] == "REJECTED":
            raise EjError(400, f"Request with Id '{aid}' has been rejected")
        with self.lock:
            u = self.users.get(a["username"])
        if u is None:
            raise EjError(404, f"The end entity '{a['username']}' does not "
                               "exist")
        if u["status"] == "GENERATED":
            raise EjError(400, f"Enrollment with Id '{aid}' has already been "
                               "finalized")
        if req.get("password") != u["password"]:
            raise EjError(403, "Wrong username or password")
        if req["response_format"] != "DER":
            raise EjError(400, "emulator: only DER")
        cert = self.issue(a["csr"], a["ca"], a["cp"], a["eep"], a["username"])
        return 201, self.cert_response(cert, a["ca"], a["include_chain"])

    def search(self, req):
        mx = req.get("max_number_of_results")
        crit = req.get("criteria")
        if not isinstance(mx, int) or mx < 1 or not isinstance(crit, list) \
                or not crit:
            raise EjError(400, "Malformed request.")
        query, cas, statuses, cps, eeps = None, [], [], [], []
        for c in crit:
            if not isinstance(c, dict):
                raise EjError(400, "Malformed request.")
            prop = str(c.get("property", "")).upper()
            val, op = c.get("value"), str(c.get("operation", "")).upper()
            if not isinstance(val, str):
                raise EjError(400, "Malformed request.")
            if prop == "QUERY":
                if op not in ("EQUAL", "LIKE") or query is not None:
                    raise EjError(400, "Malformed request.")
                query = (val, op)
            elif prop == "CA":
                if val not in self.cas:
                    raise EjError(400, f"Invalid search criteria content, "
                                       f"unknown CA name '{val}'.")
                cas.append(val)
            elif prop == "STATUS":
                if val not in ("CERT_ACTIVE", "CERT_REVOKED"):
                    raise EjError(400, "Malformed request.")
                statuses.append(val)
            elif prop == "CERTIFICATE_PROFILE":
                cps.append(val)
            elif prop == "END_ENTITY_PROFILE":
                eeps.append(val)
            else:
                raise EjError(400, "Malformed request.")
        out = []
        with self.lock:
            certs = list(self.certs)
        for e in certs:
            if cas and e["ca"] not in cas:
                continue
            if statuses and e["status"] not in statuses:
                continue
            if cps and e["cp"] not in cps:
                continue
            if eeps and e["eep"] not in eeps:
                continue
            if query:
                v, op = query
                fields = [e["username"], e["cert"].subject.rfc4514_string(),
                          format(e["cert"].serial_number, "x")]
                if op == "EQUAL":
                    hit = any(f.lower() == v.lower() for f in fields[2:]) or \
                        v in fields[:2]
                else:
                    hit = any(v in f for f in fields)
                if not hit:
                    continue
            out.append(e)
        more = len(out) > mx
        res = []
        for e in out[:mx]:
            der = e["cert"].public_bytes(serialization.Encoding.DER)
            res.append({
                "certificate": base64.b64encode(
                    base64.b64encode(der)).decode(),
                "serial_number": format(e["cert"].serial_number, "X"),
                "response_format": "DER",
                "certificate_profile": e["cp"],
                "end_entity_profile": e["eep"]})
        self.stats.inc("searches")
        return 200, {"certificates": res, "more_results": more}

    def revoke(self, dn, serial, query):
        reason = query.get("reason", [None])[0]
        if reason not in REVOKE_REASONS:
            raise EjError(400, "Invalid revocation reason.")
        s = serial[2:] if serial.lower().startswith("0x") else serial
        try:
            num = int(s, 16)
        except ValueError:
            num = -1
        if not s or num < 0 or not all(c in "0123456789abcdefABCDEF"
                                       for c in s):
            raise EjError(400, "Invalid serial number format. Should be HEX "
                               "encoded (optionally with '0x' prefix) e.g. "
                               "'0x10782a83eef170d4'")
        ca_name = None
        for n, ca in self.cas.items():
            if ca.cert.subject.rfc4514_string() == dn:
                ca_name = n
        if ca_name is None:
            raise EjError(404, f"CA '{dn}' does not exist.")
        with self.lock:
            hit = [e for e in self.certs if e["ca"] == ca_name and
                   e["cert"].serial_number == num]
            if not hit:
                raise EjError(404, "Certificate with serial number "
                                   f"'{serial}' and issuer DN '{dn}' was not "
                                   "found")
            e = hit[0]
            if e["status"] == "CERT_REVOKED":
                self.stats.inc("revoke_already")
                raise EjError(409, "Certificate is already revoked")
            e["status"] = "CERT_REVOKED"
            e["revocation_reason"] = reason
            when = ec_.utcnow().isoformat() + "Z"
        self.stats.inc("revoked")
        return 200, {"issuer_dn": dn, "serial_number": serial,
                     "revocation_reason": reason, "revocation_date": when,
                     "message": "Successfully revoked", "revoked": True}

    def download(self, dn):
        for ca in self.cas.values():
            if ca.cert.subject.rfc4514_string() == dn:
                return b"".join(ec_.cert_pem(c) for c in ca.chain())
        raise EjError(404, f"CA '{dn}' does not exist.")


class H(ec_.Handler):
    def error(self, e):
        hdrs = {}
        if e.retry_after is not None:
            hdrs["Retry-After"] = e.retry_after
        self.send_json(e.status, {"error_code": e.status,
                                  "error_message": e.msg}, hdrs)

    def authorize(self):
        # The TLS layer already demanded a certificate from the admin CA;
        # EJBCA then maps it to a role.
        cert = self.request.getpeercert()
        cn = None
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        if cn != self.emu.admin_cn:
            self.emu.stats.inc("forbidden")
            raise EjError(403, "Not authorized to resource /"
                               "administrator (no matching role)")

    def route(self, method, body):
        emu = self.emu
        emu.stats.inc("requests")
        path = self.path.partition("?")[0]
        try:
            self.authorize()
            if not path.startswith(BASE + "/"):
                raise EjError(404, "Not found")
            rel = path[len(BASE):]
            if method == "GET" and rel == "/v1/certificate/status":
                return self.send_json(200, {"status": "OK", "version": "1.0",
                                            "revision": "EJBCA emulator"})
            if method == "GET" and rel.startswith("/v1/ca/") and \
                    rel.endswith("/certificate/download"):
                dn = urllib.parse.unquote(rel[len("/v1/ca/"):
                                              -len("/certificate/download")])
                emu.stats.inc("op:download")
                return self.send_raw(200, emu.download(dn),
                                     "application/octet-stream")
            if method == "PUT":
                return self.route_revoke(rel)
            if method != "POST":
                raise EjError(404, "Not found")
            ops = {"/v1/certificate/pkcs10enroll": "enroll",
                   "/v1/certificate/search": "search"}
            op = ops.get(rel)
            aid = None
            if op is None:
                parts = rel.split("/")
                if len(parts) == 5 and parts[1:3] == ["v1", "certificate"] \
                        and parts[4] == "finalize" and parts[3].isdigit():
                    op, aid = "finalize", int(parts[3])
                else:
                    raise EjError(404, "Not found")
            emu.stats.inc("op:" + op)
            f = self.pre_faults(op)
            if f == "hung":
                return
            if f and f["kind"] == "throttle":
                emu.stats.inc("throttled")
                raise EjError(429, "Too many requests",
                              retry_after=ec_.retry_after_value(f))
            if f and f["kind"] in ("error500", "error503"):
                st = 500 if f["kind"] == "error500" else 503
                # "message": the error text a test wants the CA to say
                # (tests/integration/test_logs.c: hostile text).
                raise EjError(st, f.get("message") or
                              ("General failure." if st == 500
                               else "CA is offline"),
                              retry_after=ec_.retry_after_value(f)
                              if "retry_after" in f else None)
            if self.headers.get("Content-Type", "").split(";")[0] != \
                    "application/json":
                raise EjError(415, "Unsupported Media Type")
            try:
                req = json.loads(body)
            except ValueError:
                raise EjError(400, "Malformed JSON")
            if not isinstance(req, dict):
                raise EjError(400, "Malformed JSON")
            if op == "enroll":
                appr = emu.faults.take("enroll", ("approval",))
                st, out = emu.enroll(req, appr is not None)
            elif op == "finalize":
                st, out = emu.finalize(aid, req)
            else:
                st, out = emu.search(req)
            if self.answer_faults(op):
                # Done at the CA, but the answer never arrives.
                return
            self.send_json(st, out)
        except EjError as e:
            if e.status < 500 and e.status != 429:
                emu.stats.inc(f"rejected:{e.status}")
            self.error(e)

    def route_revoke(self, rel):
        # /v1/certificate/{issuer_dn}/{serial}/revoke, the DN encoded (it
        # holds no '/' once encoded)
        emu = self.emu
        parts = rel.split("/")
        if len(parts) != 6 or parts[1:3] != ["v1", "certificate"] or \
                parts[5] != "revoke":
            raise EjError(404, "Not found")
        emu.stats.inc("op:revoke")
        f = self.pre_faults("revoke")
        if f == "hung":
            return
        if f and f["kind"] == "throttle":
            emu.stats.inc("throttled")
            raise EjError(429, "Too many requests",
                          retry_after=ec_.retry_after_value(f))
        if f and f["kind"] in ("error500", "error503"):
            st = 500 if f["kind"] == "error500" else 503
            raise EjError(st, "General failure." if st == 500
                          else "CA is offline",
                          retry_after=ec_.retry_after_value(f)
                          if "retry_after" in f else None)
        query = urllib.parse.parse_qs(self.path.partition("?")[2],
                                      keep_blank_values=True)
        st, out = emu.revoke(urllib.parse.unquote(parts[3]),
                             urllib.parse.unquote(parts[4]), query)
        if self.answer_faults("revoke"):
            return
        self.send_json(st, out)

    def do_PUT(self):
        if self.read_body() is None:
            self.close_connection = True
            return self.error(EjError(411, "Content-Length required"))
        self.route("PUT", b"")

    def do_GET(self):
        if self.read_body() is None:
            self.close_connection = True
            return self.error(EjError(400, "bad body"))
        self.route("GET", b"")

    def do_POST(self):
        body = self.read_body()
        if body is None:
            self.close_connection = True
            return self.error(EjError(411, "Content-Length required"))
        self.route("POST", body)


def main():
    p = ec_.base_args(__doc__.splitlines()[0])
    p.add_argument("--ca", default="BootCA,OpCA")
    p.add_argument("--certificate-profile", default="BootProfile,OpProfile")
    p.add_argument("--end-entity-profile", default="DeviceEEP,ApprovalEEP")
    p.add_argument("--approval-profile", action="append",
                   help="end entity profiles that need approval")
    p.add_argument("--admin-cn", default="SuperAdmin")
    args = p.parse_args()
    emu = Ejbca(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(emu.tls["server.pem"], emu.tls["server.key"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(emu.admin_ca_path)
    return ec_.serve(emu, H, ctx)


if __name__ == "__main__":
    sys.exit(main())
