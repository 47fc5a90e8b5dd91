/* cmds.h - what the subcommand files share with the dispatcher (aemp.c).
 *
 * Exit statuses of every subcommand: 0 success, 1 failure (timeout, refused,
 * not delivered, bad config file), 2 bad usage. Messages go to stderr as one
 * line "aemp: SUBCOMMAND: what went wrong". */
#ifndef AEMP_CMDS_H
#define AEMP_CMDS_H

#include <cjson/cJSON.h>
#include <stdarg.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* State shared by a chain of subcommands in one invocation. */
struct cmd_ctx {
    char *rc_path;       /* config file path (owned) */
    cJSON *rc;           /* the loaded config file (owned); NULL until loaded */
    int rc_dirty;        /* save at the end of the chain */
    char *profile;       /* profile selected by `profile NAME` (owned) or NULL */
    const char *cmd;     /* name of the running subcommand, for messages (borrowed) */
};

/* The one error printer (errmsg.c): print "aemp: SUB: message" and a
 * newline on stderr, return `status`. `sub` and `fmt` are borrowed. */
int cmd_error(const char *sub, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cmd_verror(const char *sub, int status, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Flush stdout (errmsg.c): 0, or -1 with the errno remembered for the
 * failure message at exit (cmd_stdout_errno(): the first one, or 0). A
 * write error also stays on stdout: aemp.c fails the command for it. */
int cmd_flush_stdout(void);
int cmd_stdout_errno(void);

/* Load ctx->rc if not loaded yet; on failure print the reason, return 1. */
int cmd_load_rc(struct cmd_ctx *ctx);

/* Protocol subcommands (msg_cmds.c, trace_cmd.c, run_cmd.c). argv[0] is the subcommand name; they
 * take every remaining argument and return an exit status. */
int cmd_run(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_snd(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_cal(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_mon(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_trace(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_stats(struct cmd_ctx *ctx, int argc, char **argv); /* stats_cmds.c: stats and top */

/* `aemp --complete profiles` (complete.c): print the profile names of the
 * configuration file and the shipped profiles, one per line; exit status. */
int cmd_complete_profiles(void);

/* Supervision of `aemp run` (supervise.c). supervise_start(), once the node
 * listens and has configured: tells the service manager READY=1 and makes
 * SIGHUP reload the configuration (profile and kv are borrowed until
 * supervise_end(), as passed to aemp_configure()). supervise_end(): STOPPING=1
 * and frees `sv` (NULL is ok). */
struct supervisor;
struct aemp_node;
struct supervisor *supervise_start(struct aemp_node *node, const char *profile, const cJSON *kv);
void supervise_end(struct supervisor *sv);
/* Instead of supervise_end() when the node starts again in the same process
 * (aemp restart): RELOADING=1, not STOPPING=1; frees `sv`. */
void supervise_restarting(struct supervisor *sv);

/* `aemp logs` (logs_cmds.c). */
int cmd_logs(struct cmd_ctx *ctx, int argc, char **argv);
/* `aemp run` under a watchdog, and restarts (watchdog.c).
 * watchdog_maybe_supervise(): when the effective configuration `eff`
 * (borrowed; of `profile`, for the log) has `autorestart` true and this
 * process is not a supervised node already, supervise the node: returns 1
 * in the watchdog when it ends (*status: its exit status); in the node (a
 * child) and when not wanted it returns 0 and cmd_run goes on, with
 * *restarted set in a node started again after the first one ended (it
 * reads the configuration file again: it may have changed).
 * watchdog_node_start(): on the configured node, registers the restart
 * functions (aemp::restart, AnyEvent::Watchdog::Util::restart) and, under a
 * watchdog, the heartbeat (`eff` borrowed: the node's configuration).
 * watchdog_node_end(): 1 when a restart was asked for; watchdog_reexec()
 * then executes the same command line again (returns only on failure). */
struct aemp_node;
int watchdog_maybe_supervise(const cJSON *eff, const char *profile, int *status, int *restarted);
void watchdog_node_start(struct aemp_node *node, const cJSON *eff);
int watchdog_node_end(void);
int watchdog_restart_asked(void);
void watchdog_reexec(void);
int cmd_restart(struct cmd_ctx *ctx, int argc, char **argv);

/* Files over data connections (put_cmds.c): `aemp put`, and the receiver
 * service "aemp::put" that cmd_run registers on its node. */
struct aemp_node;
int cmd_put(struct cmd_ctx *ctx, int argc, char **argv);
void cmd_put_register(struct aemp_node *node);

/* Prefix of an argument that came as a non-string element of the JSON-array
 * form of the command line (`aemp '["snd","n#p",0]'`): JSON text follows. */
#define CMD_JSON_MARK '\x1f'

/* Reading command-line arguments (config_value.c). */

/* Decode a protocol-command argument as 1.30 does: text starting with
 * `[`, `{` or `"` is JSON (NULL and a message in err if invalid), anything
 * else a JSON string. New item, caller owns. */
cJSON *cmd_arg_json(const char *arg, char *err, size_t errlen);

/* 1 when a value typed on the command line has the shape of an option:
 * it begins with '-' and is not a number ("-", "-5" are values). Such a
 * value is refused unless it follows `--`. */
int cmd_looks_like_option(const char *arg);

/* A comma list "a,b" as a new JSON array of strings; empty pieces are
 * dropped, so "" is the empty list. NULL when out of memory. */
cJSON *cmd_comma_list(const char *arg);

/* 1 when `arg` given to binds or seeds is "[v6addr]:port": an address,
 * not JSON. */
int cmd_arg_is_address(const char *key, const char *arg);

/* The value VALUE text `arg` gives configuration key `key`, the one reading
 * of `setKEY VALUE`, `showconfig NAME KEY VALUE` and `run KEY VALUE`: JSON
 * when it starts with [ { " (or is a typed element of the JSON-array
 * form; a lone string for a list key becomes a one-element list), else by
 * the key's kind in lib/config/config_check.c's table: a comma list, a number, a
 * boolean (true/false, 1/0, yes/no, on/off) or a string (unknown keys);
 * then checked with config_check_value(). New item (caller owns), or NULL
 * with one sentence naming the key in err (bad usage). */
cJSON *cmd_config_value(const char *key, const char *arg, char *err, size_t errlen);

/* Configuration subcommands (config_cmds.c). `key` is the configuration key
 * the table row names (or NULL), argv[0..argc-1] the arguments the row
 * consumes (borrowed, without the subcommand name). They edit ctx->rc in
 * memory, set rc_dirty, print a one-line message on failure and return an
 * exit status; the dispatcher saves once at the end of the chain. */
typedef int cmd_cfg_fn(struct cmd_ctx *ctx, const char *key, int argc, char **argv);
cmd_cfg_fn cmd_cfg_set, cmd_cfg_del, cmd_cfg_add, cmd_cfg_remove, cmd_cfg_gensecret,
    cmd_cfg_gencert, cmd_cfg_setcert, cmd_cfg_profile, cmd_cfg_delprofile, cmd_cfg_showprofile,
    cmd_cfg_showconfig, cmd_cfg_showseeds;
cmd_cfg_fn cmd_cfg_check; /* check_cmd.c */

/* Save ctx->rc to ctx->rc_path if it is dirty; print the reason and return 1
 * on failure, else 0. */
int cmd_save_rc(struct cmd_ctx *ctx);

#endif
