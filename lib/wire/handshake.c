/* handshake.c - the AEMP greeting lines, the choice of auth method and
 * framing, and the auth tokens (PROTOCOL.md section 2), as AnyEvent::MP 1.30
 * computes them (tests/vectors/hmac_md6.json, tls_md6.json).
 *
 * Pure: no I/O, no global mutable state (libsodium keeps its own). Strings
 * returned in structs are owned by the struct; cJSON arrays passed in are
 * borrowed. */
#include "handshake.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "aemp.h"
#include "md6.h"

/* Write a formatted message into err[errlen] when the caller gave a buffer. */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A new NUL-terminated copy of s[0..n) with %3b (either case) turned into
 * ';' and %25 into '%'; other '%' stay as they are. NULL on ENOMEM. */
static char *unescape(const char *s, size_t n)
{
    char *o = malloc(n + 1), *p = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && n - i >= 3) {
            if (s[i + 1] == '3' && (s[i + 2] == 'b' || s[i + 2] == 'B')) {
                *p++ = ';';
                i += 2;
                continue;
            }
            if (s[i + 1] == '2' && s[i + 2] == '5') {
                *p++ = '%';
                i += 2;
                continue;
            }
        }
        *p++ = s[i];
    }
    *p = 0;
    return o;
}

/* Free a list of n strings and the list. */
static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Split the comma list s[0..n) into unescaped, non-empty items (*out, *nout;
 * owned by the caller). 0 or AEMP_ENOMEM. */
static int split_list(const char *s, size_t n, char ***out, size_t *nout)
{
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += s[i] == ',';
    char **v = calloc(cap, sizeof *v);
    size_t k = 0;
    if (!v) return AEMP_ENOMEM;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',') continue;
        if (i > start) {
            v[k] = unescape(s + start, i - start);
            if (!v[k]) {
                free_list(v, k);
                return AEMP_ENOMEM;
            }
            k++;
        }
        start = i + 1;
    }
    *out = v;
    *nout = k;
    return 0;
}

/* 1 when every byte of s is allowed in a node ID: [A-Za-z0-9_\-.:/]. */
static int nodeid_ok(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':' || c == '/'))
            return 0;
    }
    return 1;
}

