/* SPDX-License-Identifier: Apache-2.0
 *
 * Sparkplug B 3.0: topic parse and build, payload encode and decode.
 *
 * No I/O, no MQTT library, no clock. Decoding is bounded: an input over
 * SPB_PAYLOAD_MAX bytes is refused before nanopb sees it, a pre-scan
 * bounds nesting depth and metric count (see "Further decode limits"
 * below), and nanopb allocates only what the input holds (FT_POINTER
 * fields, proto/sparkplug_b.options).
 *
 * Identifiers (group, edge node, device, host id) are UTF-8 without '+',
 * '/', '#', controls, spaces, format or other invisible characters,
 * 1..SPB_ID_MAX bytes (tck-id-topic-structure-namespace-valid-group-id
 * and siblings, narrowed by common/lc_ident.h LC_IDENT_UTF8). The parser
 * enforces that; builders refuse invalid ids too, so linecert can never
 * publish on a topic that reaches another device. A stricter policy
 * (LC_IDENT_ASCII) is the caller's to apply: spb_id_valid_policy().
 */
#ifndef LC_SPB_H
#define LC_SPB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/lc_err.h"
#include "common/lc_ident.h"

#define SPB_NAMESPACE "spBv1.0"
#define SPB_ID_MAX 64             /* bytes, per identifier */
#define SPB_TOPIC_MAX 256         /* bytes, whole topic incl. NUL */
#define SPB_PAYLOAD_MAX (256 * 1024)
#define SPB_METRICS_MAX 1024      /* metrics per payload */

enum spb_msg_type {
  SPB_NBIRTH, SPB_NDEATH, SPB_DBIRTH, SPB_DDEATH, SPB_NDATA, SPB_DDATA,
  SPB_NCMD, SPB_DCMD, SPB_STATE
};

struct spb_topic {
  enum spb_msg_type type;
  char group[SPB_ID_MAX + 1];  /* empty for STATE */
  char edge[SPB_ID_MAX + 1];   /* empty for STATE */
  char device[SPB_ID_MAX + 1]; /* empty unless D* type */
  char host[SPB_ID_MAX + 1];   /* STATE only */
};

/* Parse `topic` (`len` bytes, need not be NUL-terminated).
 * LC_EPROTO: not a Sparkplug B topic or wrong number of levels for its
 * type; LC_EINVAL: an identifier breaks the rules above. */
lc_err spb_topic_parse(const char *topic, size_t len, struct spb_topic *out)
  LC_NODISCARD;

/* Build the topic for t->type into buf (NUL-terminated).
 * LC_EINVAL on a bad identifier, LC_ETOOBIG if cap is too small. */
lc_err spb_topic_build(const struct spb_topic *t, char *buf, size_t cap)
  LC_NODISCARD;

/* True when `id` (`len` bytes) is a valid identifier (see above). */
bool spb_id_valid(const char *id, size_t len);
/* The same, and also valid under `pol` (lc_ident.h). */
bool spb_id_valid_policy(const char *id, size_t len,
                         enum lc_ident_policy pol);

/* "NBIRTH" ... "STATE"; NULL for an out-of-range value. */
const char *spb_msg_type_name(enum spb_msg_type t);

/* DataType enum of sparkplug_b.proto. */
enum spb_datatype {
  SPB_DT_UNKNOWN = 0, SPB_DT_INT8 = 1, SPB_DT_INT16 = 2, SPB_DT_INT32 = 3,
  SPB_DT_INT64 = 4, SPB_DT_UINT8 = 5, SPB_DT_UINT16 = 6, SPB_DT_UINT32 = 7,
  SPB_DT_UINT64 = 8, SPB_DT_FLOAT = 9, SPB_DT_DOUBLE = 10,
  SPB_DT_BOOLEAN = 11, SPB_DT_STRING = 12, SPB_DT_DATETIME = 13,
  SPB_DT_TEXT = 14, SPB_DT_UUID = 15, SPB_DT_DATASET = 16,
  SPB_DT_BYTES = 17, SPB_DT_FILE = 18, SPB_DT_TEMPLATE = 19,
  SPB_DT_PROPERTYSET = 20, SPB_DT_PROPERTYSETLIST = 21,
  SPB_DT_INT8ARRAY = 22, SPB_DT_INT16ARRAY = 23, SPB_DT_INT32ARRAY = 24,
  SPB_DT_INT64ARRAY = 25, SPB_DT_UINT8ARRAY = 26, SPB_DT_UINT16ARRAY = 27,
  SPB_DT_UINT32ARRAY = 28, SPB_DT_UINT64ARRAY = 29,
  SPB_DT_FLOATARRAY = 30, SPB_DT_DOUBLEARRAY = 31,
  SPB_DT_BOOLEANARRAY = 32, SPB_DT_STRINGARRAY = 33,
  SPB_DT_DATETIMEARRAY = 34
};

