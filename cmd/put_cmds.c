/* put_cmds.c - files over data connections: `aemp put NODE FUNC FILE` and
 * the receiver service "aemp::put" of `aemp run`.
 *
 * The bytes never go through JSON messages: put makes a data connection
 * (aemp_dataconn_connect) to NODE calling FUNC with [NAME, SIZE], streams the
 * file, and waits for one reply line from the receiver: "ok SHA256HEX" once
 * it has stored SIZE bytes whose SHA-256 it computed, or "error TEXT". put
 * compares that checksum with its own. A Perl node can receive the same way
 * with a function that reads SIZE bytes from its AnyEvent::Handle and
 * answers with that line.
 *
 * The receiver service ["aemp::put", DIR] registers the data-connection
 * function "aemp::put": a file NAME (a plain name: no '/', not beginning
 * with a dot) is written to DIR/.NAME.XXXXXX and renamed to DIR/NAME when
 * complete. An existing DIR/NAME is refused unless the request carries
 * {"replace": true} as a third element (`aemp put --replace`). */
#include "cmds.h"
#include "proto.h"

#include "aemp.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define PUT_CHUNK (256 * 1024)
#define PUT_HIGH (1024 * 1024) /* file data queued on the connection at most */
#define PUT_REPLY_MAX 512
#define PUT_REPLY_WAIT 60 /* seconds without progress (either side) before giving up */
/* The receiver's patience with a sender that sends nothing, and with one
 * that does not close after the answer: each holds a socket and a file. */
#define RECV_STALL 20
#define PUT_FUNC "aemp::put"

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static void hex_digest(crypto_hash_sha256_state *st, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(st, d);
    sodium_bin2hex(out, 65, d, sizeof d);
}

/* ---------------------------------------------------------------- sender */

struct put {
    aemp_node *node;
    const char *target, *func, *path, *name;
    int fd;
    uint64_t size, sent;
    crypto_hash_sha256_state sha;
    char digest[65];
    struct bufferevent *bev;
    int status, done;
    int filling; /* inside refill() */
    int tty;
    double t0, last_draw;
    char *buf;
};

static void put_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmd_verror("put", 0, fmt, ap);
    va_end(ap);
}

static void put_finish(struct put *p, int status)
{
    if (p->done) return;
    p->done = 1;
    p->status = status;
    aemp_node_stop(p->node);
}

/* The progress bar (terminals only): at most ten redraws a second. */
static void draw(struct put *p, int final)
{
    if (!p->tty) return;
    double t = now_s();
    if (!final && t - p->last_draw < 0.1) return;
    p->last_draw = t;
    double el = t - p->t0 > 1e-6 ? t - p->t0 : 1e-6;
    int pct = p->size ? (int)(p->sent * 100 / p->size) : 100;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r%.30s %3d%% [%s] %.1f/%.1f MB %.1f MB/s", p->name, pct, bar,
            p->sent / 1e6, p->size / 1e6, p->sent / 1e6 / el);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

/* Queue file data until PUT_HIGH bytes wait on the connection. */
static void refill(struct put *p)
{
    struct evbuffer *out = bufferevent_get_output(p->bev);
    /* A TLS filter may call the write callback from inside
     * bufferevent_write(): this loop goes on anyway. */
    if (p->filling) return;
    p->filling = 1;
    while (p->sent < p->size && evbuffer_get_length(out) < PUT_HIGH) {
        size_t want = p->size - p->sent < PUT_CHUNK ? (size_t)(p->size - p->sent) : PUT_CHUNK;
        ssize_t n = read(p->fd, p->buf, want);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            put_msg("%s: %s", p->path, n ? strerror(errno) : "the file shrank while sending");
            put_finish(p, EXIT_FAIL);
            break;
        }
        crypto_hash_sha256_update(&p->sha, (unsigned char *)p->buf, (size_t)n);
        bufferevent_write(p->bev, p->buf, (size_t)n);
        p->sent += (uint64_t)n;
    }
    p->filling = 0;
    if (p->done) return;
    draw(p, 0);
    if (p->sent == p->size && !p->digest[0]) {
        hex_digest(&p->sha, p->digest);
        struct timeval tv = {PUT_REPLY_WAIT, 0};
        bufferevent_set_timeouts(p->bev, &tv, &tv);
    }
}

