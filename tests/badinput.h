/* badinput.h - the fixture of the test_badinput_*.c tests.
 *
 * Bad input from the network closes only the offending connection: the node
 * never crashes and keeps serving other peers.
 *
 * The target node ("target") and a second node ("victim") run in forked
 * child processes. The parent attacks the target with plain blocking
 * sockets, acting as a correct raw AEMP client where needed (handshake.h),
 * and between and during the attacks a well-behaved libaemp node in the
 * parent ("client") calls "target#echo" and checks the reply. */
#ifndef AEMP_BADINPUT_H
#define AEMP_BADINPUT_H

#define T_TIMEOUT 60
#include "aemp.h"
#include "handshake.h"
#include "nettest.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <arpa/inet.h>

#define SECRET "s3cret"
#define MT 2.0 /* the children's monitor_timeout */
#define MAXMSG 65536

static pid_t target_pid = -1, victim_pid = -1;
static int target_port, victim_port;
static struct event_base *cbase;
static aemp_node *client;
static int atk_seq;
static const char *force_id; /* node ID of the next raw greeting, NULL: atk-N */
struct monres {
    int calls;
    cJSON *reason;
    double at;
};
static struct monres client_mon;

/* ------------------------------------------------------- the children */

static int in_child;
static int child_seed_port; /* > 0: the next child has no listener and this seed */

static inline void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    aemp_node_stop(arg);
}

static inline void child_main(const char *id, int wfd)
{
    in_child = 1;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGALRM, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    alarm(T_TIMEOUT + 30);
    aemp_node *n = aemp_node_new(NULL);
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "nodeid", id);
    cJSON *binds = cJSON_AddArrayToObject(cfg, "binds");
    cJSON *seeds = cJSON_AddArrayToObject(cfg, "seeds");
    if (child_seed_port > 0) {
        char seed[64];
        snprintf(seed, sizeof seed, "127.0.0.1:%d", child_seed_port);
        cJSON_AddItemToArray(seeds, cJSON_CreateString(seed));
    } else {
        cJSON_AddItemToArray(binds, cJSON_CreateString("127.0.0.1:0"));
    }
    cJSON_AddStringToObject(cfg, "secret", SECRET);
    cJSON_AddNumberToObject(cfg, "monitor_timeout", MT);
    cJSON_AddNumberToObject(cfg, "max_message_size", MAXMSG);
    add_auth(cfg);
    char err[256];
    if (aemp_configure_effective(n, cfg, err, sizeof err)) {
        fprintf(stderr, "# child %s: configure: %s\n", id, err);
        _exit(2);
    }
    cJSON_Delete(cfg);
    char port[128];
    snprintf(port, sizeof port, "%s#echo", id);
    if (aemp_rcv(n, port, NULL, echo_rcv, NULL)) _exit(3);
    cJSON *a = aemp_listen_addrs(n);
    const cJSON *first = cJSON_GetArrayItem(a, 0);
    const char *colon = first ? strrchr(first->valuestring, ':') : NULL;
    int p = colon ? atoi(colon + 1) : 0;
    cJSON_Delete(a);
    if (write(wfd, &p, sizeof p) != sizeof p) _exit(4);
    close(wfd);
    /* SIGTERM: leave the loop, free everything and exit 0 (under ASan the
     * leak check then covers all the connections the attacks opened) */
    struct event *term = event_new(aemp_node_base(n), SIGTERM, EV_SIGNAL, on_term, n);
    event_add(term, NULL);
    aemp_node_run(n);
    event_free(term);
    aemp_node_free(n);
    exit(0);
}

static inline pid_t spawn_node(const char *id, int *port)
{
    int pfd[2];
    if (pipe(pfd)) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(pfd[0]);
        child_main(id, pfd[1]);
        _exit(0);
    }
    close(pfd[1]);
    int p = 0;
    ssize_t r = read(pfd[0], &p, sizeof p);
    close(pfd[0]);
    *port = r == sizeof p ? p : 0;
    return pid;
}

static inline void reap(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = -1;
    }
}

static inline void cleanup(void)
{
    if (in_child) return;
    reap(&target_pid);
    reap(&victim_pid);
    if (client) aemp_node_free(client);
    client = NULL;
    if (cbase) event_base_free(cbase);
    cbase = NULL;
}

static inline void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "# test_badinput: timeout\n";
    if (write(2, m, sizeof m - 1)) {}
    if (target_pid > 0) kill(target_pid, SIGKILL);
    if (victim_pid > 0) kill(victim_pid, SIGKILL);
    _exit(1);
}

/* ------------------------------------------------------ the good client */

static inline void mon_cb(aemp_node *node, const char *port, const cJSON *reason, void *ud);
static inline int good_ping_port(const char *port);

