/* The key of the audit seed corpora: written by gen_audit_seeds. */
static const char AUDIT_SEED_PUB[] =
  "-----BEGIN PUBLIC KEY-----\n"
  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEuVPI9gsGAXxfjhBctNW8//2/BxQ8\n"
  "jp9wXGpuqAe+5xUndOIO/smhmYfvYdR9s5iVqzklc9gy9C0pZuIqRrB8ng==\n"
  "-----END PUBLIC KEY-----\n"
  ;
