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

/* Bytes buffered in an incomplete text. */
size_t framing_reader_pending(const struct framing_reader *r);

/* The JSON text of `msg` (borrowed), unformatted, as a new string the caller
 * frees; *len gets its length. NULL on ENOMEM. */
char *framing_encode(const cJSON *msg, size_t *len);

#endif
