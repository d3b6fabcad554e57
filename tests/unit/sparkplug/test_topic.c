/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/unit/sparkplug/spb_test.h"

#include <stdio.h>
#include <string.h>

#define SET_ID(field, s) snprintf((field), sizeof(field), "%s", (s))

static lc_err parse(const char *topic, struct spb_topic *t)
{
  return spb_topic_parse(topic, strlen(topic), t);
}

static void test_every_type_round_trips(void)
{
  static const struct {
    enum spb_msg_type type;
    const char *topic;
  } cases[] = {
    {SPB_NBIRTH, "spBv1.0/Line-1/NBIRTH/cell-7"},
    {SPB_NDEATH, "spBv1.0/Line-1/NDEATH/cell-7"},
    {SPB_NDATA, "spBv1.0/Line-1/NDATA/cell-7"},
    {SPB_NCMD, "spBv1.0/Line-1/NCMD/cell-7"},
    {SPB_DBIRTH, "spBv1.0/Line-1/DBIRTH/cell-7/sensor.01"},
    {SPB_DDEATH, "spBv1.0/Line-1/DDEATH/cell-7/sensor.01"},
    {SPB_DDATA, "spBv1.0/Line-1/DDATA/cell-7/sensor.01"},
    {SPB_DCMD, "spBv1.0/Line-1/DCMD/cell-7/sensor.01"},
    {SPB_STATE, "spBv1.0/STATE/linecert-host"},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct spb_topic t;
    char buf[SPB_TOPIC_MAX];
    CU_ASSERT_EQUAL_FATAL(parse(cases[i].topic, &t), LC_OK);
    CU_ASSERT_EQUAL(t.type, cases[i].type);
    CU_ASSERT_EQUAL_FATAL(spb_topic_build(&t, buf, sizeof(buf)), LC_OK);
    CU_ASSERT_STRING_EQUAL(buf, cases[i].topic);
  }
}

static void test_parse_fills_ids_per_type(void)
{
  struct spb_topic t;
  CU_ASSERT_EQUAL_FATAL(parse("spBv1.0/G/DDATA/E/D", &t), LC_OK);
  CU_ASSERT_STRING_EQUAL(t.group, "G");
  CU_ASSERT_STRING_EQUAL(t.edge, "E");
  CU_ASSERT_STRING_EQUAL(t.device, "D");
  CU_ASSERT_STRING_EQUAL(t.host, "");

  CU_ASSERT_EQUAL_FATAL(parse("spBv1.0/G/NBIRTH/E", &t), LC_OK);
  CU_ASSERT_STRING_EQUAL(t.device, "");

  CU_ASSERT_EQUAL_FATAL(parse("spBv1.0/STATE/h", &t), LC_OK);
  CU_ASSERT_STRING_EQUAL(t.host, "h");
  CU_ASSERT_STRING_EQUAL(t.group, "");
  CU_ASSERT_STRING_EQUAL(t.edge, "");
}

static void test_parse_uses_len_not_nul(void)
{
  /* Paho hands over topic + length; the bytes after len are not ours. */
  const char raw[] = "spBv1.0/G/NDATA/E/garbage";
  struct spb_topic t;
  CU_ASSERT_EQUAL_FATAL(spb_topic_parse(raw, strlen("spBv1.0/G/NDATA/E"),
                                        &t), LC_OK);
  CU_ASSERT_EQUAL(t.type, SPB_NDATA);
  CU_ASSERT_STRING_EQUAL(t.edge, "E");
}