/* 1 when the protocol name is "aemp" or "aemp-WORD" (WORD: [A-Za-z0-9_]+). */
static int proto_ok(const char *s)
{
    if (strncmp(s, "aemp", 4)) return 0;
    if (!s[4]) return 1;
    if (s[4] != '-' || !s[5]) return 0;
    for (s += 5; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* Perl's int() of a string: optional sign and leading decimal digits, the
 * rest ignored ("1.0" is 1, "x" is 0); saturates instead of overflowing. */
static long perl_int(const char *s)
{
    return strtol(s, NULL, 10);
}

/* Parse greeting line 1; see handshake.h. */
int hs_parse_greeting(const char *line, size_t len, struct hs_greeting *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len >= HS_MAX_LINE) {
        set_err(err, errlen, "greeting line longer than %d bytes", HS_MAX_LINE - 1);
        return AEMP_EPROTO;
    }
    if (memchr(line, 0, len)) {
        set_err(err, errlen, "greeting line contains a NUL byte");
        return AEMP_EPROTO;
    }
    /* The five fixed fields: fs[i], fl[i] bytes. */
    const char *fs[5];
    size_t fl[5];
    size_t nf = 0, pos = 0;
    while (nf < 5 && pos <= len) {
        const char *semi = memchr(line + pos, ';', len - pos);
        size_t end = semi ? (size_t)(semi - line) : len;
        fs[nf] = line + pos;
        fl[nf] = end - pos;
        nf++;
        pos = end + 1;
    }
    if (nf < 5) {
        set_err(err, errlen, "greeting has %zu fields, at least 5 are needed (%.*s)", nf,
                (int)(len > 60 ? 60 : len), line);
        return AEMP_EPROTO;
    }
    int rc = AEMP_ENOMEM;
    out->proto = unescape(fs[0], fl[0]);
    out->nodeid = unescape(fs[2], fl[2]);
    char *ver = unescape(fs[1], fl[1]);
    if (!out->proto || !out->nodeid || !ver) goto fail_free;
    if (!proto_ok(out->proto)) {
        set_err(err, errlen, "not an aemp greeting (protocol \"%.40s\")", out->proto);
        rc = AEMP_EPROTO;
        goto fail_free;
    }
    /* The version must be a plain decimal number, and 1. */
    size_t vl = strlen(ver);
    int digits = vl > 0 && vl < 10 && strspn(ver, "0123456789") == vl;
    out->version = digits ? strtol(ver, NULL, 10) : -1;
    if (out->version != 1) {
        set_err(err, errlen, "version mismatch: the peer speaks version \"%.20s\", we speak 1",
                ver);
        rc = AEMP_EPROTO;
        goto fail_free;
    }
    free(ver);
    ver = NULL;
    if (!out->nodeid[0]) {
        set_err(err, errlen, "greeting with an empty node ID");
        rc = AEMP_EPROTO;
        goto fail;
    }
    if (!nodeid_ok(out->nodeid)) {
        set_err(err, errlen, "greeting with an invalid node ID \"%.60s\"", out->nodeid);
        rc = AEMP_EPROTO;
        goto fail;
    }
    if (split_list(fs[3], fl[3], &out->auth, &out->nauth) ||
        split_list(fs[4], fl[4], &out->framing, &out->nframing))
        goto fail;
    /* KEY=VALUE fields after the fixed ones; pos is the start of the next. */
    while (pos <= len) {
        const char *semi = memchr(line + pos, ';', len - pos);
        size_t end = semi ? (size_t)(semi - line) : len;
        const char *f = line + pos;
        size_t flen = end - pos;
        pos = end + 1;
        const char *eq = memchr(f, '=', flen);
        if (!eq) continue; /* a key without value: nothing we use */
        size_t kl = (size_t)(eq - f);
        char *v = unescape(eq + 1, flen - kl - 1);
        if (!v) goto fail;
        if (kl == 8 && !memcmp(f, "provider", 8)) {
            free(out->provider); /* a repeated key: the last one wins */
            out->provider = v;
        } else if (kl == 8 && !memcmp(f, "peeraddr", 8)) {
            free(out->peeraddr);
            out->peeraddr = v;
        } else if (kl == 4 && !memcmp(f, "beat", 4)) {
            free(out->beat);
            out->beat = v;
        } else if (kl == 11 && !memcmp(f, "dataconn_id", 11)) {
            free(out->dataconn_id);
            out->dataconn_id = v;
        } else {
            if (kl == 3 && !memcmp(f, "tls", 3)) out->tls = perl_int(v);
            free(v); /* unknown keys are ignored */
        }
    }
    return 0;
fail_free:
    free(ver);
fail:
    if (rc == AEMP_ENOMEM) set_err(err, errlen, "out of memory parsing a greeting");
    hs_greeting_clear(out);
    return rc;
}

/* Free what a greeting owns and zero it. */
void hs_greeting_clear(struct hs_greeting *g)
{
    free(g->proto);
    free(g->nodeid);
    free_list(g->auth, g->nauth);
    free_list(g->framing, g->nframing);
    free(g->provider);
    free(g->peeraddr);
    free(g->dataconn_id);
    free(g->beat);
    memset(g, 0, sizeof *g);
}

/* A growable string for building lines. */
struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

/* Append n bytes of s to b, escaping ';' and '%' when `esc`. */
static void sb_add(struct sbuf *b, const char *s, size_t n, int esc)
{
    for (size_t i = 0; i < n && !b->oom; i++) {
        if (b->len + 4 > b->cap) {
            size_t nc = b->cap ? b->cap * 2 : 128;
            char *np = realloc(b->p, nc);
            if (!np) {
                b->oom = 1;
                break;
            }
            b->p = np;
            b->cap = nc;
        }
        if (esc && s[i] == ';') {
            memcpy(b->p + b->len, "%3b", 3);
            b->len += 3;
        } else if (esc && s[i] == '%') {
            memcpy(b->p + b->len, "%25", 3);
            b->len += 3;
        } else {
            b->p[b->len++] = s[i];
        }
    }
}

/* Append a string (escaped when `esc`). */
static void sb_str(struct sbuf *b, const char *s, int esc)
{
    sb_add(b, s, strlen(s), esc);
}

/* Append the string items of a JSON array joined by ',' (escaped). */
static void sb_list(struct sbuf *b, const cJSON *arr)
{
    int first = 1;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) continue;
        if (!first) sb_str(b, ",", 0);
        sb_str(b, it->valuestring, 1);
        first = 0;
    }
}