static void put_write_cb(struct bufferevent *bev, void *ud)
{
    (void)bev;
    struct put *p = ud;
    if (!p->done) refill(p);
}

/* The receiver's answer. */
static void put_read_cb(struct bufferevent *bev, void *ud)
{
    struct put *p = ud;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
    if (!line) {
        if (evbuffer_get_length(in) > PUT_REPLY_MAX) {
            put_msg("%s answered with a line that is too long", p->target);
            put_finish(p, EXIT_FAIL);
        }
        return;
    }
    if (!strncmp(line, "ok ", 3) && p->digest[0] && !strcmp(line + 3, p->digest)) {
        draw(p, 1);
        if (p->tty) {
            double el = now_s() - p->t0;
            fprintf(stderr, "sent %s to %s: %llu bytes in %.2f s (%.1f MB/s), SHA-256 %s\n",
                    p->name, p->target, (unsigned long long)p->size, el,
                    el > 0 ? p->size / 1e6 / el : 0.0, p->digest);
        }
        put_finish(p, EXIT_OK);
    } else if (!strncmp(line, "ok ", 3)) {
        put_msg("%s stored %s with SHA-256 %.64s, but we sent %s: the data was changed on the "
                "way",
                p->target, p->name, line + 3, p->digest[0] ? p->digest : "(not all sent yet)");
        put_finish(p, EXIT_FAIL);
    } else {
        put_msg("%s refused %s: %.400s", p->target, p->name,
                !strncmp(line, "error ", 6) ? line + 6 : line);
        put_finish(p, EXIT_FAIL);
    }
    free(line);
}

static void put_event_cb(struct bufferevent *bev, short what, void *ud)
{
    (void)bev;
    struct put *p = ud;
    if (p->done) return;
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_WRITING) && p->sent < p->size)
        put_msg("%s took no data for %d s (after %llu of %llu bytes)", p->target, PUT_REPLY_WAIT,
                (unsigned long long)p->sent, (unsigned long long)p->size);
    else if (what & BEV_EVENT_TIMEOUT)
        put_msg("%s did not confirm %s within %d s", p->target, p->name, PUT_REPLY_WAIT);
    else if (what & BEV_EVENT_EOF)
        put_msg("%s closed the data connection after %llu of %llu bytes without confirming",
                p->target, (unsigned long long)p->sent, (unsigned long long)p->size);
    else
        put_msg("data connection to %s failed after %llu bytes: %s", p->target,
                (unsigned long long)p->sent,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    put_finish(p, EXIT_FAIL);
}

static void put_connected(aemp_node *node, struct bufferevent *bev, const char *error, void *ud)
{
    (void)node;
    struct put *p = ud;
    if (!bev) {
        put_msg("cannot make a data connection to %s: %s", p->target, error);
        put_finish(p, EXIT_FAIL);
        return;
    }
    p->bev = bev;
    p->t0 = now_s();
    bufferevent_setcb(bev, put_read_cb, put_write_cb, put_event_cb, p);
    bufferevent_setwatermark(bev, EV_WRITE, PUT_HIGH / 2, 0);
    struct timeval stall = {PUT_REPLY_WAIT, 0}; /* a receiver that stops reading */
    bufferevent_set_timeouts(bev, NULL, &stall);
    refill(p);
    if (evbuffer_get_length(bufferevent_get_input(bev))) put_read_cb(bev, p);
}

