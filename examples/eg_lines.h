/* eg_lines.h - standard input as lines for the chat clients: a libevent
 * event calls on_line for each line (without the newline) and on_eof once at
 * the end of input. Ttys, pipes and sockets are watched with an fd event;
 * epoll refuses regular files and /dev/null, which never block, so those are
 * read a chunk per loop iteration from a zero timeout instead. */
#ifndef EG_LINES_H
#define EG_LINES_H

#include "aemp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/event.h>

struct eg_lines {
    struct event *ev;
    int poll; /* read from a zero timeout */
    void (*on_line)(void *ud, const char *line);
    void (*on_eof)(void *ud);
    void *ud;
    char buf[4096];
    size_t len;
};

static void eg_lines_cb(evutil_socket_t fd, short what, void *arg)
{
    struct eg_lines *in = arg;
    ssize_t n = read(0, in->buf + in->len, sizeof in->buf - 1 - in->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        if (in->len) {
            in->buf[in->len] = 0;
            in->len = 0;
            in->on_line(in->ud, in->buf);
        }
        event_del(in->ev);
        in->poll = 0;
        in->on_eof(in->ud);
        return;
    }
    in->len += (size_t)n;
    char *start = in->buf, *nl;
    while ((nl = memchr(start, '\n', in->len - (size_t)(start - in->buf)))) {
        *nl = 0;
        if (nl > start && nl[-1] == '\r') nl[-1] = 0;
        in->on_line(in->ud, start);
        start = nl + 1;
    }
    in->len -= (size_t)(start - in->buf);
    memmove(in->buf, start, in->len);
    if (in->len == sizeof in->buf - 1) { /* a very long line: pass on what we have */
        in->buf[in->len] = 0;
        in->len = 0;
        in->on_line(in->ud, in->buf);
    }
    if (in->poll) {
        struct timeval now = {0, 0};
        event_add(in->ev, &now);
    }
}

/* Start reading stdin (once; later calls do nothing). 0 or -1. */
static int eg_lines_start(struct eg_lines *in, struct event_base *base,
                          void (*on_line)(void *, const char *), void (*on_eof)(void *),
                          void *ud)
{
    if (in->ev) return 0;
    in->on_line = on_line;
    in->on_eof = on_eof;
    in->ud = ud;
    struct stat st;
    int pollable = fstat(0, &st) == 0 && !S_ISREG(st.st_mode) &&
                   !(S_ISCHR(st.st_mode) && !isatty(0));
    if (pollable) {
        in->ev = event_new(base, 0, EV_READ | EV_PERSIST, eg_lines_cb, in);
        if (in->ev && event_add(in->ev, NULL) == 0) return 0;
        if (in->ev) event_free(in->ev);
    }
    in->poll = 1;
    in->ev = event_new(base, -1, 0, eg_lines_cb, in);
    struct timeval now = {0, 0};
    if (!in->ev || event_add(in->ev, &now)) {
        in->poll = 0;
        return -1;
    }
    return 0;
}

static void eg_lines_free(struct eg_lines *in)
{
    if (in->ev) event_free(in->ev);
    in->ev = NULL;
}

#endif
