/* procstat.h - the standard process metrics of Prometheus client libraries
 * (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds), read
 * from /proc on Linux. */
#ifndef AEMP_OBSERVE_PROCSTAT_H
#define AEMP_OBSERVE_PROCSTAT_H

struct evbuffer;

/* The five families with their HELP and TYPE lines appended to `out`; a
 * figure /proc does not give is left out (its family stays, empty). */
void procstat_render(struct evbuffer *out);

#endif
