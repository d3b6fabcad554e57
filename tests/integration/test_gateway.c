/* SPDX-License-Identifier: Apache-2.0
 *
 * The devices' HTTPS gateway (DESIGN §4.2, docs/gateway.md) with real
 * parts: linecert serve, Mosquitto, a device provisioned over Sparkplug
 * by the test (its keys are ours, so curl can present its certificates),
 * and nginx running deploy/nginx/linecert-gateway.conf as shipped in
 * front of linecert (proxy mode). Then linecert terminating the mutual
 * TLS itself (direct mode), also with its clock two years on
 * (libfaketime) so that the operational certificate has expired.
 *
 * What is checked here is the gateway's front: who is asking, and the
 * answers it gives before the loop (401, 403, 405, 400 with a JSON
 * error). Renewal itself is the loop's (renew.c).
 */
#include "tests/integration/edge_play.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_nginx.h"
#include "tests/support/lc_pki.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef LC_SOURCE_DIR
#error "LC_SOURCE_DIR must name the source tree (deploy/ is read from it)"
#endif
#define DEPLOY_NGINX LC_SOURCE_DIR "/deploy/nginx/linecert-gateway.conf"

#define LINE "lineG"
#define DEVICE "GW-0001"
#define RENEW "/v1/devices/bootstrap/renew"
#define SELF "/v1/devices/self"

/* ---- one HTTP call ------------------------------------------------------------------- */

struct call {
  const char *method;          /* "GET", "POST" */
  const char *content_type;    /* POST; NULL: none */
  const char *body;            /* POST */
  bool chunked;                /* send the body chunked (no length) */
  const char *cert, *key;      /* client certificate files, or NULL */
  const char *const *headers;  /* NULL-terminated "Name: value" */
  const char *iface;           /* local address to call from */
};

struct answer {
  long status;
  char type[128];
  char body[16384];
  size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
  struct answer *a = ctx;
  size_t len = size * n;
  size_t room = sizeof(a->body) - 1 - a->len;
  memcpy(a->body + a->len, p, len < room ? len : room);
  a->len += len < room ? len : room;
  a->body[a->len] = '\0';
  return len;
}

/* body_src: feeds the POST body with no length known (chunked). */
struct src {
  const char *p;
  size_t left;
};

static size_t on_read(char *buf, size_t size, size_t n, void *ctx)
{
  struct src *s = ctx;
  size_t len = size * n < s->left ? size * n : s->left;
  memcpy(buf, s->p, len);
  s->p += len;
  s->left -= len;
  return len;
}

static const char *ca_file;  /* the server certificates' CA */

static long call(const char *url, const struct call *c, struct answer *a)
{
  memset(a, 0, sizeof(*a));
  CURL *h = curl_easy_init();
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  struct curl_slist *hdr = NULL;
  char ct[160];
  if(c->content_type) {
    snprintf(ct, sizeof(ct), "Content-Type: %s", c->content_type);
    hdr = curl_slist_append(hdr, ct);
  }
  for(size_t i = 0; c->headers && c->headers[i]; i++)
    hdr = curl_slist_append(hdr, c->headers[i]);
  struct src s = {c->body, c->body ? strlen(c->body) : 0};
  if(c->chunked)
    hdr = curl_slist_append(hdr, "Transfer-Encoding: chunked");
  /* curl's own Expect: 100-continue would wait for the server. */
  hdr = curl_slist_append(hdr, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
  if(!strcmp(c->method, "POST")) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    if(c->chunked) {
      curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(h, CURLOPT_READDATA, &s);
    } else {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body ? c->body : "");
    }
  }
  if(ca_file)
    curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
  if(c->cert) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
    curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
  }
  if(c->iface)
    curl_easy_setopt(h, CURLOPT_INTERFACE, c->iface);
  CURLcode rc = curl_easy_perform(h);
  if(rc != CURLE_OK)
    fprintf(stderr, "gateway test: %s %s: %s\n", c->method, url,
            curl_easy_strerror(rc));
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
  const char *type = NULL;
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
  snprintf(a->type, sizeof(a->type), "%s", type ? type : "");
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  return rc == CURLE_OK ? a->status : 0;
}

