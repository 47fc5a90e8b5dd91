/* nettest.h - helpers for tests that run several nodes on one event loop
 * and talk over real TCP on 127.0.0.1: nodes with a test configuration,
 * running the loop until a condition, JSON comparison, recorders. */
#ifndef AEMP_NETTEST_H
#define AEMP_NETTEST_H

#include "aemp.h"
#include "t.h"
#include "transport.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static inline double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

struct until {
    struct event_base *base;
    int *flag;
    int want;
    double deadline;
};

static inline void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct until *u = arg;
    if ((u->flag && *u->flag >= u->want) || now() > u->deadline) event_base_loopbreak(u->base);
}

static inline int run_until(struct event_base *base, int *flag, int want, double seconds)
{
    struct until u = {base, flag, want, now() + seconds};
    struct event *ev = event_new(base, -1, EV_PERSIST, poll_cb, &u);
    struct timeval tv = {0, 1000};
    event_add(ev, &tv);
    event_base_dispatch(base);
    event_free(ev);
    return flag && *flag >= want;
}

static inline cJSON *json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) fprintf(stderr, "# bad JSON in test: %s\n", text);
    return j;
}

static inline int json_is(const cJSON *a, const char *text)
{
    cJSON *b = cJSON_Parse(text);
    int eq = a && b && cJSON_Compare(a, b, 1);
    if (!eq) {
        char *s = a ? cJSON_PrintUnformatted(a) : NULL;
        fprintf(stderr, "# got %s, want %s\n", s ? s : "(null)", text);
        free(s);
    }
    cJSON_Delete(b);
    return eq;
}

/* The authentication and framing lists of a test node: offers
 * tls_md6_64_256 and hmac_md6_64_256, accepts those and tls_anon and
 * cleartext, json framing. */
static inline void add_auth(cJSON *cfg)
{
    const char *offer[] = {"tls_md6_64_256", "hmac_md6_64_256"};
    const char *accept[] = {"tls_md6_64_256", "hmac_md6_64_256", "tls_anon", "cleartext"};
    const char *framing[] = {"json"};
    cJSON_AddItemToObject(cfg, "auth_offer", cJSON_CreateStringArray(offer, 2));
    cJSON_AddItemToObject(cfg, "auth_accept", cJSON_CreateStringArray(accept, 4));
    cJSON_AddItemToObject(cfg, "framing_format", cJSON_CreateStringArray(framing, 1));
}

/* A node on `base` configured with `cfg` (taken and freed); a failed
 * configuration is a failed check. */
static inline aemp_node *mknode_cfg(struct event_base *base, const char *id, cJSON *cfg)
{
    aemp_node *n = aemp_node_new(base);
    char err[256];
    int rc = aemp_configure_effective(n, cfg, err, sizeof err);
    if (rc) fprintf(stderr, "# configure %s: %s\n", id, err);
    CHECK_INT(rc, 0);
    cJSON_Delete(cfg);
    return n;
}

/* A node on `base` with ID `id`, listening on an ephemeral port of
 * 127.0.0.1 when `listen`, seeded with `seed` (an address or NULL). */
static inline aemp_node *mknode(struct event_base *base, const char *id, int listen, const char *seed,
                         const char *secret, const char *cert, double mt)
{
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "nodeid", id);
    cJSON *binds = cJSON_AddArrayToObject(cfg, "binds");
    if (listen) cJSON_AddItemToArray(binds, cJSON_CreateString("127.0.0.1:0"));
    cJSON *seeds = cJSON_AddArrayToObject(cfg, "seeds");
    if (seed) cJSON_AddItemToArray(seeds, cJSON_CreateString(seed));
    if (secret) cJSON_AddStringToObject(cfg, "secret", secret);
    if (cert) cJSON_AddStringToObject(cfg, "cert", cert);
    cJSON_AddNumberToObject(cfg, "monitor_timeout", mt);
    cJSON_AddNumberToObject(cfg, "connect_interval", 0.2);
    add_auth(cfg);
    return mknode_cfg(base, id, cfg);
}

/* A node with max_message_size `maxmsg` (its output bound: 4 x that, at
 * least 16 MB), hmac_md6_64_256 only, listening on 127.0.0.1 when `seed`
 * is NULL, else seeded with it. */
static inline aemp_node *mknode_max(struct event_base *base, const char *id, const char *seed,
                                    double maxmsg)
{
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "nodeid", id);
    cJSON *binds = cJSON_AddArrayToObject(cfg, "binds");
    if (!seed) cJSON_AddItemToArray(binds, cJSON_CreateString("127.0.0.1:0"));
    cJSON *seeds = cJSON_AddArrayToObject(cfg, "seeds");
    if (seed) cJSON_AddItemToArray(seeds, cJSON_CreateString(seed));
    cJSON_AddStringToObject(cfg, "secret", "s3cret");
    cJSON_AddNumberToObject(cfg, "monitor_timeout", 30);
    cJSON_AddNumberToObject(cfg, "connect_interval", 0.2);
    cJSON_AddNumberToObject(cfg, "max_message_size", maxmsg);
    const char *auth[] = {"hmac_md6_64_256"}, *framing[] = {"json"};
    cJSON_AddItemToObject(cfg, "auth_offer", cJSON_CreateStringArray(auth, 1));
    cJSON_AddItemToObject(cfg, "auth_accept", cJSON_CreateStringArray(auth, 1));
    cJSON_AddItemToObject(cfg, "framing_format", cJSON_CreateStringArray(framing, 1));
    return mknode_cfg(base, id, cfg);
}

