/* Limits on what peers can make a node hold (issue 7, section 4): output
 * for a peer that stops reading, the queue for a node still being
 * connected, and the nodes one Global "nodes" message makes us know and
 * dial.
 *
 * Nodes run in this process on one event loop and talk over real TCP on
 * 127.0.0.1 (nettest.h); tests that need a process of their own (fd limits,
 * a peer that stops reading) fork it. */
#include "aemp.h"
#include "nettest.h"
#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------- what peers can make us hold */

/* A peer that stops reading (SIGSTOP) is dropped once 16 MB of output wait
 * (4 x max_message_size, at least 16 MB) and its socket took nothing for
 * min(monitor_timeout, 10 s), with a reason saying so; before the bound
 * nothing stopped the node from buffering everything. (A peer that reads,
 * however slowly, is not dropped: test_flow.) */
static void test_output_high_water_mark(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode_small(base, "hwm-a", NULL);
    char seed[128];
    snprintf(seed, sizeof seed, "%s", addr_of(a));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        alarm(60);
        struct event_base *cb = event_base_new();
        aemp_node *b = mknode_small(cb, "hwm-b", seed);
        aemp_node_run(b);
        _exit(0);
    }
    CHECK(wait_up(base, a, "hwm-b", 10));
    kill(pid, SIGSTOP);
    struct downrec d = {0};
    aemp_guard *g = NULL;
    aemp_mon_nodes(a, down_rec, &d, &g);
    size_t sent = 0;
    double dl = now() + 20;
    while (!d.downs && sent < (24u << 20) && now() < dl) {
        for (int i = 0; i < 16; i++) aemp_snd(a, "hwm-b#sink", blob_msg());
        sent += 16 * 65536;
        run_until(base, NULL, 0, 0.01);
    }
    double t0 = now();
    run_until(base, &d.downs, 1, 25);
    printf("# stopped peer: down %.1f s after the last send (stall period 10 s)\n", now() - t0);
    printf("# stopped peer: dropped after %zu MB sent: %s\n", sent >> 20, d.reason);
    CHECK_INT(d.downs, 1);
    CHECK(strstr(d.reason, "does not read") != NULL);
    CHECK(sent <= (40u << 20));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    aemp_guard_free(g);
    aemp_node_free(a);
    event_base_free(base);
}

/* Messages for a node that is still being connected to wait in a queue
 * bounded like output: past it the node is reported down at once with that
 * reason (the messages are lost, monitors say so), not after
 * monitor_timeout. */
static void test_connecting_queue_bound(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode_small(base, "q-a", NULL);
    /* an address where nothing answers the handshake: a listener that never
     * accepts */
    int lport = 0, l = listen_local(SOCK_STREAM, 1, &lport);
    CHECK(l >= 0);
    char addr[64];
    snprintf(addr, sizeof addr, "[\"127.0.0.1:%d\"]", lport);
    cJSON *addrs = json(addr);
    transport_set_addrs(a->transport, "q-ghost", addrs);
    cJSON_Delete(addrs);
    struct downrec d = {0};
    struct rec m = {0};
    aemp_guard *g = NULL;
    aemp_mon_nodes(a, down_rec, &d, &g);
    aemp_mon(a, "q-ghost#p", rec_mon, &m, NULL);
    double t0 = now();
    for (int i = 0; i < 400 && !d.downs; i++) { /* 25 MB */
        aemp_snd(a, "q-ghost#p", blob_msg());
        if (i % 50 == 0) run_until(base, NULL, 0, 0.01);
    }
    run_until(base, &m.calls, 1, 5);
    double took = now() - t0;
    printf("# queue for a connecting node: down after %.2f s: %s\n", took, d.reason);
    CHECK_INT(d.downs, 1);
    CHECK(strstr(d.reason, "queued while connecting") != NULL);
    CHECK_INT(m.calls, 1);
    CHECK(took < 10);
    close(l);
    rec_free(&m);
    aemp_guard_free(g);
    aemp_node_free(a);
    event_base_free(base);
}

struct accepts {
    int fd, n;
};

static void count_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct accepts *ac = arg;
    int c;
    while ((c = accept(fd, NULL, NULL)) >= 0) {
        ac->n++;
        close(c);
    }
}

/* One Global "nodes" message naming 5,000 unknown nodes, all at one address
 * (a host the sender wants flooded): the node dials it at a bounded rate
 * and keeps at most 1,024 of those nodes. */
