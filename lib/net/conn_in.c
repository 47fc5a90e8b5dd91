/* conn_in.c - the read path of an up connection: bytes from the socket (or
 * from TLS) into the framing reader, each message to the node, with the
 * counters and the liveness probe's bookkeeping. The handshake's reads are
 * conn_hs.c's. */
#include "transport_int.h"

#include "framing.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/util.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int conn_in_arrived(struct conn *c)
{
    if (probe_stale(c)) {
        probe_timed_out(c);
        return 0;
    }
    probe_heard(c);
    return 1;
}

/* One message from the peer goes up to the kernel (or is the answer to
 * our probe). */
static void hand_up(struct conn *c, cJSON *msg)
{
    if (probe_is_answer(c, msg)) {
        cJSON_Delete(msg);
        return;
    }
    c->peer->stats.msgs_in++;
    c->t->stats.msgs_in++;
    struct peer *saved = c->t->from;
    c->t->from = c->peer; /* queues it makes are charged to it (qbudget.c) */
    c->t->ops->deliver(c->t->ctx, c->peer_id, msg);
    c->t->from = saved;
}

/* Decode data[0..len) (the framing reader returns each message: it never
 * calls up) and hand every message up, until the connection closes. */
static void read_messages(struct conn *c, const char *data, size_t len)
{
    char err[256];
    size_t off = 0;
    while (off < len && !c->dead) {
        size_t used;
        cJSON *msg;
        int rc = framing_reader_next(c->reader, data + off, len - off, &used, &msg, err,
                                     sizeof err);
        off += used;
        if (rc < 0) conn_close(c, CONN_PROTOCOL, 5, "protocol error: %s", err);
        if (rc <= 0) break;
        hand_up(c, msg);
    }
}

/* Log texts the reader refused one by one since the last call. */
static void log_refused(struct conn *c)
{
    size_t refused = framing_reader_refused(c->reader);
    if (refused > c->refused) {
        aemp_log_peer(5, "%zu message%s from %s refused: nested deeper than %d levels (the "
                 "connection stays up)", refused - c->refused, refused - c->refused > 1 ? "s" : "",
                 c->peer_id, FRAMING_MAX_DEPTH);
        c->refused = refused;
    }
    refused = framing_reader_refused_utf8(c->reader);
    if (refused > c->refused_utf8) {
        aemp_log_peer(5, "%zu message%s from %s refused: a string is not valid UTF-8 (never "
                      "passed on; the connection stays up)",
                      refused - c->refused_utf8, refused - c->refused_utf8 > 1 ? "s" : "",
                      c->peer_id);
        c->refused_utf8 = refused;
    }
}

/* Feed everything in `in` to the framing reader. */
void conn_read_frames(struct conn *c, struct evbuffer *in)
{
    int n = evbuffer_peek(in, -1, NULL, NULL, 0);
    if (n <= 0) return;
    struct evbuffer_iovec stackv[16], *v = n <= 16 ? stackv : malloc((size_t)n * sizeof *v);
    if (!v) return;
    evbuffer_peek(in, -1, NULL, v, n);
    size_t total = 0;
    for (int i = 0; i < n && !c->dead; i++) {
        c->peer->stats.bytes_in += v[i].iov_len; /* before its messages run */
        c->t->stats.bytes_in += v[i].iov_len;
        read_messages(c, v[i].iov_base, v[i].iov_len);
        total += v[i].iov_len;
    }
    log_refused(c);
    if (v != stackv) free(v);
    if (!c->dead) evbuffer_drain(in, total);
}

/* libevent 2.1 reads at most 4 KB per read(2) into a bufferevent, so a
 * busy connection took one loop turn per 4 KB. What else waits on the
 * socket of an up cleartext connection is read here in large reads straight
 * into the transport's read buffer and parsed from there (no copy in
 * between), at most READ_TURN_MAX bytes per callback so that one peer cannot
 * starve the others (epoll reports the rest again). EOF is left to the
 * bufferevent, which sees it on its next read. */
#define RBUF_SIZE (256 * 1024)
#define READ_TURN_MAX (1024 * 1024)

void conn_read_more(struct conn *c)
{
    struct transport *t = c->t;
    if (c->tls || c->state != C_UP || c->dead) return;
    char small[16384], *buf = small; /* in a nested loop or without memory */
    size_t size = sizeof small;
    if (!t->rbuf_busy && (t->rbuf || (t->rbuf = malloc(RBUF_SIZE)))) {
        buf = t->rbuf;
        size = RBUF_SIZE;
        t->rbuf_busy = 1;
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    for (size_t turn = 0; !c->dead && turn < READ_TURN_MAX;) {
        ssize_t n = recv(fd, buf, size, 0);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_close(c, conn_cause_of_errno(errno), 6, "%s",
                       evutil_socket_error_to_string(errno));
        else if (n == 0 && c->rev) /* else the bufferevent sees the EOF */
            conn_close(c, CONN_PEER_CLOSED, 6, "connection closed by the peer");
        if (n <= 0) break;
        turn += (size_t)n;
        c->peer->stats.bytes_in += (size_t)n;
        t->stats.bytes_in += (size_t)n;
        read_messages(c, buf, (size_t)n);
        if ((size_t)n < size) break; /* the socket is drained */
    }
    if (buf == t->rbuf) t->rbuf_busy = 0;
    if (!c->dead) log_refused(c);
}

/* An up cleartext connection's socket is readable: one recv(2) straight
 * into the read buffer (a bufferevent spends an ioctl(FIONREAD) and a
 * readv(2) on it, and reads 4 KB at most). What the bufferevent read before
 * the connection came up goes first. */
void conn_up_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    c->busy++;
    if (conn_in_arrived(c)) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        if (evbuffer_get_length(in)) conn_read_frames(c, in);
        conn_read_more(c);
    }
    c->busy--;
    if (c->dead) conn_free(c);
}
