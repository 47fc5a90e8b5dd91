/* bench_dataconn.c - bulk data between two processes on 127.0.0.1: raw TCP
 * (write(2)/read(2) of the same bytes), a data connection without TLS and
 * with TLS (aemp_dataconn_connect, bufferevents), and `aemp put` of a file
 * (the tool end to end: SHA-256 on both sides, the receiver writing the
 * file) when the aemp binary is given. Each figure is printed with its
 * ratio to raw TCP of the same run.
 *
 *   bench_dataconn [AEMP_BINARY]     (BENCH_MB sets the size, default 256)
 *
 * The receiving process is fork()ed before the sender creates anything. */
#include "bench.h"

#include "certgen.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define CHUNK (1024 * 1024)

static size_t total;
static char *block;

/* ------------------------------------------------------------- raw TCP */

static double bench_raw(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (ls < 0 || bind(ls, (void *)&sa, sizeof sa) || listen(ls, 1) ||
        getsockname(ls, (void *)&sa, &sl)) {
        perror("raw: listen");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        int s = accept(ls, NULL, NULL);
        size_t got = 0;
        while (got < total) {
            ssize_t n = read(s, block, CHUNK);
            if (n <= 0) _exit(1);
            got += (size_t)n;
        }
        if (write(s, "k", 1) != 1) _exit(1);
        _exit(0);
    }
    close(ls);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (void *)&sa, sizeof sa)) {
        perror("raw: connect");
        exit(1);
    }
    double t0 = bench_now();
    for (size_t sent = 0; sent < total;) {
        size_t want = total - sent < CHUNK ? total - sent : CHUNK;
        ssize_t n = write(s, block, want);
        if (n <= 0) {
            perror("raw: write");
            exit(1);
        }
        sent += (size_t)n;
    }
    char k;
    if (read(s, &k, 1) != 1) exit(1);
    double t = bench_now() - t0;
    close(s);
    waitpid(pid, NULL, 0);
    return total / 1e6 / t;
}

/* ----------------------------------------------------- data connections */

static aemp_node *dc_node(struct event_base *base, const char *id, int listen,
                          const char *seed, const char *cert)
{
    cJSON *cfg = config_defaults();
    cJSON_ReplaceItemInObject(cfg, "binds", cJSON_CreateArray());
    cJSON_ReplaceItemInObject(cfg, "seeds", cJSON_CreateArray());
    if (listen)
        cJSON_AddItemToArray(cJSON_GetObjectItem(cfg, "binds"), cJSON_CreateString("127.0.0.1:0"));
    if (seed) cJSON_AddItemToArray(cJSON_GetObjectItem(cfg, "seeds"), cJSON_CreateString(seed));
    cJSON_AddStringToObject(cfg, "nodeid", id);
    if (cert) cJSON_AddStringToObject(cfg, "cert", cert);
    else cJSON_AddStringToObject(cfg, "secret", "bench-secret");
    aemp_node *n = aemp_node_new(base);
    char err[256] = "";
    if (!n || aemp_configure_effective(n, cfg, err, sizeof err)) {
        fprintf(stderr, "bench: configure %s: %s\n", id, n ? err : "out of memory");
        _exit(1);
    }
    cJSON_Delete(cfg);
    return n;
}

struct sink {
    aemp_node *node;
    size_t got;
};

static void sink_read(struct bufferevent *bev, void *ud)
{
    struct sink *s = ud;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    evbuffer_drain(in, n);
    s->got += n;
    if (s->got >= total) bufferevent_write(bev, "k", 1);
}

static void sink_event(struct bufferevent *bev, short what, void *ud)
{
    struct sink *s = ud;
    (void)what;
    bufferevent_free(bev);
    aemp_node_stop(s->node);
}

static void sink_start(aemp_node *node, struct bufferevent *bev, const cJSON *args, void *ud)
{
    (void)node, (void)args;
    bufferevent_setcb(bev, sink_read, NULL, sink_event, ud);
    sink_read(bev, ud);
}

struct source {
    aemp_node *node;
    size_t sent;
    double t0, t;
    struct bufferevent *bev;
};

static void source_fill(struct bufferevent *bev, void *ud)
{
    struct source *s = ud;
    struct evbuffer *out = bufferevent_get_output(bev);
    while (s->sent < total && evbuffer_get_length(out) < 2 * CHUNK) {
        size_t want = total - s->sent < CHUNK ? total - s->sent : CHUNK;
        evbuffer_add_reference(out, block, want, NULL, NULL);
        s->sent += want;
    }
}

static void source_read(struct bufferevent *bev, void *ud)
{
    struct source *s = ud;
    (void)bev;
    s->t = bench_now() - s->t0;
    aemp_node_stop(s->node);
}

static void source_event(struct bufferevent *bev, short what, void *ud)
{
    struct source *s = ud;
    (void)bev, (void)what;
    fprintf(stderr, "bench: data connection failed after %zu bytes\n", s->sent);
    aemp_node_stop(s->node);
}

static void source_up(aemp_node *node, struct bufferevent *bev, const char *error, void *ud)
{
    struct source *s = ud;
    (void)node;
    if (!bev) {
        fprintf(stderr, "bench: no data connection: %s\n", error);
        aemp_node_stop(s->node);
        return;
    }
    s->bev = bev;
    s->t0 = bench_now();
    bufferevent_setwatermark(bev, EV_WRITE, CHUNK, 0);
    bufferevent_setcb(bev, source_read, source_fill, source_event, s);
    source_fill(bev, s);
}

