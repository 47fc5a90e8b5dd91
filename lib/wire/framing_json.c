/* framing_json.c - our JSON writer and parser for the "json" framing
 * (framing.c finds the texts in the stream; this turns one text into cJSON
 * nodes and cJSON nodes into text). cJSON stays the message type.
 *
 * The parser accepts what cJSON_ParseWithLengthOpts accepts (same number
 * syntax, any byte <= 32 as whitespace), except that a \u escape with a
 * non-hex digit is an error (cJSON reads it as U+0000) and nesting stops at
 * FRAMING_MAX_DEPTH. U+0000 is decoded to the bytes C0 80 and the writer
 * writes C0 80 as \u0000 (framing.h says why); otherwise the writer prints
 * byte for byte what cJSON_PrintUnformatted prints. tests/fuzz/fuzz_json.c
 * compares both with cJSON.
 *
 * Plain string bytes are skipped 16 at a time (SSE2, where the compiler
 * has it) or eight at a time (word tricks) in the writer, the parser and
 * the framing scanner. A parsed string value is
 * allocated together with its node and marked cJSON_IsReference, so that
 * cJSON_Delete frees the one block (cJSON_Duplicate copies it as a plain
 * string). Integers below 1e15 are printed without printf, plain
 * integers are read without strtod. Pure: no I/O, no global state. */
#include "framing.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "aemp.h"

/* Deepest nesting of arrays and objects a text may have. */
#define MAX_DEPTH FRAMING_MAX_DEPTH

/* ------------------------------------------------------- word scanning */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Per byte of v: high bit set where the byte is zero (exact for the lowest
 * such byte, which is all the callers use). */
static inline uint64_t zero_bytes(uint64_t v)
{
    return (v - ONES) & ~v & HIGHS;
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Index of the lowest flagged byte of a non-zero mask (little endian) or the
 * highest (big endian). */
static inline size_t first_flag(uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (size_t)__builtin_clzll(m) / 8;
#else
    return (size_t)__builtin_ctzll(m) / 8;
#endif
}

/* The first byte in [p, end) that is '"' or '\\', or end. */
const unsigned char *framing_find_quote_or_bs(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bs)));
        if (m) return p + __builtin_ctz((unsigned)m);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t v = load64(p);
        uint64_t m = zero_bytes(v ^ (ONES * '"')) | zero_bytes(v ^ (ONES * '\\'));
        if (m) return p + first_flag(m);
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\')
        p++;
    return p;
}

/* The first byte in [p, end) that is '"', '\\' or 0x80 and above (the
 * start of a multi-byte UTF-8 sequence the parser checks), or end. */
static const unsigned char *find_quote_bs_high(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bs))) |
                _mm_movemask_epi8(v);
        if (m) return p + __builtin_ctz((unsigned)m);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t v = load64(p);
        uint64_t m = zero_bytes(v ^ (ONES * '"')) | zero_bytes(v ^ (ONES * '\\')) | (v & HIGHS);
        if (m) return p + first_flag(m);
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\' && *p < 0x80)
        p++;
    return p;
}

/* The first byte in [p, end) that a JSON string must escape ('"', '\\' or
 * below 0x20) or that may start C0 80 (U+0000 inside the node), or end. */
static const unsigned char *find_escape(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    const __m128i c0 = _mm_set1_epi8((char)0xC0), ctl = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* bytes <= 0x1F: max(v, 0x1F) == 0x1F (unsigned) */
        __m128i low = _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bs)),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, c0), low));
        int m = _mm_movemask_epi8(hit);
        if (m) return p + __builtin_ctz((unsigned)m);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t v = load64(p);
        uint64_t m = zero_bytes(v ^ (ONES * '"')) | zero_bytes(v ^ (ONES * '\\')) |
                     zero_bytes(v ^ (ONES * 0xC0)) | ((v - ONES * 0x20) & ~v & HIGHS);
        if (m) return p + first_flag(m);
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\' && *p != 0xC0 && *p >= 0x20)
        p++;
    return p;
}

/* ---------------------------------------------------------------- writer */