static inline void setup(void)
{
    static int done;
    if (done) return;
    done = 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    atexit(cleanup);
    target_pid = spawn_node("target", &target_port);
    victim_pid = spawn_node("victim", &victim_port);
    CHECK(target_pid > 0 && target_port > 0);
    CHECK(victim_pid > 0 && victim_port > 0);
    cbase = event_base_new();
    client = aemp_node_new(cbase);
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "nodeid", "client");
    cJSON_AddArrayToObject(cfg, "binds");
    cJSON_AddArrayToObject(cfg, "seeds");
    cJSON_AddStringToObject(cfg, "secret", SECRET);
    cJSON_AddNumberToObject(cfg, "monitor_timeout", MT);
    add_auth(cfg);
    char err[256];
    int rc = aemp_configure_effective(client, cfg, err, sizeof err);
    if (rc) fprintf(stderr, "# configure client: %s\n", err);
    CHECK_INT(rc, 0);
    cJSON_Delete(cfg);
    char a[64];
    cJSON *addrs = cJSON_CreateArray();
    snprintf(a, sizeof a, "127.0.0.1:%d", target_port);
    cJSON_AddItemToArray(addrs, cJSON_CreateString(a));
    transport_set_addrs(client->transport, "target", addrs);
    cJSON_Delete(addrs);
    addrs = cJSON_CreateArray();
    snprintf(a, sizeof a, "127.0.0.1:%d", victim_port);
    cJSON_AddItemToArray(addrs, cJSON_CreateString(a));
    transport_set_addrs(client->transport, "victim", addrs);
    cJSON_Delete(addrs);
    CHECK(good_ping_port("target#echo"));
    CHECK_INT(aemp_mon(client, "target#echo", mon_cb, &client_mon, NULL), 0);
}

/* One call to PORT from the good client: 1 when the reply is exactly
 * ["ping", N] for a fresh N. */
static inline int good_ping_port(const char *port)
{
    static int seq;
    int n = ++seq;
    struct calres c = {0};
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("ping"));
    cJSON_AddItemToArray(m, cJSON_CreateNumber(n));
    aemp_cal(client, port, m, 3, cal_done, &c);
    run_until(cbase, &c.calls, 1, 4);
    int ok = c.calls == 1 && c.reply && cJSON_GetArraySize(c.reply) == 2 &&
             cJSON_IsString(cJSON_GetArrayItem(c.reply, 0)) &&
             !strcmp(cJSON_GetArrayItem(c.reply, 0)->valuestring, "ping") &&
             cJSON_IsNumber(cJSON_GetArrayItem(c.reply, 1)) &&
             cJSON_GetArrayItem(c.reply, 1)->valueint == n;
    if (!ok) {
        char *r = c.reply ? cJSON_PrintUnformatted(c.reply) : NULL;
        char *e = c.error ? cJSON_PrintUnformatted(c.error) : NULL;
        fprintf(stderr, "# ping %d to %s: calls=%d reply=%s error=%s\n", n, port, c.calls,
                r ? r : "-", e ? e : "-");
        free(r);
        free(e);
    }
    cJSON_Delete(c.reply);
    cJSON_Delete(c.error);
    return ok;
}

/* The target process is alive and serves the good client. */
static inline int target_ok(void)
{
    int st = 0;
    if (target_pid <= 0) return 0;
    if (waitpid(target_pid, &st, WNOHANG) != 0) {
        fprintf(stderr, "# target process died (status 0x%x)\n", st);
        target_pid = -1;
        return 0;
    }
    if (client_mon.calls) {
        char *r = cJSON_PrintUnformatted(client_mon.reason);
        fprintf(stderr, "# the good client's monitor on target#echo fired: %s\n", r ? r : "?");
        free(r);
        return 0;
    }
    return good_ping_port("target#echo");
}

/* -------------------------------------------------------- raw attacker */

struct raw {
    int fd;
    char buf[65536];
    size_t len;
};

/* Connect to 127.0.0.1:port from source address 127.0.0.src (1: the
 * default). The connect itself may take a while on a busy machine (a full
 * accept queue drops SYNs, which TCP resends after a second): it gets 10 s;
 * reads and writes then time out after 0.1 s. */
static inline int raw_connect_from(struct raw *r, int port, int src)
{
    r->len = 0;
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (r->fd < 0) return -1;
    if (src != 1) {
        struct sockaddr_in me = {0};
        me.sin_family = AF_INET;
        me.sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + (uint32_t)src);
        if (bind(r->fd, (struct sockaddr *)&me, sizeof me)) {
            close(r->fd);
            r->fd = -1;
            return -1;
        }
    }
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(r->fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc && errno == EINPROGRESS) {
        struct pollfd pf = {.fd = r->fd, .events = POLLOUT};
        int err = 0;
        socklen_t el = sizeof err;
        rc = poll(&pf, 1, 10000) == 1 && !getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &el) &&
                     !err
                 ? 0
                 : -1;
    }
    if (rc) {
        close(r->fd);
        r->fd = -1;
        return -1;
    }
    int fl = fcntl(r->fd, F_GETFL);
    fcntl(r->fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {0, 100000};
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return 0;
}

