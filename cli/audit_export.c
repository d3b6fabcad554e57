/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert audit export` and `linecert audit prove`: the log (or a
 * selection, or one device's records as a receipt) with its keys, a
 * fresh signed checkpoint, proofs and a signed manifest (docs/audit.md
 * §14-§15). The audit library does the work (aud_log_scan(),
 * aud_log_export()); here are the options, the output file and the
 * operator's messages.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/lc_mem.h"
#include "common/lc_util.h"

#define PROGRESS_MIN 10000          /* records before progress is shown */

struct export_job {
  enum aud_export_kind kind;
  const struct aud_filter *filter;   /* NULL for complete */
  const char *serial;                /* --serial: the device's records */
};

/* What one export holds while it runs. */
struct export_run {
  struct sm_store *st;
  const struct aud_log *log;
  struct aud_signer *signer;
  struct aud_scan s;
  char origin[AUD_ORIGIN_MAX];
  char *cp_note, *ext_note;
  struct aud_proof ext;
  uint64_t next_progress_ms;
  struct aud_filter by_serial;       /* job->filter with the device */
  char device[3 * (SM_ID_MAX + 1)];   /* that device's G/E/D */
};

static void show_progress(void *ctx, uint64_t written, uint64_t total,
                          bool last)
{
  struct export_run *r = ctx;
  uint64_t now = lc_mono_ms();
  if(!last && now < r->next_progress_ms)
    return;
  r->next_progress_ms = now + 1000;
  fprintf(stderr, "export: %" PRIu64 "/%" PRIu64 " records (%d%%)\n",
          written, total, total ? (int)(written * 100 / total) : 100);
}

/* --extends FILE, else the last exported checkpoint smaller than ours. */
static int find_extends(const struct cli_audit_args *a, struct export_run *r)
{
  uint64_t prev_size = 0;
  lc_err err;
  r->ext_note = NULL;
  if(a->extends) {
    int rc = cli__read_or_complain("--extends", a->extends, &r->ext_note);
    if(rc)
      return rc;
    err = aud_scan_extends(&r->s, r->origin, r->ext_note, &r->ext,
                           &prev_size);
  } else {
    err = aud_scan_extends_exported(r->log, &r->s, r->origin, &r->ext_note,
                                    &r->ext, &prev_size);
  }
  if(err == LC_EPROTO)
    fprintf(stderr, "linecert audit: --extends: not a checkpoint of this "
            "log\n");
  else if(err == LC_EVERIFY)
    fprintf(stderr, "linecert audit: the log does not extend the checkpoint "
            "of tree size %" PRIu64 ": it was changed or cut\n", prev_size);
  return err == LC_OK ? 0 : CLI_EXIT_FAIL;
}

static int open_output(const char *path, FILE **out)
{
  if(!path) {
    *out = stdout;
    return 0;
  }
  *out = fopen(path, "w");
  if(*out)
    return 0;
  fprintf(stderr, "linecert audit: cannot write %s: %s\n", path,
          strerror(errno));
  return CLI_EXIT_FAIL;
}

static int close_output(const char *path, FILE *f, bool ok)
{
  if(!path)
    return fflush(f) == 0 && ok ? 0 : CLI_EXIT_FAIL;
  ok = fclose(f) == 0 && ok;
  /* Leave no half export behind; never remove what is not a plain file
   * (-o /dev/stdout, a FIFO). */
  struct stat sb;
  if(!ok && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
    remove(path);
  return ok ? 0 : CLI_EXIT_FAIL;
}

static int write_export(const struct cli_audit_args *a, struct export_run *r,
                        const struct export_job *job)
{
  struct aud_log_export x = {
    .kind = job->kind, .format = a->format, .filter = job->filter,
    .exported_at_ms = lc_now_ms(), .checkpoint = r->cp_note,
    .extends = r->ext_note, .extends_proof = &r->ext,
    .progress = !a->quiet && r->s.selected >= PROGRESS_MIN ? show_progress
                                                           : NULL,
    .progress_ctx = r};
  FILE *f = NULL;
  int rc = open_output(a->output, &f);
  if(rc)
    return rc;
  lc_err err = aud_log_export(r->log, r->signer, &r->s, &x, f);
  if(err != LC_OK) {
    if(x.detail == LC_EINVAL)
      fprintf(stderr, "linecert audit: record %" PRIu64 ": a text field is "
              "not UTF-8; use --format csv\n", x.at_seq);
    else
      fprintf(stderr, "linecert audit: export failed (%s)\n",
              lc_strerror(err));
  }
  rc = close_output(a->output, f, err == LC_OK);
  if(rc == 0 && !a->quiet)
    fprintf(stderr, "export: %s, %" PRIu64 " records, tree size %" PRIu64
            "%s%s\n", aud_export_kind_name(job->kind), x.written,
            aud_merkle_size(r->s.tree), a->output ? " -> " : "",
            a->output ? a->output : "");
  return rc;
}

/* The signer holds the key in force, the log is not empty, and its
 * origin is known. */
static int export_ready(const struct cli_audit_args *a, struct export_run *r,
                        struct aud_chain *tail)
{
  int rc = cli__open_log_signer(a, r->log, &r->signer);
  if(!rc && (sm_store_audit_tail(r->st, tail) != LC_OK ||
             tail->last_seq == 0)) {
    fprintf(stderr, "linecert audit: the audit log is empty\n");
    rc = CLI_EXIT_FAIL;
  }
  if(!rc && aud_log_origin(r->log, r->origin) != LC_OK)
    rc = CLI_EXIT_FAIL;
  return rc;
}

/* --serial SN: the device the store bound that serial to when it was
 * admitted (identity_claim), whatever path it has. Its records are the
 * job's selection. */
static int resolve_serial(struct export_run *r, struct export_job *job)
{
  struct sm_device *dev = NULL;
  lc_err err = sm_store_find_serial(r->st, job->serial, &dev);
  if(err != LC_OK) {
    if(err == LC_ENOTFOUND)
      fprintf(stderr, "linecert audit: no device was admitted with serial "
              "%s\n", job->serial);
    else
      fprintf(stderr, "linecert audit: cannot read the store (%s)\n",
              lc_strerror(err));
    return CLI_EXIT_FAIL;
  }
  sm_device_key(dev, r->device, sizeof(r->device));
  sm_device_free(dev);
  r->by_serial = *job->filter;
  r->by_serial.device = r->device;
  job->filter = &r->by_serial;
  return 0;
}

static int export_steps(const struct cli_audit_args *a, struct export_run *r,
                        struct export_job *job)
{
  struct aud_chain tail;
  int rc = job->serial ? resolve_serial(r, job) : 0;
  if(!rc)
    rc = export_ready(a, r, &tail);
  if(!rc)
    rc = cli__scan(r->log, tail.last_seq, job->filter, &r->s);
  if(!rc)
    rc = cli__check_stored_checkpoint(r->log, &r->s);
  if(!rc && job->kind == AUD_EXPORT_RECEIPT &&
     r->s.selected == r->s.n_keys - 1) {
    fprintf(stderr, "linecert audit: no records for device %s\n",
            job->filter->device);
    rc = CLI_EXIT_FAIL;
  }
  if(!rc)
    rc = find_extends(a, r);
  if(!rc)
    rc = cli__checkpoint_now(&a->cfg, r->log, r->signer, r->origin, &r->s,
                             &r->cp_note);
  if(!rc)
    rc = write_export(a, r, job);
  if(!rc && a->checkpoint_out)
    rc = cli__write_text(a->checkpoint_out, r->cp_note);
  return rc;
}

static int run_export(const struct cli_audit_args *a, struct export_job *job)
{
  struct export_run r;
  memset(&r, 0, sizeof(r));
  int rc = cli__audit_store(a, SM_STORE_RW, &r.st);
  if(!rc) {
    r.log = sm_store_audit_log(r.st);
    rc = export_steps(a, &r, job);
  }
  lc_free(r.cp_note);
  lc_free(r.ext_note);
  aud_scan_free(&r.s);
  aud_signer_free(r.signer);
  sm_store_close(r.st);
  return rc;
}

int cli__audit_export(const struct cli_audit_args *a)
{
  if(a->npos)
    return cli__usage_error("export takes no argument (-o FILE)", NULL);
  struct export_job job = {.kind = a->filtered ? AUD_EXPORT_FILTERED
                                               : AUD_EXPORT_COMPLETE,
                           .filter = a->filtered ? &a->filter : NULL,
                           .serial = a->serial};
  return run_export(a, &job);
}

int cli__audit_prove(const struct cli_audit_args *a)
{
  if((!a->filter.device && !a->serial) || a->filter.line ||
     a->filter.from_seq || a->filter.to_seq || a->filter.since_ms ||
     a->filter.until_ms)
    return cli__usage_error("prove takes --device G/E/D or --serial SN "
                            "only", NULL);
  struct export_job job = {.kind = AUD_EXPORT_RECEIPT, .filter = &a->filter,
                           .serial = a->serial};
  return run_export(a, &job);
}
