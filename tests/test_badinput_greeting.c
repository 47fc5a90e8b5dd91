/* test_badinput_greeting.c - bad input from the network (badinput.h): the greeting and auth lines: too long, malformed, wrong version or token, echoed, silent or stalled, an impersonator, and the minimal cleartext peer that is accepted. */
#include "badinput.h"

static void test_good_client_baseline(void)
{
    setup();
    CHECK(target_ok());
    CHECK(good_ping_port("victim#echo"));
    /* a message to a port that does not exist gets no reply */
    struct calres c = {0};
    aemp_cal(client, "target#nosuch", cJSON_Parse("[\"x\"]"), 0.5, cal_done, &c);
    run_until(cbase, &c.calls, 1, 2);
    CHECK(c.calls == 1 && !c.reply && c.error);
    cJSON_Delete(c.reply);
    cJSON_Delete(c.error);
}

static void test_long_greeting_line(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_connect(&r, target_port), 0);
    size_t n = 5000;
    char *junk = malloc(n);
    memset(junk, 'a', n);
    memcpy(junk, "aemp;1;", 7);
    raw_send(&r, junk, n);
    free(junk);
    expect_closed(&r, 0, 1.5); /* at once, not after the handshake timeout */
}

static void test_exact_limit_greeting_line_then_more(void)
{
    setup();
    /* 4095 bytes + LF is allowed by the letter of the limit but it is not a
     * greeting: the node closes because it is malformed, promptly. */
    struct raw r;
    CHECK_INT(raw_connect(&r, target_port), 0);
    char *junk = malloc(4096);
    memset(junk, 'b', 4095);
    junk[4095] = '\n';
    raw_send(&r, junk, 4096);
    raw_sends(&r, "x\n");
    free(junk);
    expect_closed(&r, 0, 1.5);
}

static void test_wrong_version(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_connect(&r, target_port), 0);
    char nonce[HS_NONCE_LEN + 1], line[512];
    hs_nonce(nonce);
    snprintf(line, sizeof line,
             "aemp;2;atk-v2;hmac_md6_64_256;json;provider=x;peeraddr=127.0.0.1:1\n%s\n", nonce);
    raw_sends(&r, line);
    expect_closed(&r, 0, 1.5);
}

static void test_garbage_greeting(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_connect(&r, target_port), 0);
    unsigned char g[600];
    srand(4242);
    for (size_t i = 0; i < sizeof g; i++) g[i] = (unsigned char)(rand() & 0xff);
    for (size_t i = 49; i < sizeof g; i += 50) g[i] = '\n';
    raw_send(&r, (const char *)g, sizeof g);
    expect_closed(&r, 0, 1.5);
}

static void test_echo_of_target_greeting(void)
{
    setup();
    struct raw r;
    char l1[HS_MAX_LINE + 1], l2[HS_MAX_LINE + 1], both[2 * HS_MAX_LINE + 8];
    CHECK_INT(raw_connect(&r, target_port), 0);
    CHECK(raw_line(&r, l1, sizeof l1, 3) && raw_line(&r, l2, sizeof l2, 3));
    CHECK(!strncmp(l1, "aemp;1;target;", 14));
    snprintf(both, sizeof both, "%s\n%s\n", l1, l2);
    raw_sends(&r, both);
    expect_closed(&r, 0, 1.5);
}

static void test_wrong_token(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 1), 0);
    /* closed at once, not by the handshake timeout */
    expect_closed(&r, 0, 1.5);
}

static void test_silent_connection_times_out(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_connect(&r, target_port), 0);
    expect_closed(&r, MT - 0.5, MT + 2);
}