static inline int raw_connect(struct raw *r, int port)
{
    return raw_connect_from(r, port, 1);
}

static inline void raw_close(struct raw *r)
{
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
}

/* Let the good client node run while the raw attacker waits: a node whose
 * loop does not run for monitor_timeout is a stopped node, and its peers
 * rightly report it down ("peer timed out"). */
static inline void pump(void)
{
    if (cbase) event_base_loop(cbase, EVLOOP_NONBLOCK);
}

/* Send everything (short of errors: a closing peer is fine here). */
static inline void raw_send(struct raw *r, const char *data, size_t len)
{
    double deadline = now() + 3;
    while (len && now() < deadline) {
        ssize_t n = send(r->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            pump();
            continue;
        }
        if (n <= 0) return;
        data += n;
        len -= (size_t)n;
    }
}

static inline void raw_sends(struct raw *r, const char *s)
{
    raw_send(r, s, strlen(s));
}

/* Read one line (without LF, CR kept) into out[outlen] within `secs`: 1 ok,
 * 0 on timeout/EOF/error. */
static inline int raw_line(struct raw *r, char *out, size_t outlen, double secs)
{
    double deadline = now() + secs;
    for (;;) {
        int got = buf_line(r->buf, &r->len, out, outlen);
        if (got) return got > 0;
        if (now() > deadline || r->len == sizeof r->buf) return 0;
        pump();
        ssize_t k = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (k == 0) return 0;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 0;
        if (k > 0) r->len += (size_t)k;
    }
}

/* Read (and keep, as far as room allows) whatever arrives until the peer
 * closes: the seconds it took, or -1 when still open after `secs`. */
static inline double raw_wait_closed(struct raw *r, double secs)
{
    double t0 = now(), deadline = t0 + secs;
    char scratch[4096];
    while (now() < deadline) {
        pump();
        ssize_t k = recv(r->fd, scratch, sizeof scratch, 0);
        if (k == 0 || (k < 0 && (errno == ECONNRESET || errno == EPIPE))) return now() - t0;
        if (k > 0) {
            size_t room = sizeof r->buf - r->len;
            size_t c = (size_t)k < room ? (size_t)k : room;
            memcpy(r->buf + r->len, scratch, c);
            r->len += c;
        }
    }
    return -1;
}

/* Wait `secs` for data: 1 when the connection is still open at the end. */
static inline int raw_still_open(struct raw *r, double secs)
{
    return raw_wait_closed(r, secs) < 0;
}

/* A greeting from a fresh attacker node ID: L gets "l1\nl2\n". */
static inline void our_greeting(char *nodeid, size_t idlen, char *L, size_t Llen)
{
    ++atk_seq;
    if (force_id) snprintf(nodeid, idlen, "%s", force_id);
    else snprintf(nodeid, idlen, "atk-%d", atk_seq);
    const char *acc[] = {"hmac_md6_64_256"}, *fr[] = {"json"};
    cJSON *a = cJSON_CreateStringArray(acc, 1), *f = cJSON_CreateStringArray(fr, 1);
    char *l1 = hs_build_greeting(nodeid, a, f, NULL, 0);
    char nonce[HS_NONCE_LEN + 1];
    hs_nonce(nonce);
    snprintf(L, Llen, "%s\n%s\n", l1, nonce);
    free(l1);
    cJSON_Delete(a);
    cJSON_Delete(f);
}

/* Connect and do the greeting exchange: 0 ok with L (ours) and R (target's)
 * filled. */
static inline int raw_greet(struct raw *r, char *L, char *R, size_t len)
{
    char id[32], l1[HS_MAX_LINE + 1], l2[HS_MAX_LINE + 1];
    if (raw_connect(r, target_port)) return -1;
    our_greeting(id, sizeof id, L, len);
    raw_sends(r, L);
    if (!raw_line(r, l1, sizeof l1, 3) || !raw_line(r, l2, sizeof l2, 3)) return -1;
    snprintf(R, len, "%s\n%s\n", l1, l2);
    return 0;
}

/* Full handshake: greeting plus auth line with a correct token (or a wrong
 * one when `bad_token`); reads the target's auth line when the token is
 * correct. 0 ok. */
