/* log.h - the process-wide log beyond the public aemp_log() (log.c) and the
 * taps on it (logtap.c: 1.30's @WARN, aemp_log_set_handler, the log
 * catcher). Not public. */
#ifndef AEMP_LOG_H
#define AEMP_LOG_H

#include "aemp.h"

/* ---- log.c ---- */

/* Write a log line whatever the level (for trace output). */
void log_always(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- logtap.c ---- */

/* A tap gets every log line at or below `max_level` (whatever the stderr
 * level), never lines logged while taps run. New tap or NULL (ENOMEM). */
struct logtap *logtap_add(aemp_log_fn fn, void *ud, int max_level);
void logtap_set_max(struct logtap *t, int max_level);
/* Remove a tap (safe inside a tap callback). NULL is ok. */
void logtap_del(struct logtap *t);
/* 1 when a line of `level` would reach a tap now. */
int logtap_wants(int level);
/* Call the taps with a line (log.c; `text` escaped already). */
void logtap_emit(int level, const char *text);
/* While muted (nested on/off), no line reaches a tap: for trace lines about
 * log catcher traffic, which would otherwise feed themselves. */
void logtap_mute(int on);

#endif
