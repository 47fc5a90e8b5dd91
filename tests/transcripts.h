/* transcripts.h - what test_transcripts_streams.c and _replay.c share.
 *
 * Interop with the real AnyEvent::MP 1.30: the wire transcripts recorded in
 * tests/vectors/transcripts/ (see tests/vectors/README.md).
 *
 * 1. Every recorded byte stream is split into greeting lines, auth line and
 *    JSON texts; our greeting parser, auth check and framing reader (in
 *    several chunkings) must agree with what the Perl nodes sent and
 *    accepted.
 * 2. A real node of ours runs in a forked child; this process plays node A
 *    over a raw blocking socket, does the handshake by hand and replays the
 *    node-port requests of handshake_node_requests, checking that the
 *    replies have the shape of B's recorded replies. */
#ifndef AEMP_TRANSCRIPTS_H
#define AEMP_TRANSCRIPTS_H

#include "aemp.h"
#include "framing.h"
#include "handshake.h"
#include "t.h"
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#define SECRET "interop-secret-aemp-1.30"

static const char *accept_list[] = {"tls_md6_64_256", "hmac_md6_64_256", "tls_anon",
                                    "cleartext"};

/* ------------------------------------------------------------ helpers */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (buf && fread(buf, 1, n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

static cJSON *load_json(const char *rel)
{
    const char *dir = getenv("AEMP_VECTORS");
    if (!dir || !*dir) dir = "tests/vectors";
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *text = slurp(path);
    if (!text) {
        fprintf(stderr, "# cannot read %s\n", path);
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    if (!j) fprintf(stderr, "# %s is not JSON\n", path);
    free(text);
    return j;
}

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *strarray(const char **v, int n)
{
    return cJSON_CreateStringArray(v, n);
}

/* "G1\nG2\n" as a new string. */
static char *lines2(const char *g1, const char *g2)
{
    size_t n = strlen(g1) + strlen(g2) + 3;
    char *s = malloc(n);
    snprintf(s, n, "%s\n%s\n", g1, g2);
    return s;
}

static char *print(const cJSON *j)
{
    return j ? cJSON_PrintUnformatted(j) : strdup("(null)");
}

/* The MSG entries of `decoded` for direction `dir`, parsed, minus the
 * keepalive `[]` (which our reader consumes); *keepalives counts those. */
static cJSON *expected_msgs(const cJSON *decoded, const char *dir, int *keepalives)
{
    cJSON *out = cJSON_CreateArray();
    *keepalives = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, decoded)
    {
        const char *d = str_of(e, "dir"), *k = str_of(e, "kind"), *t = str_of(e, "text");
        if (!d || !k || !t || strcmp(d, dir) || strcmp(k, "MSG")) continue;
        cJSON *m = cJSON_Parse(t);
        CHECK(m != NULL);
        if (!m) continue;
        if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 0) {
            ++*keepalives;
            cJSON_Delete(m);
            continue;
        }
        cJSON_AddItemToArray(out, m);
    }
    return out;
}

/* Check the auth line `line` as its receiver would: L = receiver's lines,
 * R = sender's. Returns hs_check_auth's result. */
static int verify_auth(const char *line, const char *secret, const char *L, const char *R,
                       int use_tls, char *err, size_t errlen)
{
    struct hs_auth a;
    memset(&a, 0, sizeof a);
    int rc = hs_parse_auth(line, strlen(line), &a, err, errlen);
    if (rc) return rc;
    cJSON *acc = strarray(accept_list, 4);
    const char *fr[] = {"json"};
    cJSON *fra = strarray(fr, 1);
    int untrusted = 0;
    rc = hs_check_auth(&a, acc, fra, use_tls, secret, L, R, &untrusted, err, errlen);
    cJSON_Delete(acc);
    cJSON_Delete(fra);
    hs_auth_clear(&a);
    return rc;
}

#endif
