/* log.c - the process-wide log: levels as AnyEvent::Log (1 fatal .. 9 trace),
 * lines "YYYY-mm-dd HH:MM:SS <LEVEL> text" on stderr as 1.30 prints them. */
#include "aemp.h"
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

/* -1 until first use; then the level from the environment or 5. */
static int log_level = -1;

static int level_from_env(void)
{
    const char *v = getenv("AEMP_WARNLEVEL");
    if (!v || !*v) v = getenv("PERL_ANYEVENT_MP_WARNLEVEL");
    if (v && *v) {
        char *end;
        long l = strtol(v, &end, 10);
        if (!*end && l >= 0 && l <= 9) return (int)l;
    }
    return 5;
}

void aemp_log_set_level(int level)
{
    log_level = level < 0 ? 0 : level > 9 ? 9 : level;
}

int aemp_log_level(void)
{
    if (log_level < 0) log_level = level_from_env();
    return log_level;
}

/* 1 when stderr is the systemd journal: $JOURNAL_STREAM names its
 * device:inode. Lines then carry the syslog priority ("<N>text", journald
 * reads it; AnyEvent levels are syslog's plus one) and no timestamp. */
static int stderr_is_journal(void)
{
    static int j = -1;
    if (j < 0) {
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        j = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
            (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    }
    return j;
}

/* Write one line regardless of the level (trace lines use this too). */
static void log_write(int level, const char *fmt, va_list ap)
{
    char stamp[32], text[2048];
    if (stderr_is_journal()) {
        vsnprintf(text, sizeof text, fmt, ap);
        fprintf(stderr, "<%d>%s\n", level < 1 ? 0 : level > 8 ? 7 : level - 1, text);
        return;
    }
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    vsnprintf(text, sizeof text, fmt, ap);
    /* One fprintf per line so that lines of concurrent processes sharing a
     * stderr do not interleave mid-line. */
    fprintf(stderr, "%s <%d> %s\n", stamp, level, text);
}

void aemp_log(int level, const char *fmt, ...)
{
    va_list ap;
    if (level <= aemp_log_level()) {
        va_start(ap, fmt);
        log_write(level, fmt, ap);
        va_end(ap);
    }
    if (logtap_wants(level)) { /* taps (logtap.c) whatever the level above */
        va_start(ap, fmt);
        logtap_emit(level, fmt, ap);
        va_end(ap);
    }
}

void log_always(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write(level, fmt, ap);
    va_end(ap);
    if (logtap_wants(level)) {
        va_start(ap, fmt);
        logtap_emit(level, fmt, ap);
        va_end(ap);
    }
}

const char *aemp_strerror(int err)
{
    switch (err) {
    case AEMP_OK: return "success";
    case AEMP_EINVAL: return "invalid argument";
    case AEMP_ENOMEM: return "out of memory";
    case AEMP_ENOENT: return "no such port, profile or function";
    case AEMP_EEXIST: return "already exists";
    case AEMP_EPERM: return "not permitted";
    case AEMP_ECONFIG: return "configuration error";
    case AEMP_EIO: return "input/output error";
    case AEMP_ETIMEDOUT: return "timed out";
    case AEMP_EPROTO: return "protocol error";
    case AEMP_ESTATE: return "not possible in this state";
    case AEMP_EAUTH: return "authentication failed";
    }
    return "unknown error";
}