/* mknode_max with max_message_size 1 MB (output bound: 16 MB). */
static inline aemp_node *mknode_small(struct event_base *base, const char *id, const char *seed)
{
    return mknode_max(base, id, seed, 1 << 20);
}

/* A fresh ["xxx...x"] of 64 KB (the string 65,535 x's). */
static inline cJSON *blob_msg(void)
{
    static char *blob;
    if (!blob) {
        blob = malloc(65536);
        memset(blob, 'x', 65535);
        blob[65535] = 0;
    }
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString(blob));
    return m;
}

/* At least 4,096 descriptors when the hard limit allows (tests that open
 * hundreds of connections). */
static inline void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Run the loop until `a` sees node `id` up, at most `seconds`: 1 when up. */
static inline int wait_up(struct event_base *base, aemp_node *a, const char *id, double seconds)
{
    double dl = now() + seconds;
    while (!aemp_node_is_up(a, id) && now() < dl) run_until(base, NULL, 0, 0.05);
    return aemp_node_is_up(a, id);
}

/* A socket (of `type`: SOCK_STREAM, maybe | SOCK_NONBLOCK) listening on an
 * ephemeral port of 127.0.0.1 with `backlog`; its port in *port. The caller
 * closes it; -1 when it cannot be made. */
static inline int listen_local(int type, int backlog, int *port)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, backlog) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl)) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* The first listen address of `n` (static buffer). */
static inline const char *addr_of(aemp_node *n)
{
    static char buf[128];
    cJSON *a = aemp_listen_addrs(n);
    snprintf(buf, sizeof buf, "%s", cJSON_GetArrayItem(a, 0)->valuestring);
    cJSON_Delete(a);
    return buf;
}

/* Reply to the last element (a port ID) with the message minus that element. */
static inline int echo_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    (void)self;
    (void)ud;
    int n = cJSON_GetArraySize(msg);
    const cJSON *last = cJSON_GetArrayItem(msg, n - 1);
    if (n < 1 || !cJSON_IsString(last)) return 0;
    cJSON *reply = cJSON_CreateArray();
    for (int i = 0; i < n - 1; i++)
        cJSON_AddItemToArray(reply, cJSON_Duplicate(cJSON_GetArrayItem(msg, i), 1));
    aemp_snd(node, last->valuestring, reply);
    return 0;
}

/* An aemp_cal recorder: counts calls, keeps copies of the reply or the
 * error (exactly one of them comes, or the check fails); the test frees
 * them. */
struct calres {
    int calls;
    cJSON *reply, *error;
};

static inline void cal_done(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    (void)node;
    struct calres *c = ud;
    c->calls++;
    CHECK((reply == NULL) != (error == NULL));
    if (reply) c->reply = cJSON_Duplicate(reply, 1);
    if (error) c->error = cJSON_Duplicate(error, 1);
}

/* Take the first line of buf[0..*len) (without its LF) into out[outlen]
 * and remove it from buf: 1; 0 when there is no whole line yet; -1 when
 * the line does not fit into out. */
static inline int buf_line(char *buf, size_t *len, char *out, size_t outlen)
{
    char *nl = memchr(buf, '\n', *len);
    if (!nl) return 0;
    size_t n = (size_t)(nl - buf);
    if (n >= outlen) return -1;
    memcpy(out, buf, n);
    out[n] = 0;
    memmove(buf, nl + 1, *len - n - 1);
    *len -= n + 1;
    return 1;
}

/* A node-down recorder for aemp_mon_nodes: counts downs, keeps the last
 * node and the reason's text. */
struct downrec {
    int downs;
    char reason[256];
    char node[64];
};

static inline void down_rec(aemp_node *node, const char *nodeid, int up, const cJSON *reason,
                            void *ud)
{
    (void)node;
    struct downrec *d = ud;
    if (up) return;
    d->downs++;
    snprintf(d->node, sizeof d->node, "%s", nodeid);
    const cJSON *text = cJSON_GetArrayItem(reason, 2);
    snprintf(d->reason, sizeof d->reason, "%s", cJSON_IsString(text) ? text->valuestring : "?");
}

/* A recorder for receive and monitor callbacks. */
struct rec {
    int calls;
    cJSON *last;    /* last message or reason */
    int next;       /* ordering check */
    char self[256]; /* $SELF seen in the last receive callback */
    char port[256]; /* port argument of the last monitor callback */
    int fail;       /* make the receive callback fail */
};

static inline void rec_set(struct rec *r, const cJSON *j)
{
    cJSON_Delete(r->last);
    r->last = j ? cJSON_Duplicate(j, 1) : NULL;
    r->calls++;
}

static inline int rec_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    (void)self;
    struct rec *r = ud;
    const char *s = aemp_self(node);
    snprintf(r->self, sizeof r->self, "%s", s ? s : "(null)");
    rec_set(r, msg);
    if (r->fail) {
        aemp_fail(node, "boom %d", 42);
        return -1;
    }
    return 0;
}

static inline void rec_mon(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    (void)node;
    struct rec *r = ud;
    snprintf(r->port, sizeof r->port, "%s", port);
    rec_set(r, reason);
}

static inline void rec_free(struct rec *r)
{
    cJSON_Delete(r->last);
    r->last = NULL;
}

#endif