static inline int raw_auth(struct raw *r, int bad_token)
{
    char L[3 * HS_MAX_LINE], R[3 * HS_MAX_LINE], err[256];
    if (raw_greet(r, L, R, sizeof L)) return -1;
    struct hs_greeting g;
    char *nl = strchr(R, '\n');
    if (hs_parse_greeting(R, (size_t)(nl - R), &g, err, sizeof err)) {
        fprintf(stderr, "# target greeting: %s\n", err);
        return -1;
    }
    const char *off[] = {"hmac_md6_64_256"}, *fr[] = {"json"};
    cJSON *o = cJSON_CreateStringArray(off, 1), *f = cJSON_CreateStringArray(fr, 1);
    const char *method, *framing;
    int rc = hs_choose(&g, o, f, 0, &method, &framing, err, sizeof err);
    char tok[65] = "", line[256];
    if (!rc) rc = hs_token(method, SECRET, L, R, tok, sizeof tok);
    if (!rc) {
        if (bad_token) tok[0] = tok[0] == '0' ? '1' : '0';
        snprintf(line, sizeof line, "%s;%s;%s\n", method, tok, framing);
    }
    hs_greeting_clear(&g);
    cJSON_Delete(o);
    cJSON_Delete(f);
    if (rc) {
        fprintf(stderr, "# choose/token: %s\n", err);
        return -1;
    }
    raw_sends(r, line);
    if (bad_token) return 0;
    char theirs[HS_MAX_LINE + 1];
    if (!raw_line(r, theirs, sizeof theirs, 3)) {
        fprintf(stderr, "# no auth line from the target\n");
        return -1;
    }
    if (strncmp(theirs, "hmac_md6_64_256;", 16)) {
        fprintf(stderr, "# unexpected auth line from the target: %s\n", theirs);
        return -1;
    }
    return 0;
}

/* Assert the target closes r within `secs` (and, with min > 0, not before
 * `min` seconds), then that the node still serves. */
static inline void expect_closed(struct raw *r, double min, double secs)
{
    double t = raw_wait_closed(r, secs);
    if (t < 0) fprintf(stderr, "# connection still open after %g s\n", secs);
    CHECK(t >= 0);
    if (min > 0 && t >= 0 && t < min) fprintf(stderr, "# closed after %.3f s\n", t);
    CHECK(t < 0 || t >= min);
    raw_close(r);
    CHECK(target_ok());
}

/* The good client monitors target#echo from the start: any transport loss
 * on its connection fires it. */
/* Send `msg` on the authenticated raw connection r (node ID atk-N) and then
 * an echo probe: 1 when the probe's reply comes back on r. */
static inline int probe_after(struct raw *r, const char *msg)
{
    static int pseq;
    char m[256], want[64];
    int n = ++pseq;
    raw_sends(r, msg);
    snprintf(m, sizeof m, "[\"echo\",\"probe\",%d,\"atk-%d#p\"]", n, atk_seq);
    snprintf(want, sizeof want, "[\"p\",\"probe\",%d]", n);
    raw_sends(r, m);
    double t0 = now(), deadline = t0 + 2;
    while (now() < deadline) {
        if (memmem(r->buf, r->len, want, strlen(want))) {
            r->len = 0;
            if (now() - t0 > 0.5) fprintf(stderr, "# slow probe (%.2f s) after %s\n", now() - t0, msg);
            return 1;
        }
        if (!raw_still_open(r, 0.05)) {
            fprintf(stderr, "# connection closed after %s\n", msg);
            return 0;
        }
    }
    fprintf(stderr, "# no probe reply after %s\n", msg);
    return 0;
}

/* probe_after() each of `msgs`; 0 at the first that closes the connection
 * or goes unanswered. */
static inline int probe_all(struct raw *r, const char *const *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!probe_after(r, msgs[i])) {
            fprintf(stderr, "# failed at %s\n", msgs[i]);
            return 0;
        }
    return 1;
}

static inline void mon_cb(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    (void)node;
    (void)port;
    struct monres *m = ud;
    m->calls++;
    m->at = now();
    cJSON_Delete(m->reason);
    m->reason = cJSON_Duplicate(reason, 1);
}

static void test_target_survived_everything(void)
{
    setup();
    CHECK(target_ok());
    /* SIGTERM ends it */
    CHECK(target_pid > 0); /* never kill(-1, ...) */
    if (target_pid <= 0) return;
    CHECK_INT(kill(target_pid, SIGTERM), 0);
    int st = 0;
    CHECK_INT(waitpid(target_pid, &st, 0), target_pid);
    /* a clean exit, after freeing the node (leak-checked under ASan) */
    if (!WIFEXITED(st) || WEXITSTATUS(st)) fprintf(stderr, "# target exit status 0x%x\n", st);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    target_pid = -1;
}

#endif