/* Make room for n more bytes. 0 or -1 on ENOMEM. */
static int reserve(struct framing_buf *b, size_t n)
{
    if (b->len + n <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + n)
        nc *= 2;
    char *np = realloc(b->data, nc);
    if (!np) return -1;
    b->data = np;
    b->cap = nc;
    return 0;
}

static int put(struct framing_buf *b, const char *s, size_t n)
{
    if (reserve(b, n)) return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* One byte (brackets, commas, colons): no memcpy call. */
static inline int put1(struct framing_buf *b, char c)
{
    if (b->len == b->cap && reserve(b, 1)) return -1;
    b->data[b->len++] = c;
    return 0;
}

/* 1 for a byte put_string cannot copy as it is: below 0x20 (NUL too, which
 * ends the string), '"', '\\', and 0xC0 (C0 80 is U+0000). */
#define R16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const unsigned char special[256] = {
    R16(1), R16(1),                                 /* 0x00 - 0x1f */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 - 0x2f: '"' */
    R16(0), R16(0),                                 /* 0x30 - 0x4f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50 - 0x5f: '\\' */
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), /* 0x60 - 0xbf */
    1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xc0 - 0xcf: 0xC0 */
    R16(0), R16(0), R16(0),                         /* 0xd0 - 0xff */
};
#undef R16

/* Write the escape of the special byte at *qp (before end) at o, move *qp
 * past what it consumed; returns the new end of output (at most 6 bytes). */
static inline char *escape_at(char *o, const unsigned char **qp, const unsigned char *end)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *q = *qp;
    *qp = q + 1;
    if (*q == 0xC0) { /* alone it is copied; C0 80 is U+0000 */
        if (q + 1 < end && q[1] == 0x80) {
            *qp = q + 2;
            memcpy(o, "\\u0000", 6);
            return o + 6;
        }
        *o = (char)*q;
        return o + 1;
    }
    o[0] = '\\';
    switch (*q) {
    case '"': o[1] = '"'; return o + 2;
    case '\\': o[1] = '\\'; return o + 2;
    case '\b': o[1] = 'b'; return o + 2;
    case '\f': o[1] = 'f'; return o + 2;
    case '\n': o[1] = 'n'; return o + 2;
    case '\r': o[1] = 'r'; return o + 2;
    case '\t': o[1] = 't'; return o + 2;
    default:
        o[1] = 'u';
        o[2] = '0';
        o[3] = '0';
        o[4] = hex[*q >> 4];
        o[5] = hex[*q & 15];
        return o + 6;
    }
}

/* A JSON string literal of s (NULL prints ""), escaped as cJSON escapes,
 * and C0 80 written as \\u0000. The first 32 bytes are copied byte by byte
 * with a table (no strlen first: most port names, tags and values end
 * here); the rest of a longer string run by run with the word scans. */
static int put_string(struct framing_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    /* the quotes, 32 bytes, one escape (6) */
    if (reserve(b, 2 + 32 + 6)) return -1;
    char *o = b->data + b->len, *lim = o + 1 + 32;
    *o++ = '"';
    while (o < lim) {
        while (o < lim && !special[*p])
            *o++ = (char)*p++;
        if (o == lim || !*p) break;
        const unsigned char *end = p + 2; /* escape_at looks at most one byte on */
        o = escape_at(o, &p, p[1] ? end : p + 1);
    }
    b->len = (size_t)(o - b->data);
    if (*p) { /* a longer string: the rest run by run */
        const unsigned char *end = p + strlen((const char *)p);
        while (p < end) {
            const unsigned char *q = find_escape(p, end);
            size_t run = (size_t)(q - p);
            if (run >= FRAMING_REF_MIN && b->nrefs < b->refs_max) { /* not copied */
                b->refs[b->nrefs++] = (struct framing_ref){b->len, (const char *)p, run};
                b->reflen += run;
                run = 0;
            }
            /* room for the plain run, one escape (6) and the closing quote */
            if (reserve(b, run + 7)) return -1;
            memcpy(b->data + b->len, p, run);
            b->len += run;
            if (q == end) break;
            p = q;
            o = escape_at(b->data + b->len, &p, end);
            b->len = (size_t)(o - b->data);
        }
    }
    if (reserve(b, 1)) return -1;
    b->data[b->len++] = '"';
    return 0;
}

