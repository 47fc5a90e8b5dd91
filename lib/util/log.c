/* log.c - the process-wide log: levels as AnyEvent::Log (1 fatal .. 9 trace),
 * lines "YYYY-mm-dd HH:MM:SS <LEVEL> text" on stderr as 1.30 prints them,
 * control characters escaped; lines a peer can cause rate-limited. */
#include "aemp.h"
#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Copy `in` into `out` (`outlen` bytes) with every control character (C0,
 * DEL, and C1 as UTF-8) and every byte that is not part of valid UTF-8
 * written as an escape (\n, \r, \t, \xHH, \u0085): text a peer chose (a
 * request name, a greeting, a file name) cannot start a forged line of its
 * own, move a terminal's cursor or break a log catcher's JSON. */
static void log_escape(const char *in, char *out, size_t outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    while (*s && o + 8 < outlen) {
        unsigned c = *s;
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)*s++;
            continue;
        }
        /* the length of a valid UTF-8 sequence starting here, 0: none */
        size_t n = 0;
        if (c >= 0xc2 && c <= 0xdf) n = 2;
        else if (c >= 0xe0 && c <= 0xef) n = 3;
        else if (c >= 0xf0 && c <= 0xf4) n = 4;
        for (size_t i = 1; i < n; i++)
            if ((s[i] & 0xc0) != 0x80) n = 0;
        if (n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))) n = 0;
        if (n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))) n = 0;
        if (n == 2 && c == 0xc2 && s[1] < 0xa0) { /* C1 controls */
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", s[1]);
            s += 2;
        } else if (n) {
            memcpy(out + o, s, n);
            o += n;
            s += n;
        } else {
            o += (size_t)snprintf(out + o, outlen - o, c == '\n' ? "\\n" : c == '\r' ? "\\r"
                                                       : c == '\t' ? "\\t" : "\\x%02x", c);
            s++;
        }
    }
    out[o] = 0;
}

/* Write one escaped line to stderr. */
static void log_write(int level, const char *text)
{
    if (stderr_is_journal()) {
        fprintf(stderr, "<%d>%s\n", level < 1 ? 0 : level > 8 ? 7 : level - 1, text);
        return;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    /* One fprintf per line so that lines of concurrent processes sharing a
     * stderr do not interleave mid-line. */
    fprintf(stderr, "%s <%d> %s\n", stamp, level, text);
}

/* Format, escape, write (when `force` or the level says so) and tap. */
static void log_line(int level, int force, const char *fmt, va_list ap)
{
    int out = force || level <= aemp_log_level(), tap = logtap_wants(level);
    if (!out && !tap) return;
    char raw[2048], text[4096];
    vsnprintf(raw, sizeof raw, fmt, ap);
    log_escape(raw, text, sizeof text);
    if (out) log_write(level, text);
    if (tap) logtap_emit(level, text); /* taps (logtap.c) whatever the level above */
}

void aemp_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(level, 0, fmt, ap);
    va_end(ap);
}

void log_always(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(level, 1, fmt, ap);
    va_end(ap);
}

/* Lines a peer can cause: per call site (its format string) a token bucket
 * of PEER_BURST lines, refilled at PEER_RATE a second; what the bucket
 * refuses is counted and the count goes with the site's next line. */
#define PEER_SITES 128
#define PEER_RATE 5.0
#define PEER_BURST 20.0

static struct peer_site {
    const char *fmt;
    double tokens, at;
    unsigned long suppressed;
} peer_sites[PEER_SITES];

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct peer_site *peer_site_of(const char *fmt)
{
    size_t h = ((uintptr_t)fmt >> 3) % PEER_SITES;
    for (size_t i = 0; i < PEER_SITES; i++) {
        struct peer_site *s = &peer_sites[(h + i) % PEER_SITES];
        if (s->fmt == fmt) return s;
        if (!s->fmt) {
            s->fmt = fmt;
            s->tokens = PEER_BURST;
            s->at = mono_now();
            return s;
        }
    }
    return &peer_sites[h]; /* full: sites share a bucket */
}

void aemp_log_peer(int level, const char *fmt, ...)
{
    if (level > aemp_log_level() && !logtap_wants(level)) return; /* nobody reads it */
    struct peer_site *s = peer_site_of(fmt);
    double t = mono_now();
    s->tokens += (t - s->at) * PEER_RATE;
    if (s->tokens > PEER_BURST) s->tokens = PEER_BURST;
    s->at = t;
    if (s->tokens < 1) {
        s->suppressed++;
        return;
    }
    s->tokens -= 1;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (s->suppressed)
        aemp_log(level, "%s (%lu similar lines before this one were not logged)", text,
                 s->suppressed);
    else
        aemp_log(level, "%s", text);
    s->suppressed = 0;
}

const char *aemp_strerror(int err)
{
    switch (err) {
    case AEMP_OK: return "success";
    case AEMP_BUSY: return "queued, but more than the high-water mark waits for that node";
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