static void put_timeout(aemp_node *node, void *ud)
{
    (void)node;
    struct put *p = ud;
    if (!p->bev && !p->done) {
        put_msg("no data connection to %s: is it running, with function %s?", p->target,
                p->func);
        put_finish(p, EXIT_FAIL);
    }
}

int cmd_put(struct cmd_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    double timeout = 5;
    int replace = 0;
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (!strcmp(argv[i], "--replace")) {
            replace = 1;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            char *end;
            timeout = strtod(argv[++i], &end);
            if (*end || !(timeout > 0) || timeout > 1e6) {
                put_msg("--timeout wants a positive number of seconds, not '%s'", argv[i]);
                return EXIT_USAGE;
            }
        } else {
            put_msg("unknown option '%s' (only --timeout SECONDS, --replace)", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (argc - i != 3) {
        put_msg("usage: aemp put [--timeout S] [--replace] NODE FUNC FILE");
        return EXIT_USAGE;
    }
    struct put p = {.target = argv[i], .func = argv[i + 1], .path = argv[i + 2], .fd = -1};
    const char *slash = strrchr(p.path, '/');
    p.name = slash ? slash + 1 : p.path;
    struct stat sb;
    p.fd = open(p.path, O_RDONLY | O_CLOEXEC);
    if (p.fd < 0 || fstat(p.fd, &sb) || !S_ISREG(sb.st_mode) || !*p.name) {
        put_msg("%s: %s", p.path, p.fd < 0 ? strerror(errno) : "not a regular file");
        if (p.fd >= 0) close(p.fd);
        return EXIT_FAIL;
    }
    p.size = (uint64_t)sb.st_size;
    p.tty = isatty(2);
    p.buf = malloc(PUT_CHUNK);
    crypto_hash_sha256_init(&p.sha);
    char err[512] = "";
    int rc = EXIT_FAIL;
    aemp_guard *timer = NULL;
    p.node = p.buf ? aemp_node_new(NULL) : NULL;
    if (!p.node) {
        put_msg("out of memory");
        goto out;
    }
    cli_log_level(0); /* its failure is one line (put_msg) */
    if ((rc = aemp_configure(p.node, "aemp", NULL, err, sizeof err))) {
        put_msg("%s", *err ? err : aemp_strerror(rc));
        rc = EXIT_FAIL;
        goto out;
    }
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateString(p.name));
    cJSON_AddItemToArray(args, cJSON_CreateNumber((double)p.size));
    if (replace) { /* [NAME, SIZE, {"replace": true}]: a receiver may replace a file */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddTrueToObject(o, "replace");
        cJSON_AddItemToArray(args, o);
    }
    if (aemp_dataconn_connect(p.node, p.target, timeout, p.func, args, put_connected, &p)) {
        put_msg("bad node ID '%s'", p.target);
        rc = EXIT_USAGE;
        goto out;
    }
    /* The data connection's own timeout reports most failures; this one
     * covers a node that never answers at all. */
    aemp_after(p.node, timeout + 1, put_timeout, &p, &timer);
    if (aemp_node_run(p.node) && !p.done) put_msg("the event loop failed");
    rc = p.done ? p.status : EXIT_FAIL;
out:
    aemp_guard_free(timer);
    if (p.bev) bufferevent_free(p.bev);
    aemp_node_free(p.node);
    free(p.buf);
    close(p.fd);
    return rc;
}

/* -------------------------------------------------------------- receiver */

struct recv_svc {
    char *dir;
};

struct recv {
    struct recv_svc *svc;
    struct bufferevent *bev;
    char *name, *tmp, *final;
    int fd;
    uint64_t size, got;
    crypto_hash_sha256_state sha;
    int answered;
    int replace; /* the sender asked to replace an existing file */
};

static void recv_free(struct recv *r)
{
    if (r->fd >= 0) close(r->fd);
    if (r->tmp && !r->answered) unlink(r->tmp); /* incomplete: leave nothing behind */
    if (r->bev) bufferevent_free(r->bev);
    free(r->name);
    free(r->tmp);
    free(r->final);
    free(r);
}

/* Answer the sender; the connection stays until the sender closes it (a
 * sender that read the answer; 1.30 senders do not expect our end first). */
static void recv_answer(struct recv *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void recv_answer(struct recv *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(bufferevent_get_output(r->bev), fmt, ap);
    va_end(ap);
    evbuffer_add(bufferevent_get_output(r->bev), "\n", 1);
    struct timeval tv = {RECV_STALL, 0};
    bufferevent_set_timeouts(r->bev, &tv, NULL);
}

static void recv_fail(struct recv *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void recv_fail(struct recv *r, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    aemp_log_peer(4, "aemp::put: %s: %s", r->name, why);
    if (r->tmp) unlink(r->tmp);
    free(r->tmp);
    r->tmp = NULL;
    r->answered = 1;
    recv_answer(r, "error %s", why);
}

static void recv_read_cb(struct bufferevent *bev, void *ud)
{
    struct recv *r = ud;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (r->answered) { /* nothing more is expected */
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    while (evbuffer_get_length(in) && r->got < r->size) {
        size_t n = evbuffer_get_contiguous_space(in);
        if (n > r->size - r->got) n = (size_t)(r->size - r->got);
        unsigned char *d = evbuffer_pullup(in, (ev_ssize_t)n);
        crypto_hash_sha256_update(&r->sha, d, n);
        for (size_t off = 0; off < n;) {
            ssize_t w = write(r->fd, d + off, n - off);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                recv_fail(r, "cannot write %s: %s", r->tmp, strerror(errno));
                evbuffer_drain(in, evbuffer_get_length(in));
                return;
            }
            off += (size_t)w;
        }
        evbuffer_drain(in, n);
        r->got += n;
    }
    if (r->got < r->size) return;
    if (evbuffer_get_length(in)) {
        recv_fail(r, "more than the announced %llu bytes", (unsigned long long)r->size);
        return;
    }
    char digest[65];
    hex_digest(&r->sha, digest);
    if (close(r->fd) < 0) {
        r->fd = -1;
        recv_fail(r, "cannot write %s: %s", r->tmp, strerror(errno));
        return;
    }
    r->fd = -1;
    /* without --replace, link() refuses a file that appeared meanwhile */
    if (r->replace ? rename(r->tmp, r->final) < 0 : link(r->tmp, r->final) < 0) {
        int e = errno;
        if (e == EEXIST)
            recv_fail(r, "%s exists (aemp put --replace replaces it)", r->final);
        else
            recv_fail(r, "cannot rename %s to %s: %s", r->tmp, r->final, strerror(e));
        return;
    }
    if (!r->replace) unlink(r->tmp);
    aemp_log_peer(6, "aemp::put: stored %s (%llu bytes, SHA-256 %s)", r->final,
             (unsigned long long)r->size, digest);
    r->answered = 1;
    recv_answer(r, "ok %s", digest);
}

static void recv_event_cb(struct bufferevent *bev, short what, void *ud)
{
    (void)bev;
    struct recv *r = ud;
    if (!r->answered)
        aemp_log_peer(4, "aemp::put: %s: the sender went away after %llu of %llu bytes%s", r->name,
                 (unsigned long long)r->got, (unsigned long long)r->size,
                 what & BEV_EVENT_TIMEOUT ? " (timeout)" : "");
    recv_free(r);
}

/* A plain file name: no '/', printable, not beginning with a dot (no
 * ".", "..", nor hidden files such as .profile or .ssh). */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > NAME_MAX || s[0] == '.') return 0;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s < 32) return 0;
    return 1;
}

