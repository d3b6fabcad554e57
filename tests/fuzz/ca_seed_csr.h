/* The CSR of the CA answer seed corpora: written by gen_ca_seeds.py. */
static const char CA_SEED_CSR[] =
  "-----BEGIN CERTIFICATE REQUEST-----\n"
  "MIHQMHgCAQAwFjEUMBIGA1UEAwwLTDEuRTEuRDAwMDEwWTATBgcqhkjOPQIBBggq\n"
  "hkjOPQMBBwNCAAQkh0K0KkwbnYzRon01xgBrO90I554+xzsVPY1aiKsZ2WnX2d9r\n"
  "b4EnrfnQ0S6TJeD7QTMMcEiyUacyqKV/l2JloAAwCgYIKoZIzj0EAwIDSAAwRQIg\n"
  "dy/1XuHLokvkRSi1J2iYuQnxbgXa8TWJZI2machlD7UCIQDzpKK6dPlsASufwQ2t\n"
  "PgmOmOZSCPzl/MmncB8hAVM17A==\n"
  "-----END CERTIFICATE REQUEST-----\n"
  ;