static void test_200_stalled_half_greetings(void)
{
    setup();
    enum { N = 200 };
    static struct raw rs[N];
    int opened = 0;
    double t0 = now();
    /* from 10 source addresses: one host may hold only so many
     * connections in the handshake (admit.c) */
    for (int i = 0; i < N; i++) {
        if (raw_connect_from(&rs[i], target_port, 2 + i % 10)) continue;
        opened++;
        raw_sends(&rs[i], "aemp;1;atk-stall;hmac_md6");
    }
    CHECK_INT(opened, N);
    /* the good client is served while they are all open */
    CHECK(good_ping_port("target#echo"));
    /* and a fresh peer still gets through the handshake and is served */
    struct raw fresh;
    CHECK_INT(raw_auth(&fresh, 0), 0);
    char m[128];
    snprintf(m, sizeof m, "[\"echo\",\"fresh\",\"atk-%d#f\"]", atk_seq);
    raw_sends(&fresh, m);
    double dl = now() + 2;
    while (now() < dl && !memmem(fresh.buf, fresh.len, "[\"f\",\"fresh\"]", 13))
        if (!raw_still_open(&fresh, 0.05)) break;
    CHECK(memmem(fresh.buf, fresh.len, "[\"f\",\"fresh\"]", 13) != NULL);
    raw_close(&fresh);
    struct pollfd pf[N];
    for (int i = 0; i < N; i++) pf[i] = (struct pollfd){.fd = rs[i].fd, .events = POLLIN};
    int still = 0, early = 0;
    for (int i = 0; i < N; i++) {
        if (rs[i].fd < 0) continue;
        char b[512];
        ssize_t k;
        while ((k = recv(rs[i].fd, b, sizeof b, MSG_DONTWAIT)) > 0) {}
        if (k == 0 || (k < 0 && errno == ECONNRESET)) {
            if (!early++)
                fprintf(stderr, "# stalled connection %d closed early (%.2f s)\n", i, now() - t0);
            raw_close(&rs[i]);
            pf[i].fd = -1;
        } else
            still++;
    }
    CHECK_INT(early, 0);
    CHECK_INT(still, opened);
    CHECK(good_ping_port("target#echo"));
    /* all closed by the handshake timeout */
    int closed = 0;
    double deadline = t0 + MT + 3;
    while (closed < still && now() < deadline) {
        pump();
        if (poll(pf, N, 100) <= 0) continue;
        for (int i = 0; i < N; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char b[512];
            ssize_t k = recv(pf[i].fd, b, sizeof b, MSG_DONTWAIT);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                closed++;
                raw_close(&rs[i]);
                pf[i].fd = -1;
            }
        }
    }
    double took = now() - t0;
    printf("# %d of %d stalled connections closed after %.2f s\n", closed, still, took);
    CHECK_INT(closed, still);
    CHECK(took >= MT - 0.5);
    for (int i = 0; i < N; i++) raw_close(&rs[i]);
    CHECK(target_ok());
}

/* A peer claiming the node ID of an already connected node is refused; the
 * real node's connection is not touched. */
static void test_impersonation_refused(void)
{
    setup();
    CHECK(aemp_node_is_up(client, "target"));
    struct raw r;
    char L[3 * HS_MAX_LINE], R[3 * HS_MAX_LINE];
    force_id = "client";
    int rc = raw_greet(&r, L, R, sizeof L);
    force_id = NULL;
    CHECK_INT(rc, 0);
    expect_closed(&r, 0, 1.5);
    CHECK(aemp_node_is_up(client, "target"));
    CHECK_INT(client_mon.calls, 0);
    /* and with the target's own ID */
    force_id = "target";
    rc = raw_greet(&r, L, R, sizeof L);
    force_id = NULL;
    CHECK_INT(rc, 0);
    expect_closed(&r, 0, 1.5);
}

/* The auth line has the 4096-byte limit too. */
static void test_long_auth_line(void)
{
    setup();
    struct raw r;
    char L[3 * HS_MAX_LINE], R[3 * HS_MAX_LINE];
    CHECK_INT(raw_greet(&r, L, R, sizeof L), 0);
    char *junk = malloc(6000);
    memset(junk, 'h', 6000);
    raw_send(&r, junk, 6000);
    free(junk);
    expect_closed(&r, 0, 1.5);
}

/* The minimal peer of PROTOCOL.md: "aemp;1;ID;hmac_md6_64_256;json", an
 * empty nonce line and "cleartext;HEXSECRET;json". Accepted because
 * cleartext is in the target's auth_accept; then it is a normal peer. */
static void test_minimal_cleartext_peer_accepted(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_connect(&r, target_port), 0);
    char hex[2 * sizeof SECRET + 1], line[256], l1[HS_MAX_LINE + 1], l2[HS_MAX_LINE + 1];
    for (size_t i = 0; i < sizeof SECRET - 1; i++)
        sprintf(hex + 2 * i, "%02x", (unsigned char)SECRET[i]);
    /* the node ID probe_after() replies to */
    snprintf(line, sizeof line, "aemp;1;atk-%d;hmac_md6_64_256;json\n\ncleartext;%s;json\n",
             ++atk_seq, hex);
    raw_sends(&r, line);
    CHECK(raw_line(&r, l1, sizeof l1, 3) && !strncmp(l1, "aemp;1;target;", 14));
    CHECK(raw_line(&r, l2, sizeof l2, 3) && strlen(l2) == HS_NONCE_LEN);
    char theirs[HS_MAX_LINE + 1];
    CHECK(raw_line(&r, theirs, sizeof theirs, 3) && !strncmp(theirs, "hmac_md6_64_256;", 16));
    /* authenticated: a request through the node port is answered */
    CHECK(probe_after(&r, "[\"\",\"devnull\"]"));
    raw_close(&r);
    CHECK(target_ok());
}

T_MAIN(T(test_good_client_baseline), T(test_long_greeting_line),
       T(test_exact_limit_greeting_line_then_more), T(test_wrong_version), T(test_garbage_greeting),
       T(test_echo_of_target_greeting), T(test_wrong_token), T(test_silent_connection_times_out),
       T(test_200_stalled_half_greetings), T(test_impersonation_refused), T(test_long_auth_line),
       T(test_minimal_cleartext_peer_accepted), T(test_target_survived_everything))
