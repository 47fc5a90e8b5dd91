/* test_badinput_frames.c - bad input from the network (badinput.h): the JSON texts after the handshake: invalid JSON, too big, just under the limit, not an array, an unknown port, a lone surrogate, deep nesting. */
#include "badinput.h"

static void test_invalid_json_after_auth(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    CHECK(raw_still_open(&r, 0.2)); /* authenticated and up */
    raw_sends(&r, "[\"x\",}");
    expect_closed(&r, 0, 1.5);
}

static void test_message_over_max_size(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    size_t n = 70000;
    char *m = malloc(n + 32);
    strcpy(m, "[\"echo\",\"");
    size_t h = strlen(m);
    memset(m + h, 'z', n);
    strcpy(m + h + n, "\",\"atk#x\"]");
    raw_send(&r, m, strlen(m));
    free(m);
    expect_closed(&r, 0, 1.5);
}

static void test_message_just_under_max_size_is_fine(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    char id[32];
    /* our node ID is the last atk-N used */
    snprintf(id, sizeof id, "atk-%d", atk_seq);
    size_t n = 60000;
    char *m = malloc(n + 64);
    if (!m) abort();
    int h = sprintf(m, "[\"echo\",\"");
    memset(m + h, 'y', n);
    sprintf(m + h + n, "\",\"%s#big\"]", id);
    raw_send(&r, m, strlen(m));
    free(m);
    /* the echo comes back on this connection: ["big","yyy..."] */
    double deadline = now() + 3;
    int got = 0;
    while (now() < deadline && !got) {
        raw_wait_closed(&r, 0.1);
        got = r.len >= n && memmem(r.buf, r.len, "[\"big\",\"yyyy", 11) != NULL;
    }
    CHECK(got);
    CHECK(raw_still_open(&r, 0.1));
    raw_close(&r);
    CHECK(target_ok());
}

static void test_not_an_array(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    CHECK(raw_still_open(&r, 0.1));
    raw_sends(&r, "{\"a\":1}");
    expect_closed(&r, 0, 1.5);
}

static void test_first_element_not_string(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    raw_sends(&r, "[1,2,3]");
    expect_closed(&r, 0, 1.5);
}

static void test_unknown_port_keeps_connection(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    char id[32], m[256];
    snprintf(id, sizeof id, "atk-%d", atk_seq);
    raw_sends(&r, "[\"no-such-port\",\"hello\"] [] \n[\"nosuch2\",{\"a\":[1,2]}]");
    CHECK(raw_still_open(&r, 0.5));
    r.len = 0;
    /* the same connection still carries traffic both ways */
    snprintf(m, sizeof m, "[\"echo\",\"still\",\"here\",\"%s#r\"]", id);
    raw_sends(&r, m);
    double deadline = now() + 3;
    int got = 0;
    while (now() < deadline && !got) {
        if (!raw_still_open(&r, 0.1)) break;
        got = memmem(r.buf, r.len, "[\"r\",\"still\",\"here\"]", 20) != NULL;
    }
    if (!got) fprintf(stderr, "# got %zu bytes: %.*s\n", r.len, (int)r.len, r.buf);
    CHECK(got);
    raw_close(&r);
    CHECK(target_ok());
}

/* A string with a lone UTF-16 surrogate escape: the JSON parser rejects the
 * text, so the connection is closed like for any invalid JSON. */
static void test_lone_surrogate_closes(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    CHECK(raw_still_open(&r, 0.1));
    raw_sends(&r, "[\"nosuch\",\"\\ud800\"]");
    expect_closed(&r, 0, 1.5);
}

/* A text nested deeper than any parser should recurse, under the size limit. */
static void test_deep_nesting(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    size_t depth = 30000;
    char *m = malloc(2 * depth + 32);
    if (!m) abort();
    size_t k = (size_t)sprintf(m, "[\"nosuch\",");
    memset(m + k, '[', depth);
    k += depth;
    memset(m + k, ']', depth + 1);
    k += depth + 1;
    m[k] = 0;
    raw_send(&r, m, k);
    free(m);
    /* dropped or closed, either is fine; the node must survive */
    raw_wait_closed(&r, 0.5);
    raw_close(&r);
    CHECK(target_ok());
}

T_MAIN(T(test_invalid_json_after_auth), T(test_message_over_max_size),
       T(test_message_just_under_max_size_is_fine), T(test_not_an_array),
       T(test_first_element_not_string), T(test_unknown_port_keeps_connection),
       T(test_lone_surrogate_closes), T(test_deep_nesting), T(test_target_survived_everything))
