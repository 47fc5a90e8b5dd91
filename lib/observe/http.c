/* http.c - the monitoring listener (see http.h): evhttp on the "http"
 * addresses, the bounds on its clients, and the table of what it serves.
 * What each page holds is rendered by its own module (metrics.c,
 * meshview.c, the embedded page.html). */
#include "http.h"

#include "builtin.h"
#include "meshview.h"
#include "metrics.h"
#include "page.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct obs;

/* One client connection. evhttp owns it and its bufferevent; we hold a
 * reference on the bufferevent (bufferevent_incref) so that the pointer
 * stays ours to look at: once evhttp has let it go, its callbacks are
 * cleared, which the sweep sees, and then drops our reference. */
struct conn {
    struct conn *next, *prev;
    struct bufferevent *bev; /* one reference is ours */
    double deadline;         /* the next request must be complete by then */
    int served;              /* it has made a complete request */
    int shut;                /* ended by us */
    int adopted;             /* evhttp's callbacks were seen on it */
};

static const struct timeval soon_tv = {0, 50000};

struct obs {
    aemp_node *node;
    struct evhttp *http;
    struct conn *conns;
    int nconns;
    int paused;          /* listeners disabled: HTTP_MAX_CONNS are open */
    int closing;
    struct event *sweep; /* every second: gone connections, deadlines */
    struct event *soon;  /* the same 50 ms after pausing, until resumed */
    cJSON *addrs;        /* "host:port" actually bound */
    struct metrics *metrics;
};

static void pause_listeners(struct obs *o, int pause);

static struct obs *obs_of(const aemp_node *node)
{
    return builtin_state(node, &observe_builtin);
}

/* ------------------------------------------------------------ the bounds */

static double now_s(struct obs *o)
{
    struct timeval tv;
    event_base_gettimeofday_cached(aemp_node_base(o->node), &tv);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static void conn_unlink(struct obs *o, struct conn *c)
{
    if (o->conns == c) o->conns = c->next; /* the head */
    else if (c->prev) c->prev->next = c->next;
    if (c->next) c->next->prev = c->prev;
    o->nconns--;
    bufferevent_decref(c->bev);
    free(c);
}

/* End a connection now: its socket is shut down under evhttp, which reads
 * the end (or fails its next write) and frees its connection itself, the
 * socket closed with the last reference. */
static void conn_shut(struct conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    c->shut = 1;
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
}

/* Drop the connections evhttp has closed; end those past their deadline
 * (the socket is shut down under evhttp, which sees the end and frees the
 * connection itself). */
static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    struct obs *o = arg;
    (void)fd, (void)what;
    double now = now_s(o);
    struct conn *c = o->conns, *next;
    for (; c; c = next) {
        next = c->next;
        bufferevent_data_cb rd, wr;
        bufferevent_event_cb ev;
        void *ud;
        bufferevent_getcb(c->bev, &rd, &wr, &ev, &ud);
        if (rd || wr || ev) {
            c->adopted = 1;
        } else if (c->adopted || now > c->deadline) {
            /* evhttp let it go (its callbacks are set once it has taken
             * it, cleared when it lets go) */
            conn_unlink(o, c);
            continue;
        }
        if (now > c->deadline) {
            conn_shut(c);
            c->deadline = now + HTTP_DEADLINE; /* once more if it lingers */
        }
    }
    if (o->paused && o->nconns < 2 * HTTP_MAX_CONNS) pause_listeners(o, 0);
    if (o->paused && !o->closing) event_add(o->soon, &soon_tv);
}

/* At HTTP_MAX_CONNS, a new client ends the oldest connection that has not
 * made a request yet (idle or trickling: a scraper's request is complete
 * in a moment), so that a flood of idle connections cannot lock out the
 * monitoring. */
static void evict_one(struct obs *o)
{
    struct conn *c = o->conns, *victim = NULL;
    for (; c; c = c->next)
        if (!c->served && !c->shut) victim = c; /* the list is newest first */
    if (victim) conn_shut(victim);
}

/* evhttp asks for the bufferevent of every accepted connection: made here
 * so that it can be counted and given a deadline. */
static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
    struct obs *o = arg;
    /* closing on free as evhttp's own: the socket closes when the last
     * reference (evhttp's or ours) goes */
    struct bufferevent *b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct conn *c = b ? calloc(1, sizeof *c) : NULL;
    if (!c) return b; /* uncounted, but evhttp's own timeout still ends it */
    bufferevent_incref(b);
    c->bev = b;
    c->deadline = now_s(o) + HTTP_DEADLINE;
    c->next = o->conns;
    if (o->conns) o->conns->prev = c;
    o->conns = c;
    if (++o->nconns > HTTP_MAX_CONNS) {
        sweep_cb(-1, 0, o); /* maybe some are gone already */
        if (o->nconns > HTTP_MAX_CONNS) evict_one(o);
        /* ended ones are freed by evhttp in a moment; past twice the
         * limit (all of them busy) new clients wait in the backlog */
        if (o->nconns >= 2 * HTTP_MAX_CONNS) pause_listeners(o, 1);
    }
    return b;
}

