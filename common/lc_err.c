/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_err.h"

#define LC_ERR_TEXT_(name, text) text,
#define LC_ERR_NAME_(name, text) #name,
static const char *const err_text[] = {LC_ERRORS(LC_ERR_TEXT_)};
static const char *const err_name[] = {LC_ERRORS(LC_ERR_NAME_)};

const char *lc_strerror(lc_err e)
{
  if((unsigned)e >= (unsigned)LC_ERR_COUNT_)
    return "unknown error";
  return err_text[e];
}

const char *lc_errname(lc_err e)
{
  if((unsigned)e >= (unsigned)LC_ERR_COUNT_)
    return "LC_E?";
  return err_name[e];
}
