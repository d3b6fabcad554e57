/* SPDX-License-Identifier: Apache-2.0 */
#include "broker/brk.h"

int main(int argc, char **argv)
{
  return brk_cli_main(argc, argv);
}
