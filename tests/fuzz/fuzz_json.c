/* fuzz_json - libFuzzer target comparing our JSON parser and writer
 * (lib/wire/framing_json.c) with cJSON, the reference they must agree with:
 *   - whatever we parse, cJSON parses to the same tree and length;
 *   - whatever cJSON parses, we parse too, except texts with a \u escape
 *     (we refuse non-hex digits that cJSON reads as U+0000), texts
 *     nested deeper than FRAMING_MAX_DEPTH (we say so: 2) and texts with
 *     a string that is not valid UTF-8 (3);
 *   - a text we find cut off is one cJSON refuses;
 *   - our text of any parsed tree is byte for byte cJSON's text, except
 *     the integers of 16 digits and more we keep digit for digit (our text
 *     with them reads back with the same digits).
 * U+0000 is C0 80 inside the node: cJSON parses the text after
 * framing_nul_decode and its text goes through framing_nul_encode.
 * Inputs start with '[' or '{', as every text of the framing does (cJSON
 * accepts trailing garbage after a top-level scalar). Aborts on mismatch. */
#include "framing.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_json: %s for %.*s\n", what, (int)(size > 200 ? 200 : size),
            (const char *)data);
    abort();
}

/* Same tree: types, keys, strings, and numbers as the same double (cJSON_Compare
 * calls two infinities different). */
static int same_tree(const cJSON *a, const cJSON *b)
{
    for (; a && b; a = a->next, b = b->next) {
        if ((a->type & 0xFF) != (b->type & 0xFF)) return 0;
        if ((a->string || b->string) && (!a->string || !b->string || strcmp(a->string, b->string)))
            return 0;
        if (cJSON_IsNumber(a) && (memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) ||
                                  a->valueint != b->valueint))
            return 0;
        if (cJSON_IsString(a) && strcmp(a->valuestring, b->valuestring)) return 0;
        if (!same_tree(a->child, b->child)) return 0;
        /* cJSON appends through the first child's prev: the last one */
        if (a->child) {
            const cJSON *la = a->child, *lb = b->child;
            while (la->next) la = la->next;
            while (lb->next) lb = lb->next;
            if (a->child->prev != la || b->child->prev != lb) return 0;
        }
    }
    return !a && !b;
}

/* `back` (our text of `tree` read again) has the tree's kept integer digits
 * where the tree has them; numbers without digits that are not finite come
 * back as null, as cJSON prints them. */
static int digits_back(const cJSON *tree, const cJSON *back)
{
    for (; tree && back; tree = tree->next, back = back->next) {
        if (cJSON_IsNumber(tree) && !framing_int_digits(tree) && !isfinite(tree->valuedouble)) {
            if (!cJSON_IsNull(back)) return 0;
            continue;
        }
        if ((tree->type & 0xFF) != (back->type & 0xFF)) return 0;
        if (cJSON_IsNumber(tree) && framing_int_digits(tree) &&
            (!back->valuestring || strcmp(tree->valuestring, back->valuestring) ||
             memcmp(&tree->valuedouble, &back->valuedouble, sizeof(double))))
            return 0;
        if (!digits_back(tree->child, back->child)) return 0;
    }
    return !tree && !back;
}

/* Integer digits kept in numbers' valuestring dropped (a copy's). */
static void drop_digits(cJSON *t)
{
    for (; t; t = t->next) {
        if (cJSON_IsNumber(t) && t->valuestring) {
            if (!(t->type & cJSON_IsReference)) free(t->valuestring);
            t->valuestring = NULL;
        }
        drop_digits(t->child);
    }
}

/* Our text of `tree` must be cJSON's text, but for the integers of 16
 * digits and more that we print digit for digit (they must read back as
 * the same tree). */
static void same_text(const cJSON *tree, int ours_parsed, const uint8_t *data, size_t size)
{
    size_t len = 0;
    cJSON *plain = cJSON_Duplicate(tree, 1);
    if (!plain) fail("a copy failed", data, size);
    drop_digits(plain);
    char *ours = framing_encode(plain, &len);
    cJSON_Delete(plain);
    if (ours_parsed) { /* (cJSON's tree may hold invalid UTF-8, which we refuse) */
        size_t flen = 0, used = 0;
        char *full = framing_encode(tree, &flen);
        cJSON *back = NULL;
        if (!full || framing_parse_value(full, flen, &back, &used) || used != flen ||
            !digits_back(tree, back))
            fail("our text does not read back with the same integer digits", data, size);
        cJSON_Delete(back);
        free(full);
    }
    char *theirs = cJSON_PrintUnformatted(tree), *enc;
    size_t elen;
    if (!ours || !theirs) fail("a writer failed", data, size);
    if (framing_nul_encode(theirs, strlen(theirs), &enc, &elen) == 1) {
        free(theirs);
        theirs = enc;
    }
    if (strlen(ours) != len || strcmp(ours, theirs)) fail("texts differ", data, size);
    free(ours);
    free(theirs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || (data[0] != '[' && data[0] != '{')) return 0;
    const char *s = (const char *)data;
    cJSON *ours = NULL;
    size_t used = 0;
    int rc = framing_parse_value(s, size, &ours, &used);
    char *dec = NULL;
    size_t dlen = size;
    if (framing_nul_decode(s, size, &dec, &dlen) < 0) return 0;
    const char *in = dec ? dec : s, *end = NULL;
    cJSON *ref = cJSON_ParseWithLengthOpts(in, dlen, &end, 0);
    if (rc == 0) {
        if (!ref) fail("we parse what cJSON refuses", data, size);
        if (!dec && end != s + used) fail("lengths differ", data, size);
        if (!same_tree(ours, ref)) fail("trees differ", data, size);
        same_text(ours, 1, data, size);
        cJSON *dup = cJSON_Duplicate(ours, 1);
        if (!dup || !same_tree(dup, ours)) fail("a duplicate differs", data, size);
        cJSON_Delete(dup);
    } else if (rc == 1) {
        if (ref) fail("we see a cut-off text that cJSON parses", data, size);
    } else if (rc == 2) {
        /* too deep for us (cJSON may go deeper) */
    } else if (rc == 3) {
        /* a string that is not valid UTF-8: refused here, cJSON takes it */
    } else if (ref && !memmem(s, size, "\\u", 2)) {
        fail("cJSON parses what we refuse", data, size);
    }
    if (ref) same_text(ref, 0, data, size);
    cJSON_Delete(ours);
    cJSON_Delete(ref);
    free(dec);
    return 0;
}
