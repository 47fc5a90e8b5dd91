/* hostbeat.c - is a peer on this host alive? Ask the kernel, not the wire.
 *
 * Many nodes on one host (one per worker process) are a full mesh of
 * loopback links, and probing each link costs each node a syscall and a
 * wakeup per probe and answer: at 300 nodes about 240 messages per node per
 * second while nothing happens. For a peer on the same host there is a
 * cheaper witness:
 *  - every node keeps a heartbeat page (a 4 KiB memfd, mapped): its
 *    heartbeat timer (probe.c) writes there when its loop last ran the beat
 *    (CLOCK_MONOTONIC, shared by all processes of a host) and how much CPU
 *    its loop thread had used by then. Writing it is two stores and one
 *    clock_gettime per beat;
 *  - on a connection whose two ends have the same IP address (so the same
 *    network stack: one host, one namespace), an aemp-c node adds
 *    ";beat=PID/FD/TOKEN" to its greeting. Once the connection is
 *    authenticated, the other end opens /proc/PID/fd/FD (the same user's
 *    process), maps the page read-only and checks that it holds that PID
 *    and TOKEN (so a reused PID or another PID namespace is noticed);
 *  - from then on, that end sends no probes on that link: a beat newer
 *    than the last one it saw counts as hearing from the peer (probe.c);
 *  - when the beat has been still for monitor_timeout of our own running
 *    time, /proc says why: a stopped (SIGSTOP), dead or zombie peer, a
 *    peer that sleeps while its loop does not beat (blocked), and a peer
 *    that has run for monitor_timeout of CPU time since its last beat (a
 *    callback that does not return) are down; a runnable peer that has
 *    not had that much CPU is starved by a saturated machine, not dead,
 *    and is asked again at the next beat.
 * 1.30 nodes ignore the greeting key; links to them, links between hosts or
 * namespaces, and links whose page cannot be mapped (another user, a
 * hidepid /proc, no memfd) keep the probes of probe.c. AEMP_HOSTBEAT=0 in
 * the environment switches it off (both ends then probe as before). */
#include "transport_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HB_MAGIC "aempbea1"
#define HB_SIZE 4096

struct hb_page {
    char magic[8];
    uint32_t pid, tid;          /* the process, and its loop's thread */
    uint32_t period_ms;         /* how often it beats */
    unsigned char token[16];    /* random: names this page in the greeting */
    _Atomic uint64_t cpu_ns;    /* the loop thread's CPU time at the last beat */
    _Atomic uint64_t beat_ns;   /* CLOCK_MONOTONIC of the last beat */
};

struct hostbeat {
    struct hb_page *page; /* ours, read-write */
    int fd;
    char key[96];         /* PID/FD/TOKEN for the greeting */
};

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts)) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* AEMP_HOSTBEAT=0 switches the pages off; 1 or unset leaves them on, and
 * so does anything else, with a word in the log. */
static int disabled(void)
{
    const char *e = getenv("AEMP_HOSTBEAT");
    if (e && *e && strcmp(e, "0") && strcmp(e, "1"))
        aemp_log(4, "AEMP_HOSTBEAT=%.40s is neither 0 nor 1: heartbeat pages stay on "
                    "(AEMP_HOSTBEAT=0 switches them off)", e);
    return e && !strcmp(e, "0");
}

void hostbeat_start(struct transport *t)
{
    if (disabled()) return;
    struct hostbeat *h = calloc(1, sizeof *h);
    if (!h) return;
    h->fd = memfd_create("aemp-heartbeat", MFD_CLOEXEC);
    if (h->fd < 0 || ftruncate(h->fd, HB_SIZE)) goto fail;
    h->page = mmap(NULL, HB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
    if (h->page == MAP_FAILED) goto fail;
    memcpy(h->page->magic, HB_MAGIC, 8);
    h->page->pid = (uint32_t)getpid();
    randombytes_buf(h->page->token, sizeof h->page->token);
    char hex[33];
    sodium_bin2hex(hex, sizeof hex, h->page->token, sizeof h->page->token);
    snprintf(h->key, sizeof h->key, "%u/%d/%s", h->page->pid, h->fd, hex);
    t->hostbeat = h;
    hostbeat_publish(t, 1);
    return;
fail:
    aemp_log(7, "no heartbeat page (%s): peers on this host are probed", strerror(errno));
    if (h->fd >= 0) close(h->fd);
    free(h);
}

void hostbeat_free(struct transport *t)
{
    struct hostbeat *h = t->hostbeat;
    if (!h) return;
    munmap(h->page, HB_SIZE);
    close(h->fd);
    free(h);
    t->hostbeat = NULL;
}

void hostbeat_publish(struct transport *t, double period)
{
    struct hostbeat *h = t->hostbeat;
    if (!h) return;
    h->page->period_ms = (uint32_t)(period * 1000);
    h->page->tid = (uint32_t)syscall(SYS_gettid); /* the loop's thread */
    atomic_store_explicit(&h->page->cpu_ns, clock_ns(CLOCK_THREAD_CPUTIME_ID),
                          memory_order_relaxed);
    atomic_store_explicit(&h->page->beat_ns, clock_ns(CLOCK_MONOTONIC), memory_order_release);
}

/* 1 when both ends of the socket have the same IP address. */
static int same_host(int fd)
{
    struct sockaddr_storage a = {0}, b = {0}; /* zeroed: the analyzer cannot see the calls fill them */
    socklen_t la = sizeof a, lb = sizeof b;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &la) ||
        getpeername(fd, (struct sockaddr *)&b, &lb) || a.ss_family != b.ss_family)
        return 0;
    if (a.ss_family == AF_INET)
        return ((struct sockaddr_in *)&a)->sin_addr.s_addr ==
               ((struct sockaddr_in *)&b)->sin_addr.s_addr;
    if (a.ss_family == AF_INET6)
        return !memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
                       &((struct sockaddr_in6 *)&b)->sin6_addr, sizeof(struct in6_addr));
    return 0;
}

