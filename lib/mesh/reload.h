/* reload.h - aemp_reload() (public in aemp.h) and the "loglevel" key a
 * node applies when configured, as a built-in service of the kernel
 * (builtin.h). Not public. */
#ifndef AEMP_RELOAD_H
#define AEMP_RELOAD_H

struct core_builtin;

/* Applies the configured log level (unless the environment sets one). */
extern const struct core_builtin reload_builtin;

#endif
