/* json_int.c - 64-bit integers exactly in cJSON number items (aemp.h): a
 * double holds integers exactly only up to 2^53, so the item keeps its
 * digits in valuestring, which our writer prints (framing_int_digits) and
 * cJSON_Delete frees. Pure. */
#include "framing.h"

#include "aemp.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aemp_json_set_int64(cJSON *item, int64_t v)
{
    if (!cJSON_IsNumber(item)) return AEMP_EINVAL;
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    char *digits = cJSON_malloc((size_t)n + 1); /* cJSON_Delete frees it */
    if (!digits) return AEMP_ENOMEM;
    memcpy(digits, tmp, (size_t)n + 1);
    /* the parser's digits live in the item's own block (cJSON_IsReference):
     * not freed here; the new ones are the item's to free */
    if (!(item->type & cJSON_IsReference)) cJSON_free(item->valuestring);
    item->type &= ~cJSON_IsReference;
    item->valuestring = digits;
    item->valuedouble = (double)v;
    item->valueint = v >= INT32_MAX ? INT32_MAX : v <= INT32_MIN ? INT32_MIN : (int)v;
    return 0;
}

cJSON *aemp_json_create_int64(int64_t v)
{
    cJSON *it = cJSON_CreateNumber((double)v);
    if (it && aemp_json_set_int64(it, v)) {
        cJSON_Delete(it);
        return NULL;
    }
    return it;
}

int aemp_json_get_int64(const cJSON *item, int64_t *out)
{
    if (!cJSON_IsNumber(item)) return AEMP_EINVAL;
    if (framing_int_digits(item)) {
        char *end;
        errno = 0;
        long long v = strtoll(item->valuestring, &end, 10);
        if (errno == ERANGE) return AEMP_EINVAL;
        *out = (int64_t)v;
        return 0;
    }
    double d = item->valuedouble;
    /* 2^63 is the first double past INT64_MAX */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
        return AEMP_EINVAL;
    *out = (int64_t)d;
    return 0;
}