static double bench_dc(const char *cert)
{
    int p[2];
    if (pipe(p)) exit(1);
    pid_t pid = fork();
    if (pid == 0) { /* the receiver: tell the parent where it listens */
        close(p[0]);
        struct event_base *base = event_base_new();
        aemp_node *n = dc_node(base, "bench-sink", 1, NULL, cert);
        struct sink s = {n, 0};
        aemp_dataconn_register(n, "bench::sink", sink_start, &s);
        cJSON *a = aemp_listen_addrs(n);
        const char *addr = cJSON_GetArrayItem(a, 0)->valuestring;
        if (write(p[1], addr, strlen(addr) + 1) < 0) _exit(1);
        close(p[1]);
        cJSON_Delete(a);
        aemp_node_run(n);
        _exit(0);
    }
    close(p[1]);
    char addr[128] = "";
    ssize_t n = read(p[0], addr, sizeof addr - 1);
    close(p[0]);
    if (n <= 0) exit(1);
    struct event_base *base = event_base_new();
    aemp_node *node = dc_node(base, "bench-source", 1, addr, cert);
    struct source s = {.node = node};
    aemp_dataconn_connect(node, "bench-sink", 10, "bench::sink", NULL, source_up, &s);
    aemp_node_run(node);
    if (s.bev) bufferevent_free(s.bev);
    aemp_node_free(node);
    event_base_free(base);
    waitpid(pid, NULL, 0);
    return s.t > 0 ? total / 1e6 / s.t : 0;
}

/* ------------------------------------------------------------- aemp put */

static int sh(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

/* `aemp put` of a `total`-byte file to an `aemp run` receiver, in a temp
 * HOME with its own config file; files on /dev/shm when there is one. */
static double bench_put(const char *aemp, int tls)
{
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char dir[256], cmd[2048];
    snprintf(dir, sizeof dir, "%s/aemp-bench.XXXXXX", tmp);
    if (!mkdtemp(dir)) return 0;
    setenv("HOME", dir, 1);
    snprintf(cmd, sizeof cmd, "%s/rc", dir);
    setenv("PERL_ANYEVENT_MP_RC", cmd, 1);
    unsetenv("AEMP_RC");
    double rate = 0;
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/in && head -c %zu /dev/zero > %s/file && "
             "%s %s profile aemp binds 127.0.0.1:0 >/dev/null",
             dir, total, dir, aemp, tls ? "gencert" : "gensecret");
    if (sh(cmd) == 0) {
        int p[2];
        if (pipe(p)) return 0;
        pid_t pid = fork();
        if (pid == 0) {
            dup2(p[1], 2);
            close(p[0]);
            char svc[512];
            snprintf(svc, sizeof svc, "[[\"aemp::put\",\"%s/in\"]]", dir);
            execl(aemp, aemp, "run", "nodeid", "bench-put", "binds", "127.0.0.1:0", "services",
                  svc, (char *)NULL);
            _exit(127);
        }
        close(p[1]);
        /* "node bench-put running, listening on ["127.0.0.1:PORT"]" */
        FILE *f = fdopen(p[0], "r");
        char line[512], *at = NULL;
        while (f && fgets(line, sizeof line, f) && !(at = strstr(line, "[\"127.0.0.1:"))) {}
        if (at) {
            char seed[64];
            snprintf(seed, sizeof seed, "%.*s", (int)strcspn(at + 2, "\""), at + 2);
            snprintf(cmd, sizeof cmd,
                     "%s profile aemp seeds %s >/dev/null && %s put --timeout 10 bench-put "
                     "aemp::put %s/file",
                     aemp, seed, aemp, dir);
            double t0 = bench_now();
            if (sh(cmd) == 0) rate = total / 1e6 / (bench_now() - t0);
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        if (f) fclose(f);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
    return rate;
}

int main(int argc, char **argv)
{
    const char *mb = getenv("BENCH_MB");
    total = (size_t)(mb && atoi(mb) > 0 ? atoi(mb) : 256) * 1024 * 1024;
    block = malloc(CHUNK);
    if (!block) return 1;
    for (size_t i = 0; i < CHUNK; i++)
        block[i] = (char)(i * 7 + 3);
    signal(SIGPIPE, SIG_IGN);
    char *pem = NULL, err[256];
    if (certgen_selfsigned("bench", &pem, err, sizeof err)) {
        fprintf(stderr, "bench: certificate: %s\n", err);
        return 1;
    }
    printf("data connections, %zu MB between two processes on 127.0.0.1:\n", total >> 20);
    double raw = bench_raw();
    printf("  %-30s %8.0f MB/s\n", "raw TCP (write/read)", raw);
    double plain = bench_dc(NULL);
    printf("  %-30s %8.0f MB/s  (%.2f x raw TCP)\n", "data connection, no TLS", plain,
           plain / raw);
    double tls = bench_dc(pem);
    printf("  %-30s %8.0f MB/s  (%.2f x raw TCP)\n", "data connection, TLS", tls, tls / raw);
    if (argc > 1) {
        double put = bench_put(argv[1], 0);
        printf("  %-30s %8.0f MB/s  (%.2f x raw TCP; file, SHA-256, write, process start)\n",
               "aemp put, no TLS", put, put / raw);
        put = bench_put(argv[1], 1);
        printf("  %-30s %8.0f MB/s  (%.2f x raw TCP)\n", "aemp put, TLS", put, put / raw);
    }
    free(pem);
    free(block);
    return 0;
}
