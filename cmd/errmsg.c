/* errmsg.c - the one error printer of the subcommands (cmds.h): every
 * failure message is the line "aemp: SUBCOMMAND: what went wrong". */
#include "cmds.h"

#include <errno.h>
#include <stdio.h>

int cmd_verror(const char *sub, int status, const char *fmt, va_list ap)
{
    fprintf(stderr, "aemp: %s: ", sub);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return status;
}

int cmd_error(const char *sub, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmd_verror(sub, status, fmt, ap);
    va_end(ap);
    return status;
}

/* The first errno of a failed flush of stdout, for the message at exit. */
static int out_errno;

int cmd_flush_stdout(void)
{
    if (fflush(stdout) == 0) return 0;
    if (!out_errno) out_errno = errno;
    return -1;
}

int cmd_stdout_errno(void)
{
    return out_errno;
}
