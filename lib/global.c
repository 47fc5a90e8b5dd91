/* global.c: PROVISIONAL placeholder until the Global protocol lands. */
#include "global.h"

int global_start(struct aemp_node *node, char *err, size_t errlen)
{
    (void)node; (void)err; (void)errlen;
    return 0;
}

void global_free(struct aemp_node *node) { (void)node; }