/* The data-connection function: args [NAME, SIZE], then the bytes. */
static void recv_start(aemp_node *node, struct bufferevent *bev, const cJSON *args, void *ud)
{
    (void)node;
    struct recv *r = calloc(1, sizeof *r);
    if (!r) {
        bufferevent_free(bev);
        return;
    }
    r->svc = ud;
    r->bev = bev;
    r->fd = -1;
    crypto_hash_sha256_init(&r->sha);
    bufferevent_setcb(bev, recv_read_cb, NULL, recv_event_cb, r);
    struct timeval stall = {RECV_STALL, 0}; /* a sender that stops sending */
    bufferevent_set_timeouts(bev, &stall, NULL);
    const cJSON *name = cJSON_GetArrayItem(args, 0), *size = cJSON_GetArrayItem(args, 1);
    r->name = strdup(cJSON_IsString(name) ? name->valuestring : "?");
    /* A Perl sender may pass the size as a string of digits. */
    double sz = cJSON_IsNumber(size) ? size->valuedouble : -1;
    if (cJSON_IsString(size) && *size->valuestring &&
        strspn(size->valuestring, "0123456789") == strlen(size->valuestring) &&
        strlen(size->valuestring) < 16)
        sz = strtod(size->valuestring, NULL);
    if (!r->name || !cJSON_IsString(name) || !name_ok(name->valuestring) || !(sz >= 0) ||
        sz > 9007199254740992.0 || sz != (double)(uint64_t)sz) {
        recv_fail(r, "expected [NAME, SIZE] with a plain file name (no '/', not beginning "
                     "with '.') and a size in bytes");
        return;
    }
    const cJSON *opts = cJSON_GetArrayItem(args, 2);
    r->replace = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "replace"));
    r->size = (uint64_t)sz;
    size_t dl = strlen(r->svc->dir) + strlen(r->name) + 16;
    r->tmp = malloc(dl);
    r->final = malloc(dl);
    if (!r->tmp || !r->final) {
        recv_fail(r, "out of memory");
        return;
    }
    snprintf(r->tmp, dl, "%s/.%s.XXXXXX", r->svc->dir, r->name);
    snprintf(r->final, dl, "%s/%s", r->svc->dir, r->name);
    struct stat sb;
    if (!r->replace && lstat(r->final, &sb) == 0) { /* before any data is sent */
        free(r->tmp);
        r->tmp = NULL; /* not created yet */
        recv_fail(r, "%s exists (aemp put --replace replaces it)", r->final);
        return;
    }
    r->fd = mkstemp(r->tmp);
    if (r->fd < 0) {
        free(r->tmp);
        r->tmp = NULL;
        recv_fail(r, "cannot create a file in %s: %s", r->svc->dir, strerror(errno));
        return;
    }
    fchmod(r->fd, 0644);
    aemp_log_peer(7, "aemp::put: receiving %s (%llu bytes)", r->final, (unsigned long long)r->size);
    recv_read_cb(bev, r); /* bytes that came with the handshake, or an empty file */
}

static void svc_release(void *ud)
{
    struct recv_svc *s = ud;
    free(s->dir);
    free(s);
}

/* The service ["aemp::put", DIR]: DIR (default ".") must be a directory. */
static int put_service(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    (void)self;
    int *started = ud;
    if (*started) {
        aemp_log(5, "aemp::put: already running, call ignored");
        return 0;
    }
    const cJSON *d = cJSON_GetArrayItem(args, 0);
    const char *dir = cJSON_IsString(d) ? d->valuestring : ".";
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
        aemp_fail(node, "aemp::put: %s is not a directory", dir);
        return -1;
    }
    struct recv_svc *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        aemp_fail(node, "out of memory");
        return -1;
    }
    aemp_at_free(node, svc_release, s);
    *started = 1;
    aemp_log(6, "aemp::put: receiving files into %s", dir);
    return aemp_dataconn_register(node, PUT_FUNC, recv_start, s) ? -1 : 0;
}

void cmd_put_register(aemp_node *node)
{
    static int started; /* one aemp run, one node */
    started = 0;
    aemp_register(node, PUT_FUNC, put_service, &started);
}
