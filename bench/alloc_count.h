/* alloc_count.h - heap allocations made so far by this process (counted
 * by alloc_count.c, which the benchmarks link). */
#ifndef AEMP_ALLOC_COUNT_H
#define AEMP_ALLOC_COUNT_H

extern unsigned long bench_nalloc;

#endif
