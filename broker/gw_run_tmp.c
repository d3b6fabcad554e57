/* SPDX-License-Identifier: Apache-2.0
 *
 * TEMPORARY, branch gw only, NOT for main: a stand-in for brk__gw_run()
 * (broker/renew.c, the lead's) so that the gateway builds and its front
 * can be tested before renewal lands. Every request that reaches the
 * loop is answered 501 not_implemented. Delete this file and its lines
 * in broker/CMakeLists.txt when merging main.
 */
#include "broker/brk_int.h"

void brk__gw_run(struct brk *b, struct brk_gw_req *r)
{
  (void)b;
  r->status = 501;
  r->body = json_pack("{s:s}", "error", "not_implemented");
}
