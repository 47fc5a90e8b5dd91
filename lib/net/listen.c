/* listen.c - addresses ("host:port" text, wildcard binds) and the listeners
 * on the configured binds; an accepted connection goes to the handshake
 * in conn_hs.c. */
#include "transport_int.h"

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Split "host:port", "[v6]:port", "*", "*:*", "port" or "host" into host and
 * port text. `defport` is used when none is given; "*" or missing port text
 * becomes "0" for binds. 0, or -1 for a malformed address. */
int addr_split(const char *s, const char *defport, char *host, size_t hl, char *port,
               size_t pl)
{
    const char *colon;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (!end || (end[1] && end[1] != ':')) return -1;
        snprintf(host, hl, "%.*s", (int)(end - s - 1), s + 1);
        snprintf(port, pl, "%s", end[1] ? end + 2 : defport);
    } else if (strspn(s, "0123456789") == strlen(s) && *s) {
        char name[256];
        config_nodename(name, sizeof name);
        snprintf(host, hl, "%s", name);
        snprintf(port, pl, "%s", s);
    } else if ((colon = strrchr(s, ':')) && strchr(s, ':') == colon) {
        snprintf(host, hl, "%.*s", (int)(colon - s), s);
        snprintf(port, pl, "%s", colon[1] ? colon + 1 : defport);
    } else {
        snprintf(host, hl, "%s", s);
        snprintf(port, pl, "%s", defport);
    }
    if (!strcmp(port, "*")) snprintf(port, pl, "0");
    return *host ? 0 : -1;
}

/* "host:port" text of a socket address into buf. */
void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char h[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, h, sizeof h);
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%d", h, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof h);
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%d", h, port);
    } else {
        snprintf(buf, len, "?");
    }
}

void addrs_add_unique(cJSON *arr, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    if (cJSON_IsString(e) && !strcmp(e->valuestring, s)) return;
    cJSON_AddItemToArray(arr, cJSON_CreateString(s));
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct transport *t = arg;
    int one = 1;
    probe_sockopts(t, fd);
    if (t->nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *bev = bufferevent_socket_new(t->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    struct conn *c = conn_new(t, bev);
    if (!c) {
        bufferevent_free(bev);
        return;
    }
    int rc = admit_incoming(c, sa);
    if (rc < 0) {
        conn_free(c); /* closes the socket; admit.c logged why */
        return;
    }
    char buf[128];
    addr_text(sa, buf, sizeof buf);
    c->addr = strdup(buf);
    if (rc == 0) {
        send_greeting(c);
        return;
    }
    /* on probation: ours goes out when its greeting is in (conn_hs.c) */
    c->state = C_GREET;
    struct timeval tv = tv_of(admit_probation_grace(t));
    evtimer_add(c->timer, &tv);
}

/* The addresses a "*" bind is reachable at: every non-loopback IPv4
 * address, global and site-local IPv6; 127.0.0.1 when there is none. */
static void wildcard_addrs(cJSON *out, int port)
{
    struct ifaddrs *ifs, *i;
    int n = 0;
    char buf[128];
    if (getifaddrs(&ifs) == 0) {
        for (i = ifs; i; i = i->ifa_next) {
            if (!i->ifa_addr) continue;
            if (i->ifa_addr->sa_family == AF_INET) {
                struct sockaddr_in in = *(struct sockaddr_in *)i->ifa_addr;
                if ((ntohl(in.sin_addr.s_addr) >> 24) == 127) continue;
                in.sin_port = htons((uint16_t)port);
                addr_text((struct sockaddr *)&in, buf, sizeof buf);
            } else {
                continue; /* the wildcard socket is IPv4 */
            }
            addrs_add_unique(out, buf);
            n++;
        }
        freeifaddrs(ifs);
    }
    if (!n) {
        snprintf(buf, sizeof buf, "127.0.0.1:%d", port);
        addrs_add_unique(out, buf);
    }
}

/* The listen backlog: the kernel's limit (net.core.somaxconn, 4096 on
 * current Linux), not 128: when a new node's address reaches hundreds of
 * nodes at once they all dial it in the same instant, and connections past
 * the backlog are dropped and retried only after a second or more. */
static int listen_backlog(void)
{
    int backlog = 4096;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    int v;
    if (f && fscanf(f, "%d", &v) == 1 && v > 0) backlog = v;
    if (f) fclose(f);
    return backlog;
}

static int listen_on(struct transport *t, const struct sockaddr *sa, socklen_t len,
                     const char *bind, char *err, size_t errlen)
{
    struct evconnlistener *l =
        evconnlistener_new_bind(t->base, accept_cb, t, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                listen_backlog(), sa, (int)len);
    if (!l) {
        snprintf(err, errlen, "cannot listen on %s: %s", bind, strerror(errno));
        return AEMP_EIO;
    }
    evconnlistener_set_error_cb(l, admit_listener_error);
    struct evconnlistener **v = realloc(t->lis, (t->nlis + 1) * sizeof *v);
    if (!v) {
        evconnlistener_free(l);
        return AEMP_ENOMEM;
    }
    t->lis = v;
    t->lis[t->nlis++] = l;
    return 0;
}

/* The port a listener really got (for port 0). */
static int bound_port(struct evconnlistener *l)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof ss;
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len)) return 0;
    if (ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

int start_listeners(struct transport *t, const cJSON *binds, char *err, size_t errlen)
{
    const cJSON *b;
    cJSON_ArrayForEach(b, binds)
    {
        char host[256], port[32];
        if (!cJSON_IsString(b) || addr_split(b->valuestring, "0", host, sizeof host, port,
                                             sizeof port)) {
            snprintf(err, errlen, "binds: \"%s\" is not host:port",
                     cJSON_IsString(b) ? b->valuestring : "(not a string)");
            return AEMP_ECONFIG;
        }
        if (!strcmp(host, "*")) {
            struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
            int rc = listen_on(t, (struct sockaddr *)&in, sizeof in, b->valuestring, err, errlen);
            if (rc) return rc;
            wildcard_addrs(t->listen_addrs, bound_port(t->lis[t->nlis - 1]));
            continue;
        }
        /* Resolving a bind happens once, at start, before the loop runs. */
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res, *r;
        int gai = getaddrinfo(host, port, &hints, &res);
        if (gai) {
            snprintf(err, errlen, "binds: cannot resolve \"%s\": %s", b->valuestring,
                     gai_strerror(gai));
            return AEMP_ECONFIG;
        }
        for (r = res; r; r = r->ai_next) {
            int rc = listen_on(t, r->ai_addr, r->ai_addrlen, b->valuestring, err, errlen);
            if (rc) {
                freeaddrinfo(res);
                return rc;
            }
            struct sockaddr_storage ss;
            memcpy(&ss, r->ai_addr, r->ai_addrlen);
            int bp = bound_port(t->lis[t->nlis - 1]);
            if (ss.ss_family == AF_INET) ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)bp);
            else ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)bp);
            char buf[128];
            addr_text((struct sockaddr *)&ss, buf, sizeof buf);
            addrs_add_unique(t->listen_addrs, buf);
        }
        freeaddrinfo(res);
    }
    return 0;
}

cJSON *transport_listen_addrs(struct transport *t)
{
    return t ? cJSON_Duplicate(t->listen_addrs, 1) : cJSON_CreateArray();
}
