/* SPDX-License-Identifier: Apache-2.0
 *
 * Identifiers: the characters a group id, edge node id, device id,
 * serial number or certificate CN may hold. One check for all of them,
 * so a name cannot pass on a topic and fail in a certificate, or the
 * other way round (docs/protocol.md, "Identifiers").
 *
 * Always refused, whatever the policy: '/', '+', '#' (MQTT level
 * separator and wildcards; Mosquitto substitutes a CN into ACL patterns
 * as plain text), invalid or non-shortest-form UTF-8, and every code
 * point a reader cannot see or that changes how the others display:
 * general categories C* (controls, format characters such as U+200B and
 * the bidi overrides U+202A..U+202E, U+FEFF, surrogates, private use,
 * unassigned) and Z* (every space, U+0020 and U+00A0 included, line and
 * paragraph separators), and Unicode's default-ignorable code points
 * (U+3164 HANGUL FILLER and the like). The categories come from
 * libunistring, not from a table of ours.
 *
 *   LC_IDENT_ASCII  (default) printable ASCII without space:
 *                   0x21..0x7E except '/', '+', '#'
 *   LC_IDENT_UTF8   letters, marks, digits, punctuation and symbols of
 *                   any script (L*, M*, N*, P*, S*) except the above
 */
#ifndef LC_IDENT_H
#define LC_IDENT_H
#include <stdbool.h>
#include <stddef.h>

enum lc_ident_policy { LC_IDENT_ASCII = 0, LC_IDENT_UTF8 = 1 };

/* True when `s` (`len` bytes, not necessarily NUL-terminated) is a
 * non-empty identifier under `pol`. Length limits are the caller's. */
bool lc_ident_valid(const char *s, size_t len, enum lc_ident_policy pol);

/* True when `s` (`len` bytes) is well-formed UTF-8 (RFC 3629: shortest
 * form, no surrogates, nothing above U+10FFFF) without NUL. */
bool lc_utf8_valid(const char *s, size_t len);

/* The length of the UTF-8 sequence at `s` (`len` bytes available) when
 * it is one well-formed code point at or above U+0080 that an
 * identifier may hold under LC_IDENT_UTF8 (visible: no control, format
 * character, separator or default-ignorable code point); 0 otherwise.
 * The log escaper (lc_log.c) lets these through and escapes the rest. */
size_t lc_utf8_visible_len(const char *s, size_t len);

/* "ascii", "utf8"; "?" for anything else. */
const char *lc_ident_policy_name(enum lc_ident_policy pol);

#endif