/* The answer is `status` with the JSON body {"error": reason}. */
static void expect_error(const struct answer *a, long status,
                         const char *reason, const char *what)
{
  json_error_t jerr;
  json_t *j = json_loads(a->body, 0, &jerr);
  const char *got = json_string_value(json_object_get(j, "error"));
  bool ok = a->status == status && got && !strcmp(got, reason) &&
            !strncmp(a->type, "application/json", 16);
  if(!ok)
    fprintf(stderr, "gateway test: %s: got %ld %s [%s], want %ld "
            "{\"error\":\"%s\"}\n", what, a->status, a->body, a->type,
            status, reason);
  CU_ASSERT_TRUE(ok);
  json_decref(j);
}

/* ---- the device and its files -------------------------------------------------------- */

struct device_files {
  char boot_cert[400], boot_key[400], op_cert[400], op_key[400];
  char boot_pem[4096];
};

static void write_key(const char *path, EVP_PKEY *k)
{
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
}

struct cert_copy {
  const char *id;
  struct device_files *files;
  int found;
};

static lc_err copy_certs(void *ctx, struct sm_device *d)
{
  struct cert_copy *c = ctx;
  if(!strcmp(d->device, c->id) && d->cert[CA_ROLE_BOOTSTRAP].pem &&
     d->cert[CA_ROLE_OPERATIONAL].pem) {
    rig_write_text(c->files->boot_cert, d->cert[CA_ROLE_BOOTSTRAP].pem);
    rig_write_text(c->files->op_cert, d->cert[CA_ROLE_OPERATIONAL].pem);
    snprintf(c->files->boot_pem, sizeof(c->files->boot_pem), "%s",
             d->cert[CA_ROLE_BOOTSTRAP].pem);
    c->found++;
  }
  sm_device_free(d);
  return LC_OK;
}

/* Device `id` provisioned over Sparkplug with keys of ours; its
 * certificates and keys written as PEM files in the rig's directory. */
static void provision_id(struct rig *r, struct device_files *f,
                         const char *id)
{
  EVP_PKEY *kb = EVP_EC_gen("P-256"), *ko = EVP_EC_gen("P-256");
  CU_ASSERT_PTR_NOT_NULL_FATAL(kb);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ko);
  struct ep_edge e;
  struct ep_device d;
  char client[64];
  snprintf(client, sizeof(client), "lc-it-gw-%s", id);
  ep_edge_open(r, &e, LINE, "edge-G", client);
  ep_device_init_keys(&d, id, kb, ko);
  ep_nbirth(&e, 0);
  ep_dbirth(&e, &d);
  struct ep_dcmd c;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, id, &c, NULL));
  ep_check_issued(&c);
  ep_acknowledge(&e, &d, &c);
  CU_ASSERT_TRUE_FATAL(rig_wait_count(r, id, SM_PROVISIONED, 1, EP_WAIT_MS));
  ep_edge_close(&e);
  ep_device_cleanup(&d);
  snprintf(f->boot_cert, sizeof(f->boot_cert), "%s/%s-boot.pem", r->dir, id);
  snprintf(f->boot_key, sizeof(f->boot_key), "%s/%s-boot.key", r->dir, id);
  snprintf(f->op_cert, sizeof(f->op_cert), "%s/%s-op.pem", r->dir, id);
  snprintf(f->op_key, sizeof(f->op_key), "%s/%s-op.key", r->dir, id);
  write_key(f->boot_key, kb);
  write_key(f->op_key, ko);
  struct cert_copy cc = {id, f, 0};
  CU_ASSERT_EQUAL(rig_foreach_device(r, copy_certs, &cc), LC_OK);
  CU_ASSERT_EQUAL_FATAL(cc.found, 1);
  EVP_PKEY_free(kb);
  EVP_PKEY_free(ko);
}

static void provision(struct rig *r, struct device_files *f)
{
  provision_id(r, f, DEVICE);
}

/* ":" base64(DER) ":" of a PEM certificate (RFC 9440), into buf. */
static void client_cert_header(const char *pem, char *buf, size_t cap)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  unsigned char *der = NULL;
  int len = i2d_X509(x, &der);
  char *b64 = malloc((size_t)(len + 2) / 3 * 4 + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b64);
  EVP_EncodeBlock((unsigned char *)b64, der, len);
  snprintf(buf, cap, "Client-Cert: :%s:", b64);
  free(b64);
  OPENSSL_free(der);
  X509_free(x);
}

/* ---- configuration ---------------------------------------------------------------------- */

static void write_config(struct rig *r, const char *gateway)
{
  snprintf(r->config_path, sizeof(r->config_path), "%s/linecert.ini",
           r->dir);
  char text[2048];
  snprintf(text, sizeof(text), "[gateway]\n%s", gateway);
  rig_write_text(r->config_path, text);
}