/* Build our greeting line 1; see handshake.h. */
char *hs_build_greeting(const char *nodeid, const cJSON *auth_accept, const cJSON *framing,
                        const char *peeraddr, int have_cert)
{
    struct sbuf b = {0};
    sb_str(&b, "aemp;1;", 0);
    sb_str(&b, nodeid, 1);
    sb_str(&b, ";", 0);
    sb_list(&b, auth_accept);
    sb_str(&b, ";", 0);
    sb_list(&b, framing);
    sb_str(&b, ";provider=aemp-c-" AEMP_VERSION, 0);
    if (peeraddr) {
        sb_str(&b, ";peeraddr=", 0);
        sb_str(&b, peeraddr, 1);
    }
    if (have_cert) sb_str(&b, ";tls=1.0", 0);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    /* sb_add always leaves room for at least 4 more bytes. */
    b.p[b.len] = 0;
    return b.p;
}

/* Our greeting line 1 with one more key; see handshake.h. */
char *hs_greeting_add(const char *l1, const char *key, const char *value)
{
    struct sbuf b = {0};
    sb_str(&b, l1, 0);
    sb_str(&b, ";", 0);
    sb_str(&b, key, 0);
    sb_str(&b, "=", 0);
    sb_str(&b, value, 1);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    b.p[b.len] = 0;
    return b.p;
}

/* An outgoing data connection's greeting line 1; see handshake.h. */
char *hs_dataconn_greeting(const char *l1, const char *id)
{
    if (strncmp(l1, "aemp;", 5)) return NULL;
    size_t n = strlen(l1) + strlen(id) + 32;
    char *s = malloc(n);
    if (s) snprintf(s, n, "aemp-dataconn%s;dataconn_id=%s", l1 + 4, id);
    return s;
}

int hs_dataconn_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (!n || n > 200) return 0;
    for (; *id; id++)
        if (!nodeid_ok((char[]){*id, 0}) && *id != '@') return 0;
    return 1;
}

/* A fresh nonce line; see handshake.h. */
void hs_nonce(char out[HS_NONCE_LEN + 1])
{
    unsigned char bin[HS_NONCE_BYTES];
    if (sodium_init() < 0) abort(); /* no usable randomness: nothing safe to do */
    randombytes_buf(bin, sizeof bin);
    sodium_bin2base64(out, HS_NONCE_LEN + 1, bin, sizeof bin, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(bin, sizeof bin);
}

/* 1 when the JSON array `arr` holds the string s. */
static int in_array(const cJSON *arr, const char *s)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && !strcmp(it->valuestring, s)) return 1;
    }
    return 0;
}

/* 1 for the methods that are only valid inside TLS. */
static int is_tls_method(const char *m)
{
    return !strncmp(m, "tls_", 4);
}

