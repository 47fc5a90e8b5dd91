/* handshake.h - the AEMP greeting lines, the choice of auth method and
 * framing, and the auth tokens (PROTOCOL.md section 2). Pure: no I/O; the
 * transport feeds it lines and sends what it builds. */
#ifndef AEMP_HANDSHAKE_H
#define AEMP_HANDSHAKE_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* No handshake line may be longer than this, terminator included. */
#define HS_MAX_LINE 4096
/* Nonce: 66 random bytes, base64 without line breaks. */
#define HS_NONCE_BYTES 66
#define HS_NONCE_LEN 88

/* A parsed greeting line 1 ("aemp;1;NODEID;AUTHS;FRAMINGS;k=v;..."). All
 * strings are owned by the struct; free with hs_greeting_clear(). */
struct hs_greeting {
    char *proto;    /* "aemp" or "aemp-WORD" */
    long version;   /* must be 1 */
    char *nodeid;
    char **auth;    /* the sender's auth_accept list */
    size_t nauth;
    char **framing; /* the sender's framing list */
    size_t nframing;
    char *provider; /* NULL when absent */
    char *peeraddr; /* NULL when absent */
    long tls;       /* integer value of tls=, 0 when absent */
    char *dataconn_id; /* dataconn_id= of an aemp-dataconn greeting, NULL when absent */
    char *beat;        /* beat= of an aemp-c node on our host (net/hostbeat.c), NULL when absent */
};

/* Parse greeting line 1 (`line` without its terminator, `len` bytes, may
 * contain no NUL). Unescapes %3b and %25 in values. AEMP_EPROTO with a
 * message for anything malformed (too few fields, bad version number, empty
 * node ID, node ID with characters outside [A-Za-z0-9_\-.:/]). */
int hs_parse_greeting(const char *line, size_t len, struct hs_greeting *out, char *err,
                      size_t errlen);
void hs_greeting_clear(struct hs_greeting *g);

/* Build our greeting line 1 without terminator (new string, caller frees):
 * "aemp;1;NODEID;ACCEPT;FRAMING;provider=aemp-c-VERSION;peeraddr=PEER[;tls=1.0]".
 * `auth_accept` and `framing` are borrowed JSON arrays of strings; `peeraddr`
 * may be NULL (then omitted). */
char *hs_build_greeting(const char *nodeid, const cJSON *auth_accept, const cJSON *framing,
                        const char *peeraddr, int have_cert);

/* Greeting line 1 `l1` (borrowed) with ";KEY=VALUE" appended, VALUE
 * escaped. New string, caller frees; NULL when out of memory. */
char *hs_greeting_add(const char *l1, const char *key, const char *value);

/* Our greeting line 1 `l1` (borrowed, from hs_build_greeting()) turned into
 * the one of an outgoing data connection: protocol "aemp-dataconn" and
 * ";dataconn_id=ID" appended (1.30's AnyEvent::MP::DataConn). New string,
 * caller frees; NULL when out of memory. `id` must pass hs_dataconn_id_ok(). */
char *hs_dataconn_greeting(const char *l1, const char *id);

/* 1 when `id` is usable as a dataconn_id: 1..200 bytes of
 * [A-Za-z0-9_\-.:/@]. */
int hs_dataconn_id_ok(const char *id);

/* A fresh nonce line (base64 of HS_NONCE_BYTES random bytes) into
 * out[HS_NONCE_LEN + 1]. */
void hs_nonce(char out[HS_NONCE_LEN + 1]);

/* Choose what we send: the first method of the remote's accept list that is
 * in `auth_offer` (tls_* only when `use_tls`), and the first framing of the
 * remote's list that is in `framing`. Results point into `remote` (borrowed).
 * AEMP_EAUTH / AEMP_EPROTO with a message when there is no match. */
int hs_choose(const struct hs_greeting *remote, const cJSON *auth_offer, const cJSON *framing,
              int use_tls, const char **method, const char **framing_out, char *err,
              size_t errlen);

/* 1 when TLS is to be used: we have a certificate and remote->tls == 1. */
int hs_use_tls(const struct hs_greeting *remote, int have_cert);

/* 1 when our nonce line is the byte-wise smaller one (we are the TLS client). */
int hs_tls_is_client(const char *our_nonce, const char *remote_nonce);

/* The token for `method` given L = "ourline1\nournonce\n" and R the same for
 * the remote (both borrowed, NUL-terminated). hmac_md6_64_256 needs `secret`
 * (NULL: AEMP_EAUTH "no secret configured"); tls_md6_64_256 and tls_anon need
 * none; cleartext gives hex(secret). Writes a NUL-terminated token into
 * out[outlen] (65 bytes suffice except for cleartext: 2*strlen(secret)+1). */
int hs_token(const char *method, const char *secret, const char *L, const char *R, char *out,
             size_t outlen);

/* A parsed auth line "METHOD;TOKEN;FRAMING"; strings owned by the struct. */
struct hs_auth {
    char *method;
    char *token;
    char *framing;
};
int hs_parse_auth(const char *line, size_t len, struct hs_auth *out, char *err, size_t errlen);
void hs_auth_clear(struct hs_auth *a);

/* Check the remote's auth line: its method must be in our `auth_accept`
 * (borrowed array), tls_* methods only under TLS, and its token must equal,
 * compared in constant time, the expected token computed with L and R
 * swapped (the remote's view). Its framing must be one we understand
 * (`framing`, borrowed array). 0 when accepted; AEMP_EAUTH with a message
 * otherwise. *untrusted is set to 1 for tls_anon. */
int hs_check_auth(const struct hs_auth *got, const cJSON *auth_accept, const cJSON *framing,
                  int use_tls, const char *secret, const char *L, const char *R,
                  int *untrusted, char *err, size_t errlen);

/* How far our side of a handshake had come when the peer closed it. */
enum hs_stage {
    HS_AWAIT_GREETING, /* we greeted; its greeting had not come */
    HS_IN_TLS,         /* the TLS handshake was running */
    HS_AWAIT_AUTH,     /* we sent our auth line; its had not come */
};

/* The likely reason a peer closed a handshake at `stage`, to follow the
 * words "connection closed by the peer" (static text). `accept_own`
 * (HS_AWAIT_AUTH): 1 when our auth_accept holds the method we sent. */
const char *hs_refusal_cause(enum hs_stage stage, int accept_own);

#endif