static void test_wrong_shape_is_eproto(void)
{
  static const char *const bad[] = {
    "spAv1.0/G/NBIRTH/E",          /* wrong namespace */
    "spbv1.0/G/NBIRTH/E",          /* case sensitive */
    "spBv1.0",
    "spBv1.0/G",
    "spBv1.0/G/NBIRTH",            /* missing edge */
    "spBv1.0/G/NBIRTH/E/D",        /* device on a node type */
    "spBv1.0/G/DBIRTH/E",          /* missing device */
    "spBv1.0/G/DDATA/E/D/extra",   /* extra level */
    "spBv1.0/G/NFOO/E",            /* unknown type */
    "spBv1.0/G/STATE/E",           /* STATE is not an edge type */
    "spBv1.0/STATE",               /* missing host id */
    "spBv1.0/STATE/h/extra",
    "STATE/h",                     /* Sparkplug 2.2 form */
    "",
    "/spBv1.0/G/NBIRTH/E",
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct spb_topic t;
    memset(&t, 0x5a, sizeof(t));
    lc_err rc = parse(bad[i], &t);
    CU_ASSERT_EQUAL(rc, LC_EPROTO);
    if(rc != LC_EPROTO)
      fprintf(stderr, "\n  accepted or misjudged: \"%s\" -> %s\n", bad[i],
              lc_errname(rc));
    CU_ASSERT_EQUAL(((unsigned char *)&t)[0], 0x5a);  /* untouched */
  }
}

static void test_bad_identifiers_are_einval(void)
{
  static const char *const bad[] = {
    "spBv1.0//NBIRTH/E",               /* empty group */
    "spBv1.0/G/NBIRTH/",               /* empty edge */
    "spBv1.0/G/DDATA/E/",              /* empty device */
    "spBv1.0/STATE/",                  /* empty host */
    "spBv1.0/G+/NBIRTH/E",             /* MQTT wildcard */
    "spBv1.0/G/NBIRTH/#",
    "spBv1.0/G/DCMD/E/+",
    "spBv1.0/G/NDATA/E\t1",            /* control character */
    "spBv1.0/G/NDATA/E\x7f",           /* DEL */
    "spBv1.0/G/NDATA/E\xc2\x85",       /* C1 control U+0085 */
    "spBv1.0/G/NDATA/\xff",            /* not UTF-8 */
    "spBv1.0/G/NDATA/\xc3",            /* truncated sequence */
    "spBv1.0/G/NDATA/\xc0\xaf",        /* overlong '/' */
    "spBv1.0/G/NDATA/\xed\xa0\x80",    /* UTF-16 surrogate */
    "spBv1.0/G/NDATA/\xf4\x90\x80\x80", /* above U+10FFFF */
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct spb_topic t;
    lc_err rc = parse(bad[i], &t);
    CU_ASSERT_EQUAL(rc, LC_EINVAL);
    if(rc != LC_EINVAL)
      fprintf(stderr, "\n  case %zu -> %s\n", i, lc_errname(rc));
  }
  /* NUL inside the given length. */
  struct spb_topic t;
  const char nul[] = "spBv1.0/G/NDATA/E\0x";
  CU_ASSERT_EQUAL(spb_topic_parse(nul, sizeof(nul) - 1, &t), LC_EINVAL);
}

static void test_id_length_limit(void)
{
  char id[SPB_ID_MAX + 2];
  char topic[SPB_TOPIC_MAX + 64];
  struct spb_topic t;

  memset(id, 'a', SPB_ID_MAX);
  id[SPB_ID_MAX] = '\0';
  snprintf(topic, sizeof(topic), "spBv1.0/%s/NBIRTH/%s", id, id);
  CU_ASSERT_EQUAL(parse(topic, &t), LC_OK);
  CU_ASSERT_EQUAL(strlen(t.group), SPB_ID_MAX);

  id[SPB_ID_MAX] = 'a';
  id[SPB_ID_MAX + 1] = '\0';
  snprintf(topic, sizeof(topic), "spBv1.0/G/NBIRTH/%s", id);
  CU_ASSERT_EQUAL(parse(topic, &t), LC_EINVAL);
}

