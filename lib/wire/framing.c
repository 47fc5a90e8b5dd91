/* framing.c - the "json" framing (PROTOCOL.md section 3): a byte stream of
 * JSON texts with no separator, each an array [PORTNAME, ...].
 *
 * A text that lies entirely within one fed chunk is parsed in place, in one
 * pass, by our parser (framing_json.c) straight into cJSON nodes: no
 * boundary scan first, no copy. Only a text cut by the end of a chunk (or one
 * nested too deep) goes through a small state machine (nesting depth of [
 * and {, inside-string, escape) whose state survives between feeds, so a
 * large text arriving in many small chunks is scanned once; it is buffered
 * and parsed when its closing bracket arrives. Pure: no I/O, no globals. */
#include "framing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aemp.h"

struct framing_reader {
    size_t max_msg;
    /* The unfinished text seen so far (always fully scanned); owned. */
    char *buf;
    size_t blen, bcap;
    /* Bytes fed but not yet scanned, kept when a callback asked to stop;
     * owned. They come after `buf` in the stream. */
    char *rest;
    size_t rlen, rcap;
    /* Scanner state for the text in `buf`. */
    int in_text; /* a text has started (its '[' was seen) */
    size_t depth;
    int in_str, esc;
    int too_deep; /* the text nests deeper than FRAMING_MAX_DEPTH */
    int failed; /* an error was reported; refuse further input */
    size_t refused; /* texts refused one by one (too deep); the stream goes on */
    size_t refused_utf8; /* texts refused one by one (invalid UTF-8) */
};

/* Write a formatted message into err[errlen] when the caller gave a buffer. */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Append n bytes to a growable byte array (*p, *len, *cap); doubling keeps
 * the total copying linear. 0 or -1 on ENOMEM. */
static int append(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 256;
        while (nc < *len + n)
            nc *= 2;
        char *np = realloc(*p, nc);
        if (!np) return -1;
        *p = np;
        *cap = nc;
    }
    if (n) memcpy(*p + *len, s, n);
    *len += n;
    return 0;
}

/* Bytes of a reader's buffer for texts split across reads that stay
 * allocated between messages. */
#define FRAMING_KEEP_BUF (256u * 1024)

/* Create a reader; see framing.h. */
struct framing_reader *framing_reader_new(size_t max_msg)
{
    struct framing_reader *r = calloc(1, sizeof *r);
    if (r) r->max_msg = max_msg;
    return r;
}

/* Free the reader and all bytes it buffered. NULL is ok. */
void framing_reader_free(struct framing_reader *r)
{
    if (!r) return;
    free(r->buf);
    free(r->rest);
    free(r);
}

/* Bytes held back: the unfinished text plus unscanned bytes after a stop. */
size_t framing_reader_pending(const struct framing_reader *r)
{
    return r->blen + r->rlen;
}

/* Scan s[i..n) continuing the reader's state (a text has begun). Returns the
 * index just past the text's closing bracket, or n when the text is not yet
 * complete (the state then describes everything scanned). */
static size_t scan(struct framing_reader *r, const char *s, size_t i, size_t n)
{
    size_t depth = r->depth;
    int in_str = r->in_str, esc = r->esc;
    while (i < n) {
        if (in_str) {
            if (esc) {
                esc = 0;
                i++;
                continue;
            }
            /* Skip plain string bytes quickly (eight at a time). */
            i = (size_t)(framing_find_quote_or_bs((const unsigned char *)s + i,
                                                  (const unsigned char *)s + n) -
                         (const unsigned char *)s);
            if (i == n) break;
            if (s[i] == '\\')
                esc = 1;
            else
                in_str = 0;
            i++;
            continue;
        }
        char c = s[i++];
        switch (c) {
        case '"':
            in_str = 1;
            break;
        case '[':
        case '{':
            if (++depth > FRAMING_MAX_DEPTH) r->too_deep = 1;
            break;
        case ']':
        case '}':
            if (--depth == 0) {
                r->depth = 0;
                r->in_str = r->esc = 0;
                return i;
            }
            break;
        default:
            break;
        }
    }
    r->depth = depth;
    r->in_str = in_str;
    r->esc = esc;
    return n;
}

