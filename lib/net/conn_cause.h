/* conn_cause.h - why a connection closed: the code each place in net/ that
 * closes a connection gives conn_close() (transport_int.h), which logs the
 * reason and counts the code (stats.c: aemp stats shows these codes grouped
 * as disconnect reasons and handshake failure causes). Higher layers may
 * read this header (for example to name the codes in metrics). */
#ifndef AEMP_CONN_CAUSE_H
#define AEMP_CONN_CAUSE_H

enum conn_cause {
    CONN_CONNECT_FAILED, /* connecting failed: refused, unreachable, name not resolved */
    CONN_TIMED_OUT,      /* no progress in the handshake, or the peer fell silent */
    CONN_PROTOCOL,       /* a bad greeting or auth line, another protocol, broken framing */
    CONN_AUTH_FAILED,    /* authentication refused or impossible (token, no secret) */
    CONN_TLS,            /* the TLS handshake or the TLS session failed */
    CONN_PEER_CLOSED,    /* the other side closed or reset the connection */
    CONN_NOT_READING,    /* the peer does not read: output past the high-water mark */
    CONN_REPLACED,       /* another connection to the same node is kept (already up,
                            both called at once) */
    CONN_SELF,           /* it reached this node itself */
    CONN_SOCKET_ERROR,   /* another socket error */
    CONN_NO_MEMORY,      /* out of memory here */
    CONN_REFUSED,        /* the node we dialed closed before its greeting: it refuses
                            connections now (its pre-auth caps, see admit.c) */
    CONN_CAUSE_N
};

/* A short lowercase name of `cause` ("connect_failed", "timed_out", ...;
 * static), "?" for a value out of range. */
const char *conn_cause_name(enum conn_cause cause);

/* The cause of a failed socket call with errno `e`: CONN_PEER_CLOSED for a
 * reset or broken pipe, CONN_TIMED_OUT for ETIMEDOUT, else
 * CONN_SOCKET_ERROR. */
enum conn_cause conn_cause_of_errno(int e);

#endif
