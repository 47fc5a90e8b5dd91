/* logtap.c - taps on the process-wide log, 1.30's @AnyEvent::MP::Kernel::WARN:
 * callbacks that get every log line at or below their own maximum level,
 * whatever the level written to stderr is. The public aemp_log_set_handler()
 * is one tap; the log catcher (logcatcher.c) adds one per node it serves.
 *
 * A line logged while taps are being called (by a tap, or by what a tap
 * does) goes to stderr as usual but not to the taps again, so a tap that
 * sends lines somewhere cannot feed on its own traffic. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct logtap {
    struct logtap *next;
    aemp_log_fn fn; /* NULL: removed during a walk, swept after it */
    void *ud;
    int max;
};

static struct logtap *taps;
static int tap_max = -1; /* highest level any tap wants; -1: no taps */
static int busy;         /* taps are being called */
static int muted;        /* logtap_mute() depth */
static struct logtap *handler; /* the aemp_log_set_handler() tap */

static void recompute(void)
{
    tap_max = -1;
    for (struct logtap *t = taps; t; t = t->next)
        if (t->fn && t->max > tap_max) tap_max = t->max;
}

static void sweep(void)
{
    for (struct logtap **p = &taps; *p;) {
        if (!(*p)->fn) {
            struct logtap *dead = *p;
            *p = dead->next;
            free(dead);
        } else {
            p = &(*p)->next;
        }
    }
}

struct logtap *logtap_add(aemp_log_fn fn, void *ud, int max_level)
{
    struct logtap *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fn = fn;
    t->ud = ud;
    t->max = max_level;
    t->next = taps;
    taps = t;
    recompute();
    return t;
}

void logtap_set_max(struct logtap *t, int max_level)
{
    if (!t) return;
    t->max = max_level;
    recompute();
}

void logtap_del(struct logtap *t)
{
    if (!t) return;
    t->fn = NULL;
    if (!busy) sweep();
    recompute();
}

int logtap_wants(int level)
{
    return level <= tap_max && !busy && !muted;
}

void logtap_mute(int on)
{
    muted += on ? 1 : -1;
}

void logtap_emit(int level, const char *text)
{
    if (!logtap_wants(level)) return;
    busy = 1;
    for (struct logtap *t = taps; t; t = t->next)
        if (t->fn && level <= t->max) t->fn(level, text, t->ud);
    busy = 0;
    sweep();
}

int aemp_log_set_handler(aemp_log_fn fn, void *ud, int max_level)
{
    logtap_del(handler);
    handler = NULL;
    if (!fn) return 0;
    handler = logtap_add(fn, ud, max_level < 0 ? 0 : max_level > 9 ? 9 : max_level);
    return handler ? 0 : AEMP_ENOMEM;
}
