/* test_transcripts_replay.c - part 2 of transcripts.h: the node-port
 * requests of handshake_node_requests replayed against our node. */
#include "transcripts.h"

/* ----------------------------------- part 2: replay against our node */

static pid_t child = -1;

static void kill_child(void)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
}

/* The child: our node "interop-b" listening on 127.0.0.1:0; writes
 * "ADDR VICTIMPORT\n" to `fd`, then runs until killed. */
static void run_node(int fd)
{
    alarm(60);
    struct event_base *base = event_base_new();
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "nodeid", "interop-b");
    cJSON *binds = cJSON_AddArrayToObject(cfg, "binds");
    cJSON_AddItemToArray(binds, cJSON_CreateString("127.0.0.1:0"));
    cJSON_AddArrayToObject(cfg, "seeds");
    cJSON_AddStringToObject(cfg, "secret", SECRET);
    const char *offer[] = {"tls_md6_64_256", "hmac_md6_64_256"};
    const char *framing[] = {"json"};
    cJSON_AddItemToObject(cfg, "auth_offer", cJSON_CreateStringArray(offer, 2));
    cJSON_AddItemToObject(cfg, "auth_accept", cJSON_CreateStringArray(accept_list, 4));
    cJSON_AddItemToObject(cfg, "framing_format", cJSON_CreateStringArray(framing, 1));
    aemp_node *n = aemp_node_new(base);
    char err[256] = "";
    if (aemp_configure_effective(n, cfg, err, sizeof err)) {
        fprintf(stderr, "# child: configure: %s\n", err);
        _exit(2);
    }
    cJSON_Delete(cfg);
    /* a plain port to kil remotely (the recording spawned Interop::victim_init) */
    char *victim = aemp_port(n);
    cJSON *a = aemp_listen_addrs(n);
    const cJSON *a0 = cJSON_GetArrayItem(a, 0);
    dprintf(fd, "%s %s\n", cJSON_IsString(a0) ? a0->valuestring : "-", victim ? victim : "-");
    close(fd);
    cJSON_Delete(a);
    event_base_dispatch(base);
    _exit(0);
}

struct peer {
    int fd;
    struct framing_reader *r;
    cJSON *queue; /* parsed, not yet taken */
    int eof;
    int proto_error;
};

static int send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_msg(struct peer *p, const char *json)
{
    return send_all(p->fd, json, strlen(json));
}

static double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

/* Read one LF-terminated line byte by byte (so nothing after it is read). */
static char *read_line(int fd, double seconds)
{
    double deadline = now() + seconds;
    size_t cap = 256, n = 0;
    char *s = malloc(cap);
    for (;;) {
        int left = (int)((deadline - now()) * 1000);
        if (left <= 0) break;
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, left) <= 0) continue;
        char c;
        ssize_t r = recv(fd, &c, 1, 0);
        if (r <= 0) break;
        if (c == '\n') {
            s[n] = 0;
            return s;
        }
        if (n + 2 > cap) s = realloc(s, cap *= 2);
        s[n++] = c;
        if (n > HS_MAX_LINE) break;
    }
    free(s);
    return NULL;
}

static int queue_cb(void *ud, cJSON *msg)
{
    struct peer *p = ud;
    cJSON_AddItemToArray(p->queue, msg);
    return 0;
}

/* Read more from the socket into the queue; 0 on timeout, -1 on EOF/error. */
static int pump(struct peer *p, int ms)
{
    if (p->eof) return -1;
    struct pollfd pf = {p->fd, POLLIN, 0};
    int pr = poll(&pf, 1, ms);
    if (pr <= 0) return 0;
    char buf[4096];
    ssize_t n = recv(p->fd, buf, sizeof buf, 0);
    if (n <= 0) {
        p->eof = 1;
        return -1;
    }
    char err[256] = "";
    if (framing_reader_feed(p->r, buf, (size_t)n, queue_cb, p, err, sizeof err) < 0) {
        fprintf(stderr, "# framing error from node: %s\n", err);
        p->proto_error = 1;
        p->eof = 1;
        return -1;
    }
    return 1;
}

/* The next message to port name `port` (taken), skipping others (Global
 * traffic etc.); NULL after `seconds`, or when the connection ends. */