struct spb_dataset;   /* opaque: see spb_dataset_* below */
struct spb_template;  /* opaque: see spb_template_* below */

/* One metric value, typed by `datatype`.
 *   Int8/16/32/64       -> v.i (sign-extended from the wire)
 *   UInt8/16/32/64, DateTime -> v.u (UInt32 accepted in int_value or
 *                          long_value on decode; encoded in long_value,
 *                          as Tahu does)
 *   Float, Double, Boolean -> v.f, v.d, v.b
 *   String, Text, UUID  -> v.str (UTF-8, not necessarily NUL-free)
 *   Bytes, File, *Array -> v.bytes (arrays: Sparkplug's packed
 *                          little-endian layout; see spb_array_*)
 *   DataSet, Template   -> v.dataset, v.tmpl
 * Pointers are borrowed: on decode they point into the spb_payload that
 * holds the metric; on encode into caller memory that outlives the
 * spb_payload_encode() call. */
struct spb_value {
  uint32_t datatype;
  bool is_null;
  union {
    int64_t i;
    uint64_t u;
    float f;
    double d;
    bool b;
    struct { const char *ptr; size_t len; } str;
    struct { const uint8_t *ptr; size_t len; } bytes;
    const struct spb_dataset *dataset;
    const struct spb_template *tmpl;
  } v;
};

struct spb_metric {
  const char *name;         /* NULL when sent by alias only */
  bool has_alias;
  uint64_t alias;
  bool has_timestamp;
  uint64_t timestamp;       /* ms since epoch, UTC */
  bool has_datatype;        /* false on the wire: datatype from the BIRTH */
  bool is_historical;
  bool is_transient;
  struct spb_value value;   /* value.datatype is 0 when !has_datatype */
};

struct spb_payload {
  bool has_timestamp;
  uint64_t timestamp;
  bool has_seq;
  uint64_t seq;
  const char *uuid;         /* NULL if absent */
  size_t n_metrics;
  struct spb_metric *metrics;
  void *priv_;              /* decoder storage; NULL for caller-built */
};

/* Decode `len` bytes. On LC_OK *out owns its memory: release it with
 * spb_payload_free(). LC_ETOOBIG over SPB_PAYLOAD_MAX or SPB_METRICS_MAX;
 * LC_EPROTO on malformed protobuf or a value whose field does not match
 * its datatype; LC_ENOMEM. On error *out is left empty (safe to free). */
lc_err spb_payload_decode(const uint8_t *buf, size_t len,
                          struct spb_payload *out) LC_NODISCARD;

/* Release what spb_payload_decode() allocated; zeroes *p. NULL-safe.
 * For caller-built payloads (priv_ NULL) it only zeroes. */
void spb_payload_free(struct spb_payload *p);

/* Encode `p` (caller-built; metrics' datatype must be set) into buf.
 * With buf == NULL only computes *len. LC_ETOOBIG if cap is too small,
 * LC_EINVAL for a metric without a name or alias, or a datatype that
 * does not fit the value. Metrics are sent with their datatype even in
 * commands (Tahu JS decoders read a datatype-less value as null). */
lc_err spb_payload_encode(const struct spb_payload *p, uint8_t *buf,
                          size_t cap, size_t *len) LC_NODISCARD;

/* First metric named `name`, or NULL. */
const struct spb_metric *spb_payload_find(const struct spb_payload *p,
                                          const char *name);

/* Convenience: metric `name` as a string. Returns LC_ENOTFOUND when
 * absent, LC_EINVAL when present but not String/Text/UUID or null. */
lc_err spb_payload_get_string(const struct spb_payload *p, const char *name,
                              const char **s, size_t *len) LC_NODISCARD;

/* Number of elements of an array metric value (datatype 22..34).
 * LC_EPROTO when the packed bytes do not form whole elements. */
lc_err spb_array_count(const struct spb_value *v, size_t *count)
  LC_NODISCARD;
