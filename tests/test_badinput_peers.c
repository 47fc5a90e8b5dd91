/* test_badinput_peers.c - bad input from the network (badinput.h): peers that die or go silent: a kill -9 fires monitors, a silent peer is probed and then dropped. */
#include "badinput.h"

static void test_kill9_peer_fires_monitor(void)
{
    setup();
    CHECK(good_ping_port("victim#echo")); /* a connection exists */
    CHECK(aemp_node_is_up(client, "victim"));
    struct monres m = {0};
    aemp_mon(client, "victim#echo", mon_cb, &m, NULL);
    run_until(cbase, NULL, 0, 0.2);
    CHECK_INT(m.calls, 0);
    double t0 = now();
    CHECK(victim_pid > 0); /* never kill(-1, ...) */
    if (victim_pid <= 0) return;
    CHECK_INT(kill(victim_pid, SIGKILL), 0);
    int st = 0;
    CHECK_INT(waitpid(victim_pid, &st, 0), victim_pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    victim_pid = -1;
    CHECK(run_until(cbase, &m.calls, 1, MT + 1));
    CHECK_INT(m.calls, 1);
    double took = m.calls ? m.at - t0 : -1;
    printf("# monitor fired after %.3f s\n", took);
    CHECK(took >= 0 && took <= MT + 1);
    CHECK(m.reason && cJSON_GetArraySize(m.reason) >= 2);
    const cJSON *r0 = cJSON_GetArrayItem(m.reason, 0), *r1 = cJSON_GetArrayItem(m.reason, 1);
    CHECK(cJSON_IsString(r0) && !strcmp(r0->valuestring, "transport_error"));
    CHECK(cJSON_IsString(r1) && !strcmp(r1->valuestring, "victim"));
    if (m.reason) {
        char *s = cJSON_PrintUnformatted(m.reason);
        printf("# reason %s\n", s);
        free(s);
    }
    cJSON_Delete(m.reason);
    /* the target is undisturbed */
    CHECK(target_ok());
}

/* A node checks a silent peer (probe.c): after monitor_timeout/2 without
 * hearing from it, a node-port "time" request with a reply port; answered,
 * the connection stays (its writes are never idle for monitor_timeout, the
 * 1.30 keepalive of listener-less nodes); unanswered, the node closes the
 * connection within monitor_timeout of the last answer. We play a seed of a
 * node without listeners. */
static void test_silent_peer_probed_then_dropped(void)
{
    setup();
    int ls = listen_local(SOCK_STREAM, 4, &child_seed_port);
    CHECK(ls >= 0);
    int dummy;
    pid_t pid = spawn_node("quiet", &dummy);
    child_seed_port = 0;
    victim_pid = pid; /* reaped by cleanup() on failure */
    struct pollfd pf = {ls, POLLIN, 0};
    CHECK(poll(&pf, 1, 5000) == 1);
    struct raw r = {.fd = accept(ls, NULL, NULL), .len = 0};
    close(ls);
    CHECK(r.fd >= 0);
    struct timeval tv = {0, 100000};
    setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* the handshake, from the seed's side */
    char id[32], L[3 * HS_MAX_LINE], R[3 * HS_MAX_LINE], l1[HS_MAX_LINE + 1],
        l2[HS_MAX_LINE + 1], err[256], tok[65] = "", line[256], theirs[HS_MAX_LINE + 1];
    our_greeting(id, sizeof id, L, sizeof L);
    raw_sends(&r, L);
    CHECK(raw_line(&r, l1, sizeof l1, 3) && raw_line(&r, l2, sizeof l2, 3));
    snprintf(R, sizeof R, "%s\n%s\n", l1, l2);
    CHECK_INT(hs_token("hmac_md6_64_256", SECRET, L, R, tok, sizeof tok), 0);
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", tok);
    raw_sends(&r, line);
    CHECK(raw_line(&r, theirs, sizeof theirs, 3) && !strncmp(theirs, "hmac_md6_64_256;", 16));
    (void)err;
    /* now read: Global's start-up first, then silence, then probes */
    const char *probe = "[\"\",\"time\",\"quiet#aemp!probe\"]";
    double t_last = now(), t_start = now(), deadline = now() + 6 * MT, t_closed = -1;
    int probes = 0, answered = 0;
    double max_gap = 0, t_last_answer = now();
    while (now() < deadline) {
        pump();
        ssize_t k = recv(r.fd, r.buf + r.len, sizeof r.buf - r.len - 1, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            t_closed = now();
            break;
        }
        if (k < 0) continue;
        r.len += (size_t)k;
        r.buf[r.len] = 0;
        char *at = strstr(r.buf, probe);
        if (at) {
            probes++;
            if (now() - t_last > max_gap) max_gap = now() - t_last;
            /* answer the first three, as every 1.30 node would */
            if (answered < 3) {
                raw_sends(&r, "[\"aemp!probe\",1]");
                answered++;
                t_last_answer = now();
            }
            r.len = 0;
        }
        t_last = now();
    }
    printf("# %d probes, the longest silence before one %.3f s; closed %.3f s after the last "
           "answer\n",
           probes, max_gap, t_closed - t_last_answer);
    CHECK(probes >= 3);
    CHECK(max_gap >= MT / 2 - 0.3 && max_gap <= MT + 0.5);
    /* answered probes kept it open; the unanswered one closed it in time */
    CHECK(t_closed > 0);
    CHECK(t_closed - t_start >= 3 * (MT / 2) - 0.5);
    CHECK(t_closed - t_last_answer <= MT + 1);
    raw_close(&r);
    reap(&victim_pid);
    CHECK(target_ok());
}

T_MAIN(T(test_kill9_peer_fires_monitor), T(test_silent_peer_probed_then_dropped),
       T(test_target_survived_everything))