const char *hostbeat_key(struct conn *c)
{
    struct hostbeat *h = c->t->hostbeat;
    if (!h || !c->bev || c->dataconn_id) return NULL;
    c->on_host = same_host(bufferevent_getfd(c->bev));
    return c->on_host ? h->key : NULL;
}

void hostbeat_attach(struct conn *c)
{
    const char *key = c->beat_key;
    if (!key || !c->t->hostbeat || !c->remote_c || !c->bev || c->hb) return;
    unsigned pid;
    int fd, n = 0;
    char hex[33];
    unsigned char token[16];
    if (sscanf(key, "%u/%d/%32[0-9a-f]%n", &pid, &fd, hex, &n) != 3 || key[n] ||
        sodium_hex2bin(token, sizeof token, hex, 32, NULL, NULL, NULL) || fd < 0 || !c->on_host)
        return;
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/fd/%d", pid, fd);
    /* O_NONBLOCK: whatever the peer named, opening it must not wait. */
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    struct hb_page *p = MAP_FAILED;
    if (f >= 0 && !fstat(f, &st) && S_ISREG(st.st_mode) && st.st_size >= HB_SIZE)
        p = mmap(NULL, HB_SIZE, PROT_READ, MAP_SHARED, f, 0);
    if (f >= 0) close(f);
    if (p == MAP_FAILED) {
        aemp_log(7, "%s: its heartbeat page %s cannot be mapped: probing it", c->peer_id, path);
        return;
    }
    if (memcmp(p->magic, HB_MAGIC, 8) || p->pid != pid ||
        sodium_memcmp(p->token, token, sizeof token)) {
        munmap(p, HB_SIZE);
        aemp_log(7, "%s: %s is not its heartbeat page: probing it", c->peer_id, path);
        return;
    }
    c->hb = p;
    c->hb_seen = atomic_load_explicit(&p->beat_ns, memory_order_acquire);
    /* Its kernel and ours are one: TCP keepalive adds nothing. */
    int fdc = bufferevent_getfd(c->bev), idle = 7200, intvl = 75, cnt = 9;
    setsockopt(fdc, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fdc, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fdc, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    aemp_log(8, "%s is on this host (pid %u): its heartbeat page tells its liveness",
             c->peer_id, pid);
}

void hostbeat_detach(struct conn *c)
{
    if (c->hb) munmap(c->hb, HB_SIZE);
    c->hb = NULL;
}

double hostbeat_new(struct conn *c)
{
    if (!c->hb) return -1;
    uint64_t b = atomic_load_explicit(&c->hb->beat_ns, memory_order_acquire);
    if (b == c->hb_seen) return -1;
    c->hb_seen = b;
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    return now > b ? (double)(now - b) / 1e9 : 0;
}

/* The state letter and CPU seconds of the peer's loop thread from /proc:
 * 0, or -1 when it is gone. */
static int peer_task(const struct hb_page *p, char *state, double *cpu)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%u/task/%u/stat", p->pid, p->tid);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return -1;
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0) return -1;
    buf[n] = 0;
    const char *s = strrchr(buf, ')'); /* the command name may hold anything */
    unsigned long long ut, st;
    if (!s || sscanf(s + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", state, &ut,
                     &st) != 3)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    *cpu = (double)(ut + st) / (double)(hz > 0 ? hz : 100);
    return 0;
}

double hostbeat_period(const struct conn *c)
{
    return c->hb ? c->hb->period_ms / 1000.0 : 0;
}

const char *hostbeat_why_silent(struct conn *c, double m)
{
    char state;
    double cpu;
    if (!c->hb) return "";
    if (peer_task(c->hb, &state, &cpu)) return "its process is gone";
    if (strchr("TtZXx", state)) return "its process is stopped or dead";
    if (state != 'R') return "its event loop is blocked";
    double ran = cpu - (double)atomic_load_explicit(&c->hb->cpu_ns, memory_order_relaxed) / 1e9;
    if (ran >= m) return "its event loop is stuck in a callback";
    return NULL; /* runnable, not run enough since its beat: starved */
}