/* The length of the integer digits kept in a number item's valuestring
 * ([-]DIGITS, no leading zero: the parser's for 16 digits and more,
 * aemp_json_set_int64's) when they still are its value (they read back as
 * valuedouble: cJSON_SetNumberValue changes only that), else 0. */
size_t framing_int_digits(const cJSON *item)
{
    const char *v = item->valuestring;
    if (!v) return 0;
    size_t i = *v == '-', n;
    if (v[i] < '1' || v[i] > '9') return 0;
    for (n = i; v[n] >= '0' && v[n] <= '9'; n++)
        ;
    if (v[n] || strtod(v, NULL) != item->valuedouble) return 0;
    return n;
}

/* A number as cJSON 1.7.15 prints it, except integer digits the item keeps
 * (framing_int_digits), printed as they are: NaN and infinities as null, else
 * "%1.15g" when that reads back within DBL_EPSILON (relative), else
 * "%1.17g". An
 * integer below 1e15 in magnitude prints as its digits that way (with "-0"
 * for negative zero): written here without printf. */
static int put_number(struct framing_buf *b, const cJSON *item)
{
    double d = item->valuedouble;
    char tmp[32];
    size_t kept = framing_int_digits(item);
    if (kept) return put(b, item->valuestring, kept);
    if (isnan(d) || isinf(d)) return put(b, "null", 4);
    if (d > -1e15 && d < 1e15 && d == (double)(int64_t)d) {
        char *e = tmp + sizeof tmp, *o = e;
        int64_t v = (int64_t)d;
        uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
        do {
            *--o = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (signbit(d)) *--o = '-';
        return put(b, o, (size_t)(e - o));
    }
    int n = snprintf(tmp, sizeof tmp, "%1.15g", d);
    double back = strtod(tmp, NULL);
    double m = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
    if (!(fabs(back - d) <= m * DBL_EPSILON)) n = snprintf(tmp, sizeof tmp, "%1.17g", d);
    return put(b, tmp, (size_t)n);
}

static int put_value(struct framing_buf *b, const cJSON *item);

/* A string the writer may reference (framing_buf's refs) is the item's own:
 * not borrowed through cJSON_IsReference (except the parser's, which lives
 * in its node's block). Keys are always copied. */
static int put_string_of(struct framing_buf *b, const cJSON *item)
{
    if (!b->refs_max || !(item->type & cJSON_IsReference) ||
        item->valuestring == (const char *)(item + 1))
        return put_string(b, item->valuestring);
    int refs_max = b->refs_max, rc;
    b->refs_max = 0;
    rc = put_string(b, item->valuestring);
    b->refs_max = refs_max;
    return rc;
}

static int put_key(struct framing_buf *b, const char *key)
{
    int refs_max = b->refs_max, rc;
    b->refs_max = 0;
    rc = put_string(b, key);
    b->refs_max = refs_max;
    return rc;
}

/* The elements of a list (array elements or object members) with commas. */
static int put_list(struct framing_buf *b, const cJSON *it, int members)
{
    for (; it; it = it->next) {
        if (members && (put_key(b, it->string) || put1(b, ':'))) return -1;
        if (put_value(b, it)) return -1;
        if (it->next && put1(b, ',')) return -1;
    }
    return 0;
}

static int put_value(struct framing_buf *b, const cJSON *item)
{
    switch (item->type & 0xFF) {
    case cJSON_NULL: return put(b, "null", 4);
    case cJSON_False: return put(b, "false", 5);
    case cJSON_True: return put(b, "true", 4);
    case cJSON_Number: return put_number(b, item);
    case cJSON_String: return put_string_of(b, item);
    case cJSON_Raw:
        return item->valuestring ? put(b, item->valuestring, strlen(item->valuestring)) : -1;
    case cJSON_Array:
        return put1(b, '[') || put_list(b, item->child, 0) || put1(b, ']') ? -1 : 0;
    case cJSON_Object:
        return put1(b, '{') || put_list(b, item->child, 1) || put1(b, '}') ? -1 : 0;
    default: return -1;
    }
}

/* Append raw bytes; see framing.h. */
int framing_write_raw(struct framing_buf *b, const char *s, size_t n)
{
    return put(b, s, n) ? AEMP_ENOMEM : 0;
}

/* Append msg's text; see framing.h. */
int framing_write(struct framing_buf *b, const char *name, const cJSON *msg)
{
    size_t start = b->len, reflen = b->reflen;
    int nrefs = b->nrefs, refs_max = b->refs_max;
    int rc;
    if (!name) {
        rc = put_value(b, msg);
    } else {
        b->refs_max = 0; /* the name is not the message's */
        rc = put1(b, '[') || put_string(b, name);
        b->refs_max = refs_max;
        rc = rc || (msg->child && put1(b, ',')) || put_list(b, msg->child, 0) || put1(b, ']');
    }
    if (rc) {
        b->len = start;
        b->nrefs = nrefs;
        b->reflen = reflen;
    }
    return rc ? AEMP_ENOMEM : 0;
}

/* ---------------------------------------------------------------- parser */

/* Parser results besides 0 (done). */
#define P_MORE 1   /* the input ended inside the text */
#define P_BAD 2    /* not valid JSON */
#define P_NOMEM 3  /* out of memory */
#define P_DEEP 4   /* nested deeper than MAX_DEPTH */
#define P_UTF8 5   /* a string is not valid UTF-8 */

struct parser {
    const unsigned char *p, *end;
    int depth;
};

static inline void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && *ps->p <= 32)
        ps->p++;
}