/* ------------------------------------------- U+0000 in strings (mUTF-8)
 *
 * cJSON keeps strings NUL-terminated, so a "\u0000" would cut a string short.
 * Inside the node U+0000 is therefore the two bytes C0 80 (as in modified
 * UTF-8; C0 never occurs in valid UTF-8): the reader turns every \u0000
 * escape inside a string into C0 80 before cJSON sees the text, and the
 * encoder turns every C0 80 in its output back into \u0000. A string thus
 * passes through a node byte for byte. */

int framing_nul_decode(const char *p, size_t len, char **out, size_t *outlen)
{
    *out = NULL;
    char *o = NULL;
    size_t n = 0, start = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!in_str) {
            if (c == '"') in_str = 1;
            continue;
        }
        if (c == '"') {
            in_str = 0;
        } else if (c == '\\') {
            if (i + 5 < len && !memcmp(p + i + 1, "u0000", 5)) {
                if (!o && !(o = malloc(len))) return -1; /* the text only shrinks */
                memcpy(o + n, p + start, i - start);
                n += i - start;
                o[n++] = (char)0xC0;
                o[n++] = (char)0x80;
                start = i + 6;
            }
            i++; /* the escaped character is never a quote that ends the string */
        }
    }
    if (!o) return 0;
    memcpy(o + n, p + start, len - start);
    *out = o;
    *outlen = n + len - start;
    return 1;
}

int framing_nul_encode(const char *s, size_t len, char **out, size_t *outlen)
{
    *out = NULL;
    size_t count = 0;
    for (const char *q = s; (q = memchr(q, 0xC0, len - (size_t)(q - s))) && q + 1 < s + len; q++)
        if ((unsigned char)q[1] == 0x80) count++;
    if (!count) return 0;
    char *o = malloc(len + 4 * count + 1);
    if (!o) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] == 0xC0 && i + 1 < len && (unsigned char)s[i + 1] == 0x80) {
            memcpy(o + n, "\\u0000", 6);
            n += 6;
            i++;
        } else {
            o[n++] = s[i];
        }
    }
    o[n] = 0;
    *out = o;
    *outlen = n;
    return 1;
}

/* One text, trailing whitespace allowed; see framing.h. */
cJSON *framing_parse(const char *text, size_t len)
{
    cJSON *msg = NULL;
    size_t used = 0;
    if (framing_parse_value(text, len, &msg, &used)) return NULL;
    while (used < len && strchr(" \t\r\n", text[used]))
        used++;
    if (used != len) {
        cJSON_Delete(msg);
        msg = NULL;
    }
    return msg;
}

static int check(cJSON *msg, cJSON **out, char *err, size_t errlen);

/* Report an invalid text (or ENOMEM) in err; returns the error code. */
static int bad_text(const char *p, size_t len, int rc, char *err, size_t errlen)
{
    if (rc == AEMP_ENOMEM) {
        set_err(err, errlen, "out of memory parsing a message");
        return rc;
    }
    set_err(err, errlen, "invalid JSON text in the message stream (%zu bytes: %.*s%s)", len,
            (int)(len > 40 ? 40 : len), p, len > 40 ? "..." : "");
    return AEMP_EPROTO;
}

/* Parse one complete text p[0..len). Returns 1 with the message in *out, 0
 * when there is none (a keepalive [], or a text refused on its own: one
 * nesting deeper than FRAMING_MAX_DEPTH, counted in r->refused, or one with
 * a string that is not valid UTF-8, r->refused_utf8: the stream goes on),
 * AEMP_EPROTO (message in err) when the text is not valid JSON or not an
 * array starting with a string. */
static int parse_text(struct framing_reader *r, const char *p, size_t len, cJSON **out,
                      char *err, size_t errlen)
{
    if (r->too_deep) {
        r->refused++;
        return 0;
    }
    cJSON *msg = NULL;
    size_t used = 0;
    int rc = framing_parse_value(p, len, &msg, &used);
    if (rc == 3) { /* invalid UTF-8 in a string: this text only */
        r->refused_utf8++;
        return 0;
    }
    if (rc == 0 && used != len) {
        cJSON_Delete(msg);
        rc = AEMP_EPROTO;
    }
    if (rc) return bad_text(p, len, rc, err, errlen);
    return check(msg, out, err, errlen);
}