/* deploy/nginx/linecert-gateway.conf as shipped, except where it listens,
 * where linecert is, and where the certificates are. Lines into
 * store[], pointers into lines[]. */
static void deploy_conf(const char *pki, uint16_t gw_port, char store[][2048],
                        const char *lines[], size_t cap)
{
  FILE *f = fopen(DEPLOY_NGINX, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  size_t n = 0;
  char line[2048];
  int replaced = 0;
  while(n + 1 < cap && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    char *etc = strstr(line, "/etc/linecert/gateway/");
    if(strstr(line, "listen 8443 ssl;")) {
      snprintf(store[n], sizeof(store[n]), "listen 127.0.0.1:@PORT@ ssl;");
      replaced++;
    } else if(strstr(line, "server 127.0.0.1:8444;")) {
      snprintf(store[n], sizeof(store[n]), "server 127.0.0.1:%u;",
               (unsigned)gw_port);
      replaced++;
    } else if(etc && line[0] != '#') {
      snprintf(store[n], sizeof(store[n]), "%.*s%s/%s", (int)(etc - line),
               line, pki, etc + strlen("/etc/linecert/gateway/"));
      replaced++;
    } else {
      snprintf(store[n], sizeof(store[n]), "%s", line);
    }
    lines[n] = store[n];
    n++;
  }
  fclose(f);
  lines[n] = NULL;
  CU_ASSERT_EQUAL(replaced, 5);  /* listen, upstream, three files */
}

/* <data_dir>/ca's two issuing CAs and root, as nginx is told to trust. */
static void client_cas(struct rig *r, const char *path)
{
  char f[3][400];
  static const char *const names[] = {"bootstrap-ca.pem",
                                      "operational-ca.pem", "root.pem"};
  for(int i = 0; i < 3; i++)
    snprintf(f[i], sizeof(f[i]), "%s/ca/%s", r->data_dir, names[i]);
  const char *parts[] = {f[0], f[1], f[2], NULL};
  rig_concat(path, parts);
}

static const char *big_body(void)
{
  static char body[20001];
  memset(body, 'a', sizeof(body) - 1);
  memcpy(body, "{\"csr\":\"", 8);
  memcpy(body + sizeof(body) - 3, "\"}", 2);
  return body;
}

/* The front's 400s and 405, for a caller with an identity. */
static void front_errors(const char *base, const char *cert, const char *key)
{
  char url[160], self[160];
  snprintf(url, sizeof(url), "%s" RENEW, base);
  snprintf(self, sizeof(self), "%s" SELF, base);
  struct answer a;
  struct call c = {.method = "GET", .cert = cert, .key = key};
  call(url, &c, &a);
  expect_error(&a, 405, "method_not_allowed", "GET renew");
  c = (struct call){.method = "POST", .cert = cert, .key = key};
  call(self, &c, &a);
  expect_error(&a, 405, "method_not_allowed", "POST self");
  c = (struct call){.method = "POST", .content_type = "text/plain",
                    .body = "{\"csr\":\"x\"}", .cert = cert, .key = key};
  call(url, &c, &a);
  expect_error(&a, 400, "content_type", "text/plain");
  c.content_type = NULL;
  call(url, &c, &a);
  expect_error(&a, 400, "content_type", "no content type");
  c.content_type = "application/json";
  c.body = big_body();
  call(url, &c, &a);
  expect_error(&a, 400, "body_too_large", "20000 bytes");
  c.chunked = true;
  call(url, &c, &a);
  expect_error(&a, 400, "body_too_large", "20000 bytes, chunked");
  c.chunked = false;
  c.body = "{\"csr\": ";
  call(url, &c, &a);
  expect_error(&a, 400, "malformed_json", "cut JSON");
  c.body = "[\"csr\"]";
  call(url, &c, &a);
  expect_error(&a, 400, "malformed_json", "an array");
  c.body = "{\"csr\":\"a\",\"csr\":\"b\"}";
  call(url, &c, &a);
  expect_error(&a, 400, "malformed_json", "csr twice");
  c.body = "{\"CSR\":\"x\"}";
  call(url, &c, &a);
  expect_error(&a, 400, "missing_csr", "no csr");
  c.body = "{\"csr\":42}";
  call(url, &c, &a);
  expect_error(&a, 400, "missing_csr", "csr not a string");
  c.content_type = "application/json; charset=utf-8";
  c.body = "{\"csr\":\"\"}";
  call(url, &c, &a);
  expect_error(&a, 400, "missing_csr", "csr empty");
}

/* ---- proxy mode behind nginx ------------------------------------------------------------ */

/* nginx (deploy/nginx as shipped) in front of linecert's gateway on
 * gw_port, with its PKI in <rig>/pki and a foreign CA's certificate
 * with the device's CN (foreign.pem, foreign.key there). */
struct proxy {
  struct lc_nginx *ng;
  struct lc_pki_ca *ca, *foreign;
  char pki[300], srv_ca[400];
  char base[64];
};

static void proxy_start(struct rig *r, uint16_t gw_port, struct proxy *p)
{
  memset(p, 0, sizeof(*p));
  char *pki = p->pki, cas[400];
  snprintf(pki, sizeof(p->pki), "%s/pki", r->dir);
  CU_ASSERT_EQUAL_FATAL(mkdir(pki, 0700), 0);
  CU_ASSERT_EQUAL_FATAL(lc_pki_ca_new(pki, "server-ca", "gateway test CA",
                                      &p->ca), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_issue(p->ca, pki, "server", "localhost",
                                     LC_PKI_SERVER, NULL), LC_OK);
  /* A CA of an attacker's, and a certificate with the device's CN. */
  CU_ASSERT_EQUAL_FATAL(lc_pki_ca_new(pki, "foreign-ca",
                                      "linecert bootstrap issuing CA",
                                      &p->foreign), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_issue(p->foreign, pki, "foreign", DEVICE,
                                     LC_PKI_CLIENT, ""), LC_OK);
  snprintf(cas, sizeof(cas), "%s/client-cas.pem", pki);
  client_cas(r, cas);
  snprintf(p->srv_ca, sizeof(p->srv_ca), "%s/server-ca.pem", pki);
  ca_file = p->srv_ca;
  static char store[256][2048];
  const char *lines[257];
  deploy_conf(pki, gw_port, store, lines, 257);
  CU_ASSERT_EQUAL_FATAL(lc_nginx_start(lines, &p->ng), LC_OK);
  snprintf(p->base, sizeof(p->base), "https://127.0.0.1:%u",
           (unsigned)lc_nginx_port(p->ng));
}

static void proxy_stop(struct proxy *p)
{
  CU_ASSERT_EQUAL(lc_nginx_stop(p->ng), LC_OK);
  lc_pki_ca_free(p->foreign);
  lc_pki_ca_free(p->ca);
  ca_file = NULL;
}

/* linecert with its gateway in proxy mode behind 127.0.0.1; its port. */
static uint16_t start_proxied(struct rig *r)
{
  uint16_t gw_port;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&gw_port), LC_OK);
  char gw[256];
  snprintf(gw, sizeof(gw), "listen = 127.0.0.1:%u\nmode = proxy\n"
           "trusted_proxies = 127.0.0.1\n", (unsigned)gw_port);
  write_config(r, gw);
  rig_start_linecert(r, NULL);
  CU_ASSERT_TRUE(rig_file_contains(r->log_path,
                                   "mod=gateway state=listening"));
  return gw_port;
}

