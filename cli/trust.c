/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert trust <action>`: trust rotation in phases (DESIGN §4.4,
 * docs/lifecycle.md "Trust rotation"). Every action goes through the
 * running service (one writer of the store and the audit chain; it
 * pushes the bundle to the devices online), or with none running is
 * carried out here under the data directory lock (the devices then hear
 * of it at their next birth). Exit 0 done (validate: the chain
 * verifies), 1 refused or failed (validate: it does not), 2 usage.
 *
 * server-cert makes the server's key here and sends only its CSR: the
 * private key never crosses the control socket.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define PEM_FILE_MAX (256 * 1024)

static const char trust_usage[] =
  "usage: linecert trust <action> [options]\n"
  "\n"
  "actions (docs/lifecycle.md, \"Trust rotation\"):\n"
  "  add FILE              phase ADD: the CA certificate(s) in FILE join\n"
  "                        the bundle, pushed to every device\n"
  "  status                phase, bundle hash, devices acknowledged and\n"
  "                        pending, the stragglers\n"
  "  rotate [--force]      phase ROTATE: the servers may switch; refused\n"
  "                        while a device lacks the bundle\n"
  "  remove FINGERPRINT [--force]\n"
  "                        phase REMOVE: the CA (SHA-256 of its DER)\n"
  "                        leaves the bundle, after the overlap\n"
  "                        ([policy] trust_min_overlap_days)\n"
  "  rollback              the previous bundle and phase again, pushed\n"
  "  validate --device G/E/D --chain FILE\n"
  "                        does this server chain verify against the\n"
  "                        bundle the device acknowledged? (exit 0/1)\n"
  "  server-cert --cn HOST -o DIR [--issuer FPR] [--days N]\n"
  "                        a serverAuth certificate (DIR/server.pem,\n"
  "                        DIR/server.key, DIR/ca.pem) from a server CA\n"
  "                        of the bundle\n"
  "  server-cert --new-ca -o DIR\n"
  "                        a new server-issuing CA (DIR/ca.pem, to add)\n"
  "\n"
  "options:\n"
  "  -c, --config FILE     configuration file\n"
  "  -d, --data-dir DIR    data directory\n"
  "      --line G          one line's bundle (default: the site's)\n"
  "      --json            the answer as JSON\n"
  "  -h, --help            this text\n";

struct trust_args {
  struct brk_config cfg;
  const char *action, *arg;
  const char *line, *device, *chain, *cn, *out_dir, *issuer;
  long days;
  bool force, json, new_ca;
};

enum { O_LINE = 300, O_JSON, O_FORCE, O_DEVICE, O_CHAIN, O_CN, O_ISSUER,
       O_DAYS, O_NEW_CA };

static const struct option trust_opts[] = {
  {"config", required_argument, NULL, 'c'},
  {"data-dir", required_argument, NULL, 'd'},
  {"line", required_argument, NULL, O_LINE},
  {"json", no_argument, NULL, O_JSON},
  {"force", no_argument, NULL, O_FORCE},
  {"device", required_argument, NULL, O_DEVICE},
  {"chain", required_argument, NULL, O_CHAIN},
  {"cn", required_argument, NULL, O_CN},
  {"issuer", required_argument, NULL, O_ISSUER},
  {"days", required_argument, NULL, O_DAYS},
  {"new-ca", no_argument, NULL, O_NEW_CA},
  {"output", required_argument, NULL, 'o'},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0}};

static int usage(const char *fmt, const char *arg)
{
  fprintf(stderr, "linecert trust: ");
  fprintf(stderr, fmt, arg ? arg : "");
  fprintf(stderr, "\nTry 'linecert trust --help'.\n");
  return CLI_EXIT_USAGE;
}

static int parse(struct trust_args *t, int argc, char **argv)
{
  int rc = cli__load_config(&t->cfg, argc, argv);
  if(rc)
    return rc;
  optind = 0;
  opterr = 1;
  int opt;
  while((opt = getopt_long(argc, argv, "c:d:o:h", trust_opts, NULL)) != -1) {
    char *end;
    switch(opt) {
    case 'c': break; /* read first */
    case 'd':
      if(!lc_strlcpy(t->cfg.data_dir, optarg, sizeof(t->cfg.data_dir)))
        return usage("--data-dir: too long%s", NULL);
      break;
    case 'o': t->out_dir = optarg; break;
    case O_LINE: t->line = optarg; break;
    case O_JSON: t->json = true; break;
    case O_FORCE: t->force = true; break;
    case O_DEVICE: t->device = optarg; break;
    case O_CHAIN: t->chain = optarg; break;
    case O_CN: t->cn = optarg; break;
    case O_ISSUER: t->issuer = optarg; break;
    case O_NEW_CA: t->new_ca = true; break;
    case O_DAYS:
      t->days = strtol(optarg, &end, 10);
      if(*end || t->days < 1 || t->days > 825)
        return usage("--days: 1..825%s", NULL);
      break;
    case 'h':
      fputs(trust_usage, stdout);
      return -1;
    default:
      return CLI_EXIT_USAGE;
    }
  }
  for(int i = optind; i < argc; i++) {
    if(!t->action)
      t->action = argv[i];
    else if(!t->arg)
      t->arg = argv[i];
    else
      return usage("unexpected argument %s", argv[i]);
  }
  if(!t->action) {
    fputs(trust_usage, stderr);
    return CLI_EXIT_USAGE;
  }
  char err[BRK_ERR_MAX];
  if(brk_config_check(&t->cfg, err, sizeof(err)) != LC_OK) {
    fprintf(stderr, "linecert: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  return 0;
}

/* ---- carrying a request out -------------------------------------------------- */

static json_t *route(const struct trust_args *t, json_t *req, int *rc)
{
  struct brk_lock lock;
  json_t *ans = NULL;
  char err[2 * BRK_PATH_MAX];
  *rc = 0;
  enum brk_route r = brk_route_op(&t->cfg, "trust", req, &lock, &ans, err,
                                  sizeof(err));
  if(r == BRK_ROUTE_REFUSED) {
    fprintf(stderr, "linecert trust %s: %s\n", t->action, err);
    *rc = CLI_EXIT_FAIL;
    return NULL;
  }
  if(r == BRK_ROUTE_OFFLINE) {
    lc_err e = brk_op_offline(&t->cfg, req, &ans);
    brk_lock_release(&lock);
    if(e != LC_OK) {
      fprintf(stderr, "linecert trust %s: %s (see the log above)\n",
              t->action, lc_strerror(e));
      *rc = CLI_EXIT_FAIL;
      return NULL;
    }
  }
  return ans;
}

/* The answer's error on stderr (and the JSON on stdout with --json):
 * CLI_EXIT_FAIL; else 0. */
static int error_of(const struct trust_args *t, const json_t *ans)
{
  char who[64];
  snprintf(who, sizeof(who), "trust %s", t->action);
  return cli__answer_error(who, ans, t->json);
}

static json_t *request(const struct trust_args *t)
{
  json_t *req = json_pack("{s:s, s:s}", "verb", "trust", "action",
                          t->action);
  if(req && t->line)
    json_object_set_new(req, "line", json_string(t->line));
  if(req && t->force)
    json_object_set_new(req, "force", json_true());
  return req;
}

/* Send req (taken), print the answer; text with `say` when not --json
 * and it succeeded. */
static int run(const struct trust_args *t, json_t *req,
               void (*say)(const json_t *ans))
{
  if(!req)
    return CLI_EXIT_FAIL;
  int rc;
  json_t *ans = route(t, req, &rc);
  json_decref(req);
  if(!ans)
    return rc;
  rc = error_of(t, ans);
  if(!rc && !t->json && say)
    say(ans);
  json_decref(ans);
  return rc;
}

static const char *str(const json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

static const char *scope(const json_t *ans)
{
  return str(ans, "line")[0] ? str(ans, "line") : "site";
}

static void say_change(const json_t *ans)
{
  printf("trust: %s phase=%s bundle_sha256=%s pushed=%lld\n", scope(ans),
         str(ans, "phase"), str(ans, "bundle_sha256"),
         (long long)json_integer_value(json_object_get(ans, "pushed")));
}

static void say_status(const json_t *ans)
{
  printf("line=%s phase=%s bundle_sha256=%s devices=%lld acknowledged=%lld "
         "pending=%lld\n", scope(ans), str(ans, "phase"),
         str(ans, "bundle_sha256"),
         (long long)json_integer_value(json_object_get(ans, "devices")),
         (long long)json_integer_value(json_object_get(ans, "acknowledged")),
         (long long)json_integer_value(json_object_get(ans, "pending")));
  const json_t *s = json_object_get(ans, "stragglers");
  for(size_t i = 0; i < json_array_size(s); i++)
    printf("straggler %s\n", json_string_value(json_array_get(s, i)));
}

static void say_rotate(const json_t *ans)
{
  printf("trust: %s phase=ROTATE bundle_sha256=%s%s\n", scope(ans),
         str(ans, "bundle_sha256"),
         json_is_true(json_object_get(ans, "forced")) ? " (forced)" : "");
}

static int read_pem(const char *what, const char *path, char **out)
{
  lc_err rc = lc_read_file(path, PEM_FILE_MAX, out, NULL);
  if(rc == LC_OK)
    return 0;
  fprintf(stderr, "linecert trust: %s %s: %s\n", what, path,
          lc_strerror(rc));
  return CLI_EXIT_USAGE;
}

static int do_add(const struct trust_args *t)
{
  char *pem = NULL;
  if(!t->arg)
    return usage("add: name the CA certificate file%s", NULL);
  int rc = read_pem("add: cannot read", t->arg, &pem);
  if(rc)
    return rc;
  json_t *req = request(t);
  if(req)
    json_object_set_new(req, "pem", json_string(pem));
  lc_free(pem);
  return run(t, req, say_change);
}

static int do_remove(const struct trust_args *t)
{
  if(!t->arg)
    return usage("remove: name the CA by its SHA-256 FINGERPRINT%s", NULL);
  json_t *req = request(t);
  if(req)
    json_object_set_new(req, "fingerprint", json_string(t->arg));
  return run(t, req, say_change);
}

static int do_validate(const struct trust_args *t)
{
  if(!t->device || !t->chain)
    return usage("validate needs --device G/E/D and --chain FILE%s", NULL);
  char *chain = NULL;
  int rc = read_pem("validate: cannot read", t->chain, &chain);
  if(rc)
    return rc;
  json_t *req = request(t);
  if(req) {
    json_object_set_new(req, "device", json_string(t->device));
    json_object_set_new(req, "chain", json_string(chain));
  }
  lc_free(chain);
  if(!req)
    return CLI_EXIT_FAIL;
  json_t *ans = route(t, req, &rc);
  json_decref(req);
  if(!ans)
    return rc;
  rc = error_of(t, ans);
  if(!rc) {
    bool valid = json_is_true(json_object_get(ans, "valid"));
    if(!t->json)
      printf("%s: %s against bundle %s: %s\n", str(ans, "device"),
             valid ? "pass" : "fail", str(ans, "bundle_sha256"),
             str(ans, "reason"));
    rc = valid ? 0 : CLI_EXIT_FAIL;
  }
  json_decref(ans);
  return rc;
}

/* ---- server-cert ------------------------------------------------------------ */

static int write_out(const char *dir, const char *name, const char *text,
                     unsigned mode)
{
  char path[BRK_PATH_MAX];
  if(snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
     lc_write_file_atomic(path, text, strlen(text), mode) != LC_OK) {
    fprintf(stderr, "linecert trust server-cert: cannot write %s/%s\n", dir,
            name);
    return CLI_EXIT_FAIL;
  }
  return 0;
}

/* A P-256 key (PEM, for DIR/server.key) and its CSR (PEM, CN = cn). */
static int make_key_csr(const char *cn, char **key_pem, char **csr_pem)
{
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509_REQ *req = X509_REQ_new();
  BIO *kb = BIO_new(BIO_s_mem()), *rb = BIO_new(BIO_s_mem());
  int rc = CLI_EXIT_FAIL;
  char *p;
  long n;
  if(k && req && kb && rb &&
     X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
                                MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                -1, 0) == 1 &&
     X509_REQ_set_pubkey(req, k) == 1 &&
     X509_REQ_sign(req, k, EVP_sha256()) > 0 &&
     PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) == 1 &&
     PEM_write_bio_X509_REQ(rb, req) == 1) {
    n = BIO_get_mem_data(kb, &p);
    *key_pem = n > 0 ? lc_strndup(p, (size_t)n) : NULL;
    n = BIO_get_mem_data(rb, &p);
    *csr_pem = n > 0 ? lc_strndup(p, (size_t)n) : NULL;
    rc = *key_pem && *csr_pem ? 0 : CLI_EXIT_FAIL;
  }
  BIO_free(kb);
  BIO_free(rb);
  X509_REQ_free(req);
  EVP_PKEY_free(k);
  return rc;
}

static int do_server_cert(const struct trust_args *t)
{
  if(!t->out_dir)
    return usage("server-cert needs -o DIR%s", NULL);
  if(!t->new_ca && !t->cn)
    return usage("server-cert needs --cn HOST (or --new-ca)%s", NULL);
  if(mkdir(t->out_dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "linecert trust server-cert: cannot make %s\n",
            t->out_dir);
    return CLI_EXIT_FAIL;
  }
  char *key = NULL, *csr = NULL;
  json_t *req = request(t);
  if(req && t->new_ca) {
    json_object_set_new(req, "new_ca", json_true());
  }
  else if(req) {
    if(make_key_csr(t->cn, &key, &csr)) {
      json_decref(req);
      return CLI_EXIT_FAIL;
    }
    json_object_set_new(req, "cn", json_string(t->cn));
    json_object_set_new(req, "csr", json_string(csr));
    if(t->issuer)
      json_object_set_new(req, "issuer", json_string(t->issuer));
    if(t->days)
      json_object_set_new(req, "days", json_integer(t->days));
  }
  int rc = CLI_EXIT_FAIL;
  json_t *ans = req ? route(t, req, &rc) : NULL;
  json_decref(req);
  if(ans) {
    rc = error_of(t, ans);
    if(!rc && t->new_ca)
      rc = write_out(t->out_dir, "ca.pem", str(ans, "ca_pem"), 0644);
    else if(!rc) {
      rc = write_out(t->out_dir, "server.key", key, 0600);
      if(!rc)
        rc = write_out(t->out_dir, "server.pem", str(ans, "cert_pem"), 0644);
      if(!rc)
        rc = write_out(t->out_dir, "ca.pem", str(ans, "ca_pem"), 0644);
    }
    if(!rc && !t->json)
      printf("trust server-cert: %s fingerprint=%s in %s\n",
             t->new_ca ? "server CA" : str(ans, "cn"),
             str(ans, "fingerprint"), t->out_dir);
  }
  json_decref(ans);
  if(key) {
    OPENSSL_cleanse(key, strlen(key));
    lc_free(key);
  }
  lc_free(csr);
  return rc;
}

/* ---- dispatch ---------------------------------------------------------------- */

static int do_plain(const struct trust_args *t)
{
  void (*say)(const json_t *) = !strcmp(t->action, "status") ? say_status
                                : !strcmp(t->action, "rotate") ? say_rotate
                                                               : say_change;
  if(t->arg)
    return usage("unexpected argument %s", t->arg);
  return run(t, request(t), say);
}

int cli_trust(int argc, char **argv)
{
  struct trust_args t;
  memset(&t, 0, sizeof(t));
  int rc = parse(&t, argc, argv);
  if(rc)
    return rc < 0 ? 0 : rc;
  if(lc_log_set_level("warn") != LC_OK)
    return CLI_EXIT_USAGE;
  static const struct {
    const char *name;
    int (*fn)(const struct trust_args *t);
  } acts[] = {
    {"add", do_add}, {"status", do_plain}, {"rotate", do_plain},
    {"remove", do_remove}, {"rollback", do_plain},
    {"validate", do_validate}, {"server-cert", do_server_cert},
  };
  for(size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
    if(!strcmp(t.action, acts[i].name))
      return acts[i].fn(&t);
  return usage("unknown action %s", t.action);
}
