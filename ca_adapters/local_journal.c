/* SPDX-License-Identifier: Apache-2.0
 *
 * The local CA's issuance journal: its own record of every certificate it
 * signed, so that it never signs twice for one request key (DESIGN §3:
 * the key is "looked up before any re-issue").
 *
 *   issued.jsonl  append-only, one JSON object per line, one write() with
 *                 O_APPEND per certificate, before submit() returns it:
 *                 {"cert":PEM,"fpr":hex,"issued_at":s,"key":request_key,
 *                  "not_after":s,"role":name,"serial":hex}
 *   issued.idx    an index of it on disk, rebuilt from the journal
 *                 whenever it is missing or damaged.
 *
 * Why an index on disk. A store of 1,000,000 devices has 2,000,000 keys;
 * a table of them in memory would take tens of MB of a 100 MB budget, and
 * reading the whole journal (about 1 KB a line) at every start would take
 * seconds to minutes. The index is an open-addressing hash table in a
 * file, read and written with pread/pwrite (never mapped: its pages are
 * the kernel's cache, not our RSS): a 64-byte header, then `cap` slots of
 * 16 bytes {tag, offset + 1}, tag = the first 8 bytes of SHA-256(key)
 * (never 0: 0 marks a free slot), linear probing, load at most 1/2 (the
 * file is rebuilt twice as large beyond). A tag is only a hint: a hit
 * reads the journal line it points at and compares the whole key, so
 * lookups are exact.
 *
 * Crash safety. The journal line is the commit of an issuance: it is
 * written before the index, and the index is brought up to date from the
 * journal at open. The header's `covered` offset says how much of the
 * journal the index holds for sure; open re-reads the journal from there
 * (entries already present are found and skipped). `covered` advances
 * after an fdatasync of the index, every JOURNAL_COVER_EVERY entries and
 * at close, so a power loss cannot leave a header ahead of its slots, and
 * the re-read at open is at most that many lines. A torn last line (a
 * power loss during the append: SIGKILL cannot tear a write()) is cut
 * off at open: its certificate was never returned, because...
 * ca__journal_sync() (fdatasync of the journal) runs before the store
 * commits a certificate, so a committed certificate's line is on disk.
 *
 * Threads: one mutex around lookups and appends; the signature itself is
 * made outside it. One process: the data directory lock (broker/) keeps
 * a second `linecert serve` away.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_crypto.h"
#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_FILE "issued.jsonl"
#define INDEX_FILE "issued.idx"
#define INDEX_TMP "issued.idx.tmp"
#define LINE_MAX_BYTES (32u * 1024u)  /* a leaf PEM is about 1 KB */
#define HDR_SIZE 64u
#define SLOT_SIZE 16u
#define CAP_MIN 1024u
#define JOURNAL_COVER_EVERY 1024u
static const char IDX_MAGIC[8] = {'L', 'C', 'J', 'I', 'D', 'X', '1', '\n'};
static const uint64_t BYTE_ORDER_MARK = 0x0102030405060708ull;

struct ca__journal {
  pthread_mutex_t mu;
  char *dir;
  int fd;                 /* issued.jsonl, O_RDWR | O_APPEND */
  int idx;                /* issued.idx */
  uint64_t cap, count;    /* index slots, used slots */
  uint64_t end;           /* journal size: where the next line goes */
  uint64_t covered;       /* the index holds every line before this */
  uint64_t synced;        /* the journal is durable up to here */
  unsigned since_cover;   /* entries since `covered` last advanced */
  bool broken;            /* a line written but not indexed: no more
                             issuance until it is re-read (repair()) */
};

struct idx_hdr {
  char magic[8];
  uint64_t bom, cap, count, covered;
  uint8_t pad[HDR_SIZE - 40];
};