static void test_proxy_behind_nginx(void)
{
  struct rig r;
  rig_init(&r);
  uint16_t gw_port = start_proxied(&r);
  struct device_files f;
  provision(&r, &f);
  struct proxy px;
  proxy_start(&r, gw_port, &px);
  const char *pki = px.pki, *base = px.base;
  char url[160];
  snprintf(url, sizeof(url), "%s" RENEW, base);
  char foreign_cert[400], foreign_key[400];
  snprintf(foreign_cert, sizeof(foreign_cert), "%s/foreign.pem", pki);
  snprintf(foreign_key, sizeof(foreign_key), "%s/foreign.key", pki);

  struct answer a;
  /* nginx refuses who has no certificate or one of a foreign CA. */
  struct call c = {.method = "POST", .content_type = "application/json",
                   .body = "{\"csr\":\"x\"}"};
  call(url, &c, &a);
  expect_error(&a, 401, "no_client_certificate", "nginx, no certificate");
  c.cert = foreign_cert;
  c.key = foreign_key;
  call(url, &c, &a);
  expect_error(&a, 403, "client_certificate_refused",
               "nginx, foreign CA, device's CN");
  /* The device's own certificate passes nginx; linecert then sees an
   * identity (else every answer below would be 401). */
  front_errors(base, f.boot_cert, f.boot_key);
  front_errors(base, f.op_cert, f.op_key);

  /* Around nginx: identity headers sent to linecert from an address
   * outside trusted_proxies are ignored, logged and counted. */
  char direct_url[160], cc[4096];
  snprintf(direct_url, sizeof(direct_url), "http://127.0.0.1:%u" RENEW,
           (unsigned)gw_port);
  client_cert_header(f.boot_pem, cc, sizeof(cc));
  const char *forged[] = {"X-Client-Cert-Chain-Verified: true", cc, NULL};
  c = (struct call){.method = "POST", .content_type = "application/json",
                    .body = "{\"csr\":\"x\"}", .headers = forged,
                    .iface = "127.0.0.2"};
  long before = rig_count_lines(r.log_path, "reason=untrusted_peer");
  call(direct_url, &c, &a);
  expect_error(&a, 401, "no_client_certificate", "forged, untrusted peer");
  CU_ASSERT_EQUAL(rig_count_lines(r.log_path, "reason=untrusted_peer"),
                  before + 1);
  /* The same headers from the trusted address are an identity: the
   * front then answers the body's problem, not 401. */
  c.iface = "127.0.0.1";
  c.content_type = "text/plain";
  call(direct_url, &c, &a);
  expect_error(&a, 400, "content_type", "headers from the trusted proxy");
  /* A header twice, even from the proxy: refused. */
  const char *twice[] = {"X-Client-Cert-Chain-Verified: true", cc, cc, NULL};
  c.headers = twice;
  c.content_type = "application/json";
  call(direct_url, &c, &a);
  expect_error(&a, 401, "bad_identity_header", "Client-Cert twice");
  /* Headers a client sends to nginx never reach linecert as its own:
   * nginx sets each name. The foreign certificate plus a forged
   * Client-Cert of the device is still refused by nginx, and the
   * device's certificate with a forged "false" still verifies. */
  const char *lie[] = {"X-Client-Cert-Chain-Verified: false", NULL};
  c = (struct call){.method = "POST", .content_type = "text/plain",
                    .body = "{}", .cert = f.boot_cert, .key = f.boot_key,
                    .headers = lie};
  call(url, &c, &a);
  expect_error(&a, 400, "content_type", "client's own verified header");
  const char *steal[] = {cc, "X-Client-Cert-Chain-Verified: true", NULL};
  c = (struct call){.method = "POST", .content_type = "application/json",
                    .body = "{}", .cert = foreign_cert, .key = foreign_key,
                    .headers = steal};
  call(url, &c, &a);
  expect_error(&a, 403, "client_certificate_refused",
               "foreign certificate with a forged Client-Cert");

  proxy_stop(&px);
  rig_stop_linecert(&r);
  rig_cleanup(&r);
}

