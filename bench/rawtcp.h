/* rawtcp.h - the raw-TCP baselines the remote figures are printed beside,
 * measured in the same run on 127.0.0.1 between this process and a forked
 * child: one-way streams and ping-pong round trips. */
#ifndef AEMP_RAWTCP_H
#define AEMP_RAWTCP_H

#include <stddef.h>

/* Send n messages of `size` bytes to a child that reads them all and
 * answers one byte; `per_write` bytes per write() (size: one write per
 * message, Nagle on). Returns messages per second, 0 on failure. */
double rawtcp_oneway(size_t size, long n, size_t per_write);

/* n round trips of a 16-byte message with a child that echoes it
 * (TCP_NODELAY, blocking I/O); rtt[0..n) gets each round trip in seconds.
 * With `pin`, both processes run on CPU 0. Returns round trips per second,
 * 0 on failure. */
double rawtcp_pingpong(long n, int pin, double *rtt);

#endif