static void pause_one(struct evhttp_bound_socket *bs, void *arg)
{
    struct evconnlistener *l = evhttp_bound_socket_get_listener(bs);
    if (!l) return;
    if (*(int *)arg) evconnlistener_disable(l);
    else evconnlistener_enable(l);
}

/* At 2 x HTTP_MAX_CONNS open connections the listeners stop accepting
 * (new clients wait in the kernel's backlog, costing the node nothing)
 * until some close. */
static void pause_listeners(struct obs *o, int pause)
{
    if (o->paused == pause || o->closing) return;
    o->paused = pause;
    evhttp_foreach_bound_socket(o->http, pause_one, &pause);
    /* the ended connections are let go by evhttp within a loop turn */
    if (pause) event_add(o->soon, &soon_tv);
}

/* ------------------------------------------------------------- the pages */

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                  struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(req, code, reason, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason,
                       const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add(b, text, strlen(text));
    reply(req, code, reason, "text/plain; charset=utf-8", b);
    if (b) evbuffer_free(b);
}

static void reply_json(struct evhttp_request *req, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return reply_text(req, 500, "Internal Server Error", "out of memory\n");
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add(b, s, strlen(s));
        evbuffer_add(b, "\n", 1);
    }
    cJSON_free(s);
    reply(req, 200, "OK", "application/json", b);
    if (b) evbuffer_free(b);
}

static void get_healthz(struct obs *o, struct evhttp_request *req)
{
    (void)o;
    /* answering at all proves the event loop runs */
    reply_text(req, 200, "OK", "ok\n");
}

static void get_readyz(struct obs *o, struct evhttp_request *req)
{
    char why[256];
    if (meshview_ready(o->node, why, sizeof why)) {
        reply_text(req, 200, "OK", "ready\n");
    } else {
        char text[300];
        snprintf(text, sizeof text, "not ready: %s\n", why);
        reply_text(req, 503, "Service Unavailable", text);
    }
}

static void get_metrics(struct obs *o, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) return reply_text(req, 500, "Internal Server Error", "out of memory\n");
    metrics_render(o->metrics, b);
    evbuffer_add_printf(b,
                        "# HELP aemp_http_connections Open connections to this monitoring "
                        "listener.\n# TYPE aemp_http_connections gauge\naemp_http_connections %d\n",
                        o->nconns);
    reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

static void get_stats(struct obs *o, struct evhttp_request *req)
{
    reply_json(req, aemp_stats(o->node));
}

static void get_mesh(struct obs *o, struct evhttp_request *req)
{
    reply_json(req, meshview_json(o->node, o->metrics));
}

static void get_page(struct obs *o, struct evhttp_request *req)
{
    (void)o;
    struct evbuffer *b = evbuffer_new();
    if (!b) return reply_text(req, 500, "Internal Server Error", "out of memory\n");
    evbuffer_add_reference(b, page_html, page_html_len, NULL, NULL);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    /* the page is whole: nothing may be fetched from anywhere but here */
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'none'; script-src 'unsafe-inline'; style-src "
                      "'unsafe-inline'; connect-src 'self'; img-src 'self' data:");
    reply(req, 200, "OK", "text/html; charset=utf-8", b);
    evbuffer_free(b);
}

static const struct route {
    const char *path;
    void (*get)(struct obs *o, struct evhttp_request *req);
} routes[] = {
    {"/", get_page},           {"/metrics", get_metrics},   {"/healthz", get_healthz},
    {"/readyz", get_readyz},   {"/stats.json", get_stats},  {"/mesh.json", get_mesh},
};

static void on_request(struct evhttp_request *req, void *arg)
{
    struct obs *o = arg;
    struct evhttp_connection *ec = evhttp_request_get_connection(req);
    struct bufferevent *bev = ec ? evhttp_connection_get_bufferevent(ec) : NULL;
    for (struct conn *c = o->conns; c; c = c->next)
        if (c->bev == bev) {
            /* a complete request: the next one has its own time */
            c->deadline = now_s(o) + HTTP_DEADLINE;
            c->served = 1;
            break;
        }
    metrics_count_request(o->metrics);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        return reply_text(req, 405, "Method Not Allowed", "read-only: GET or HEAD\n");
    }
    const char *uri = evhttp_request_get_uri(req);
    size_t n = strcspn(uri, "?#");
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strlen(routes[i].path) == n && !strncmp(routes[i].path, uri, n))
            return routes[i].get(o, req);
    reply_text(req, 404, "Not Found",
               "not found; try /, /metrics, /healthz, /readyz, /stats.json, /mesh.json\n");
}

/* --------------------------------------------------------- start and end */

static void obs_free(struct obs *o)
{
    o->closing = 1;
    if (o->http) evhttp_free(o->http); /* frees every connection */
    while (o->conns)
        conn_unlink(o, o->conns);
    if (o->sweep) event_free(o->sweep);
    if (o->soon) event_free(o->soon);
    metrics_free(o->metrics);
    cJSON_Delete(o->addrs);
    free(o);
}

