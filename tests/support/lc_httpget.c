/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/support/lc_httpget.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (4u << 20)

struct body {
  char *p;
  size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *u)
{
  struct body *b = u;
  size_t add = sz * nm;
  if(b->n + add > BODY_MAX)
    return 0; /* curl fails the transfer */
  char *q = realloc(b->p, b->n + add + 1);
  if(!q)
    return 0;
  memcpy(q + b->n, d, add);
  b->p = q;
  b->n += add;
  b->p[b->n] = '\0';
  return add;
}

long lc_http_request(const char *url, const char *post_body, char **body)
{
  if(body)
    *body = NULL;
  CURL *c = curl_easy_init();
  if(!c)
    return 0;
  struct body b = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  if(post_body)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body);
  long status = 0;
  if(curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if(status && body) {
    /* An empty answer is an empty string, not NULL. */
    *body = b.p ? b.p : calloc(1, 1);
    b.p = NULL;
  }
  free(b.p);
  if(body && !*body)
    return 0; /* no answer, or no memory for an empty one */
  return status;
}
