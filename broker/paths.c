/* SPDX-License-Identifier: Apache-2.0
 *
 * Where each file of the data directory lives (brk.h: brk_path_*): one
 * place for the layout the service, the operator commands and the
 * witness thread all open.
 */
#include "broker/brk_int.h"

#include <stdio.h>

static void data_path(const struct brk_config *cfg, const char *rel,
                      char *buf, size_t cap)
{
  snprintf(buf, cap, "%s/%s", cfg->data_dir, rel);
}

void brk_path_db(const struct brk_config *cfg, char *buf, size_t cap)
{
  data_path(cfg, "linecert.db", buf, cap);
}

void brk_path_ca(const struct brk_config *cfg, char *buf, size_t cap)
{
  data_path(cfg, "ca", buf, cap);
}

void brk_path_audit_key(const struct brk_config *cfg, char *buf, size_t cap)
{
  data_path(cfg, "audit/audit-key.pem", buf, cap);
}

void brk_path_audit_pub(const struct brk_config *cfg, char *buf, size_t cap)
{
  data_path(cfg, "audit/audit-pub.pem", buf, cap);
}

void brk_path_audit_ed25519_key(const struct brk_config *cfg, char *buf,
                                size_t cap)
{
  if(cfg->ed25519_key_file[0])
    snprintf(buf, cap, "%s", cfg->ed25519_key_file);
  else
    data_path(cfg, "audit/audit-ed25519-key.pem", buf, cap);
}
