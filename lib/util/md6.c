/* md6.c - the MD6 hash (Rivest et al., SHA-3 submission) in its default mode,
 * and HMAC over MD6-256.
 *
 * AnyEvent::MP authenticates peers with MD6-256 (Digest::MD6 defaults: mode
 * L = 64, i.e. a pure 4-ary hash tree of 512-byte blocks, r = 40 + d/4 rounds,
 * no MD6 key), so this implements exactly that mode. Since the whole input is
 * known up front, the shape of the tree (number of nodes per level) is
 * computed first; the tree is then built bottom-up with one small buffer of up
 * to four chaining values per level, so no heap memory is needed. The node
 * that is alone on its level is the root and is compressed with z = 1. */
#include "md6.h"

#include <stdint.h>
#include <string.h>

enum {
    MD6_W = 64,      /* word size in bits */
    MD6_N = 89,      /* words of compression input */
    MD6_C = 16,      /* words of compression output (chaining value) */
    MD6_Q = 15,      /* words of the constant Q */
    MD6_K = 8,       /* words of key */
    MD6_B = 64,      /* words of data per block */
    MD6_BLOCK = 512, /* bytes of data per block */
    MD6_MAXR = 40 + 512 / 4,
    MD6_MAXLEVELS = 64 /* far more than any size_t input needs */
};

/* The fractional part of sqrt(6), the constant Q that starts every input. */
static const uint64_t md6_q[MD6_Q] = {
    0x7311c2812425cfa0ULL, 0x6432286434aac8e7ULL, 0xb60450e9ef68b7c1ULL, 0xe8fb23908d9f06f1ULL,
    0xdd2e76cba691e5bfULL, 0x0cd0d63b2c30bc41ULL, 0x1f8ccf6823058f8aULL, 0x54e5ed5b88e3775dULL,
    0x4ad12aae0a6d6031ULL, 0x3e7f16bb88222e0dULL, 0x8af8671d3fb50c2cULL, 0x995ad1178bd25c31ULL,
    0xc878c1dd04c4b633ULL, 0x3b72066c7a1552acULL, 0x0d6f3522631effcbULL,
};

/* Per-step right and left shift amounts (step index mod 16). */
static const unsigned md6_rs[16] = {10, 5, 13, 10, 11, 12, 2, 7, 14, 15, 7, 13, 11, 7, 6, 12};
static const unsigned md6_ls[16] = {11, 24, 9, 16, 15, 9, 27, 15, 6, 2, 29, 8, 15, 5, 31, 9};

#define MD6_S0 0x0123456789abcdefULL
#define MD6_SMASK 0x7311c2812425cfa0ULL

/* The compression function: builds the 89-word input Q || K || U || V || B,
 * runs r rounds of 16 steps of the feedback shift register and returns the
 * last 16 words as the chaining value. `ell`/`idx` name the node (U), `p` is
 * the number of padding bits in B, `z` marks the root. */
static void md6_compress(const uint64_t blk[MD6_B], unsigned ell, uint64_t idx, unsigned p, int z,
                         unsigned d, unsigned r, uint64_t out[MD6_C])
{
    uint64_t a[MD6_MAXR * MD6_C + MD6_N];
    unsigned t = r * MD6_C;

    memcpy(a, md6_q, sizeof md6_q);
    memset(a + MD6_Q, 0, MD6_K * sizeof a[0]); /* no key */
    a[MD6_Q + MD6_K] = ((uint64_t)ell << 56) | (idx & 0x00ffffffffffffffULL);
    a[MD6_Q + MD6_K + 1] = ((uint64_t)r << 48) | ((uint64_t)64 << 40) | ((uint64_t)(z != 0) << 36) |
                           ((uint64_t)p << 20) | ((uint64_t)0 << 12) | (uint64_t)d;
    memcpy(a + MD6_Q + MD6_K + 2, blk, MD6_B * sizeof a[0]);

    uint64_t s = MD6_S0;
    for (unsigned i = MD6_N, j = 0; i < t + MD6_N; i += 16, j++) {
        for (unsigned k = 0; k < 16; k++) {
            unsigned n = i + k;
            uint64_t x = s ^ a[n - 89] ^ a[n - 17];
            x ^= (a[n - 18] & a[n - 21]) ^ (a[n - 31] & a[n - 67]);
            x ^= x >> md6_rs[k];
            a[n] = x ^ (x << md6_ls[k]);
        }
        s = ((s << 1) | (s >> 63)) ^ (s & MD6_SMASK);
    }
    memcpy(out, a + t + MD6_N - MD6_C, MD6_C * sizeof a[0]);
}

/* The input as up to two consecutive byte ranges, so HMAC can hash
 * pad || message without copying the message. */
struct md6_input {
    const unsigned char *p[2];
    size_t n[2];
};

