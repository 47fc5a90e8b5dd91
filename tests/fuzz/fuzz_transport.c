/* fuzz_transport - libFuzzer target for the transport state machine: a real
 * node listens on 127.0.0.1 (in a network namespace of its own) and each
 * input is one TCP connection to it, written in chunks with the node's loop
 * running in between. Half of the inputs first do a correct handshake
 * (greeting, nonce, HMAC-MD6 auth line) so that the rest reaches the framing
 * and the handlers of an authenticated peer; the others start from the
 * greeting.
 *
 * Input: byte 0 bit 0 = authenticate first; byte 1 = chunk size - 1; the
 * rest is what the client writes. */
#include "aemp.h"
#include "fuzz_netns.h"
#include "handshake.h"
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret"

static aemp_node *node;
static int port;

static int skip;

static void setup(void)
{
    if (fuzz_netns()) {
        skip = 1;
        return;
    }
    aemp_log_set_level(1);
    node = aemp_node_new(NULL);
    cJSON *cfg = cJSON_Parse("{\"nodeid\":\"fzt\",\"binds\":[\"127.0.0.1:0\"],\"seeds\":[],"
                             "\"secret\":\"" SECRET "\",\"monitor_timeout\":2,"
                             "\"connect_interval\":0.1,\"max_message_size\":65536,"
                             "\"auth_offer\":[\"hmac_md6_64_256\"],"
                             "\"auth_accept\":[\"hmac_md6_64_256\",\"cleartext\"],"
                             "\"framing_format\":[\"json\"]}");
    char err[256];
    if (!node || aemp_configure_effective(node, cfg, err, sizeof err)) abort();
    cJSON_Delete(cfg);
    cJSON *a = aemp_listen_addrs(node);
    port = atoi(strrchr(cJSON_GetArrayItem(a, 0)->valuestring, ':') + 1);
    cJSON_Delete(a);
}

static void turn(void)
{
    event_base_loop(aemp_node_base(node), EVLOOP_NONBLOCK);
}

/* Read one line from fd (the node writes while its loop runs); 0 on
 * success, -1 when it closed or did not answer. */
static int read_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    for (int tries = 0; tries < 2000 && n + 1 < len; tries++) {
        ssize_t k = recv(fd, buf + n, 1, MSG_DONTWAIT);
        if (k == 1) {
            if (buf[n] == '\n') {
                buf[n] = 0;
                return 0;
            }
            n++;
            continue;
        }
        if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return -1;
        turn();
    }
    return -1;
}

/* A correct client handshake as node "fzclient"; 0 when authenticated. */
static int handshake(int fd)
{
    char r1[HS_MAX_LINE], r2[HS_MAX_LINE], nonce[HS_NONCE_LEN + 1];
    if (read_line(fd, r1, sizeof r1) || read_line(fd, r2, sizeof r2)) return -1;
    const char *l1 = "aemp;1;fzclient;hmac_md6_64_256;json";
    hs_nonce(nonce);
    char L[HS_MAX_LINE * 2], R[HS_MAX_LINE * 2], tok[80], line[200];
    snprintf(L, sizeof L, "%s\n%s\n", l1, nonce);
    snprintf(R, sizeof R, "%s\n%s\n", r1, r2);
    if (hs_token("hmac_md6_64_256", SECRET, L, R, tok, sizeof tok)) return -1;
    int n = snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", tok);
    if (send(fd, L, strlen(L), MSG_NOSIGNAL) < 0 || send(fd, line, (size_t)n, MSG_NOSIGNAL) < 0)
        return -1;
    char theirs[HS_MAX_LINE];
    return read_line(fd, theirs, sizeof theirs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!node && !skip) setup();
    if (skip) return 0;
    if (size < 2) return 0;
    int auth = data[0] & 1;
    size_t step = (size_t)data[1] + 1;
    data += 2;
    size -= 2;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) abort();
    turn();
    if (!auth || handshake(fd) == 0) {
        for (size_t off = 0; off < size; off += step) {
            size_t len = size - off < step ? size - off : step;
            if (send(fd, data + off, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) break;
            turn();
        }
    }
    for (int i = 0; i < 4; i++) turn();
    close(fd);
    for (int i = 0; i < 4; i++) turn();
    return 0;
}
