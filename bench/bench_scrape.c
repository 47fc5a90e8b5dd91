/* bench_scrape.c - the cost of being scraped: one node serving "http" with
 * 100 peer nodes connected and 10,000 local ports (all nodes in this
 * process on one event loop; the peers do not listen, so they connect to
 * the served node only). Measures only; prints "NAME: VALUE UNIT" lines.
 *
 * (1) the time to render /metrics (observe_metrics, in the loop's thread),
 *     its size;
 * (2) the CPU of this process per scrape: a forked child GETs /metrics
 *     SCRAPES times over HTTP, one after another, while the loop serves
 *     them; the process's CPU (getrusage) over that time, less what the
 *     same wall time costs it idle, divided by SCRAPES; and what scraping
 *     once a second costs in percent of a core. */
#include "aemp.h"
#include "bench.h"
#include "http.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PEERS 100
#define PORTS 10000
#define SCRAPES 200
#define RENDERS 50

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* The child: SCRAPES GETs of /metrics on 127.0.0.1:port, each on a new
 * connection as Prometheus's default; writes "OK BYTES" or "FAIL". */
static void scraper(int port, int out)
{
    long bytes = 0;
    char buf[65536];
    for (int i = 0; i < SCRAPES; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(s, (void *)&a, sizeof a)) goto fail;
        const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (write(s, req, strlen(req)) != (ssize_t)strlen(req)) goto fail;
        ssize_t n;
        long got = 0;
        while ((n = read(s, buf, sizeof buf)) > 0) got += n;
        close(s);
        if (got < 1000) goto fail;
        bytes = got;
    }
    dprintf(out, "OK %ld\n", bytes);
    _exit(0);
fail:
    dprintf(out, "FAIL\n");
    _exit(1);
}

struct wait_ctx {
    struct event_base *base;
    aemp_node *served;
    int want;
};

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wait_ctx *w = arg;
    (void)fd, (void)what;
    cJSON *up = aemp_up_nodes(w->served);
    if (cJSON_GetArraySize(up) >= w->want) event_base_loopbreak(w->base);
    cJSON_Delete(up);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

/* Run the loop for `secs` seconds. */
static void run_for(struct event_base *base, double secs)
{
    struct timeval tv = {(time_t)secs, (suseconds_t)((secs - (time_t)secs) * 1e6)};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    cJSON *cfg = config_defaults();
    cJSON_ReplaceItemInObject(cfg, "binds", cJSON_CreateArray());
    cJSON_AddItemToArray(cJSON_GetObjectItem(cfg, "binds"), cJSON_CreateString("127.0.0.1:0"));
    cJSON_ReplaceItemInObject(cfg, "seeds", cJSON_CreateArray());
    cJSON *http = cJSON_AddArrayToObject(cfg, "http");
    cJSON_AddItemToArray(http, cJSON_CreateString("127.0.0.1:0"));
    cJSON_AddStringToObject(cfg, "nodeid", "served");
    cJSON_AddStringToObject(cfg, "secret", "bench-secret");
    aemp_node *served = aemp_node_new(base);
    char err[256] = "";
    if (!served || aemp_configure_effective(served, cfg, err, sizeof err)) {
        fprintf(stderr, "bench_scrape: %s\n", err);
        return 1;
    }
    cJSON_Delete(cfg);
    cJSON *la = aemp_listen_addrs(served), *ha = observe_addrs(served);
    char seed[128];
    snprintf(seed, sizeof seed, "%s", cJSON_GetArrayItem(la, 0)->valuestring);
    int hport = atoi(strrchr(cJSON_GetArrayItem(ha, 0)->valuestring, ':') + 1);
    cJSON_Delete(la);
    cJSON_Delete(ha);
    for (int i = 0; i < PORTS; i++)
        free(aemp_port(served));
    aemp_node *peers[PEERS];
    for (int i = 0; i < PEERS; i++) {
        char id[32];
        snprintf(id, sizeof id, "peer%d", i);
        peers[i] = bench_node(base, id, 0, seed, 0.2);
    }
    struct wait_ctx w = {base, served, PEERS};
    struct event *check = event_new(base, -1, EV_PERSIST, check_cb, &w);
    event_add(check, &(struct timeval){0, 50000});
    double t0 = bench_now();
    event_base_dispatch(base);
    event_free(check);
    cJSON *up = aemp_up_nodes(served);
    printf("scrape_setup: %d peers up, %d local ports, in %.1f s\n", cJSON_GetArraySize(up), PORTS,
           bench_now() - t0);
    cJSON_Delete(up);
    run_for(base, 1.0); /* let the mesh settle */

    /* (1) rendering */
    double best = 1e9, sum = 0;
    size_t size = 0;
    for (int i = 0; i < RENDERS; i++) {
        struct evbuffer *b = evbuffer_new();
        double a = bench_now();
        observe_metrics(served, b);
        double d = bench_now() - a;
        size = evbuffer_get_length(b);
        evbuffer_free(b);
        sum += d;
        if (d < best) best = d;
    }
    printf("metrics_render: %.0f us mean, %.0f us best, %zu bytes (%d peers, %d ports)\n",
           sum / RENDERS * 1e6, best * 1e6, size, PEERS, PORTS);

    /* (2) CPU per scrape over HTTP, less the idle cost of the same time */
    int p[2];
    if (pipe(p)) return 1;
    double c0 = cpu_now(), w0 = bench_now();
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        scraper(hport, p[1]);
    }
    close(p[1]);
    struct event *done = event_new(base, p[0], EV_READ, done_cb, base);
    event_add(done, NULL);
    event_base_dispatch(base);
    double busy_cpu = cpu_now() - c0, wall = bench_now() - w0;
    char line[64] = "";
    ssize_t n = read(p[0], line, sizeof line - 1);
    line[n > 0 ? n : 0] = 0;
    waitpid(pid, NULL, 0);
    event_free(done);
    close(p[0]);
    double c1 = cpu_now();
    run_for(base, wall);
    double idle_cpu = cpu_now() - c1;
    double per = (busy_cpu - idle_cpu) / SCRAPES;
    printf("scrape_http: %d scrapes in %.2f s (%s), %.0f us CPU per scrape (%.0f us with the "
           "idle loop), %.0f us wall each\n",
           SCRAPES, wall, strtok(line, "\n") ? line : "?", per * 1e6, busy_cpu / SCRAPES * 1e6,
           wall / SCRAPES * 1e6);
    printf("scrape_every_second: %.3f %% of a core (limit 1 %%)\n", per * 100);
    for (int i = 0; i < PEERS; i++)
        aemp_node_free(peers[i]);
    aemp_node_free(served);
    event_base_free(base);
    return 0;
}