/* Element i of a numeric or DateTime array, widened: signed types to
 * *i, unsigned and DateTime to *u, Float/Double to *d, Boolean to *u
 * (0/1). Only the out-pointer matching the type is written. */
lc_err spb_array_get(const struct spb_value *v, size_t i, int64_t *iv,
                     uint64_t *uv, double *dv) LC_NODISCARD;
/* Element i of a StringArray: pointer into the value and its length. */
lc_err spb_array_get_string(const struct spb_value *v, size_t i,
                            const char **s, size_t *len) LC_NODISCARD;

/* ---- Additions: limits, typed DATA values, array packing, DataSet and
 * Template accessors and builders. ---------------------------------- */

/* Further decode limits (beyond SPB_PAYLOAD_MAX and SPB_METRICS_MAX):
 * - SPB_METRICS_MAX counts every Metric message, including those inside
 *   Templates;
 * - messages nest at most SPB_NESTING_MAX deep (Payload = 1), so a
 *   crafted Metric -> Template -> Metric chain cannot exhaust the stack
 *   in the recursive nanopb decoder; deeper input is LC_EPROTO;
 * - a string field holding a NUL byte is LC_EPROTO: nanopb stores
 *   strings NUL-terminated, so an embedded NUL would silently cut the
 *   value short (a CSR could carry a hidden tail);
 * - Bytes/File/array values and repeated fields hold at most
 *   SPB_FIELD_MAX bytes or elements: Debian's nanopb library uses a
 *   16-bit pb_size_t. Longer input is LC_EPROTO, longer output
 *   LC_ETOOBIG.
 * A metric with neither a value nor is_null decodes as is_null. */
#define SPB_NESTING_MAX 24
#define SPB_FIELD_MAX 65535

/* Value of top-level metric `i` of a decoded payload, read as
 * `datatype`. NDATA/DDATA/NCMD/DCMD metrics normally carry no datatype
 * (tck-id-payloads-metric-datatype-not-req); their spb_metric.value then
 * has datatype 0 and an empty union, and the caller applies the
 * datatype it recorded from the BIRTH (by name or alias) here. The
 * same fit rules as in spb_payload_decode() apply. Pointers in *out
 * live as long as `p`. LC_EINVAL: `p` was not decoded or `i` is out of
 * range; LC_EPROTO: the wire value does not fit `datatype`, or the
 * metric carries a different datatype of its own. */
lc_err spb_payload_typed_value(const struct spb_payload *p, size_t i,
                               uint32_t datatype, struct spb_value *out)
  LC_NODISCARD;

/* Pack `n` native elements into Sparkplug's array layout for `datatype`
 * (22..34): int8_t[] .. int64_t[], uint8_t[] .. uint64_t[], float[],
 * double[], bool[] (BooleanArray), const char *[] (StringArray, each
 * NUL-terminated) and uint64_t[] (DateTimeArray, ms). With buf == NULL
 * only computes *len. LC_EINVAL for a non-array datatype,
 * LC_ETOOBIG if cap is too small. */
lc_err spb_array_pack(uint32_t datatype, const void *elems, size_t n,
                      uint8_t *buf, size_t cap, size_t *len) LC_NODISCARD;

/* DataSet (datatype 16): a table of n_columns typed columns.
 * Column types are the spec's Basic Data Types Int8 .. Text (1..14,
 * tck-id-payloads-dataset-types-value); a cell without a value is
 * is_null. On decode, num_of_columns, columns, types and every row's
 * element count must agree (tck-id-payloads-dataset-column-size,
 * -column-num-headers, -types-num) and every cell must fit its column
 * type, else LC_EPROTO. */
size_t spb_dataset_column_count(const struct spb_dataset *ds);
size_t spb_dataset_row_count(const struct spb_dataset *ds);
/* Name and datatype of column `col`. LC_ERANGE when out of range. */
lc_err spb_dataset_column(const struct spb_dataset *ds, size_t col,
                          const char **name, uint32_t *datatype)
  LC_NODISCARD;
/* Cell (row, col); pointers in *out are borrowed from `ds`.
 * LC_ERANGE when out of range. */
lc_err spb_dataset_cell(const struct spb_dataset *ds, size_t row,
                        size_t col, struct spb_value *out) LC_NODISCARD;

