/* strmap.c - open-addressing string hash map with linear probing. */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char tomb_marker;
#define STRMAP_TOMB (&tomb_marker)

/* Eight bytes per step (multiply and fold), then a final mix: port names
 * are about 20 bytes, so this is a few multiplications instead of one per
 * byte. Keys are chosen by us (port names) or bounded per connection, so
 * no keyed hash is needed. */
static size_t hash_str(const char *s)
{
    size_t n = strlen(s);
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n, w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94D049BB133111EBULL;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    return (size_t)(h ^ (h >> 32));
}

static struct strmap_slot *find(const strmap *m, const char *key, size_t h)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct strmap_slot *s = &m->slots[i];
        if (!s->key) return NULL;
        if (s->key != STRMAP_TOMB && s->hash == h && !strcmp(s->key, key)) return s;
    }
}

void *strmap_get(const strmap *m, const char *key)
{
    struct strmap_slot *s = find(m, key, hash_str(key));
    return s ? s->val : NULL;
}

static int grow(strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    if (m->len * 4 < m->cap) ncap = m->cap; /* mostly tombstones: rehash in place size */
    struct strmap_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        struct strmap_slot *s = &m->slots[i];
        if (!s->key || s->key == STRMAP_TOMB) continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key) j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->len;
    return 0;
}

int strmap_put(strmap *m, const char *key, void *val, void **old)
{
    size_t h = hash_str(key);
    struct strmap_slot *s = find(m, key, h);
    if (old) *old = s ? s->val : NULL;
    if (s) {
        s->val = val;
        return 0;
    }
    if ((m->used + 1) * 4 > m->cap * 3 && grow(m)) return -1;
    char *k = strdup(key);
    if (!k) return -1;
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].key && m->slots[i].key != STRMAP_TOMB) i = (i + 1) & mask;
    if (!m->slots[i].key) m->used++;
    m->slots[i] = (struct strmap_slot){k, val, h};
    m->len++;
    return 0;
}

void *strmap_del(strmap *m, const char *key)
{
    struct strmap_slot *s = find(m, key, hash_str(key));
    if (!s) return NULL;
    void *v = s->val;
    free(s->key);
    s->key = STRMAP_TOMB;
    s->val = NULL;
    m->len--;
    return v;
}

void strmap_free(strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != STRMAP_TOMB) free(m->slots[i].key);
    free(m->slots);
    *m = (strmap)STRMAP_INIT;
}

int strmap_next(const strmap *m, size_t *iter, const char **key, void **val)
{
    while (*iter < m->cap) {
        struct strmap_slot *s = &m->slots[(*iter)++];
        if (s->key && s->key != STRMAP_TOMB) {
            if (key) *key = s->key;
            if (val) *val = s->val;
            return 1;
        }
    }
    return 0;
}