/* Copies input bytes [off, off+len) into dst. */
static void md6_input_copy(const struct md6_input *in, size_t off, size_t len, unsigned char *dst)
{
    for (int k = 0; k < 2 && len; k++) {
        if (off >= in->n[k]) {
            off -= in->n[k];
            continue;
        }
        size_t m = in->n[k] - off < len ? in->n[k] - off : len;
        memcpy(dst, in->p[k] + off, m);
        dst += m;
        len -= m;
        off = 0;
    }
}

/* One level of the tree under construction: the chaining values collected
 * for its current node, and that node's index on the level. */
struct md6_level {
    uint64_t buf[MD6_B];
    unsigned used; /* chaining values in buf */
    uint64_t idx;
};

/* MD6 in mode L = 64 of the (virtual) input `in` with a `bits`-bit digest. */
static void md6_tree(unsigned bits, const struct md6_input *in, unsigned char *out)
{
    size_t total = in->n[0] + in->n[1];
    unsigned r = 40 + bits / 4;
    /* nodes[l] = number of nodes on level l+1 (level 1 = leaves). */
    uint64_t nodes[MD6_MAXLEVELS];
    unsigned top = 0;
    nodes[0] = total ? (total + MD6_BLOCK - 1) / MD6_BLOCK : 1;
    while (nodes[top] > 1) {
        nodes[top + 1] = (nodes[top] + 3) / 4;
        top++;
    }
    /* top is now the 0-based index of the root level. */

    struct md6_level lv[MD6_MAXLEVELS];
    for (unsigned l = 0; l <= top; l++) {
        lv[l].used = 0;
        lv[l].idx = 0;
    }
    uint64_t cv[MD6_C];
    uint64_t blk[MD6_B];
    unsigned char bytes[MD6_BLOCK];

    /* At least one leaf (an empty input is one all-zero block), so cv always
     * holds the root's chaining value after the loop. */
    uint64_t leaf = 0;
    do {
        size_t off = (size_t)leaf * MD6_BLOCK;
        size_t len = total - off < MD6_BLOCK ? total - off : MD6_BLOCK;
        memset(bytes, 0, sizeof bytes);
        md6_input_copy(in, off, len, bytes);
        for (unsigned w = 0; w < MD6_B; w++) {
            uint64_t x = 0;
            for (unsigned b = 0; b < 8; b++)
                x = (x << 8) | bytes[w * 8 + b];
            blk[w] = x;
        }
        md6_compress(blk, 1, leaf, (unsigned)(MD6_BLOCK - len) * 8, top == 0, bits, r, cv);

        /* Push the chaining value up, compressing every node that is complete:
         * four children, or the last node of its level with fewer. */
        for (unsigned l = 1; l <= top; l++) {
            struct md6_level *L = &lv[l];
            memcpy(L->buf + L->used * MD6_C, cv, sizeof cv);
            L->used++;
            uint64_t children_left = nodes[l - 1] - L->idx * 4;
            if (L->used < 4 && L->used < children_left) break;
            unsigned p = (4 - L->used) * MD6_C * MD6_W;
            memset(L->buf + L->used * MD6_C, 0, (4 - L->used) * MD6_C * sizeof(uint64_t));
            md6_compress(L->buf, l + 1, L->idx, p, l == top, bits, r, cv);
            L->used = 0;
            L->idx++;
        }
    } while (++leaf < nodes[0]);
    /* cv is now the root's chaining value; the digest is its last bits. */
    for (unsigned i = 0; i < bits / 8; i++) {
        unsigned byte = MD6_C * 8 - bits / 8 + i;
        out[i] = (unsigned char)(cv[byte / 8] >> (56 - 8 * (byte % 8)));
    }
}

/* Public entry: checks the digest size and hashes one buffer. */
int md6_hash(unsigned bits, const void *data, size_t len, unsigned char *out)
{
    if (bits < 8 || bits > 512 || bits % 8) return -1;
    struct md6_input in = {{data, NULL}, {len, 0}};
    md6_tree(bits, &in, out);
    return 0;
}

/* Lowercase hex of n bytes into hex[2n+1]. */
static void md6_to_hex(const unsigned char *b, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[b[i] >> 4];
        hex[2 * i + 1] = digits[b[i] & 15];
    }
    hex[2 * n] = 0;
}

/* MD6-256 as hex, the form AnyEvent::MP puts on the wire. */
void md6_256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char d[32];
    md6_hash(256, data, len, d);
    md6_to_hex(d, sizeof d, hex);
}

/* HMAC (RFC 2104, 64-byte block) over MD6-256, as Digest::HMAC_MD6 does it:
 * a long key is replaced by its MD6-256, then zero-padded to the block. */
void hmac_md6_256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char hex[65])
{
    unsigned char k[64] = {0}, pad[64], inner[32], outer[32];
    if (keylen > sizeof k)
        md6_hash(256, key, keylen, k);
    else if (keylen)
        memcpy(k, key, keylen);

    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    struct md6_input in = {{pad, msg}, {sizeof pad, msglen}};
    md6_tree(256, &in, inner);

    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    struct md6_input out = {{pad, inner}, {sizeof pad, sizeof inner}};
    md6_tree(256, &out, outer);
    md6_to_hex(outer, sizeof outer, hex);
}
