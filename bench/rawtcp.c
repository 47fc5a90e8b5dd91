/* rawtcp.c - raw-TCP baselines for bench_remote (see rawtcp.h). Each test
 * forks a child bounded by alarm() and reaps it. */
#include "rawtcp.h"

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* A listening socket on an ephemeral port of 127.0.0.1; *addr gets it. */
static int listen_any(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *addr;
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) || listen(fd, 1) ||
        getsockname(fd, (struct sockaddr *)addr, &len)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int io_all(int fd, char *p, size_t n, int writing)
{
    while (n) {
        ssize_t r = writing ? write(fd, p, n) : read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Fork a child that accepts one connection and runs `serve` on it. Returns
 * the connected socket of the parent, or -1; *pid gets the child. */
static int start_child(void (*serve)(int fd, long arg), long arg, int pin, pid_t *pid)
{
    struct sockaddr_in addr;
    int ls = listen_any(&addr);
    if (ls < 0) return -1;
    fflush(NULL);
    *pid = fork();
    if (*pid < 0) {
        close(ls);
        return -1;
    }
    if (*pid == 0) {
        alarm(120);
        if (pin) bench_pin_cpu0();
        int fd = accept(ls, NULL, NULL);
        if (fd >= 0) serve(fd, arg);
        _exit(0);
    }
    close(ls);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
        if (fd >= 0) close(fd);
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        return -1;
    }
    return fd;
}

/* One-way receiver: read `total` bytes, answer one byte. */
static void sink(int fd, long total)
{
    static char buf[1 << 20];
    long got = 0;
    while (got < total) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        got += r;
    }
    io_all(fd, buf, 1, 1);
}

double rawtcp_oneway(size_t size, long n, size_t per_write)
{
    pid_t pid;
    int fd = start_child(sink, (long)size * n, 0, &pid);
    if (fd < 0) return 0;
    size_t batch = per_write / size ? per_write / size : 1; /* messages per write */
    char *buf = malloc(size * batch);
    for (size_t i = 0; i < size * batch; i++) buf[i] = "0123456789abcdef"[i % 16];
    double t0 = bench_now();
    int ok = 1;
    for (long sent = 0; ok && sent < n; sent += (long)batch) {
        size_t k = n - sent < (long)batch ? (size_t)(n - sent) : batch;
        ok = io_all(fd, buf, k * size, 1) == 0;
    }
    char ack;
    ok = ok && io_all(fd, &ack, 1, 0) == 0;
    double t1 = bench_now();
    free(buf);
    close(fd);
    waitpid(pid, NULL, 0);
    return ok ? n / (t1 - t0) : 0;
}

/* Ping-pong echo: 16 bytes back for 16 bytes in, until EOF. */
static void echo(int fd, long arg)
{
    char buf[16];
    nodelay(fd);
    while (io_all(fd, buf, sizeof buf, 0) == 0 && io_all(fd, buf, sizeof buf, 1) == 0)
        ;
}

double rawtcp_pingpong(long n, int pin, double *rtt)
{
    pid_t pid;
    cpu_set_t saved;
    sched_getaffinity(0, sizeof saved, &saved);
    if (pin) bench_pin_cpu0();
    int fd = start_child(echo, 0, pin, &pid);
    double rate = 0;
    if (fd >= 0) {
        nodelay(fd);
        char msg[16] = "[\"tag\",1,\"abc\"]";
        int ok = 1;
        double t0 = bench_now();
        for (long i = 0; ok && i < n; i++) {
            double a = bench_now();
            ok = io_all(fd, msg, sizeof msg, 1) == 0 && io_all(fd, msg, sizeof msg, 0) == 0;
            rtt[i] = bench_now() - a;
        }
        double t1 = bench_now();
        close(fd);
        waitpid(pid, NULL, 0);
        rate = ok ? n / (t1 - t0) : 0;
    }
    sched_setaffinity(0, sizeof saved, &saved);
    return rate;
}