/* ---- direct mode: linecert terminates the mutual TLS -------------------------------- */

static void test_direct_mutual_tls(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  struct device_files f;
  provision(&r, &f);
  rig_stop_linecert(&r);

  char pki[300], srv_ca[400];
  snprintf(pki, sizeof(pki), "%s/pki", r.dir);
  CU_ASSERT_EQUAL_FATAL(mkdir(pki, 0700), 0);
  struct lc_pki_ca *ca = NULL, *foreign = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_pki_ca_new(pki, "server-ca", "gateway test CA",
                                      &ca), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_issue(ca, pki, "server", "localhost",
                                     LC_PKI_SERVER, NULL), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_ca_new(pki, "foreign-ca",
                                      "linecert operational issuing CA",
                                      &foreign), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_issue(foreign, pki, "foreign", DEVICE,
                                     LC_PKI_CLIENT, ""), LC_OK);
  snprintf(srv_ca, sizeof(srv_ca), "%s/server-ca.pem", pki);
  ca_file = srv_ca;
  uint16_t port;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  char gw[1024];
  snprintf(gw, sizeof(gw), "listen = 127.0.0.1:%u\nmode = direct\n"
           "tls_cert_file = %s/server.pem\ntls_key_file = %s/server.key\n",
           (unsigned)port, pki, pki);
  write_config(&r, gw);
  rig_start_linecert(&r, NULL);
  char base[64], url[160], foreign_cert[400], foreign_key[400];
  snprintf(base, sizeof(base), "https://127.0.0.1:%u", (unsigned)port);
  snprintf(url, sizeof(url), "%s" RENEW, base);
  snprintf(foreign_cert, sizeof(foreign_cert), "%s/foreign.pem", pki);
  snprintf(foreign_key, sizeof(foreign_key), "%s/foreign.key", pki);

  struct answer a;
  struct call c = {.method = "POST", .content_type = "application/json",
                   .body = "{\"csr\":\"x\"}"};
  call(url, &c, &a);
  expect_error(&a, 401, "no_client_certificate", "direct, no certificate");
  c.cert = foreign_cert;
  c.key = foreign_key;
  call(url, &c, &a);
  expect_error(&a, 403, "renew_foreign_ca", "direct, foreign CA");
  /* Identity headers mean nothing in direct mode. */
  char cc[4096];
  client_cert_header(f.boot_pem, cc, sizeof(cc));
  const char *forged[] = {"X-Client-Cert-Chain-Verified: true", cc, NULL};
  c = (struct call){.method = "POST", .content_type = "text/plain",
                    .body = "{}", .headers = forged};
  call(url, &c, &a);
  expect_error(&a, 401, "no_client_certificate", "direct, headers only");
  front_errors(base, f.boot_cert, f.boot_key);
  front_errors(base, f.op_cert, f.op_key);
  rig_stop_linecert(&r);

  /* Two years on (libfaketime moves linecert's clock): the operational
   * certificate has expired and is refused here; the bootstrap one is
   * still an identity. */
  static const char *const later[] = {
    "LD_PRELOAD=" LC_FAKETIME_LIB, "FAKETIME=+730d",
    "FAKETIME_DONT_FAKE_MONOTONIC=1",
    /* An ASan build: libfaketime is preloaded before ASan's runtime. */
    "ASAN_OPTIONS=verify_asan_link_order=0", NULL};
  r.linecert_env = later;
  rig_start_linecert(&r, NULL);
  c = (struct call){.method = "POST", .content_type = "text/plain",
                    .body = "{}", .cert = f.op_cert, .key = f.op_key};
  call(url, &c, &a);
  expect_error(&a, 403, "renew_expired", "operational, two years on");
  c.cert = f.boot_cert;
  c.key = f.boot_key;
  call(url, &c, &a);
  expect_error(&a, 400, "content_type", "bootstrap, two years on");
  rig_stop_linecert(&r);
  r.linecert_env = NULL;

  lc_pki_ca_free(foreign);
  lc_pki_ca_free(ca);
  ca_file = NULL;
  rig_cleanup(&r);
}


