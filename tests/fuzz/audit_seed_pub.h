/* The key of the audit seed corpora: written by gen_audit_seeds. */
static const char AUDIT_SEED_PUB[] =
  "-----BEGIN PUBLIC KEY-----\n"
  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAH/8n5UQoHiDui5INkoFV3DEZCrk\n"
  "NvNm0OGuTK37HOkVEgfHFyjgj8GcOm16IVK1FnhhrPZRdiWaePegz2zO9g==\n"
  "-----END PUBLIC KEY-----\n"
  ;
