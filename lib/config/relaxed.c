/* relaxed.c - JSON::XS's relaxed syntax (what 1.30 reads in the
 * configuration file) turned into strict JSON for cJSON; see relaxed.h. */
#include "relaxed.h"

#include <stdlib.h>
#include <string.h>

char *config_relaxed_to_strict(const char *s, size_t len, size_t *outlen)
{
    size_t tabs = 0;
    for (size_t i = 0; i < len; i++)
        tabs += s[i] == '\t';
    char *o = malloc(len + tabs + 1);
    if (!o) return NULL;
    size_t n = 0;
    /* `last`: the last byte outside strings, comments and whitespace (a
     * string's closing quote counts); `comma`: where in o a comma after a
     * value stands, until a value or a close decides about it. */
    char last = 0;
    size_t comma = (size_t)-1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') { /* a string, copied with its escapes */
            o[n++] = c;
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\t') {
                    o[n++] = '\\';
                    o[n++] = 't';
                    continue;
                }
                if (s[i] == '\\' && i + 1 < len) o[n++] = s[i++];
                o[n++] = s[i];
            }
            if (i < len) o[n++] = '"';
            last = '"';
            comma = (size_t)-1;
            continue;
        }
        if (c == '#') { /* to the end of the line (CR or LF) */
            while (i < len && s[i] != '\n' && s[i] != '\r') {
                o[n++] = ' ';
                i++;
            }
            if (i < len) o[n++] = s[i];
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            o[n++] = c;
            continue;
        }
        if ((c == ']' || c == '}') && comma != (size_t)-1) o[comma] = ' ';
        comma = c == ',' && last != ',' && last != '[' && last != '{' && last != ':' && last != 0
                    ? n
                    : (size_t)-1;
        o[n++] = c;
        last = c;
    }
    o[n] = 0;
    if (outlen) *outlen = n;
    return o;
}