/* ---- renewal through nginx --------------------------------------------------------------- */

/* {"csr": PEM} of a fresh key's CSR with CN=cn; *key the key. */
static char *renew_body(const char *cn, EVP_PKEY **key)
{
  *key = EVP_EC_gen("P-256");
  CU_ASSERT_PTR_NOT_NULL_FATAL(*key);
  char *csr = ep_make_csr(cn, *key);
  json_t *j = json_pack("{s:s}", "csr", csr);
  char *body = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  free(csr);
  return body;
}

static json_t *answer_json(const struct answer *a)
{
  return json_loads(a->body, 0, NULL);
}

/* POST the body until the answer is not 202 (bounded); the last answer
 * in *a, and how many 202s came first. */
static int renew_until_done(const char *url, const struct call *c,
                            struct answer *a)
{
  int pending = 0;
  for(int i = 0; i < 50; i++) {
    call(url, c, a);
    if(a->status != 202)
      break;
    pending++;
    json_t *j = answer_json(a);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")),
                           "PENDING");
    json_decref(j);
    ep_nap_ms(100);
  }
  return pending;
}


/* The GCP load balancer's headers for a PEM certificate, without the
 * leaf: X-Client-Cert-Issuer (base64 DER name) and -Serial-Number (hex
 * with colons), into the two buffers. */
static void gcp_headers(const char *pem, char *issuer, char *serial,
                        size_t cap)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  unsigned char *der = NULL;
  int len = i2d_X509_NAME(X509_get_issuer_name(x), &der);
  char b64[1024];
  CU_ASSERT_FATAL(len > 0 && (size_t)(len + 2) / 3 * 4 < sizeof(b64));
  EVP_EncodeBlock((unsigned char *)b64, der, len);
  snprintf(issuer, cap, "X-Client-Cert-Issuer: %s", b64);
  const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
  size_t n = (size_t)snprintf(serial, cap, "X-Client-Cert-Serial-Number: ");
  for(int i = 0; i < sn->length && n + 4 < cap; i++)
    n += (size_t)snprintf(serial + n, cap - n, "%s%02X", i ? ":" : "",
                          sn->data[i]);
  OPENSSL_free(der);
  X509_free(x);
}

