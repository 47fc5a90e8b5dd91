/* md6.h - the MD6 hash (Rivest et al., the SHA-3 submission) in its default
 * mode: L = 64 (tree), r = 40 + d/4 rounds, no key; and HMAC over MD6-256.
 * Pure functions, verified against tests/vectors/md6.json and hmac_md6.json. */
#ifndef AEMP_MD6_H
#define AEMP_MD6_H

#include <stddef.h>

/* MD6 of `len` bytes at `data` with a `bits`-bit digest (8..512, a multiple
 * of 8) into out[bits/8]. Returns 0, or -1 for an unsupported `bits`. */
int md6_hash(unsigned bits, const void *data, size_t len, unsigned char *out);

/* Lowercase hex of MD6-256 into hex[65] (NUL-terminated). */
void md6_256_hex(const void *data, size_t len, char hex[65]);

/* Standard HMAC (64-byte block) over MD6-256: HMAC(key, msg), lowercase hex
 * into hex[65]. A key longer than 64 bytes is hashed first. */
void hmac_md6_256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                      char hex[65]);

#endif
