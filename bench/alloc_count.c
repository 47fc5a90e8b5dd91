/* alloc_count.c - counts the heap allocations of a benchmark process:
 * malloc, calloc and realloc of NULL go through here (glibc lets a program
 * replace them; libc's own callers use the replacement too) and are passed
 * on to glibc's allocator. Linked into the benchmarks only. */
#include "alloc_count.h"

#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

unsigned long bench_nalloc;

void *malloc(size_t n)
{
    bench_nalloc++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    bench_nalloc++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    if (!p) bench_nalloc++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
