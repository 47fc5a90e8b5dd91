/* fuzz_framing - libFuzzer target for the json framing reader, the parser
 * of everything an authenticated peer sends. The input is fed in chunks
 * whose sizes come from the first bytes, so split points get explored. */
#include "framing.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(void *ud, cJSON *msg)
{
    ++*(int *)ud;
    cJSON_Delete(msg);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t step = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    struct framing_reader *r = framing_reader_new(4096);
    int n = 0;
    char err[256];
    for (size_t off = 0; off < size; off += step) {
        size_t len = size - off < step ? size - off : step;
        if (framing_reader_feed(r, (const char *)data + off, len, count, &n, err, sizeof err) < 0)
            break;
    }
    framing_reader_free(r);
    return 0;
}