/* Choose our auth method and sending framing; see handshake.h. */
int hs_choose(const struct hs_greeting *remote, const cJSON *auth_offer, const cJSON *framing,
              int use_tls, const char **method, const char **framing_out, char *err, size_t errlen)
{
    *method = NULL;
    *framing_out = NULL;
    for (size_t i = 0; i < remote->nauth && !*method; i++)
        if ((use_tls || !is_tls_method(remote->auth[i])) && in_array(auth_offer, remote->auth[i]))
            *method = remote->auth[i];
    if (!*method) {
        set_err(err, errlen,
                "no common auth method: the peer accepts none of those we offer%s (is a "
                "secret configured?)",
                use_tls ? "" : " without TLS");
        return AEMP_EAUTH;
    }
    for (size_t i = 0; i < remote->nframing && !*framing_out; i++)
        if (in_array(framing, remote->framing[i])) *framing_out = remote->framing[i];
    if (!*framing_out) {
        *method = NULL;
        set_err(err, errlen, "no common framing: the peer understands none of ours");
        return AEMP_EPROTO;
    }
    return 0;
}

/* TLS iff we have a certificate and the peer announced tls=1. */
int hs_use_tls(const struct hs_greeting *remote, int have_cert)
{
    return have_cert && remote->tls == 1;
}

/* The byte-wise smaller nonce line is the TLS client. */
int hs_tls_is_client(const char *our_nonce, const char *remote_nonce)
{
    return strcmp(our_nonce, remote_nonce) < 0; /* strcmp compares as unsigned char */
}

/* A new string A || B (NUL-terminated); *len gets its length. */
static char *concat(const char *a, const char *b, size_t *len)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    *len = la + lb;
    return s;
}

/* The token for `method`; see handshake.h. Secrets are used as their bytes
 * (UTF-8); an empty secret counts as none, as in 1.30. */
int hs_token(const char *method, const char *secret, const char *L, const char *R, char *out,
             size_t outlen)
{
    if (!outlen) return AEMP_EINVAL;
    out[0] = 0;
    if (!strcmp(method, "hmac_md6_64_256")) {
        if (!secret || !*secret) return AEMP_EAUTH;
        if (outlen < 65) return AEMP_EINVAL;
        unsigned char m[32];
        size_t klen;
        char *key = concat(L, R, &klen);
        if (!key) return AEMP_ENOMEM;
        md6_hash(256, secret, strlen(secret), m);
        hmac_md6_256_hex(key, klen, m, sizeof m, out);
        free(key);
        sodium_memzero(m, sizeof m);
        return 0;
    }
    if (!strcmp(method, "tls_md6_64_256")) {
        if (outlen < 65) return AEMP_EINVAL;
        size_t len;
        char *txt = concat(L, R, &len);
        if (!txt) return AEMP_ENOMEM;
        md6_256_hex(txt, len, out);
        free(txt);
        return 0;
    }
    if (!strcmp(method, "tls_anon")) return 0;
    if (!strcmp(method, "cleartext")) {
        if (!secret || !*secret) return AEMP_EAUTH;
        size_t n = strlen(secret);
        if (outlen < 2 * n + 1) return AEMP_EINVAL;
        static const char hx[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
            out[2 * i] = hx[(unsigned char)secret[i] >> 4];
            out[2 * i + 1] = hx[(unsigned char)secret[i] & 15];
        }
        out[2 * n] = 0;
        return 0;
    }
    return AEMP_EAUTH;
}

/* Parse an auth line "METHOD;TOKEN;FRAMING"; see handshake.h. Fields after
 * the third are ignored (1.30 ignores them too). */
int hs_parse_auth(const char *line, size_t len, struct hs_auth *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len >= HS_MAX_LINE) {
        set_err(err, errlen, "auth line longer than %d bytes", HS_MAX_LINE - 1);
        return AEMP_EPROTO;
    }
    if (memchr(line, 0, len)) {
        set_err(err, errlen, "auth line contains a NUL byte");
        return AEMP_EPROTO;
    }
    const char *s1 = memchr(line, ';', len);
    const char *s2 = s1 ? memchr(s1 + 1, ';', len - (size_t)(s1 + 1 - line)) : NULL;
    if (!s2 || s1 == line) {
        set_err(err, errlen, "malformed auth line (want METHOD;TOKEN;FRAMING): %.*s",
                (int)(len > 60 ? 60 : len), line);
        return AEMP_EPROTO;
    }
    const char *end = line + len;
    const char *s3 = memchr(s2 + 1, ';', (size_t)(end - (s2 + 1)));
    if (s3) end = s3;
    out->method = strndup(line, (size_t)(s1 - line));
    out->token = strndup(s1 + 1, (size_t)(s2 - s1 - 1));
    out->framing = strndup(s2 + 1, (size_t)(end - s2 - 1));
    if (!out->method || !out->token || !out->framing) {
        hs_auth_clear(out);
        set_err(err, errlen, "out of memory parsing an auth line");
        return AEMP_ENOMEM;
    }
    return 0;
}