static void bound_text(struct evhttp_bound_socket *bs, char *buf, size_t len)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof ss;
    char h[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(bs);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6 && sl >= sizeof(struct sockaddr_in6)) {
            struct sockaddr_in6 *a = (void *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof h);
            port = ntohs(a->sin6_port);
            snprintf(buf, len, "[%s]:%d", h, port);
            return;
        }
        if (ss.ss_family == AF_INET && sl >= sizeof(struct sockaddr_in)) {
            struct sockaddr_in *a = (void *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, h, sizeof h);
            port = ntohs(a->sin_port);
        }
    }
    snprintf(buf, len, "%s:%d", h, port);
}

/* Bind one address of the "http" list. */
static int bind_one(struct obs *o, const char *addr, char *err, size_t errlen)
{
    char host[256], port[16];
    const char *colon = strrchr(addr, ':');
    if (*addr == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':') goto bad;
        snprintf(host, sizeof host, "%.*s", (int)(end - addr - 1), addr + 1);
        snprintf(port, sizeof port, "%s", end + 2);
    } else if (!colon) {
        snprintf(host, sizeof host, "127.0.0.1");
        snprintf(port, sizeof port, "%s", addr);
    } else {
        snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
        snprintf(port, sizeof port, "%s", colon + 1);
    }
    if (!strcmp(port, "*")) snprintf(port, sizeof port, "0");
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535) goto bad;
    const char *hosts[2] = {host, NULL};
    if (!strcmp(host, "*")) hosts[0] = "0.0.0.0", hosts[1] = "::";
    for (int i = 0; i < 2 && hosts[i]; i++) {
        struct evhttp_bound_socket *bs =
            evhttp_bind_socket_with_handle(o->http, hosts[i], (ev_uint16_t)p);
        if (!bs) {
            if (i == 1) continue; /* no IPv6 here: IPv4 is listening */
            snprintf(err, errlen, "http: cannot listen on %s (address in use or not local)",
                     addr);
            return AEMP_EIO;
        }
        char text[300];
        bound_text(bs, text, sizeof text);
        cJSON_AddItemToArray(o->addrs, cJSON_CreateString(text));
    }
    return 0;
bad:
    snprintf(err, errlen, "http: \"%s\" is not host:port", addr);
    return AEMP_ECONFIG;
}

static int observe_start(aemp_node *node, char *err, size_t errlen)
{
    const cJSON *cfg = aemp_node_config(node);
    const cJSON *list = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "http") : NULL;
    if (!list || cJSON_IsNull(list) || (cJSON_IsArray(list) && !list->child)) return 0;
    if (obs_of(node)) {
        snprintf(err, errlen, "http: already serving");
        return AEMP_ESTATE;
    }
    if (!cJSON_IsArray(list)) {
        snprintf(err, errlen, "http: must be a list of host:port addresses");
        return AEMP_ECONFIG;
    }
    struct obs *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "http: out of memory");
        return AEMP_ENOMEM;
    }
    o->node = node;
    o->http = evhttp_new(aemp_node_base(node));
    o->addrs = cJSON_CreateArray();
    o->metrics = metrics_new(node);
    o->sweep = event_new(aemp_node_base(node), -1, EV_PERSIST, sweep_cb, o);
    o->soon = evtimer_new(aemp_node_base(node), sweep_cb, o);
    if (!o->http || !o->addrs || !o->metrics || !o->sweep || !o->soon) {
        obs_free(o);
        snprintf(err, errlen, "http: out of memory");
        return AEMP_ENOMEM;
    }
    evhttp_set_bevcb(o->http, new_bev, o);
    evhttp_set_gencb(o->http, on_request, o);
    evhttp_set_allowed_methods(o->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_headers_size(o->http, HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(o->http, 0);
    evhttp_set_timeout(o->http, HTTP_DEADLINE);
    const cJSON *a;
    cJSON_ArrayForEach(a, list)
    {
        int rc = cJSON_IsString(a) ? bind_one(o, a->valuestring, err, errlen)
                                   : (snprintf(err, errlen, "http: every address is a string"),
                                      AEMP_ECONFIG);
        if (rc) {
            obs_free(o);
            return rc;
        }
    }
    builtin_set_state(node, &observe_builtin, o);
    event_add(o->sweep, &(struct timeval){1, 0});
    char *at = cJSON_PrintUnformatted(o->addrs);
    aemp_log(5, "http: serving /metrics, /healthz, /readyz, /stats.json, /mesh.json and / on %s",
             at ? at : "?");
    cJSON_free(at);
    return 0;
}

static void observe_free(aemp_node *node)
{
    struct obs *o = obs_of(node);
    if (!o) return;
    builtin_set_state(node, &observe_builtin, NULL);
    obs_free(o);
}

const struct core_builtin observe_builtin = {
    .name = "observe",
    .start = observe_start,
    .free = observe_free,
};

int observe_metrics(aemp_node *node, struct evbuffer *out)
{
    struct obs *o = obs_of(node);
    if (!o) return AEMP_ESTATE;
    metrics_render(o->metrics, out);
    return 0;
}

cJSON *observe_addrs(aemp_node *node)
{
    struct obs *o = obs_of(node);
    return o ? cJSON_Duplicate(o->addrs, 1) : cJSON_CreateArray();
}
