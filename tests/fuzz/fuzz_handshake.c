/* fuzz_handshake - libFuzzer target for the parsers that see bytes from
 * unauthenticated peers: greeting line 1 and the auth line. The first byte
 * picks the parser; the rest is the line. Any crash, leak or sanitizer
 * report is a bug. */
#include "handshake.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > HS_MAX_LINE) return 0;
    const char *line = (const char *)data + 1;
    size_t len = size - 1;
    if (memchr(line, 0, len)) return 0; /* lines never hold NUL: the transport cuts at LF */
    char err[256];
    if (data[0] & 1) {
        struct hs_greeting g;
        if (hs_parse_greeting(line, len, &g, err, sizeof err) == 0) hs_greeting_clear(&g);
    } else {
        struct hs_auth a;
        if (hs_parse_auth(line, len, &a, err, sizeof err) == 0) hs_auth_clear(&a);
    }
    return 0;
}
