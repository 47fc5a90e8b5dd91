/* certgen.h - a self-signed key and certificate for `aemp gencert`, made
 * with GnuTLS (no shell-out). The certificate is its own CA (CA:TRUE, key
 * usage certificate signing and digital signature, purposes TLS server and
 * client), so two nodes that share the PEM verify each other and a node with
 * another PEM is refused. */
#ifndef AEMP_CERTGEN_H
#define AEMP_CERTGEN_H

#include <stddef.h>

/* Generate a key and self-signed certificate with common name `cn`
 * (borrowed), valid for 10 years. *pem gets a new string (caller frees):
 * the private key PEM followed by the certificate PEM, the layout of the
 * config's "cert" key. 0, or an AEMP_E* code with a message. */
int certgen_selfsigned(const char *cn, char **pem, char *err, size_t errlen);

#endif
