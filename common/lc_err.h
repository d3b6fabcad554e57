/* SPDX-License-Identifier: Apache-2.0
 *
 * The one error type of linecert. LC_ERRORS is an X-macro list (libest
 * style) so the enum and its strings can never drift apart. LC_OK is 0,
 * every error is positive.
 */
#ifndef LC_ERR_H
#define LC_ERR_H

#define LC_ERRORS(X)                                              \
  X(LC_OK, "ok")                                                  \
  X(LC_ENOMEM, "out of memory")                                   \
  X(LC_EINVAL, "invalid argument")                                \
  X(LC_ERANGE, "value out of range")                              \
  X(LC_EPROTO, "malformed message")                               \
  X(LC_ETOOBIG, "too large")                                      \
  X(LC_ENOTFOUND, "not found")                                    \
  X(LC_EEXIST, "already exists")                                  \
  X(LC_ESTATE, "event not allowed in this state")                 \
  X(LC_EDB, "database error")                                     \
  X(LC_ETLS, "crypto error")                                      \
  X(LC_ECA, "certificate authority error")                        \
  X(LC_EIO, "input/output error")                                 \
  X(LC_EFULL, "queue full")                                       \
  X(LC_EAGAIN, "try again later")                                 \
  X(LC_EMQTT, "MQTT error")                                       \
  X(LC_ECONFIG, "invalid configuration")                          \
  X(LC_EVERIFY, "verification failed")                            \
  X(LC_ESHUTDOWN, "shutting down")                                \
  X(LC_ECLAIMED, "bound to another device")                       \
  X(LC_EUNREACH, "unreachable: not tried")

#define LC_ERR_ENUM_(name, text) name,
typedef enum lc_err { LC_ERRORS(LC_ERR_ENUM_) LC_ERR_COUNT_ } lc_err;
#undef LC_ERR_ENUM_

/* Static text for `e`; never NULL. */
const char *lc_strerror(lc_err e);
/* "LC_EPROTO" etc., for logs and metrics; never NULL. */
const char *lc_errname(lc_err e);

#define LC_NODISCARD __attribute__((warn_unused_result))
#define LC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/* Static in production, visible to unit tests (curl's UNITTEST). */
#ifdef LC_TESTING
#define LC_STATIC
#else
#define LC_STATIC static
#endif

#endif
