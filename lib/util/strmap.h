/* strmap.h - a string-keyed hash map (open addressing), the one map type of
 * the library: ports, functions, nodes, monitors.
 *
 * Keys are copied and owned by the map; values are borrowed pointers the
 * caller manages. Iteration order is unspecified; do not insert while
 * iterating (deleting the current entry is fine). */
#ifndef AEMP_STRMAP_H
#define AEMP_STRMAP_H

#include <stddef.h>

struct strmap_slot {
    char *key; /* NULL: empty; STRMAP_TOMB: deleted */
    void *val;
    size_t hash;
};

typedef struct strmap {
    struct strmap_slot *slots;
    size_t cap;  /* power of two or 0 */
    size_t len;  /* live entries */
    size_t used; /* live + tombstones */
} strmap;

#define STRMAP_INIT {NULL, 0, 0, 0}

/* Value for `key`, or NULL. */
void *strmap_get(const strmap *m, const char *key);
/* Insert or replace; returns 0, or -1 when out of memory. The previous value,
 * if any, is stored in *old (may be NULL). */
int strmap_put(strmap *m, const char *key, void *val, void **old);
/* Remove `key`; returns its value or NULL. */
void *strmap_del(strmap *m, const char *key);
/* Free the table and keys (not the values). */
void strmap_free(strmap *m);

/* Iterate: size_t i = 0; const char *k; void *v; while (strmap_next(m, &i, &k, &v)) ... */
int strmap_next(const strmap *m, size_t *iter, const char **key, void **val);

#endif