static void test_reflection_bounded(void)
{
    raise_fd_limit();
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "refl-a", 1, NULL, "s3cret", NULL, 30);
    aemp_node *b = mknode(base, "refl-b", 0, addr_of(a), "s3cret", NULL, 30);
    wait_up(base, b, "refl-a", 5);
    int lport = 0;
    struct accepts ac = {listen_local(SOCK_STREAM | SOCK_NONBLOCK, 1024, &lport), 0};
    CHECK(ac.fd >= 0);
    struct event *ev = event_new(base, ac.fd, EV_READ | EV_PERSIST, count_accept, &ac);
    event_add(ev, NULL);
    /* b is allowed a rendezvous port on a as itself */
    char *rp = aemp_spawn(b, "refl-a", "AnyEvent::MP::Global::connect", json("[0,\"refl-b\"]"));
    cJSON *nodes = cJSON_CreateObject();
    char victim[64], id[32];
    snprintf(victim, sizeof victim, "127.0.0.1:%d", lport);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "ghost-%d", i);
        cJSON *v = cJSON_CreateArray();
        cJSON_AddItemToArray(v, cJSON_CreateString(victim));
        cJSON_AddItemToObject(nodes, id, v);
    }
    cJSON *msg = cJSON_CreateArray();
    cJSON_AddItemToArray(msg, cJSON_CreateString("nodes"));
    cJSON_AddItemToArray(msg, nodes);
    aemp_snd(b, rp, msg);
    run_until(base, NULL, 0, 3);
    cJSON *known = aemp_known_nodes(a);
    int nknown = cJSON_GetArraySize(known);
    cJSON_Delete(known);
    printf("# 5,000 ghost nodes at one address: %d dials in 3 s, %d nodes known\n", ac.n, nknown);
    CHECK(ac.n <= 200);
    CHECK(nknown <= 1024 + 10);
    CHECK(aemp_node_is_up(b, "refl-a"));
    event_free(ev);
    close(ac.fd);
    free(rp);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
}

/* Accepts and holds every connection without a word (a peer whose
 * handshake is slow). */
struct holder {
    int fd, n, held[256];
};

static void hold_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct holder *h = arg;
    int c;
    while ((c = accept(fd, NULL, NULL)) >= 0) {
        if (h->n < 256) h->held[h->n] = c;
        else close(c);
        h->n++;
    }
}

/* Issue 15, dial storms: a dial still in its handshake is not repeated
 * every connect_interval (under load that multiplied the handshakes until
 * 300 nodes of one host collapsed), and at most ADMIT_DIALS_MAX dials to
 * learned addresses are in flight at once (200 new nodes at an address
 * that never greets: 100 dials at once before). */
static void test_dials_in_flight_bounded(void)
{
    raise_fd_limit();
    struct event_base *base = event_base_new();
    aemp_node *a = mknode_small(base, "dif-a", NULL);
    int lport = 0;
    struct holder h = {listen_local(SOCK_STREAM | SOCK_NONBLOCK, 1024, &lport), 0, {0}};
    CHECK(h.fd >= 0);
    struct event *ev = event_new(base, h.fd, EV_READ | EV_PERSIST, hold_accept, &h);
    event_add(ev, NULL);
    char addr[64], id[32], port[48];
    snprintf(addr, sizeof addr, "[\"127.0.0.1:%d\"]", lport);
    cJSON *addrs = json(addr);
    transport_set_addrs(a->transport, "dif-slow", addrs);
    aemp_snd(a, "dif-slow#p", json("[1]"));
    run_until(base, NULL, 0, 1.5); /* 7 connect_intervals */
    printf("# one slow node: %d dials in 1.5 s\n", h.n);
    CHECK_INT(h.n, 1);
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "dif-%d", i);
        snprintf(port, sizeof port, "%s#p", id);
        transport_set_addrs(a->transport, id, addrs);
        aemp_snd(a, port, json("[1]"));
    }
    run_until(base, NULL, 0, 1.5);
    printf("# 200 slow nodes: %d dials in flight after 1.5 s\n", h.n - 1);
    CHECK(h.n - 1 <= ADMIT_DIALS_MAX);
    CHECK(h.n - 1 >= ADMIT_DIALS_MAX / 2);
    cJSON_Delete(addrs);
    for (int i = 0; i < h.n && i < 256; i++) close(h.held[i]);
    event_free(ev);
    close(h.fd);
    aemp_node_free(a);
    event_base_free(base);
}

T_MAIN(T(test_output_high_water_mark), T(test_connecting_queue_bound), T(test_reflection_bounded),
       T(test_dials_in_flight_bounded))