/* Template (datatype 19): a definition (is_definition, no ref; NBIRTH
 * only) or an instance (template_ref names the definition)
 * (tck-id-payloads-template-definition-ref,
 * tck-id-payloads-template-instance-ref). Parameters are typed values
 * of the Basic Data Types like DataSet cells
 * (tck-id-payloads-template-parameter-type-value); member metrics are
 * ordinary spb_metrics. */
const char *spb_template_ref(const struct spb_template *t);     /* or NULL */
const char *spb_template_version(const struct spb_template *t); /* or NULL */
bool spb_template_is_definition(const struct spb_template *t);
size_t spb_template_metric_count(const struct spb_template *t);
/* Member metric `i`, or NULL when out of range. */
const struct spb_metric *spb_template_metric(const struct spb_template *t,
                                             size_t i);
size_t spb_template_param_count(const struct spb_template *t);
/* Parameter `i`: its name and value. LC_ERANGE when out of range. */
lc_err spb_template_param(const struct spb_template *t, size_t i,
                          const char **name, struct spb_value *value)
  LC_NODISCARD;

/* ---- Edge-node session tracking (spb_session.c) ----------------------
 *
 * What a Sparkplug host must remember about every edge node to read its
 * messages correctly: whether it is online and with which bdSeq, the seq
 * stream shared by NBIRTH/DBIRTH/NDATA/DDATA/DDEATH, the metrics (name,
 * alias, datatype) each BIRTH declared, and which devices are born. The
 * tracker is pure: no I/O, no clock (the caller passes a monotonic
 * now_ms), no MQTT. One struct spb_sess per broker connection, used from
 * one thread (the broker loop).
 *
 * The caller feeds every Sparkplug message it receives and gets back a
 * verdict for that message plus what to do:
 *   - out->msgs: messages to process now, in seq order (the fed one
 *     and any held ones it released), metrics resolved;
 *   - out->events: node/device online/offline changes to record;
 *   - out->rebirths: edge nodes to send a Rebirth NCMD to
 *     (spb_rebirth_build()); rate-limited per edge node;
 *   - out->n_discarded: held messages thrown away (gap never filled,
 *     new session, death).
 * It never guesses: data it cannot place (no NBIRTH, device without
 * DBIRTH, metric or alias not in the BIRTH, broken seq stream) is not
 * delivered and a rebirth is asked for instead. See spb_session.c for
 * the state diagram and the tck-ids behind each rule, and
 * docs/sparkplug.md for the host checklist. */

struct spb_sess;   /* opaque: every edge node seen on one connection */

struct spb_sess_config {
  /* How long out-of-order messages wait for the missing seq before a
   * rebirth is asked for (tck-id-operational-behavior-host-reordering-
   * param). 0: act on a gap at once (right for a single Mosquitto,
   * which keeps QoS 0 order). */
  uint32_t reorder_timeout_ms;
  /* At most one rebirth request per edge node per this interval; a
   * request wanted earlier is deferred (see spb_sess_next_deadline()),
   * not lost. 0: no limit. */
  uint32_t rebirth_interval_ms;
  size_t max_nodes;        /* edge nodes tracked, 1..SPB_SESS_NODES_MAX */
  size_t max_devices;      /* devices per edge node, 1..SPB_SESS_DEVICES_MAX */
  size_t max_held;         /* held out-of-order messages per edge node,
                              0..SPB_SESS_HELD_MAX (0: never hold) */
  size_t max_metrics;      /* declared metrics per edge node (node and all
                              its devices), 1..SPB_SESS_METRICS_MAX */
};
#define SPB_SESS_NODES_MAX (1u << 20)
#define SPB_SESS_DEVICES_MAX 65535u
#define SPB_SESS_HELD_MAX 255u
#define SPB_SESS_METRICS_MAX (1u << 24)

/* Defaults: reorder 2000 ms, one rebirth per 5000 ms, 1024 nodes, 4096
 * devices per node, 32 held messages, 262144 metrics per node. */
void spb_sess_config_default(struct spb_sess_config *cfg);

/* Create a tracker with a copy of `cfg`. LC_EINVAL when a limit is out
 * of range, LC_ENOMEM. *out is set only on LC_OK; free it with
 * spb_sess_free(). */
lc_err spb_sess_new(const struct spb_sess_config *cfg, struct spb_sess **out)
  LC_NODISCARD;
/* Free the tracker and everything it holds. NULL is a no-op. */
void spb_sess_free(struct spb_sess *s);

