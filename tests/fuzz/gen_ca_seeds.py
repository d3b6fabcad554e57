#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Seed corpora of the CA answer fuzz targets (fuzz_ca_*.c), in the shapes
the emulators in tests/emulators/ answer (and the CAs' API references):
a CSR's key, an issuing CA under a root, a leaf for that key, then each
CA's answers built around them. Writes ca_seed_csr.h (the CSR the targets
check leaves against) and corpus/ca_{aws,gcp,oauth,ejbca}/. By hand, when
a format changes (docs/fuzzing.md):  python3 gen_ca_seeds.py <repo>/tests/fuzz
Each seed's first byte is the target's selector (see the target)."""
import base64, datetime, json, os, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

out = sys.argv[1]
T0 = datetime.datetime(2026, 1, 1)

def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

def cert(subject, issuer, pub, signer, serial, ca):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(pub).serial_number(serial).not_valid_before(T0)
         .not_valid_after(T0 + datetime.timedelta(days=365)))
    b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    return b.sign(signer, hashes.SHA256())

root_k = ec.generate_private_key(ec.SECP256R1())
ica_k = ec.generate_private_key(ec.SECP256R1())
dev_k = ec.generate_private_key(ec.SECP256R1())
root = cert(name("Seed Root"), name("Seed Root"), root_k.public_key(), root_k, 1, True)
ica = cert(name("Seed Issuing CA"), name("Seed Root"), ica_k.public_key(), root_k, 2, True)
leaf = cert(name("L1.E1.D0001"), name("Seed Issuing CA"), dev_k.public_key(), ica_k, 0x5eed0001, False)
other = cert(name("L1.E1.D0002"), name("Seed Issuing CA"), ica_k.public_key(), ica_k, 0x5eed0002, False)
csr = (x509.CertificateSigningRequestBuilder().subject_name(name("L1.E1.D0001"))
       .sign(dev_k, hashes.SHA256()))

pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()
der = lambda c: c.public_bytes(serialization.Encoding.DER)
b64 = lambda b: base64.b64encode(b).decode()

with open(os.path.join(out, "ca_seed_csr.h"), "w") as f:
    f.write("/* The CSR of the CA answer seed corpora: written by "
            "gen_ca_seeds.py. */\nstatic const char CA_SEED_CSR[] =\n")
    for line in csr.public_bytes(serialization.Encoding.PEM).decode().splitlines():
        f.write('  "%s\\n"\n' % line)
    f.write("  ;\n")

def seed(target, fname, sel, body):
    d = os.path.join(out, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if not isinstance(body, (bytes, bytearray)):
        body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    with open(os.path.join(d, fname), "wb") as f:
        f.write(bytes([sel]) + body)

# AWS Private CA (selector: 0 GetCertificate 200, 1 IssueCertificate 200,
# 2 error, 3 error with x-amzn-ErrorType: the first line)
seed("ca_aws", "get_certificate", 0,
     {"Certificate": pem(leaf), "CertificateChain": pem(ica) + pem(root)})
seed("ca_aws", "get_certificate_other_key", 0, {"Certificate": pem(other)})
seed("ca_aws", "issue_certificate", 1, {"CertificateArn":
     "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/"
     "11111111-2222-3333-4444-555555555555/certificate/0123456789abcdef"})
seed("ca_aws", "in_progress", 2, {"__type": "RequestInProgressException",
     "message": "The request is being processed"})
seed("ca_aws", "throttling_header", 3,
     "aws.protocols#ThrottlingException:http://internal.amazon.com/\n" +
     json.dumps({"message": "Rate exceeded"}))
seed("ca_aws", "failed_code", 2, {"code": "com.amazonaws#RequestFailedException",
     "Message": "CSR rejected"})

# Google CAS (selector: 0 Create/GetCertificate 200, 1 the resource for
# a revocation, 2 error)
res = {"name": "projects/p/locations/l/caPools/pool/certificates/lc-1",
       "pemCertificate": pem(leaf),
       "pemCertificateChain": [pem(ica), pem(root)],
       "lifetime": "31536000s"}
seed("ca_gcp", "certificate", 0, res)
seed("ca_gcp", "certificate_revoked", 1, dict(res, revocationDetails={
     "revocationState": "KEY_COMPROMISE",
     "revocationTime": "2026-02-01T00:00:00Z"}))
seed("ca_gcp", "certificate_two_leaves", 0, dict(res, pemCertificate=pem(leaf) + pem(other)))
seed("ca_gcp", "already_exists", 2, {"error": {"code": 409,
     "message": "Resource already exists", "status": "ALREADY_EXISTS"}})

# OAuth token endpoint (selector: the status, see fuzz_ca_oauth.c)
seed("ca_oauth", "token", 0, {"access_token": "ya29.c.seed-token",
     "expires_in": 3599, "token_type": "Bearer"})
seed("ca_oauth", "invalid_grant", 1, {"error": "invalid_grant",
     "error_description": "Invalid JWT Signature."})
seed("ca_oauth", "metadata_token", 0, {"access_token": "ya29.m.seed",
     "expires_in": 1800})
seed("ca_oauth", "unavailable", 4, "")

# EJBCA (selector: 0 enroll/finalize 201, 1 search 200, 2 approval 202,
# 3 error)
seed("ca_ejbca", "enroll", 0, {"certificate": b64(der(leaf)),
     "serial_number": "5EED0001", "response_format": "DER",
     "certificate_chain": [b64(der(ica)), b64(der(root))]})
seed("ca_ejbca", "search", 1, {"certificates": [
     {"certificate": b64(b64(der(other)).encode())},
     {"certificate": b64(b64(der(leaf)).encode()), "serial_number": "5EED0001",
      "response_format": "DER"}], "more_results": False})
seed("ca_ejbca", "approval", 2, {"status_code": 202, "info_message":
     "Approval required", "request_id": 1234,
     "link": "https://127.0.0.1/ejbca/ejbca-rest-api/v1/certificate/1234/finalize"})
seed("ca_ejbca", "approval_link_only", 2, {"link":
     "https://127.0.0.1/ejbca/ejbca-rest-api/v1/certificate/987/finalize"})
seed("ca_ejbca", "error", 3, {"error_code": 400,
     "error_message": "Wrong client certificate"})
