/* framing.h - the "json" framing: a byte stream of concatenated JSON texts,
 * each an array [PORTNAME, ...]. The reader finds text boundaries
 * incrementally, however the bytes are split across reads. Pure: no I/O. */
#ifndef AEMP_FRAMING_H
#define AEMP_FRAMING_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct framing_reader;

/* Called for every complete message, in order; `msg` is taken (a JSON
 * array with at least one element). Return 0 to go on, non-zero to stop
 * feeding (the rest of the chunk stays buffered). */
typedef int (*framing_msg_fn)(void *ud, cJSON *msg);

/* Texts nesting deeper than this are refused one by one (the stream goes
 * on); cJSON's own limit (1000) is never reached. */
#define FRAMING_MAX_DEPTH 512

/* A reader that refuses texts longer than `max_msg` bytes. NULL on ENOMEM. */
struct framing_reader *framing_reader_new(size_t max_msg);
void framing_reader_free(struct framing_reader *r);

/* Feed `len` bytes. Whitespace between texts is skipped; the keepalive `[]`
 * is consumed silently. Returns 0 when all bytes were consumed, 1 when `fn`
 * asked to stop, or AEMP_EPROTO with a message in `err` (invalid JSON, a
 * text that is not an array or whose first element is not a string, a text
 * over max_msg). After an error the reader must not be fed again. */
int framing_reader_feed(struct framing_reader *r, const char *data, size_t len,
                        framing_msg_fn fn, void *ud, char *err, size_t errlen);

/* The pull form the transport reads with (the reader never calls up): take
 * bytes from data[0..len) up to the end of the next message. *used gets
 * the bytes consumed (all of them when they complete no message; the start
 * of an unfinished text is kept by the reader); the caller passes the rest
 * again, after whatever it does with the message. Returns 1 with *msg (taken
 * by the caller; an array starting with a string), 0 when the bytes held no
 * message (whitespace, keepalives, texts refused one by one, an unfinished
 * text), or AEMP_EPROTO/AEMP_ENOMEM with a message in `err` as
 * framing_reader_feed. Do not mix with framing_reader_feed on one reader
 * after feed was stopped by `fn`. */
int framing_reader_next(struct framing_reader *r, const char *data, size_t len, size_t *used,
                        cJSON **msg, char *err, size_t errlen);

/* How many texts were refused so far without failing the stream (nested
 * deeper than FRAMING_MAX_DEPTH); the caller logs when it grows. */
size_t framing_reader_refused(const struct framing_reader *r);

/* Likewise the texts refused for a string that is not valid UTF-8 (never
 * passed on: a 1.30 receiver would close the whole connection). */
size_t framing_reader_refused_utf8(const struct framing_reader *r);

/* Bytes buffered in an incomplete text. */
size_t framing_reader_pending(const struct framing_reader *r);

/* The JSON text of `msg` (borrowed), unformatted, as a new string the caller
 * frees; *len gets its length. NULL on ENOMEM. The bytes C0 80 in a string
 * are written as \u0000 (see framing_nul_encode). */
char *framing_encode(const cJSON *msg, size_t *len);

/* U+0000 inside the node. cJSON strings end at a NUL byte, so the reader
 * decodes the escape \u0000 inside a JSON string to the two bytes C0 80
 * (modified UTF-8) and the encoder writes C0 80 back as \u0000: every
 * string passes through a node unchanged. What a C callback sees of
 * "a\u0000b" is the 4 bytes 'a' C0 80 'b'.
 *
 * framing_nul_decode: text p[0..len) with every \u0000 inside a string
 * replaced by C0 80. 0 when there is none (*out NULL), 1 with *out (new,
 * caller frees, *outlen bytes, not terminated), -1 on ENOMEM.
 * framing_nul_encode: JSON text s[0..len) with every C0 80 replaced by
 * \u0000; same results, *out NUL-terminated. */
int framing_nul_decode(const char *p, size_t len, char **out, size_t *outlen);
int framing_nul_encode(const char *s, size_t len, char **out, size_t *outlen);

/* One JSON text (trailing whitespace allowed) parsed with \u0000 decoded as
 * above; new item the caller deletes, NULL when invalid or ENOMEM. */
cJSON *framing_parse(const char *text, size_t len);

/* ---- framing_json.c: our JSON writer and parser ---- */

/* A plain run of a string of the message that the writer did not copy:
 * its n bytes at s belong at offset `at` of the buffer's data. */
struct framing_ref {
    size_t at;
    const char *s;
    size_t n;
};

/* Plain runs this long or longer are noted as references when asked for. */
#define FRAMING_REF_MIN (16 * 1024)

/* A growable byte buffer the writer appends to; {0} is an empty one. The
 * owner frees `data`. With refs_max > 0 (refs: room for that many, the
 * owner's), framing_write notes plain runs of at least FRAMING_REF_MIN
 * bytes of the message's strings in refs (nrefs, their bytes in reflen)
 * instead of copying them: the text is then data with each run inserted at
 * its offset, and it points into the message, which must live until the
 * text is written. */
struct framing_buf {
    char *data;
    size_t len, cap;
    struct framing_ref *refs;
    int nrefs, refs_max;
    size_t reflen;
};

/* Append the text of `msg` (borrowed) to b, C0 80 written as \u0000: the
 * text of msg itself when `name` is NULL, else the array
 * ["name", ELEMENTS OF msg...] (msg must be an array; so a message goes out
 * without inserting its port name into it). Not NUL-terminated. 0, or
 * AEMP_ENOMEM (b->len unchanged). Otherwise the bytes of
 * cJSON_PrintUnformatted. */
int framing_write(struct framing_buf *b, const char *name, const cJSON *msg);

/* Append n bytes as they are. 0, or AEMP_ENOMEM. */
int framing_write_raw(struct framing_buf *b, const char *s, size_t n);

/* Parse one JSON value from s[0..n) (leading bytes <= 32 skipped) into
 * *out (new, caller owns), \u0000 decoded as C0 80; *used gets the bytes
 * consumed. Returns 0; 1 when s ends inside the value; 2 when it nests
 * deeper than FRAMING_MAX_DEPTH; 3 when a string in it is not valid UTF-8
 * (C0 80 is: U+0000) (for 1 to 3 nothing is returned); AEMP_EPROTO when it
 * is not valid JSON; AEMP_ENOMEM. A string value lives in its node's block
 * (type has cJSON_IsReference; cJSON_Delete and cJSON_Duplicate handle it;
 * do not replace its valuestring by hand), and so do the digits of an
 * integer of 16 digits or more, kept in the number's valuestring
 * (framing_int_digits). */
int framing_parse_value(const char *s, size_t n, cJSON **out, size_t *used);

/* 1 when the NUL-terminated `s` is valid UTF-8 (C0 80, U+0000 inside the
 * node, counts as valid), else 0: what a receiving node accepts. */
int framing_utf8_valid(const char *s);

/* The length of the integer digits a number item keeps in valuestring
 * ([-]DIGITS that read back as its valuedouble), 0 when it keeps none: the
 * writer prints those instead of the double. */
size_t framing_int_digits(const cJSON *item);

/* The first byte in [p, end) that is '"' or '\\', or end (word scan). */
const unsigned char *framing_find_quote_or_bs(const unsigned char *p, const unsigned char *end);

#endif
