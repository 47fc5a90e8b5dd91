/* tls.h - GnuTLS sessions running over a bufferevent's raw buffers: the
 * ciphertext goes through the socket bufferevent, the plaintext through
 * evbuffers the transport reads and fills. Both sides present the
 * configured certificate and require and verify the peer's against the CA
 * certificates of the same PEM. */
#ifndef AEMP_TLS_H
#define AEMP_TLS_H

#include <stddef.h>

struct evbuffer;
struct tls_creds;
struct tls;

/* Load key, certificate chain and CA certificates from one PEM text
 * (borrowed). *out: new credentials, free with tls_creds_free(). 0, or
 * AEMP_ECONFIG with a message. */
int tls_creds_load(const char *pem, struct tls_creds **out, char *err, size_t errlen);
void tls_creds_free(struct tls_creds *c);

/* A session as client (client != 0) or server, reading ciphertext from
 * `raw_in` and writing it to `raw_out` (both borrowed; they must outlive the
 * session). NULL with a message on failure. */
struct tls *tls_new(struct tls_creds *c, int client, struct evbuffer *raw_in,
                    struct evbuffer *raw_out, char *err, size_t errlen);
void tls_free(struct tls *t);

/* Drive the handshake with the ciphertext available: 0 done (peer
 * certificate verified), 1 needs more input, AEMP_EAUTH with a message. */
int tls_handshake(struct tls *t, char *err, size_t errlen);

/* Decrypt everything available into `plain`. 0 ok (possibly nothing
 * new), AEMP_EIO with a message when the peer closed or sent garbage. */
int tls_read(struct tls *t, struct evbuffer *plain, char *err, size_t errlen);

/* 1 once tls_read() saw the peer's close_notify (a clean end, not an error). */
int tls_peer_closed(const struct tls *t);

/* Encrypt and drain all of `plain` into the raw output. 0 or AEMP_EIO. */
int tls_write(struct tls *t, struct evbuffer *plain, char *err, size_t errlen);

/* Put our close_notify into the raw output: the end of what we send. 0 or
 * AEMP_EIO. */
int tls_bye(struct tls *t);

#endif