static cJSON *wait_for(struct peer *p, const char *port, double seconds)
{
    double deadline = now() + seconds;
    for (;;) {
        while (p->queue->child) {
            cJSON *m = cJSON_DetachItemViaPointer(p->queue, p->queue->child);
            const cJSON *first = cJSON_GetArrayItem(m, 0);
            if (cJSON_IsString(first) && !strcmp(first->valuestring, port)) return m;
            char *s = print(m);
            fprintf(stderr, "# (skipped from node: %s)\n", s);
            free(s);
            cJSON_Delete(m);
        }
        int left = (int)((deadline - now()) * 1000);
        if (left <= 0) return NULL;
        if (pump(p, left) < 0) return NULL;
    }
}

/* Compare with cJSON_Compare, log on mismatch. */
static int same(const cJSON *got, const char *want_text, const char *what)
{
    cJSON *w = cJSON_Parse(want_text);
    int eq = got && w && cJSON_Compare(got, w, 1);
    if (!eq) {
        char *g = print(got);
        fprintf(stderr, "# DIFF %s: recorded Perl shape %s, ours %s\n", what, want_text, g);
        free(g);
    }
    cJSON_Delete(w);
    return eq;
}

/* The recorded A->B message for `tag` in handshake_node_requests, to make
 * sure we replay what A really sent. */
static const cJSON *recorded(const cJSON *msgs, const char *port, const char *tag)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *p0 = cJSON_GetArrayItem(m, 0), *p1 = cJSON_GetArrayItem(m, 1);
        if (cJSON_IsString(p0) && !strcmp(p0->valuestring, port) && cJSON_IsString(p1) &&
            !strcmp(p1->valuestring, tag))
            return m;
    }
    return NULL;
}