static lc_err io_fail(const char *op, const char *dir, const char *file)
{
  char buf[128];
  int e = errno;
  if(strerror_r(e, buf, sizeof(buf)) != 0)
    snprintf(buf, sizeof(buf), "errno %d", e);
  lc_log(LC_ERROR, "ca", "ca=local op=%s dir=%s file=%s err=\"%s\"", op, dir,
         file, buf);
  return LC_EIO;
}

static uint64_t key_tag(const char *key)
{
  uint8_t h[LC_SHA256_LEN];
  uint64_t t = 0;
  if(lc_sha256(key, strlen(key), h) == LC_OK)
    memcpy(&t, h, sizeof(t));
  return t ? t : 1;                   /* 0 is a free slot */
}

/* ---- journal lines -------------------------------------------------- */

/* The line at `off` (without its newline) into buf of LINE_MAX_BYTES + 1;
 * *len = its length. LC_EPROTO when no newline ends it within the cap. */
static lc_err read_line(struct ca__journal *j, uint64_t off, char *buf,
                        size_t *len)
{
  ssize_t n = pread(j->fd, buf, LINE_MAX_BYTES, (off_t)off);
  if(n < 0)
    return io_fail("journal_read", j->dir, JOURNAL_FILE);
  char *nl = memchr(buf, '\n', (size_t)n);
  if(!nl)
    return LC_EPROTO;
  *nl = '\0';
  *len = (size_t)(nl - buf);
  return LC_OK;
}

/* Does the line at `off` hold `key`? Its parsed object in *obj when it
 * does (the caller json_decref()s it), when obj is not NULL. */
static lc_err line_has_key(struct ca__journal *j, uint64_t off,
                           const char *key, bool *match, json_t **obj)
{
  char *buf = lc_malloc(LINE_MAX_BYTES + 1);
  if(!buf)
    return LC_ENOMEM;
  size_t len = 0;
  lc_err rc = read_line(j, off, buf, &len);
  json_t *o = rc == LC_OK ? json_loadb(buf, len, 0, NULL) : NULL;
  lc_free(buf);
  if(rc != LC_OK)
    return rc;
  const char *k = json_string_value(json_object_get(o, "key"));
  if(!k) {
    json_decref(o);
    lc_log(LC_ERROR, "ca", "ca=local op=journal_read dir=%s offset=%llu "
           "msg=\"not a journal entry\"", j->dir, (unsigned long long)off);
    return LC_EPROTO;
  }
  *match = strcmp(k, key) == 0;
  if(*match && obj)
    *obj = o;
  else
    json_decref(o);
  return LC_OK;
}

/* ---- the index ----------------------------------------------------------- */

static lc_err slot_read(int fd, uint64_t i, uint64_t s[2])
{
  ssize_t n = pread(fd, s, SLOT_SIZE, (off_t)(HDR_SIZE + i * SLOT_SIZE));
  if(n == 0 || (n > 0 && (size_t)n < SLOT_SIZE)) {
    s[0] = s[1] = 0;                  /* past a short file: free */
    return LC_OK;
  }
  return n == SLOT_SIZE ? LC_OK : LC_EIO;
}

static lc_err slot_write(int fd, uint64_t i, uint64_t tag, uint64_t off)
{
  uint64_t s[2] = {tag, off + 1};
  ssize_t n = pwrite(fd, s, SLOT_SIZE, (off_t)(HDR_SIZE + i * SLOT_SIZE));
  return n == SLOT_SIZE ? LC_OK : LC_EIO;
}

static lc_err hdr_write(int fd, uint64_t cap, uint64_t count,
                        uint64_t covered)
{
  struct idx_hdr h;
  memset(&h, 0, sizeof(h));
  memcpy(h.magic, IDX_MAGIC, sizeof(h.magic));
  h.bom = BYTE_ORDER_MARK;
  h.cap = cap;
  h.count = count;
  h.covered = covered;
  return pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) ? LC_OK : LC_EIO;
}

/* Find `key`: *off = its line's offset, or UINT64_MAX with *free_slot the
 * slot where it would go. */