enum spb_sess_verdict {
  SPB_SESS_NONE,      /* spb_sess_expire()/spb_sess_disconnect() */
  SPB_SESS_DELIVER,   /* the message is in out->msgs, in order */
  SPB_SESS_HELD,      /* kept until its seq gap fills or times out */
  SPB_SESS_DROP,      /* ignored; out->reason says why */
  SPB_SESS_REBIRTH    /* ignored; the edge node needs a rebirth: now
                         (in out->rebirths) or when the rate limit
                         allows (spb_sess_next_deadline()) */
};

/* A metric of a delivered BIRTH or DATA message, resolved against the
 * BIRTH. For BIRTH messages it is the metric as sent. */
struct spb_sess_metric {
  const char *name;          /* never NULL: the wire name, or the name
                                the BIRTH gave the alias */
  bool has_alias;
  uint64_t alias;
  uint32_t datatype;         /* as declared in the BIRTH */
  struct spb_value value;    /* typed by `datatype`
                                (spb_payload_typed_value()) */
  const struct spb_metric *wire;  /* the metric as received */
};

/* A message to process. All pointers stay valid until the spb_sess_out
 * is reset (next call with it) or cleaned up. */
struct spb_sess_msg {
  struct spb_topic topic;
  struct spb_payload payload;     /* owned by the spb_sess_out */
  uint64_t bdseq;                 /* of the session it belongs to */
  size_t n_metrics;               /* == payload.n_metrics for BIRTH and
                                     DATA; 0 for NDEATH and DDEATH */
  struct spb_sess_metric *metrics;
};

enum spb_sess_event_kind {
  SPB_SESS_NODE_ONLINE, SPB_SESS_NODE_OFFLINE,
  SPB_SESS_DEVICE_ONLINE, SPB_SESS_DEVICE_OFFLINE
};

enum spb_sess_cause {
  SPB_SESS_BY_BIRTH,       /* NBIRTH / DBIRTH (also a repeated one) */
  SPB_SESS_BY_NDEATH,      /* NDEATH with the session's bdSeq */
  SPB_SESS_BY_DDEATH,      /* DDEATH */
  SPB_SESS_BY_NEW_SESSION, /* an NBIRTH started a new session: the
                              device is STALE until its next DBIRTH */
  SPB_SESS_BY_BAD_BIRTH,   /* a BIRTH that could not be accepted
                              replaced what was known */
  SPB_SESS_BY_DISCONNECT   /* spb_sess_disconnect() */
};

/* OFFLINE means: mark the node/device offline and its metrics STALE.
 * Use `timestamp` when has_timestamp (DDEATH: the payload's), else the
 * host's current UTC time (NDEATH, disconnect, new session). */
struct spb_sess_event {
  enum spb_sess_event_kind kind;
  enum spb_sess_cause cause;
  char group[SPB_ID_MAX + 1];
  char edge[SPB_ID_MAX + 1];
  char device[SPB_ID_MAX + 1];    /* empty for node events */
  uint64_t bdseq;                 /* session of the node */
  bool has_timestamp;
  uint64_t timestamp;             /* ms since epoch, UTC */
};

struct spb_sess_rebirth {
  char group[SPB_ID_MAX + 1];
  char edge[SPB_ID_MAX + 1];
};

/* Results of one call. Initialise once with spb_sess_out_init(); every
 * feed/expire/disconnect call resets it first (freeing what the last
 * call left in it), so reuse one per loop; release it with
 * spb_sess_out_cleanup(). Whatever the return code, the lists are
 * valid and must be acted on. */
struct spb_sess_out {
  enum spb_sess_verdict verdict;  /* for the fed message */
  const char *reason;             /* static, snake_case; NULL when
                                     delivered in order */
  size_t n_msgs;
  struct spb_sess_msg *msgs;
  size_t n_events;
  struct spb_sess_event *events;
  size_t n_rebirths;
  struct spb_sess_rebirth *rebirths;
  size_t n_discarded;             /* held messages dropped in this call */
  const char *discard_reason;     /* static; the last one */
  size_t msgs_cap_, events_cap_, rebirths_cap_;  /* private */
};

void spb_sess_out_init(struct spb_sess_out *out);
void spb_sess_out_cleanup(struct spb_sess_out *out);