/* Check a parsed text (taken). Returns 1 with it in *out, 0 for a keepalive
 * ([], dropped), AEMP_EPROTO (message in err) when it is not an array
 * starting with a string. */
static int check(cJSON *msg, cJSON **out, char *err, size_t errlen)
{
    if (!cJSON_IsArray(msg)) {
        cJSON_Delete(msg);
        set_err(err, errlen, "a message is not a JSON array");
        return AEMP_EPROTO;
    }
    if (!msg->child) { /* keepalive */
        cJSON_Delete(msg);
        return 0;
    }
    if (!cJSON_IsString(msg->child)) {
        cJSON_Delete(msg);
        set_err(err, errlen, "a message's first element is not a port name string");
        return AEMP_EPROTO;
    }
    *out = msg;
    return 1;
}

/* Consume s[0..n) up to the end of the next message. *used is how many
 * bytes were consumed (all of them when there is no complete message).
 * Returns 1 with the message in *out, 0 when the bytes held none (or only
 * the start of one, kept), or AEMP_EPROTO/AEMP_ENOMEM. */
static int next(struct framing_reader *r, const char *s, size_t n, size_t *used, cJSON **out,
                char *err, size_t errlen)
{
    size_t i = 0;
    int rc = 0;
    while (i < n) {
        size_t start = i;
        if (!r->in_text) {
            char c = s[i];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                i++;
                continue;
            }
            if (c != '[') {
                set_err(err, errlen,
                        "a message is not a JSON array (starts with '%c', byte 0x%02x)",
                        (c >= 0x20 && c < 0x7f) ? c : '?', (unsigned char)c);
                rc = AEMP_EPROTO;
                break;
            }
            /* Parse in place in one pass; only a text the chunk (or the
             * limit) cuts off, or one nested too deep or with invalid
             * UTF-8 (refused alone: its end is the scanner's to find),
             * goes to the scanner. */
            size_t lim = n - i > r->max_msg ? r->max_msg : n - i, len = 0;
            cJSON *msg = NULL;
            rc = framing_parse_value(s + i, lim, &msg, &len);
            if (rc == 0) {
                rc = check(msg, out, err, errlen);
                i += len;
                if (rc) break;
                continue;
            }
            if (rc < 0) {
                rc = bad_text(s + i, lim, rc, err, errlen);
                break;
            }
            rc = 0;
            r->in_text = 1;
            r->depth = 0;
            r->in_str = r->esc = 0;
            r->too_deep = 0;
        }
        /* Never scan past what max_msg allows (plus one byte to notice). */
        size_t allow = r->max_msg - r->blen; /* blen <= max_msg always */
        size_t lim = n - i > allow ? i + allow + 1 : n;
        size_t end = scan(r, s, i, lim);
        /* scan() resets depth to 0 exactly when the text closed. */
        int done = r->depth == 0;
        size_t total = r->blen + (end - i);
        if (total > r->max_msg) {
            set_err(err, errlen, "a message is longer than the limit of %zu bytes", r->max_msg);
            rc = AEMP_EPROTO;
            break;
        }
        if (!done) { /* unfinished: keep the tail */
            if (append(&r->buf, &r->blen, &r->bcap, s + i, end - i)) {
                set_err(err, errlen, "out of memory buffering a message");
                rc = AEMP_ENOMEM;
                break;
            }
            i = end;
            continue;
        }
        r->in_text = 0;
        if (r->blen == 0) { /* the whole text is in this chunk (too deep) */
            rc = parse_text(r, s + start, end - start, out, err, errlen);
        } else {
            if (append(&r->buf, &r->blen, &r->bcap, s + i, end - i)) {
                set_err(err, errlen, "out of memory buffering a message");
                rc = AEMP_ENOMEM;
                break;
            }
            rc = parse_text(r, r->buf, r->blen, out, err, errlen);
            r->blen = 0;
            /* A big text passed: give its buffer back, unless it is small
             * enough to keep hot for the next (a fresh one costs a page
             * fault per 4 KB: a stream of 64 KB messages reuses it). */
            if (r->bcap > FRAMING_KEEP_BUF) {
                free(r->buf);
                r->buf = NULL;
                r->bcap = 0;
            }
        }
        i = end;
        if (rc) break;
    }
    *used = i;
    return rc;
}

