/* SPDX-License-Identifier: Apache-2.0
 *
 * A SoftHSM2 token store of a test's own, so tests that need a PKCS#11
 * token touch nothing of the machine's.
 */
#ifndef LC_SOFTHSM_H
#define LC_SOFTHSM_H
#include <stdbool.h>
#include <stddef.h>

/* Make dir/tokens and dir/softhsm2.conf (file backend, errors logged
 * only), and point SOFTHSM2_CONF at it in this process's environment
 * (for the module loaded here, and the children that inherit it).
 * env_out (cap bytes; may be NULL) receives "SOFTHSM2_CONF=<path>" for
 * children given an environment of their own. False on any failure. */
bool lc_softhsm_setup(const char *dir, char *env_out, size_t cap);

#endif