/* A node with `extra` bytes after it, from cJSON's allocator (its hooks,
 * cJSON_InitHooks: cJSON_Delete frees the node with them). Fields are set
 * one by one, not by a calloc-like clearing of the whole block. */
static cJSON *new_item(int type, size_t extra)
{
    cJSON *it = cJSON_malloc(sizeof *it + extra);
    if (it) {
        it->next = it->prev = it->child = NULL;
        it->type = type;
        it->valuestring = it->string = NULL;
        it->valueint = 0;
        it->valuedouble = 0;
    }
    return it;
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 32) >= 'a' && (c | 32) <= 'f') d = (c | 32) - 'a' + 10;
        else return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* Decode the escaped string body s[0..n) (closing quote excluded) into o;
 * returns the decoded length or -1 when an escape is invalid. */
static long unescape(const unsigned char *s, size_t n, char *o)
{
    const unsigned char *end = s + n;
    char *o0 = o;
    while (s < end) {
        const unsigned char *q = framing_find_quote_or_bs(s, end);
        memcpy(o, s, (size_t)(q - s));
        o += q - s;
        if (q == end) break;
        /* q is a backslash (the body has no unescaped quote) */
        if (end - q < 2) return -1;
        switch (q[1]) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case '"': case '\\': case '/': *o++ = (char)q[1]; break;
        case 'u': {
            unsigned cp, lo;
            if (end - q < 6 || hex4(q + 2, &cp)) return -1;
            q += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - q < 6 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
                q += 6;
            }
            if (cp == 0) { /* U+0000 inside the node: C0 80 */
                *o++ = (char)0xC0;
                *o++ = (char)0x80;
            } else if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | cp >> 6);
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | cp >> 12);
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | cp >> 18);
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            s = q;
            continue;
        }
        default: return -1;
        }
        s = q + 2;
    }
    return o - o0;
}

/* The length of the UTF-8 sequence at p (its first byte 0x80 or above):
 * 2 to 4 for a valid one (C0 80 too: U+0000 inside the node), -1 for an
 * invalid one (a stray continuation byte, an overlong form, a surrogate,
 * above U+10FFFF, C3 28), 0 when end cuts it short. */
static int utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    int n;
    if (c == 0xC0) {
        if (end - p < 2) return 0;
        return p[1] == 0x80 ? 2 : -1;
    }
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong below U+0800 */
        else if (c == 0xED) hi = 0x9F; /* surrogates U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong below U+10000 */
        else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        return -1;
    }
    for (int i = 1; i < n; i++) {
        if (p + i >= end) return 0;
        unsigned b = p[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return -1;
    }
    return n;
}