static void test_replay_node_requests_against_our_node(void)
{
    cJSON *t = load_json("transcripts/handshake_node_requests.json");
    CHECK(t != NULL);
    if (!t) return;
    const cJSON *conn = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "connections"), 0);
    int ka;
    cJSON *a_msgs = expected_msgs(cJSON_GetObjectItemCaseSensitive(conn, "decoded"), ">", &ka);
    cJSON *b_msgs = expected_msgs(cJSON_GetObjectItemCaseSensitive(conn, "decoded"), "<", &ka);
    /* the requests we replay are the ones A sent (reply ports rewritten) */
    const char *tags[] = {"info", "known_nodes", "up_nodes", "time", "snd",
                          "snd_multiple", "mon1", "eval", "No::Such::function", "devnull",
                          "kil"};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        if (!recorded(a_msgs, "", tags[i])) fprintf(stderr, "# not recorded: %s\n", tags[i]);
        CHECK(recorded(a_msgs, "", tags[i]) != NULL);
    }

    int pfd[2];
    CHECK_INT(pipe(pfd), 0);
    fflush(NULL);
    child = fork();
    CHECK(child >= 0);
    if (child < 0) goto out;
    if (child == 0) {
        close(pfd[0]);
        run_node(pfd[1]);
    }
    close(pfd[1]);
    char info[512] = "";
    {
        size_t n = 0;
        struct pollfd pf = {pfd[0], POLLIN, 0};
        double deadline = now() + 10;
        while (n < sizeof info - 1 && !strchr(info, '\n') && now() < deadline) {
            if (poll(&pf, 1, 1000) <= 0) continue;
            ssize_t r = read(pfd[0], info + n, sizeof info - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
            info[n] = 0;
        }
        close(pfd[0]);
    }
    char addr[256] = "", victim[256] = "";
    CHECK_INT(sscanf(info, "%255s %255s", addr, victim), 2);
    char *colon = strrchr(addr, ':');
    CHECK(colon != NULL);
    if (!colon) goto out;
    *colon = 0;
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)atoi(colon + 1));
    CHECK_INT(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int crc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
    CHECK_INT(crc, 0);
    if (crc) {
        close(fd);
        goto out;
    }

    /* ---- handshake as A */
    cJSON *acc = cJSON_CreateStringArray(accept_list, 4);
    const char *fr[] = {"json"};
    cJSON *fra = cJSON_CreateStringArray(fr, 1);
    char *g1 = hs_build_greeting("interop-a", acc, fra, "127.0.0.1:1", 0);
    char nonce[HS_NONCE_LEN + 1];
    hs_nonce(nonce);
    char *L = lines2(g1, nonce);
    CHECK_INT(send_all(fd, L, strlen(L)), 0);
    char *rg1 = read_line(fd, 5), *rg2 = rg1 ? read_line(fd, 5) : NULL;
    CHECK(rg1 && rg2);
    char *rau = rg2 ? read_line(fd, 5) : NULL;
    CHECK(rau != NULL);
    struct peer p = {fd, framing_reader_new(1 << 20), cJSON_CreateArray(), 0, 0};
    if (!rau) goto hs_done;
    fprintf(stderr, "# node greeting: %s\n# node auth: %s\n", rg1, rau);
    {
        char err[256] = "";
        struct hs_greeting g;
        memset(&g, 0, sizeof g);
        CHECK_INT(hs_parse_greeting(rg1, strlen(rg1), &g, err, sizeof err), 0);
        CHECK_STR(g.nodeid, "interop-b");
        CHECK_INT(g.tls, 0);
        hs_greeting_clear(&g);
        /* the recorded B line 1 has the same fields up to the node ID */
        CHECK(!strncmp(rg1, "aemp;1;interop-b;", 17));
        CHECK_INT(strlen(rg2), HS_NONCE_LEN);
        char *R = lines2(rg1, rg2);
        char tok[80] = "";
        CHECK_INT(hs_token("hmac_md6_64_256", SECRET, L, R, tok, sizeof tok), 0);
        char line[200];
        snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", tok);
        CHECK_INT(send_all(fd, line, strlen(line)), 0);
        int rc = verify_auth(rau, SECRET, L, R, 0, err, sizeof err);
        if (rc) fprintf(stderr, "# node's auth refused: %s\n", err);
        CHECK_INT(rc, 0);
        CHECK(!strncmp(rau, "hmac_md6_64_256;", 16)); /* as B chose in the recording */
        free(R);
    }

    /* ---- node-port requests, as A sent them (reply ports rewritten) */
    {
        cJSON *m;
        /* info / known_nodes / up_nodes / time: recorded replies
         * ["..n","info-tag","interop-b"], ["..n","known-tag","interop-b","interop-a","interop-b"],
         * ["..n","up-tag","interop-a"], ["..n","time-tag",NUMBER] */
        send_msg(&p, "[\"\",\"info\",\"interop-a#r.n\",\"info-tag\"]");
        m = wait_for(&p, "r.n", 5);
        CHECK(same(m, "[\"r.n\",\"info-tag\",\"interop-b\"]", "info"));
        cJSON_Delete(m);

        send_msg(&p, "[\"\",\"known_nodes\",\"interop-a#r.n\",\"known-tag\"]");
        m = wait_for(&p, "r.n", 5);
        CHECK(m != NULL);
        if (m) {
            int n = cJSON_GetArraySize(m), has_a = 0, has_b = 0, bad = 0;
            CHECK(n >= 3);
            CHECK(cJSON_IsString(cJSON_GetArrayItem(m, 1)) &&
                  !strcmp(cJSON_GetArrayItem(m, 1)->valuestring, "known-tag"));
            for (int i = 2; i < n; i++) {
                const cJSON *e = cJSON_GetArrayItem(m, i);
                if (!cJSON_IsString(e)) bad++;
                else if (!strcmp(e->valuestring, "interop-a")) has_a++;
                else if (!strcmp(e->valuestring, "interop-b")) has_b++;
                else bad++;
            }
            CHECK_INT(bad, 0);
            CHECK(has_a >= 1);
            CHECK(has_b >= 1);
            /* Perl lists the replying node twice; report when we do not */
            same(m, "[\"r.n\",\"known-tag\",\"interop-b\",\"interop-a\",\"interop-b\"]",
                 "known_nodes (informational, not a failure)");
        }
        cJSON_Delete(m);

        send_msg(&p, "[\"\",\"up_nodes\",\"interop-a#r.n\",\"up-tag\"]");
        m = wait_for(&p, "r.n", 5);
        CHECK(same(m, "[\"r.n\",\"up-tag\",\"interop-a\"]", "up_nodes"));
        cJSON_Delete(m);

        send_msg(&p, "[\"\",\"time\",\"interop-a#r.n\",\"time-tag\"]");
        m = wait_for(&p, "r.n", 5);
        CHECK(m && cJSON_GetArraySize(m) == 3);
        if (m) {
            CHECK(cJSON_IsString(cJSON_GetArrayItem(m, 1)) &&
                  !strcmp(cJSON_GetArrayItem(m, 1)->valuestring, "time-tag"));
            const cJSON *tm = cJSON_GetArrayItem(m, 2);
            CHECK(cJSON_IsNumber(tm));
            if (cJSON_IsNumber(tm)) CHECK(tm->valuedouble > now() - 60 && tm->valuedouble < now() + 60);
        }
        cJSON_Delete(m);

        /* snd relay: recorded ["..l","message sent successfully"] */
        send_msg(&p, "[\"\",\"snd\",\"interop-a#r.l\",\"message sent successfully\"]");
        m = wait_for(&p, "r.l", 5);
        CHECK(same(m, "[\"r.l\",\"message sent successfully\"]", "snd relay"));
        cJSON_Delete(m);

        /* snd_multiple: recorded ["..m","one"] then ["..m","two",2] */
        send_msg(&p, "[\"\",\"snd_multiple\",[\"interop-a#r.m\",\"one\"],[\"interop-a#r.m\",\"two\",2]]");
        m = wait_for(&p, "r.m", 5);
        CHECK(same(m, "[\"r.m\",\"one\"]", "snd_multiple 1"));
        cJSON_Delete(m);
        m = wait_for(&p, "r.m", 5);
        CHECK(same(m, "[\"r.m\",\"two\",2]", "snd_multiple 2"));
        cJSON_Delete(m);

        /* mon1 of a nonexistent port: kil0 with the 3-element reason */
        send_msg(&p, "[\"\",\"mon1\",\"no.such.port\"]");
        m = wait_for(&p, "", 5);
        CHECK(same(m,
                   "[\"\",\"kil0\",\"no.such.port\",\"no_such_port\",\"cannot monitor nonexistent "
                   "port\",\"interop-b#no.such.port\"]",
                   "mon1 nonexistent"));
        cJSON_Delete(m);

        /* eval: Perl replies ["..o","",42]; we reply with an error string */
        send_msg(&p, "[\"\",\"eval\",\"6*7\",\"interop-a#r.o\"]");
        m = wait_for(&p, "r.o", 5);
        CHECK(m != NULL);
        if (m) {
            fprintf(stderr, "# eval: recorded Perl [\"r.o\",\"\",42], ours ");
            char *s = print(m);
            fprintf(stderr, "%s\n", s);
            free(s);
            const cJSON *e1 = cJSON_GetArrayItem(m, 1);
            CHECK(cJSON_IsString(e1));
            if (cJSON_IsString(e1)) CHECK(strstr(e1->valuestring, "eval is not supported") != NULL);
        }
        cJSON_Delete(m);

        /* unknown function: nothing back, the connection stays open */
        send_msg(&p, "[\"\",\"No::Such::function\",1,2]");
        /* devnull and the empty tag: nothing back either */
        send_msg(&p, "[\"\",\"devnull\",1]");
        send_msg(&p, "[\"\",\"\"]");
        m = wait_for(&p, "r.n", 0.5);
        CHECK(m == NULL);
        cJSON_Delete(m);
        CHECK(!p.eof);
        send_msg(&p, "[\"\",\"info\",\"interop-a#r.after\",\"still-open\"]");
        m = wait_for(&p, "r.after", 5);
        CHECK(same(m, "[\"r.after\",\"still-open\",\"interop-b\"]", "info after unknown function"));
        cJSON_Delete(m);

        /* kil with a reason while monitoring: kil0 with that reason */
        const char *vname = strchr(victim, '#');
        CHECK(vname != NULL);
        if (vname) {
            vname++;
            char buf[600];
            snprintf(buf, sizeof buf, "[\"\",\"mon1\",\"%s\"]", vname);
            send_msg(&p, buf);
            snprintf(buf, sizeof buf, "[\"\",\"kil\",\"%s\",\"killed_by_driver\",42]", vname);
            send_msg(&p, buf);
            m = wait_for(&p, "", 5);
            snprintf(buf, sizeof buf, "[\"\",\"kil0\",\"%s\",\"killed_by_driver\",42]", vname);
            CHECK(same(m, buf, "kil with reason"));
            cJSON_Delete(m);
        }
        /* the recorded B replies that our shapes follow are in the file */
        CHECK(recorded(b_msgs, "", "kil0") != NULL);
        CHECK(!p.proto_error);
    }

hs_done:
    framing_reader_free(p.r);
    cJSON_Delete(p.queue);
    close(fd);
    free(rg1);
    free(rg2);
    free(rau);
    free(L);
    free(g1);
    cJSON_Delete(acc);
    cJSON_Delete(fra);
out:
    kill_child();
    cJSON_Delete(a_msgs);
    cJSON_Delete(b_msgs);
    cJSON_Delete(t);
}

static void on_alarm(int sig)
{
    (void)sig;
    kill_child();
    static const char msg[] = "# timeout\n";
    if (write(2, msg, sizeof msg - 1)) {}
    _exit(1);
}

static void test_setup(void)
{
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_child);
}

T_MAIN(T(test_setup), T(test_replay_node_requests_against_our_node))
