/* SPDX-License-Identifier: Apache-2.0
 *
 * main() for fuzz targets built without libFuzzer (gcc, ctest): feed
 * every file named on the command line, or every file in a named
 * directory, to LLVMFuzzerTestOneInput() once. A crash or abort fails
 * the ctest run; sanitizer builds make that meaningful.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if(!f) {
    perror(path);
    return 1;
  }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  for(;;) {
    if(len == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *nb = realloc(buf, cap);
      if(!nb) {
        free(buf);
        fclose(f);
        return 1;
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    if(got == 0)
      break;
    len += got;
  }
  fclose(f);
  /* exact-size copy so ASan sees reads past the end */
  uint8_t *exact = malloc(len ? len : 1);
  if(!exact) {
    free(buf);
    return 1;
  }
  if(len)
    memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

static int run_path(const char *path, unsigned *count)
{
  struct stat st;
  if(stat(path, &st) != 0) {
    perror(path);
    return 1;
  }
  if(!S_ISDIR(st.st_mode)) {
    (*count)++;
    return run_file(path);
  }
  DIR *d = opendir(path);
  if(!d) {
    perror(path);
    return 1;
  }
  int failed = 0;
  struct dirent *e;
  while((e = readdir(d))) {
    if(e->d_name[0] == '.')
      continue;
    char child[4096];
    snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
    failed |= run_path(child, count);
  }
  closedir(d);
  return failed;
}

int main(int argc, char **argv)
{
  unsigned count = 0;
  int failed = 0;
  for(int i = 1; i < argc; i++)
    failed |= run_path(argv[i], &count);
  printf("replayed %u inputs\n", count);
  return failed || count == 0;
}