/* Free what an auth line owns and zero it. */
void hs_auth_clear(struct hs_auth *a)
{
    free(a->method);
    free(a->token);
    free(a->framing);
    memset(a, 0, sizeof *a);
}

/* Check the remote's auth line; see handshake.h. */
int hs_check_auth(const struct hs_auth *got, const cJSON *auth_accept, const cJSON *framing,
                  int use_tls, const char *secret, const char *L, const char *R, int *untrusted,
                  char *err, size_t errlen)
{
    if (untrusted) *untrusted = 0;
    if (!in_array(auth_accept, got->method)) {
        set_err(err, errlen, "the peer authenticates with \"%.40s\", which we do not accept",
                got->method);
        return AEMP_EAUTH;
    }
    if (is_tls_method(got->method) && !use_tls) {
        set_err(err, errlen, "the peer uses auth method %.40s without TLS", got->method);
        return AEMP_EAUTH;
    }
    if (!in_array(framing, got->framing)) {
        set_err(err, errlen, "the peer chose framing \"%.40s\", which we do not understand",
                got->framing);
        return AEMP_EAUTH;
    }
    size_t need = secret ? 2 * strlen(secret) + 1 : 0;
    if (need < 65) need = 65;
    char *want = malloc(need);
    if (!want) {
        set_err(err, errlen, "out of memory checking the peer's token");
        return AEMP_ENOMEM;
    }
    /* The remote's view: its lines first. */
    int rc = hs_token(got->method, secret, R, L, want, need);
    if (rc == AEMP_EAUTH) {
        set_err(err, errlen, "cannot check auth method %.40s: no secret configured", got->method);
    } else if (rc) {
        set_err(err, errlen, "cannot compute the expected token for %.40s (error %d)", got->method,
                rc);
    } else {
        size_t n = strlen(want);
        if (strlen(got->token) != n || sodium_memcmp(got->token, want, n) != 0) {
            set_err(err, errlen, "the peer's auth token is wrong (method %s; check the secret)",
                    got->method);
            rc = AEMP_EAUTH;
        }
    }
    sodium_memzero(want, need);
    free(want);
    if (rc == 0 && untrusted) *untrusted = !strcmp(got->method, "tls_anon");
    return rc;
}

/* What the stage tells: a peer that closes before greeting is no aemp node
 * or turns us away (its cap on unauthenticated connections); during TLS it
 * rejected our certificate. One that closes after our auth line without
 * sending its own refused our greeting: a secret that differs shows as its
 * wrong token, which both sides send before reading the other's, so what
 * is left is our auth_accept, our framings, or its missing secret. When
 * we do not accept the very method we sent, our auth_accept comes first. */
const char *hs_refusal_cause(enum hs_stage stage, int accept_own)
{
    switch (stage) {
    case HS_AWAIT_GREETING:
        return " before its greeting: not an aemp node, or it turns away connections "
               "(too many unauthenticated ones from this host)";
    case HS_IN_TLS:
        return " during the TLS handshake: it does not trust our certificate (the two "
               "certificates must be signed by the same CA)";
    case HS_AWAIT_AUTH:
        if (!accept_own)
            return " before its auth line: it refused our greeting, most likely because it "
                   "offers no auth method our auth_accept lists (else: it reads none of our "
                   "framing_format, or has no secret)";
        return " before its auth line: it refused our greeting: it offers no auth method "
               "our auth_accept lists, reads none of our framing_format, or has no secret "
               "(or no certificate for the tls_* methods)";
    }
    return "";
}