/* Item 3 of issue 11 end to end: behind nginx, the operational identity
 * reads /self and the trust bundle; the bootstrap identity renews and
 * nothing else (bootstrap_restricted); another device's certificate and
 * a revoked device are refused; two years on, with the operational
 * certificate expired, the bootstrap certificate renews it, and the same
 * POST again returns the same certificate. */
static void test_renew_through_nginx(void)
{
  struct rig r;
  rig_init(&r);
  uint16_t gw_port = start_proxied(&r);
  struct device_files f, g;
  provision_id(&r, &f, DEVICE);
  provision_id(&r, &g, "GW-0002");
  struct proxy px;
  proxy_start(&r, gw_port, &px);
  char url[160], self[160], bundle[160], other[160];
  snprintf(url, sizeof(url), "%s" RENEW, px.base);
  snprintf(self, sizeof(self), "%s" SELF, px.base);
  snprintf(bundle, sizeof(bundle), "%s/v1/devices/trust-bundle", px.base);
  snprintf(other, sizeof(other), "%s/v1/devices/anything", px.base);
  struct answer a;

  /* The operational identity. */
  struct call op = {.method = "GET", .cert = f.op_cert, .key = f.op_key};
  CU_ASSERT_EQUAL(call(self, &op, &a), 200);
  json_t *j = answer_json(&a);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "serial")),
                         DEVICE);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "state")),
                         "PROVISIONED");
  CU_ASSERT_TRUE(json_integer_value(json_object_get(
                   j, "operational_not_after")) > 0);
  CU_ASSERT_EQUAL(strlen(json_string_value(json_object_get(
                    j, "trust_bundle_sha256")) ?: ""), 64);
  json_decref(j);
  CU_ASSERT_EQUAL(call(bundle, &op, &a), 200);
  CU_ASSERT_PTR_NOT_NULL(strstr(a.body, "BEGIN CERTIFICATE"));
  call(other, &op, &a);
  expect_error(&a, 404, "not_found", "operational, unknown route");
  /* A load balancer that sends issuer and serial only (GCP's variables),
   * from the trusted address: the same certificate, found by serial. */
  char issuer[1200], serial[200], plain[160], op_pem[4096];
  snprintf(plain, sizeof(plain), "http://127.0.0.1:%u" SELF,
           (unsigned)gw_port);
  FILE *pf = fopen(f.op_cert, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(pf);
  size_t pl = fread(op_pem, 1, sizeof(op_pem) - 1, pf);
  op_pem[pl] = '\0';
  fclose(pf);
  gcp_headers(op_pem, issuer, serial, sizeof(issuer));
  const char *lb[] = {"X-Client-Cert-Chain-Verified: true", issuer, serial,
                      NULL};
  struct call hdr = {.method = "GET", .headers = lb, .iface = "127.0.0.1"};
  CU_ASSERT_EQUAL(call(plain, &hdr, &a), 200);
  CU_ASSERT_PTR_NOT_NULL(strstr(a.body, "\"serial\":\"" DEVICE "\""));

  /* The bootstrap identity: renewal only. */
  struct call boot = {.method = "GET", .cert = f.boot_cert,
                      .key = f.boot_key};
  call(self, &boot, &a);
  expect_error(&a, 403, "bootstrap_restricted", "bootstrap, /self");
  call(bundle, &boot, &a);
  expect_error(&a, 403, "bootstrap_restricted", "bootstrap, trust-bundle");
  call(other, &boot, &a);
  expect_error(&a, 403, "bootstrap_restricted", "bootstrap, other route");

  /* GW-0002's certificate asking for GW-0001's identity. */
  EVP_PKEY *k = NULL;
  char *body = renew_body(DEVICE, &k);
  struct call post = {.method = "POST", .content_type = "application/json",
                      .body = body, .cert = g.boot_cert, .key = g.boot_key};
  call(url, &post, &a);
  expect_error(&a, 403, "renew_other_device", "another device's certificate");
  free(body);
  EVP_PKEY_free(k);

  /* Renewal with the operational certificate (before it expires): 202
   * while the CA works, then 200; the replaced certificate may ask for
   * that result again, and for nothing else. */
  EVP_PKEY *kg = NULL;
  char *body_g = renew_body("GW-0002", &kg);
  struct call opg = {.method = "POST", .content_type = "application/json",
                     .body = body_g, .cert = g.op_cert, .key = g.op_key};
  renew_until_done(url, &opg, &a);
  CU_ASSERT_EQUAL(a.status, 200);
  j = answer_json(&a);
  const char *gpem = json_string_value(json_object_get(
                       j, "operational_certificate"));
  CU_ASSERT_TRUE(gpem && ep_cert_has_key(gpem, kg));
  json_decref(j);
  CU_ASSERT_EQUAL(call(url, &opg, &a), 200);
  EVP_PKEY *kg2 = NULL;
  char *body_g2 = renew_body("GW-0002", &kg2);
  opg.body = body_g2;
  call(url, &opg, &a);
  expect_error(&a, 403, "renew_unknown_cert", "replaced, a new renewal");
  struct call opg_self = {.method = "GET", .cert = g.op_cert,
                          .key = g.op_key};
  call(self, &opg_self, &a);
  expect_error(&a, 403, "renew_unknown_cert", "replaced, /self");
  free(body_g);
  free(body_g2);
  EVP_PKEY_free(kg);
  EVP_PKEY_free(kg2);

  /* A revoked device. */
  char out[400];
  snprintf(out, sizeof(out), "%s/cli.out", r.dir);
  const char *rev[] = {"revoke", LINE "/edge-G/GW-0002", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rev, out), 0);
  body = renew_body("GW-0002", &k);
  post.body = body;
  call(url, &post, &a);
  expect_error(&a, 403, "renew_revoked", "revoked device");
  free(body);
  EVP_PKEY_free(k);

  /* Two years on (linecert's clock; nginx still checks real time). */
  rig_stop_linecert(&r);
  rig_faketime(&r, 730);
  rig_start_linecert(&r, NULL);
  body = renew_body(DEVICE, &k);
  post = (struct call){.method = "POST", .content_type = "application/json",
                       .body = body, .cert = f.op_cert, .key = f.op_key};
  call(url, &post, &a);
  expect_error(&a, 403, "renew_expired", "expired operational certificate");
  post.cert = f.boot_cert;
  post.key = f.boot_key;
  renew_until_done(url, &post, &a);
  CU_ASSERT_EQUAL(a.status, 200);
  j = answer_json(&a);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")),
                         "ISSUED");
  const char *pem = json_string_value(json_object_get(j,
                                      "operational_certificate"));
  CU_ASSERT_TRUE(pem && ep_cert_has_key(pem, k));
  CU_ASSERT_PTR_NOT_NULL(json_string_value(json_object_get(
                           j, "certificate_chain")));
  char first[4096];
  snprintf(first, sizeof(first), "%s", pem ? pem : "");
  json_decref(j);
  /* The same POST again: the same certificate, no second one. */
  CU_ASSERT_EQUAL(call(url, &post, &a), 200);
  j = answer_json(&a);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                           j, "operational_certificate")), first);
  json_decref(j);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT renewals FROM devices WHERE "
                                     "device_id = '" DEVICE "'"), 1);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM certificate c "
                                     "JOIN devices d ON d.id = c.device_id "
                                     "WHERE d.device_id = '" DEVICE "' AND "
                                     "c.role = 'operational'"), 2);
  free(body);
  EVP_PKEY_free(k);
  /* Every refusal is in the audit log (bootstrap_restricted three times,
   * other device, replaced twice, revoked, expired). */
  CU_ASSERT_TRUE(rig_sql_number(&r, "SELECT count(*) FROM audit WHERE "
                                    "event = 'renew_rejected' AND details "
                                    "LIKE '%\"via\":\"gateway\"%'") == 8);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  proxy_stop(&px);
  rig_stop_linecert(&r);
  rig_faketime(&r, 0);
  rig_cleanup(&r);
}

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  static const struct lc_test tests[] = {
    {"proxy mode behind nginx (deploy/nginx as shipped): identity, "
     "forged headers, front errors", test_proxy_behind_nginx},
    {"direct mode: mutual TLS checked by linecert, two years on too",
     test_direct_mutual_tls},
    {"renewal through nginx: bootstrap_restricted, another device, revoked, "
     "two years on the bootstrap certificate renews, same POST same "
     "certificate", test_renew_through_nginx},
    {NULL, NULL}};
  static const struct lc_suite suites[] = {
    {"gateway", NULL, NULL, tests}, {NULL, NULL, NULL, NULL}};
  int rc = lc_cunit_run(suites);
  curl_global_cleanup();
  return rc;
}