static lc_err idx_find(struct ca__journal *j, const char *key, uint64_t tag,
                       uint64_t *off, uint64_t *free_slot, json_t **obj)
{
  for(uint64_t n = 0, i = tag & (j->cap - 1); n < j->cap;
      n++, i = (i + 1) & (j->cap - 1)) {
    uint64_t s[2];
    if(slot_read(j->idx, i, s) != LC_OK)
      return io_fail("index_read", j->dir, INDEX_FILE);
    if(s[0] == 0) {
      *off = UINT64_MAX;
      *free_slot = i;
      return LC_OK;
    }
    if(s[0] != tag)
      continue;
    bool match = false;
    lc_err rc = line_has_key(j, s[1] - 1, key, &match, obj);
    if(rc != LC_OK)
      return rc;
    if(match) {
      *off = s[1] - 1;
      return LC_OK;
    }
  }
  /* Full: the load is kept at 1/2, so the count was wrong. */
  lc_log(LC_ERROR, "ca", "ca=local op=index_full dir=%s file=%s slots=%llu "
         "msg=\"delete it: the next start rebuilds it from the journal\"",
         j->dir, INDEX_FILE, (unsigned long long)j->cap);
  return LC_EIO;
}

/* A table of `cap` slots in INDEX_TMP holding every slot of the current
 * one, renamed over INDEX_FILE. Keys are distinct: no comparisons. */
static lc_err idx_grow(struct ca__journal *j, uint64_t cap)
{
  char *tmp = ca__path(j->dir, INDEX_TMP), *path = ca__path(j->dir,
                                                            INDEX_FILE);
  int fd = -1;
  lc_err rc = tmp && path ? LC_OK : LC_ENOMEM;
  if(rc == LC_OK) {
    (void)unlink(tmp);
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if(fd < 0 || ftruncate(fd, (off_t)(HDR_SIZE + cap * SLOT_SIZE)) != 0)
      rc = io_fail("index_grow", j->dir, INDEX_TMP);
  }
  uint64_t used = 0;                  /* counted again, exactly */
  for(uint64_t i = 0; rc == LC_OK && j->idx >= 0 && i < j->cap; i++) {
    uint64_t s[2], t[2];
    if(slot_read(j->idx, i, s) != LC_OK) {
      rc = io_fail("index_read", j->dir, INDEX_FILE);
      break;
    }
    if(s[0] == 0)
      continue;
    uint64_t k = s[0] & (cap - 1);
    for(;;) {
      if(slot_read(fd, k, t) != LC_OK) {
        rc = io_fail("index_read", j->dir, INDEX_TMP);
        break;
      }
      if(t[0] == 0)
        break;
      k = (k + 1) & (cap - 1);
    }
    if(rc == LC_OK && slot_write(fd, k, s[0], s[1] - 1) != LC_OK)
      rc = io_fail("index_write", j->dir, INDEX_TMP);
    used++;
  }
  if(rc == LC_OK && (hdr_write(fd, cap, used, j->covered) != LC_OK ||
                     fdatasync(fd) != 0 || rename(tmp, path) != 0))
    rc = io_fail("index_grow", j->dir, INDEX_FILE);
  if(rc == LC_OK) {
    if(j->idx >= 0)
      close(j->idx);
    j->idx = fd;
    j->cap = cap;
    j->count = used;
    fd = -1;
  }
  if(fd >= 0) {
    close(fd);
    (void)unlink(tmp);
  }
  lc_free(tmp);
  lc_free(path);
  return rc;
}

/* Index the line at `off` under `key`, unless it is there already.
 * `count` is how the entry counts toward the load: always for a line
 * the header does not cover (a process killed after indexing it left
 * the slot but not the count), else only when inserted. */
