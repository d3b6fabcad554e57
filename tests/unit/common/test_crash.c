/* SPDX-License-Identifier: Apache-2.0
 *
 * Crash points (common/lc_crash.h): the specification's grammar, and a
 * point that kills on exactly its n-th pass, in a child process.
 */
#include "tests/unit/common/suites.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/lc_crash.h"

static void test_spec_grammar(void)
{
  CU_ASSERT_EQUAL(lc_crash_init(NULL), LC_OK);
  CU_ASSERT_FALSE(lc__crash_armed);
  CU_ASSERT_EQUAL(lc_crash_init(""), LC_OK);
  CU_ASSERT_FALSE(lc__crash_armed);
  const char *bad[] = {":3", "a:", "a:0", "a:x", "a:3x", "a:-1", "a,,b",
                       "a,", "a:1000000001",
                       "a_name_that_is_much_longer_than_forty_seven_bytes_1",
                       "a,b,c,d,e,f,g,h,i", NULL};
  for(int i = 0; bad[i]; i++) {
    CU_ASSERT_EQUAL(lc_crash_init(bad[i]), LC_EINVAL);
    CU_ASSERT_FALSE(lc__crash_armed);
  }
  CU_ASSERT_EQUAL(lc_crash_init("a"), LC_OK);
  CU_ASSERT_TRUE(lc__crash_armed);
  CU_ASSERT_EQUAL(lc_crash_init("a:2,b,c:1000000000"), LC_OK);
  CU_ASSERT_TRUE(lc__crash_armed);
  CU_ASSERT_EQUAL(lc_crash_init(NULL), LC_OK);   /* disarm again */
  CU_ASSERT_FALSE(lc__crash_armed);
}

/* In a child: arm `spec`, pass `point` n times, exit 0 if still alive. */
static int child_status(const char *spec, const char *point, int n)
{
  pid_t pid = fork();
  if(pid == 0) {
    if(lc_crash_init(spec) != LC_OK)
      _exit(3);
    for(int i = 0; i < n; i++)
      lc_crash_point(point);
    _exit(0);
  }
  int st = 0;
  CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
  return st;
}

static void test_point_kills_on_its_nth_pass(void)
{
  int st = child_status("x:3", "x", 2);
  CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = child_status("x:3", "x", 3);
  CU_ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  st = child_status("y,x", "x", 1);               /* the second entry */
  CU_ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  st = child_status("x", "xy", 5);                /* whole names only */
  CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = child_status(NULL, "x", 5);                /* unarmed */
  CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

const struct lc_test lc_test_crash[] = {
  {"crash spec: name[:n][,...]; malformed refused, nothing armed",
   test_spec_grammar},
  {"a crash point SIGKILLs on its n-th pass, not before, by whole name",
   test_point_kills_on_its_nth_pass},
  {NULL, NULL}};
