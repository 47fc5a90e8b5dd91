/* logcatcher.h - AnyEvent::MP::LogCatcher as a built-in service of the
 * kernel (builtin.h): every node answers ::connect and ::catch; and the
 * line format of caught lines. Not public. */
#ifndef AEMP_LOGCATCHER_H
#define AEMP_LOGCATCHER_H

#include <stdio.h>

struct core_builtin;

/* Registers AnyEvent::MP::LogCatcher::connect and ::catch on a new node;
 * the catcher's ports are not traced into the log taps. */
extern const struct core_builtin logcatcher_builtin;

/* Log lines the catcher of `node` dropped since the node started (its
 * queue was full, or a catching node was too far behind). */
struct aemp_node;
unsigned long long logcatcher_dropped(struct aemp_node *node);

/* A caught line as 1.30 prints it, "DATE [NODE] <LEVEL> TEXT\n", on `out`;
 * what fprintf() returned. */
int logcatcher_print(FILE *out, const char *nodeid, int level, const char *text);

#endif
