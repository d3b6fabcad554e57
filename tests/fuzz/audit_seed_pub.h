/* The key of the audit seed corpora: written by gen_audit_seeds. */
static const char AUDIT_SEED_PUB[] =
  "-----BEGIN PUBLIC KEY-----\n"
  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEE6fpt1F9TBY2YYhpFG6HXvlBSELB\n"
  "cJNxO2Zdkqp8jdcx7RFkOnnaA9EgnpHnY+9mwn+KJgP8vVe2VYTItmC4ZA==\n"
  "-----END PUBLIC KEY-----\n"
  ;
