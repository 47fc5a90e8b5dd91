/* builtins.c - the built-in services every node runs, in the order the
 * kernel starts them (builtin.h; freed in reverse): the configured log level
 * (mesh/reload.c), AnyEvent::MP::Global (mesh/global.c), the log catcher
 * (services/logcatcher.c), data connections (services/dataconn.c) and the
 * monitoring listener of the "http" key (observe/http.c). The
 * kernel names none of them: this table, above it, puts them in. */
#include "builtin.h"
#include "dataconn.h"
#include "global.h"
#include "http.h"
#include "logcatcher.h"
#include "reload.h"

#include <stddef.h>

const struct core_builtin *const core_builtins[] = {
    &reload_builtin, &global_builtin, &logcatcher_builtin, &dataconn_builtin,
    &observe_builtin, NULL,
};