static lc_err idx_add(struct ca__journal *j, const char *key, uint64_t off,
                      bool count_always)
{
  if((j->count + 1) * 2 > j->cap) {
    lc_err rc = idx_grow(j, j->cap * 2);
    if(rc != LC_OK)
      return rc;
  }
  uint64_t tag = key_tag(key), found = 0, slot = 0;
  lc_err rc = idx_find(j, key, tag, &found, &slot, NULL);
  if(rc == LC_OK && found != UINT64_MAX && count_always)
    j->count++;
  if(rc != LC_OK || found != UINT64_MAX)
    return rc;
  if(slot_write(j->idx, slot, tag, off) != LC_OK)
    return io_fail("index_write", j->dir, INDEX_FILE);
  j->count++;
  return LC_OK;
}

/* `covered` = end, once the slots that back it are on disk. */
static lc_err idx_cover(struct ca__journal *j)
{
  if(fdatasync(j->idx) != 0)
    return io_fail("index_sync", j->dir, INDEX_FILE);
  if(hdr_write(j->idx, j->cap, j->count, j->end) != LC_OK)
    return io_fail("index_write", j->dir, INDEX_FILE);
  j->covered = j->end;
  j->since_cover = 0;
  return LC_OK;
}

/* ---- open ---------------------------------------------------------------- */

/* The index as found, or a new empty one (then the whole journal is read
 * again) when it is missing, foreign or inconsistent. */
