/* proto_cmds.c - TEMPORARY stand-ins for the protocol subcommands (run, snd,
 * cal, mon, trace) until their real implementation replaces this file. */
#include "cmds.h"

#include <stdio.h>

static int not_yet(const char *sub)
{
    fprintf(stderr, "aemp: %s: not available in this build yet\n", sub);
    return EXIT_FAIL;
}

int cmd_run(struct cmd_ctx *ctx, int argc, char **argv)
{
    return not_yet(argv[0]);
}
int cmd_snd(struct cmd_ctx *ctx, int argc, char **argv)
{
    return not_yet(argv[0]);
}
int cmd_cal(struct cmd_ctx *ctx, int argc, char **argv)
{
    return not_yet(argv[0]);
}
int cmd_mon(struct cmd_ctx *ctx, int argc, char **argv)
{
    return not_yet(argv[0]);
}
int cmd_trace(struct cmd_ctx *ctx, int argc, char **argv)
{
    return not_yet(argv[0]);
}