/* A NUL-terminated string is valid UTF-8 (C0 80 too); see framing.h. */
int framing_utf8_valid(const char *str)
{
    const unsigned char *p = (const unsigned char *)str, *end = p + strlen(str);
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        int k = utf8_len(p, end);
        if (k <= 0) return 0;
        p += k;
    }
    return 1;
}

/* A string at ps->p (just past its opening quote). With `key`, *keyp gets
 * a new C string; else *itemp a new string item (node and bytes in one
 * block). */
static int parse_string(struct parser *ps, cJSON **itemp, char **keyp)
{
    const unsigned char *s = ps->p, *q = s;
    int escaped = 0;
    for (;;) {
        q = find_quote_bs_high(q, ps->end);
        if (q == ps->end) return P_MORE;
        if (*q == '"') break;
        if (*q >= 0x80) { /* never passed on unless valid UTF-8 */
            int k = utf8_len(q, ps->end);
            if (k <= 0) return k ? P_UTF8 : P_MORE;
            q += k;
            continue;
        }
        escaped = 1;
        q += 2; /* the backslash and the byte it escapes */
        if (q > ps->end) return P_MORE;
    }
    size_t n = (size_t)(q - s);
    char *out;
    cJSON *it = NULL;
    if (keyp) {
        out = cJSON_malloc(n + 1);
    } else {
        it = new_item(cJSON_String | cJSON_IsReference, n + 1);
        out = it ? (char *)(it + 1) : NULL;
    }
    if (!out) return P_NOMEM;
    long len = (long)n;
    if (escaped) len = unescape(s, n, out);
    else memcpy(out, s, n);
    if (len < 0) {
        cJSON_free(keyp ? (void *)out : (void *)it);
        return P_BAD;
    }
    out[len] = 0;
    if (keyp) *keyp = out;
    else {
        it->valuestring = out;
        *itemp = it;
    }
    ps->p = q + 1;
    return 0;
}

/* A number: the run of bytes cJSON collects for one ([0-9+-eE.]) must be
 * read completely by strtod. Plain integers of up to
 * 18 digits are read without strtod (same value: both round exactly). */
static int parse_number(struct parser *ps, cJSON **itemp)
{
    const unsigned char *s = ps->p, *q = s;
    int plain = 1;
    while (q < ps->end) {
        unsigned c = *q;
        if (c >= '0' && c <= '9') q++;
        else if (c == '-' || c == '+' || c == 'e' || c == 'E' || c == '.') {
            if (c != '-' || q != s) plain = 0;
            q++;
        } else break;
    }
    if (q == ps->end) return P_MORE;
    size_t n = (size_t)(q - s);
    double d;
    int neg = *s == '-';
    if (plain && n - (size_t)neg >= 1 && n - (size_t)neg <= 18) {
        uint64_t v = 0;
        for (const unsigned char *r = s + neg; r < q; r++)
            v = v * 10 + (unsigned)(*r - '0');
        d = neg ? -(double)v : (double)v;
    } else {
        char stack[64], *tmp = n < sizeof stack ? stack : malloc(n + 1), *e;
        if (!tmp) return P_NOMEM;
        memcpy(tmp, s, n);
        tmp[n] = 0;
        d = strtod(tmp, &e);
        int bad = e != tmp + n || n == 0;
        if (tmp != stack) free(tmp);
        if (bad) return P_BAD;
    }
    /* An integer of 16 digits or more is not printed back from a double
     * digit for digit (2^53 + 1, 2^63 - 1, 1e17): its digits are kept in
     * valuestring, in the node's block like a string's. */
    int keep = plain && n - (size_t)neg >= 16 && s[neg] != '0';
    cJSON *it = new_item(cJSON_Number | (keep ? cJSON_IsReference : 0), keep ? n + 1 : 0);
    if (!it) return P_NOMEM;
    if (keep) {
        char *digits = (char *)(it + 1);
        memcpy(digits, s, n);
        digits[n] = 0;
        it->valuestring = digits;
    }
    it->valuedouble = d;
    it->valueint = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
    *itemp = it;
    ps->p = q;
    return 0;
}

