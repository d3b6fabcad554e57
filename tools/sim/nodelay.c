/* SPDX-License-Identifier: Apache-2.0
 *
 * TCP_NODELAY on the simulator's connections. Paho has no option for it
 * and hands out no socket, so after each connect the sockets are found
 * among this process's descriptors: every TCP socket of the simulator
 * is its own (an edge node's connection to the broker, the gateway's
 * HTTPS), and none wants Nagle's algorithm.
 *
 * Why: an edge node publishes many small DBIRTHs in a row. With Nagle
 * each one after the first waited for the broker's (delayed) ACK, and
 * most of the latency the simulator reported at a low rate was its own:
 * bench/line.sh --rate 200 --edges 2 --devices 500 gave p50 DBIRTH->DCMD
 * 28.7 ms and p99 62.6 ms; with TCP_NODELAY here and Mosquitto's
 * set_tcp_nodelay, 3.9 ms and 7.1 ms. Either alone did not help.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/lc_log.h"
#include "tools/sim/sim.h"

#define MOD "sim"

/* A TCP socket (IPv4 or IPv6) gets TCP_NODELAY; anything else is left. */
static void nodelay_fd(int fd)
{
  struct stat st;
  if(fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
    return;
  int type = 0;
  socklen_t tl = sizeof(type);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
     type != SOCK_STREAM ||
     getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
     (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
    return;
  int one = 1;
  /* Paho's thread may have closed it meanwhile: nothing to set then. */
  if(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
    lc_log(LC_DEBUG, MOD, "op=nodelay fd=%d errno=%d", fd, errno);
}

void sim_tcp_nodelay(void)
{
  DIR *d = opendir("/proc/self/fd");
  if(!d) {
    lc_log(LC_WARN, MOD, "op=nodelay err=\"no /proc/self/fd\" errno=%d",
           errno);
    return;
  }
  int self = dirfd(d);
  struct dirent *de;
  while((de = readdir(d))) {
    char *end = NULL;
    long fd = strtol(de->d_name, &end, 10);
    if(end == de->d_name || *end || fd < 0 || fd == self || fd > 1 << 24)
      continue;
    nodelay_fd((int)fd);
  }
  closedir(d);
}
