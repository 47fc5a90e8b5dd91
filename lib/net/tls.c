/* tls.c - GnuTLS on top of evbuffers (see tls.h). GnuTLS reads and writes
 * ciphertext through our pull/push functions, which only touch the
 * bufferevent's buffers: nothing here blocks or does socket I/O itself. */
#include "tls.h"

#include "aemp.h"

#include <errno.h>
#include <event2/buffer.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest plaintext per record, so a big batch becomes few records. */
#define TLS_CHUNK 16384

struct tls_creds {
    gnutls_certificate_credentials_t cred;
};

struct tls {
    gnutls_session_t s;
    struct evbuffer *in, *out;
    int peer_closed; /* the peer sent close_notify */
};

int tls_creds_load(const char *pem, struct tls_creds **out, char *err, size_t errlen)
{
    *out = NULL;
    struct tls_creds *c = calloc(1, sizeof *c);
    if (!c) return AEMP_ENOMEM;
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
    int rc = gnutls_certificate_allocate_credentials(&c->cred);
    if (rc < 0) {
        free(c);
        snprintf(err, errlen, "TLS: %s", gnutls_strerror(rc));
        return AEMP_ENOMEM;
    }
    rc = gnutls_certificate_set_x509_key_mem(c->cred, &d, &d, GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        snprintf(err, errlen,
                 "the configured certificate (key \"cert\") needs a private key and a "
                 "certificate in PEM: %s",
                 gnutls_strerror(rc));
        goto fail;
    }
    rc = gnutls_certificate_set_x509_trust_mem(c->cred, &d, GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
        snprintf(err, errlen, "the configured certificate PEM holds no CA certificate: %s",
                 rc < 0 ? gnutls_strerror(rc) : "none found");
        goto fail;
    }
    *out = c;
    return 0;
fail:
    gnutls_certificate_free_credentials(c->cred);
    free(c);
    return AEMP_ECONFIG;
}

void tls_creds_free(struct tls_creds *c)
{
    if (!c) return;
    gnutls_certificate_free_credentials(c->cred);
    free(c);
}

static ssize_t tls_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
    struct tls *t = p;
    if (evbuffer_add(t->out, data, len) < 0) {
        gnutls_transport_set_errno(t->s, ENOMEM);
        return -1;
    }
    return (ssize_t)len;
}

static ssize_t tls_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
    struct tls *t = p;
    int n = evbuffer_remove(t->in, data, len);
    if (n <= 0) {
        gnutls_transport_set_errno(t->s, EAGAIN);
        return -1;
    }
    return n;
}

struct tls *tls_new(struct tls_creds *c, int client, struct evbuffer *raw_in,
                    struct evbuffer *raw_out, char *err, size_t errlen)
{
    struct tls *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->in = raw_in;
    t->out = raw_out;
    int rc = gnutls_init(&t->s, (client ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_NONBLOCK);
    if (rc >= 0) rc = gnutls_set_default_priority(t->s);
    if (rc >= 0) rc = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, c->cred);
    if (rc < 0) {
        snprintf(err, errlen, "TLS session: %s", gnutls_strerror(rc));
        if (t->s) gnutls_deinit(t->s);
        free(t);
        return NULL;
    }
    if (!client) gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
    /* Verify the chain against our CA; node IDs are not host names. */
    gnutls_session_set_verify_cert(t->s, NULL, 0);
    gnutls_transport_set_ptr(t->s, t);
    gnutls_transport_set_push_function(t->s, tls_push);
    gnutls_transport_set_pull_function(t->s, tls_pull);
    return t;
}

void tls_free(struct tls *t)
{
    if (!t) return;
    gnutls_deinit(t->s);
    free(t);
}

int tls_handshake(struct tls *t, char *err, size_t errlen)
{
    int rc = gnutls_handshake(t->s);
    if (rc == GNUTLS_E_SUCCESS) return 0;
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) return 1;
    /* Tell the peer why (the alert goes out with the best-effort flush when
     * the connection closes), so both sides can log the reason. */
    if (rc != GNUTLS_E_FATAL_ALERT_RECEIVED) gnutls_alert_send_appropriate(t->s, rc);
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        unsigned status = gnutls_session_get_verify_cert_status(t->s);
        gnutls_datum_t why = {NULL, 0};
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
        snprintf(err, errlen, "TLS: the peer's certificate was refused: %s",
                 why.data ? (char *)why.data : "not signed by our CA");
        gnutls_free(why.data);
    } else if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        /* The peer's verification failed first (it ended the handshake). */
        const char *alert = gnutls_alert_get_name(gnutls_alert_get(t->s));
        snprintf(err, errlen,
                 "TLS: the peer refused our certificate or the handshake (alert: %s); do both "
                 "nodes have certificates from the same CA?",
                 alert ? alert : "unknown");
    } else {
        snprintf(err, errlen, "TLS handshake failed: %s", gnutls_strerror(rc));
    }
    return AEMP_EAUTH;
}

int tls_read(struct tls *t, struct evbuffer *plain, char *err, size_t errlen)
{
    size_t last_left = (size_t)-1;
    for (;;) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(plain, TLS_CHUNK, &v, 1) < 1) return AEMP_ENOMEM;
        ssize_t n = gnutls_record_recv(t->s, v.iov_base, v.iov_len);
        if (n > 0) {
            v.iov_len = (size_t)n;
            evbuffer_commit_space(plain, &v, 1);
            continue;
        }
        evbuffer_commit_space(plain, &v, 0);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            /* After a post-handshake message (a TLS 1.3 session ticket)
             * GnuTLS says "again" although records may be buffered or
             * waiting: go on while that makes progress. */
            size_t left = evbuffer_get_length(t->in);
            if (gnutls_record_check_pending(t->s) > 0 || (left && left < last_left)) {
                last_left = left;
                continue;
            }
            return 0;
        }
        if (n == 0) {
            t->peer_closed = 1;
            snprintf(err, errlen, "the peer closed the TLS session");
            return AEMP_EIO;
        }
        snprintf(err, errlen, "TLS: %s", gnutls_strerror((int)n));
        return AEMP_EIO;
    }
}

int tls_write(struct tls *t, struct evbuffer *plain, char *err, size_t errlen)
{
    while (evbuffer_get_length(plain)) {
        size_t len = evbuffer_get_length(plain);
        if (len > TLS_CHUNK) len = TLS_CHUNK;
        unsigned char *p = evbuffer_pullup(plain, (ssize_t)len);
        ssize_t n = gnutls_record_send(t->s, p, len);
        if (n < 0) {
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
            snprintf(err, errlen, "TLS: %s", gnutls_strerror((int)n));
            return AEMP_EIO;
        }
        evbuffer_drain(plain, (size_t)n);
    }
    return 0;
}

int tls_bye(struct tls *t)
{
    /* The push function never blocks: one call writes the alert. */
    return gnutls_bye(t->s, GNUTLS_SHUT_WR) < 0 ? AEMP_EIO : 0;
}

int tls_peer_closed(const struct tls *t)
{
    return t->peer_closed;
}