static void test_id_valid_accepts_utf8_and_punctuation(void)
{
  CU_ASSERT_TRUE(spb_id_valid("Zürich-Halle-3", strlen("Zürich-Halle-3")));
  CU_ASSERT_TRUE(spb_id_valid("機械-01", strlen("機械-01")));
  CU_ASSERT_TRUE(spb_id_valid("a.b_c:d@e", 9));
  CU_ASSERT_TRUE(spb_id_valid("\xf0\x9f\x94\x92", 4));  /* U+1F512 */
  CU_ASSERT_FALSE(spb_id_valid(NULL, 0));
  CU_ASSERT_FALSE(spb_id_valid("", 0));
  CU_ASSERT_FALSE(spb_id_valid("a/b", 3));
}

/* Issue 9, item 6: ids that look like others. Each of these was a valid
 * id; a device named with one was issued a certificate whose CN reads
 * like another device's. */
static const char *const lookalikes[] = {
  "D\xe2\x80\xae" "1-A",   /* U+202E RIGHT-TO-LEFT OVERRIDE */
  "D\xe2\x80\x8b" "1",     /* U+200B ZERO WIDTH SPACE */
  "\xef\xbb\xbf" "D1",     /* U+FEFF BYTE ORDER MARK */
  "D\xc2\xa0" "1",          /* U+00A0 NO-BREAK SPACE */
  "D 1",                    /* U+0020 SPACE */
  "D\xe2\x81\xa6" "1",     /* U+2066 LEFT-TO-RIGHT ISOLATE */
  "D\xe2\x80\x8d" "1",     /* U+200D ZERO WIDTH JOINER */
  "D\xe3\x85\xa4" "1",     /* U+3164 HANGUL FILLER (Lo, invisible) */
  "D\xe2\x80\xa8" "1",     /* U+2028 LINE SEPARATOR */
  "D\xee\x80\x80" "1",     /* U+E000 private use */
  "D\xcd\xb8" "1",          /* U+0378 unassigned */
};

static void test_invisible_and_bidi_ids_refused(void)
{
  for(size_t i = 0; i < sizeof(lookalikes) / sizeof(lookalikes[0]); i++) {
    const char *id = lookalikes[i];
    char topic[SPB_TOPIC_MAX];
    snprintf(topic, sizeof(topic), "spBv1.0/G/DBIRTH/E/%s", id);
    struct spb_topic t;
    CU_ASSERT_FALSE(spb_id_valid(id, strlen(id)));
    CU_ASSERT_EQUAL(parse(topic, &t), LC_EINVAL);
    snprintf(topic, sizeof(topic), "spBv1.0/%s/NBIRTH/E", id);
    CU_ASSERT_EQUAL(parse(topic, &t), LC_EINVAL);
    snprintf(topic, sizeof(topic), "spBv1.0/G/NBIRTH/%s", id);
    CU_ASSERT_EQUAL(parse(topic, &t), LC_EINVAL);
    /* Nor can one be built. */
    memset(&t, 0, sizeof(t));
    t.type = SPB_DCMD;
    SET_ID(t.group, "G");
    SET_ID(t.edge, "E");
    SET_ID(t.device, id);
    CU_ASSERT_EQUAL(spb_topic_build(&t, topic, sizeof(topic)), LC_EINVAL);
  }
}

static void test_id_policy_ascii_narrows_utf8(void)
{
  static const char gear[] = "Ger\xc3\xa4t-1"; /* "Gerät-1" */
  CU_ASSERT_TRUE(spb_id_valid(gear, strlen(gear)));
  CU_ASSERT_TRUE(spb_id_valid_policy(gear, strlen(gear), LC_IDENT_UTF8));
  CU_ASSERT_FALSE(spb_id_valid_policy(gear, strlen(gear), LC_IDENT_ASCII));
  CU_ASSERT_TRUE(spb_id_valid_policy("SN-0001_a.b:c@d", 15, LC_IDENT_ASCII));
  CU_ASSERT_FALSE(spb_id_valid_policy("a/b", 3, LC_IDENT_UTF8));
  /* The length bound holds under either policy. */
  char id[SPB_ID_MAX + 2];
  memset(id, 'a', sizeof(id));
  CU_ASSERT_TRUE(spb_id_valid_policy(id, SPB_ID_MAX, LC_IDENT_ASCII));
  CU_ASSERT_FALSE(spb_id_valid_policy(id, SPB_ID_MAX + 1, LC_IDENT_UTF8));
}