static lc_err idx_open(struct ca__journal *j)
{
  char *path = ca__path(j->dir, INDEX_FILE);
  if(!path)
    return LC_ENOMEM;
  j->idx = open(path, O_RDWR | O_CLOEXEC);
  lc_free(path);
  struct idx_hdr h;
  struct stat st;
  if(j->idx >= 0 && pread(j->idx, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
     fstat(j->idx, &st) == 0 && !memcmp(h.magic, IDX_MAGIC, sizeof(h.magic)) &&
     h.bom == BYTE_ORDER_MARK && h.cap >= CAP_MIN && !(h.cap & (h.cap - 1)) &&
     h.count * 2 <= h.cap && h.covered <= j->end &&
     (uint64_t)st.st_size <= HDR_SIZE + h.cap * SLOT_SIZE) {
    j->cap = h.cap;
    j->count = h.count;
    j->covered = h.covered;
    return LC_OK;
  }
  if(j->idx >= 0) {
    lc_log(LC_WARN, "ca", "ca=local op=index_rebuild dir=%s file=%s",
           j->dir, INDEX_FILE);
    close(j->idx);
    j->idx = -1;
  }
  j->count = 0;
  j->covered = 0;
  return idx_grow(j, CAP_MIN);
}

/* Index every line from `covered` on; cut a torn last line. At open,
 * `count_always`: a line the header does not cover may sit in a slot a
 * killed process wrote without counting it. In a running process the
 * count is exact, and only the line whose indexing failed is missing
 * (repair()). */
static lc_err journal_catch_up(struct ca__journal *j, bool count_always)
{
  char *buf = lc_malloc(LINE_MAX_BYTES + 1);
  if(!buf)
    return LC_ENOMEM;
  lc_err rc = LC_OK;
  uint64_t off = j->covered;
  unsigned added = 0;
  while(rc == LC_OK && off < j->end) {
    size_t len = 0;
    rc = read_line(j, off, buf, &len);
    if(rc == LC_EPROTO && j->end - off < LINE_MAX_BYTES) {
      lc_log(LC_WARN, "ca", "ca=local op=journal_torn dir=%s offset=%llu "
             "bytes=%llu msg=\"an append cut short by a power loss: never "
             "returned, removed\"", j->dir, (unsigned long long)off,
             (unsigned long long)(j->end - off));
      if(ftruncate(j->fd, (off_t)off) != 0)
        rc = io_fail("journal_truncate", j->dir, JOURNAL_FILE);
      else {
        j->end = off;
        rc = LC_OK;
      }
      break;
    }
    if(rc == LC_EPROTO)
      lc_log(LC_ERROR, "ca", "ca=local op=journal_read dir=%s offset=%llu "
             "msg=\"a line longer than %u bytes: restore %s from backup\"",
             j->dir, (unsigned long long)off, LINE_MAX_BYTES, JOURNAL_FILE);
    json_t *o = rc == LC_OK ? json_loadb(buf, len, 0, NULL) : NULL;
    const char *key = json_string_value(json_object_get(o, "key"));
    if(rc == LC_OK && !key) {
      lc_log(LC_ERROR, "ca", "ca=local op=journal_read dir=%s offset=%llu "
             "msg=\"not a journal entry: restore %s from backup\"", j->dir,
             (unsigned long long)off, JOURNAL_FILE);
      rc = LC_EIO;
    }
    if(rc == LC_OK && key[0])
      rc = idx_add(j, key, off, count_always);
    json_decref(o);
    off += len + 1;
    added++;
  }
  lc_free(buf);
  if(rc == LC_OK && added)
    rc = idx_cover(j);
  if(rc == LC_OK && added)
    lc_log(LC_INFO, "ca", "ca=local op=%s dir=%s reread=%u",
           count_always ? "journal_open" : "journal_repair", j->dir, added);
  return rc;
}

/* A line written but not indexed (the index could not grow: a full
 * disk) stops issuance, or its key could be signed for twice. Each call
 * tries the re-read a restart would do; once the disk takes it again,
 * issuance goes on without a restart. Under j->mu. */
static lc_err repair(struct ca__journal *j)
{
  if(!j->broken)
    return LC_OK;
  /* The re-read moves `covered` to the end: the lines it covers go to
   * disk first, as before every idx_cover(). */
  if(fdatasync(j->fd) != 0)
    return io_fail("journal_sync", j->dir, JOURNAL_FILE);
  j->synced = j->end;
  if(journal_catch_up(j, false) != LC_OK)
    return LC_EIO;
  j->broken = false;
  return LC_OK;
}

lc_err ca__journal_open(const char *dir, struct ca__journal **out)
{
  struct ca__journal *j = lc_calloc(1, sizeof(*j));
  if(!j)
    return LC_ENOMEM;
  pthread_mutex_init(&j->mu, NULL);
  j->fd = j->idx = -1;
  j->dir = lc_strdup(dir);
  char *path = j->dir ? ca__path(dir, JOURNAL_FILE) : NULL;
  lc_err rc = path ? LC_OK : LC_ENOMEM;
  struct stat st;
  if(rc == LC_OK) {
    j->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if(j->fd < 0 || fstat(j->fd, &st) != 0)
      rc = io_fail("journal_open", dir, JOURNAL_FILE);
    else
      j->end = j->synced = (uint64_t)st.st_size;
  }
  lc_free(path);
  if(rc == LC_OK)
    rc = idx_open(j);
  if(rc == LC_OK)
    rc = journal_catch_up(j, true);
  if(rc != LC_OK) {
    ca__journal_close(j);
    return rc;
  }
  *out = j;
  return LC_OK;
}

void ca__journal_close(struct ca__journal *j)
{
  if(!j)
    return;
  if(j->idx >= 0 && j->fd >= 0 && j->since_cover &&
     fdatasync(j->fd) == 0 && idx_cover(j) != LC_OK)
    lc_log(LC_WARN, "ca", "ca=local op=journal_close dir=%s msg=\"index "
           "re-read at the next start\"", j->dir);
  if(j->idx >= 0)
    close(j->idx);
  if(j->fd >= 0)
    close(j->fd);
  pthread_mutex_destroy(&j->mu);
  lc_free(j->dir);
  lc_free(j);
}

/* ---- lookups and appends ----------------------------------------------- */

static lc_err entry_to_result(json_t *o, struct ca_result *res)
{
  const char *cert = json_string_value(json_object_get(o, "cert"));
  const char *serial = json_string_value(json_object_get(o, "serial"));
  if(!cert || !serial || !lc_strlcpy(res->serial_hex, serial,
                                     sizeof(res->serial_hex)))
    return LC_EPROTO;
  if(!(res->cert_pem = lc_strdup(cert)))
    return LC_ENOMEM;
  res->status = CA_ISSUED;
  return LC_OK;
}

lc_err ca__journal_find(struct ca__journal *j, const char *key,
                        enum ca_role role, struct ca_result *res, bool *found)
{
  *found = false;
  json_t *o = NULL;
  uint64_t off = 0, slot = 0;
  pthread_mutex_lock(&j->mu);
  lc_err rc = repair(j);
  if(rc == LC_OK)
    rc = idx_find(j, key, key_tag(key), &off, &slot, &o);
  pthread_mutex_unlock(&j->mu);
  if(rc != LC_OK || off == UINT64_MAX)
    return rc;
  const char *r = json_string_value(json_object_get(o, "role"));
  if(!r || strcmp(r, ca_role_name(role)) != 0) {
    /* A key names one role (sm_request_key()): not ours to return. */
    res->status = CA_REJECTED;
    lc_strlcpy(res->reason, "request_key_reused", sizeof(res->reason));
    *found = true;
  } else {
    rc = entry_to_result(o, res);
    *found = rc == LC_OK;
  }
  json_decref(o);
  return rc;
}

lc_err ca__journal_append(struct ca__journal *j, const char *key,
                          enum ca_role role, const char *cert_pem,
                          const char *serial, const char *fpr,
                          int64_t not_after, int64_t issued_at)
{
  json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:I, s:s, s:s}", "cert",
                        cert_pem, "fpr", fpr, "issued_at",
                        (json_int_t)issued_at, "key", key, "not_after",
                        (json_int_t)not_after, "role", ca_role_name(role),
                        "serial", serial);
  char *line = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  if(!line)
    return LC_ENOMEM;
  size_t len = strlen(line);
  lc_err rc = LC_OK;
  if(len >= LINE_MAX_BYTES) {
    free(line);
    return LC_ETOOBIG;
  }
  line[len] = '\n';                    /* over the NUL: one write() */
  pthread_mutex_lock(&j->mu);
  bool broken = repair(j) != LC_OK;
  ssize_t n = broken ? 0 : write(j->fd, line, len + 1);
  if(broken) {
    rc = LC_EIO;
  } else if(n != (ssize_t)(len + 1)) {
    rc = io_fail("journal_append", j->dir, JOURNAL_FILE);
    /* A short write (disk full) leaves part of a line: take it back, so
     * the next entry starts a line. The certificate is not returned. */
    if(n > 0 && ftruncate(j->fd, (off_t)j->end) != 0)
      lc_log(LC_ERROR, "ca", "ca=local op=journal_truncate dir=%s",
             j->dir);
  }
  uint64_t off = j->end;
  if(rc == LC_OK) {
    j->end += len + 1;
    rc = key[0] ? idx_add(j, key, off, false) : LC_OK;
    if(rc != LC_OK)
      j->broken = true;
  }
  if(rc == LC_OK && ++j->since_cover >= JOURNAL_COVER_EVERY &&
     fdatasync(j->fd) == 0) {
    j->synced = j->end;
    if(idx_cover(j) != LC_OK)
      j->since_cover = 0;             /* logged; the next start re-reads */
  }
  pthread_mutex_unlock(&j->mu);
  free(line);                         /* jansson's allocator */
  return rc;
}

lc_err ca__journal_sync(struct ca__journal *j)
{
  pthread_mutex_lock(&j->mu);
  uint64_t end = j->end;
  bool due = j->synced < end;
  pthread_mutex_unlock(&j->mu);
  if(!due)
    return LC_OK;
  /* Outside the lock: workers keep appending while the disk flushes. */
  if(fdatasync(j->fd) != 0)
    return io_fail("journal_sync", j->dir, JOURNAL_FILE);
  pthread_mutex_lock(&j->mu);
  if(j->synced < end)
    j->synced = end;
  pthread_mutex_unlock(&j->mu);
  return LC_OK;
}