/* The next message; see framing.h. */
int framing_reader_next(struct framing_reader *r, const char *data, size_t len, size_t *used,
                        cJSON **msg, char *err, size_t errlen)
{
    *msg = NULL;
    *used = 0;
    if (r->failed) {
        set_err(err, errlen, "the message stream already failed");
        return AEMP_EPROTO;
    }
    int rc = len ? next(r, data, len, used, msg, err, errlen) : 0;
    if (rc < 0) r->failed = 1;
    return rc;
}

/* Feed bytes; see framing.h. Bytes left after a stop are kept in `rest` and
 * processed first on the next feed (which may pass len 0 just to resume). */
int framing_reader_feed(struct framing_reader *r, const char *data, size_t len, framing_msg_fn fn,
                        void *ud, char *err, size_t errlen)
{
    if (r->failed) {
        set_err(err, errlen, "the message stream already failed");
        return AEMP_EPROTO;
    }
    const char *s = data;
    size_t n = len;
    char *held = NULL;
    if (r->rlen) {
        /* Earlier bytes wait: process them together with the new ones. The
         * rest buffer is detached while it is worked on. */
        if (append(&r->rest, &r->rlen, &r->rcap, data, len)) {
            set_err(err, errlen, "out of memory buffering the message stream");
            r->failed = 1;
            return AEMP_ENOMEM;
        }
        s = held = r->rest;
        n = r->rlen;
        r->rlen = 0;
    }
    size_t off = 0;
    int rc = 0;
    while (off < n) {
        size_t used;
        cJSON *msg = NULL;
        rc = next(r, s + off, n - off, &used, &msg, err, errlen);
        off += used;
        if (rc <= 0) break;
        rc = 0;
        if (fn(ud, msg)) {
            rc = 1;
            break;
        }
    }
    if (rc == 1) {
        if (held) {
            memmove(held, held + off, n - off);
            r->rlen = n - off;
        } else if (append(&r->rest, &r->rlen, &r->rcap, s + off, n - off)) {
            set_err(err, errlen, "out of memory buffering the message stream");
            rc = AEMP_ENOMEM;
        }
    }
    if (rc < 0) r->failed = 1;
    return rc;
}

/* Texts refused one by one; see framing.h. */
size_t framing_reader_refused(const struct framing_reader *r)
{
    return r->refused;
}

size_t framing_reader_refused_utf8(const struct framing_reader *r)
{
    return r->refused_utf8;
}

/* The unformatted JSON text of msg, C0 80 written as \u0000; see framing.h. */
char *framing_encode(const cJSON *msg, size_t *len)
{
    struct framing_buf b = {0};
    if (framing_write(&b, NULL, msg) || framing_write_raw(&b, "", 1)) {
        free(b.data);
        return NULL;
    }
    b.len--; /* the NUL terminates, it is not part of the text */
    if (len) *len = b.len;
    return b.data;
}

/* The public forms of framing_parse and framing_encode; see aemp.h. */
cJSON *aemp_json_parse(const char *text)
{
    if (!text) return NULL;
    /* A number at the very end could go on in a stream: the text ends
     * here, so one space after it says so (a top-level 2^63 - 1 keeps its
     * digits too). */
    size_t n = strlen(text);
    char *t = malloc(n + 2);
    if (!t) return NULL;
    memcpy(t, text, n);
    t[n] = ' ';
    t[n + 1] = 0;
    cJSON *v = framing_parse(t, n + 1);
    free(t);
    return v;
}

char *aemp_json_print(const cJSON *v)
{
    return framing_encode(v, NULL);
}