static void test_build_refuses_bad_ids_and_mixed_types(void)
{
  struct spb_topic t;
  char buf[SPB_TOPIC_MAX];
  memset(&t, 0, sizeof(t));
  t.type = SPB_DCMD;
  SET_ID(t.group, "G");
  SET_ID(t.edge, "E");
  /* D-type without a device */
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf)), LC_EINVAL);
  SET_ID(t.device, "D/evil");
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf)), LC_EINVAL);
  SET_ID(t.device, "#");
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf)), LC_EINVAL);
  SET_ID(t.device, "D");
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf)), LC_OK);
  CU_ASSERT_STRING_EQUAL(buf, "spBv1.0/G/DCMD/E/D");
  /* N-type with a device set */
  t.type = SPB_NCMD;
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf)), LC_EINVAL);
  /* empty group */
  t.device[0] = '\0';
  t.group[0] = '\0';
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf)), LC_EINVAL);
  /* unterminated field */
  memset(t.group, 'g', sizeof(t.group));
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf)), LC_EINVAL);
  /* out-of-range type */
  t.type = (enum spb_msg_type)42;
  SET_ID(t.group, "G");
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf)), LC_EINVAL);
}

static void test_build_reports_small_buffer(void)
{
  struct spb_topic t;
  memset(&t, 0, sizeof(t));
  t.type = SPB_STATE;
  SET_ID(t.host, "host");
  char buf[sizeof("spBv1.0/STATE/host")];
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf) - 1), LC_ETOOBIG);
  CU_ASSERT_STRING_EQUAL(buf, "");  /* no truncated topic left */
  CU_ASSERT_EQUAL(spb_topic_build(&t, buf, sizeof(buf)), LC_OK);
  CU_ASSERT_STRING_EQUAL(buf, "spBv1.0/STATE/host");
}

static void test_type_names(void)
{
  CU_ASSERT_STRING_EQUAL(spb_msg_type_name(SPB_NBIRTH), "NBIRTH");
  CU_ASSERT_STRING_EQUAL(spb_msg_type_name(SPB_DCMD), "DCMD");
  CU_ASSERT_STRING_EQUAL(spb_msg_type_name(SPB_STATE), "STATE");
  CU_ASSERT_PTR_NULL(spb_msg_type_name((enum spb_msg_type)9));
  CU_ASSERT_PTR_NULL(spb_msg_type_name((enum spb_msg_type)-1));
}

const struct lc_test spb_topic_tests[] = {
  {"every message type parses and builds back to the same topic",
   test_every_type_round_trips},
  {"parse fills exactly the ids of its type", test_parse_fills_ids_per_type},
  {"parse reads len bytes, not up to NUL", test_parse_uses_len_not_nul},
  {"namespace, type or level count wrong -> LC_EPROTO, out untouched",
   test_wrong_shape_is_eproto},
  {"empty, wildcard, control, non-UTF-8 ids -> LC_EINVAL",
   test_bad_identifiers_are_einval},
  {"ids of SPB_ID_MAX bytes pass, one more is LC_EINVAL",
   test_id_length_limit},
  {"UTF-8 and punctuation are valid id characters",
   test_id_valid_accepts_utf8_and_punctuation},
  {"bidi, zero-width, BOM, no-break space and other invisible ids refused",
   test_invisible_and_bidi_ids_refused},
  {"[policy] identifiers = ascii refuses a UTF-8 letter utf8 accepts",
   test_id_policy_ascii_narrows_utf8},
  {"build refuses bad ids and device on N-types / none on D-types",
   test_build_refuses_bad_ids_and_mixed_types},
  {"build into a short buffer -> LC_ETOOBIG and empty string",
   test_build_reports_small_buffer},
  {"message type names", test_type_names},
  {NULL, NULL},
};