/* Feed one message received on topic `t` (parsed by spb_topic_parse())
 * whose payload was decoded by spb_payload_decode(). `*payload` is
 * taken in every case (also on error): on return it is empty, and the
 * message lives in out->msgs, in the tracker (held) or is freed.
 * NCMD, DCMD and STATE are not edge messages: SPB_SESS_DROP.
 * Returns LC_OK; LC_EFULL when a configured cap refused it (verdict
 * DROP, reason "too_many_nodes", "too_many_devices" or
 * "too_many_metrics"); LC_ENOMEM (the message is lost, the edge node is
 * marked as needing a rebirth, events of this call may be missing);
 * LC_EINVAL on a NULL argument. */
lc_err spb_sess_feed(struct spb_sess *s, const struct spb_topic *t,
                     struct spb_payload *payload, uint64_t now_ms,
                     struct spb_sess_out *out) LC_NODISCARD;

/* Earliest time at which spb_sess_expire() has something to do (a
 * reorder timeout or a deferred rebirth). False when nothing is
 * pending. */
bool spb_sess_next_deadline(const struct spb_sess *s, uint64_t *at_ms);

/* Act on every deadline reached by now_ms: held messages whose gap did
 * not fill are discarded and a rebirth is asked for
 * (tck-id-operational-behavior-host-reordering-rebirth); deferred
 * rebirths whose interval has passed go out. LC_OK or LC_ENOMEM
 * (nothing done; call again). */
lc_err spb_sess_expire(struct spb_sess *s, uint64_t now_ms,
                       struct spb_sess_out *out) LC_NODISCARD;

/* The connection to the broker is lost: every online node and device
 * goes offline (events with cause SPB_SESS_BY_DISCONNECT: mark their
 * metrics STALE), held messages and deferred rebirths are dropped. On
 * reconnect, edge nodes are known again from their next NBIRTH (or a
 * rebirth the tracker asks for). The state always changes; LC_ENOMEM
 * means the events could not be listed (mark everything stale). */
lc_err spb_sess_disconnect(struct spb_sess *s, struct spb_sess_out *out)
  LC_NODISCARD;

/* What the tracker knows about one edge node. */
struct spb_sess_node_info {
  bool online;             /* NBIRTH seen, no matching NDEATH since */
  bool awaiting_rebirth;   /* seq stream broken: data dropped until the
                              next NBIRTH */
  uint64_t bdseq;          /* of the current (or last) NBIRTH */
  uint8_t next_seq;        /* expected seq */
  size_t n_held;
  size_t n_devices_online;
};
/* LC_ENOTFOUND when the edge node is not tracked. */
lc_err spb_sess_node_info(const struct spb_sess *s, const char *group,
                          const char *edge, struct spb_sess_node_info *out)
  LC_NODISCARD;
/* True when `device` of (group, edge) has a DBIRTH in the current
 * session and no DDEATH since. */
bool spb_sess_device_online(const struct spb_sess *s, const char *group,
                            const char *edge, const char *device);
/* How the current BIRTH declared metric `name` of a device (`device`
 * NULL or "" for the edge node itself): its datatype and alias, so a
 * DCMD/NCMD can write it with the declared type, by alias when it has
 * one (tck-id-payloads-alias-data-cmd-requirement,
 * tck-id-operational-behavior-data-commands-dcmd-metric-name).
 * LC_ENOTFOUND when not declared or not online. */
lc_err spb_sess_metric_decl(const struct spb_sess *s, const char *group,
                            const char *edge, const char *device,
                            const char *name, uint32_t *datatype,
                            bool *has_alias, uint64_t *alias) LC_NODISCARD;

/* Build a Rebirth Request for edge node (group, edge): the NCMD topic
 * into `topic` (NUL-terminated) and the payload into `buf`: payload
 * timestamp = timestamp_ms (host UTC clock), no seq, one metric
 * "Node Control/Rebirth", by name, Boolean true, with its datatype.
 * Publish it QoS 0, retain false. With buf == NULL only computes *len.
 * LC_EINVAL on a bad id, LC_ETOOBIG if a buffer is too small. */
#define SPB_REBIRTH_PAYLOAD_MAX 64
lc_err spb_rebirth_build(const char *group, const char *edge,
                         uint64_t timestamp_ms, char *topic,
                         size_t topic_cap, uint8_t *buf, size_t cap,
                         size_t *len) LC_NODISCARD;

/* "DELIVER", "HELD", ...; "?" for an out-of-range value. */
const char *spb_sess_verdict_name(enum spb_sess_verdict v);
/* "birth", "ndeath", ...; "?" for an out-of-range value. */
const char *spb_sess_cause_name(enum spb_sess_cause c);

#endif