/* A literal word (null, false, true). */
static int parse_word(struct parser *ps, const char *w, size_t n, int type, cJSON **itemp)
{
    size_t have = (size_t)(ps->end - ps->p);
    if (memcmp(ps->p, w, have < n ? have : n)) return P_BAD;
    if (have < n) return P_MORE;
    cJSON *it = new_item(type, 0);
    if (!it) return P_NOMEM;
    if (type == cJSON_True) it->valueint = 1;
    ps->p += n;
    *itemp = it;
    return 0;
}

static int parse_value(struct parser *ps, cJSON **itemp);

/* The elements of an array or members of an object, ps->p just past the
 * opening bracket; the container is `it`. */
static int parse_list(struct parser *ps, cJSON *it, int members)
{
    const unsigned char close = members ? '}' : ']';
    if (ps->depth >= MAX_DEPTH) return P_DEEP;
    ps->depth++;
    skip_ws(ps);
    if (ps->p == ps->end) return P_MORE;
    if (*ps->p == close) {
        ps->p++;
        ps->depth--;
        return 0;
    }
    cJSON *tail = NULL;
    for (;;) {
        char *key = NULL;
        cJSON *v = NULL;
        int rc = 0;
        skip_ws(ps);
        if (members) {
            if (ps->p == ps->end) return P_MORE;
            if (*ps->p != '"') return P_BAD;
            ps->p++;
            if ((rc = parse_string(ps, NULL, &key))) return rc;
            skip_ws(ps);
            if (ps->p == ps->end) rc = P_MORE;
            else if (*ps->p != ':') rc = P_BAD;
            else {
                ps->p++;
                skip_ws(ps);
            }
        }
        if (!rc) rc = parse_value(ps, &v);
        if (rc) {
            cJSON_free(key);
            return rc;
        }
        v->string = key;
        if (tail) {
            tail->next = v;
            v->prev = tail;
        } else {
            it->child = v;
        }
        tail = v;
        it->child->prev = v; /* cJSON keeps the last element there */
        skip_ws(ps);
        if (ps->p == ps->end) return P_MORE;
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p != close) return P_BAD;
        ps->p++;
        ps->depth--;
        return 0;
    }
}

/* Free a tree this parser made and never handed out (an error part-way).
 * Each of its nodes is one block (string values and kept digits live in
 * it, marked cJSON_IsReference); only keys are blocks of their own. What
 * it hands out is freed by cJSON_Delete as usual. */
static void tree_free(cJSON *it)
{
    while (it) {
        cJSON *next = it->next;
        tree_free(it->child);
        cJSON_free(it->string);
        cJSON_free(it);
        it = next;
    }
}

/* One value at ps->p (whitespace skipped). On error *itemp is NULL and
 * everything allocated is freed. */
static int parse_value(struct parser *ps, cJSON **itemp)
{
    *itemp = NULL;
    if (ps->p == ps->end) return P_MORE;
    unsigned c = *ps->p;
    switch (c) {
    case '"':
        ps->p++;
        return parse_string(ps, itemp, NULL);
    case '[':
    case '{': {
        cJSON *it = *itemp = new_item(c == '[' ? cJSON_Array : cJSON_Object, 0);
        if (!it) return P_NOMEM;
        ps->p++;
        int rc = parse_list(ps, it, c == '{');
        if (rc) {
            tree_free(it);
            *itemp = NULL;
        }
        return rc;
    }
    case 'n': return parse_word(ps, "null", 4, cJSON_NULL, itemp);
    case 'f': return parse_word(ps, "false", 5, cJSON_False, itemp);
    case 't': return parse_word(ps, "true", 4, cJSON_True, itemp);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps, itemp);
        return P_BAD;
    }
}

/* Parse one JSON value from s[0..n); see framing.h. */
int framing_parse_value(const char *s, size_t n, cJSON **out, size_t *used)
{
    struct parser ps = {(const unsigned char *)s, (const unsigned char *)s + n, 0};
    skip_ws(&ps);
    int rc = parse_value(&ps, out);
    *used = (size_t)(ps.p - (const unsigned char *)s);
    switch (rc) {
    case 0: return 0;
    case P_MORE: return 1;
    case P_DEEP: return 2;
    case P_UTF8: return 3;
    case P_NOMEM: return AEMP_ENOMEM;
    default: return AEMP_EPROTO;
    }
}

