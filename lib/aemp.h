/* aemp.h - the public API of libaemp, a C implementation of AnyEvent::MP.
 *
 * A node (one per event loop) owns ports named "NODEID#PORTNAME". Messages are
 * cJSON arrays. Everything runs on one libevent event_base; nothing here is
 * thread-safe and nothing blocks.
 *
 * Ownership conventions, stated once and repeated where it matters:
 *  - A `cJSON *` parameter documented "taken" belongs to the callee from the
 *    call on, even when the call fails. A `const cJSON *` is borrowed for the
 *    duration of the call (or of the callback) only.
 *  - A returned `char *` or `cJSON *` is owned by the caller (free() or
 *    cJSON_Delete()). A returned `const char *` is borrowed and its lifetime
 *    is stated.
 *  - Errors are 0 or a negative AEMP_E* code; aemp_strerror() names them and
 *    functions that take `char *err, size_t errlen` also write a sentence a
 *    user can act on. A positive value is a status, not an error: AEMP_BUSY
 *    from the sending functions (check errors with `rc < 0`).
 */
#ifndef AEMP_H
#define AEMP_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

#define AEMP_VERSION "0.1.0"

enum aemp_error {
    AEMP_OK = 0,
    AEMP_EINVAL = -1,    /* bad argument (malformed port ID, wrong JSON type) */
    AEMP_ENOMEM = -2,    /* out of memory */
    AEMP_ENOENT = -3,    /* no such port, profile or function */
    AEMP_EEXIST = -4,    /* already there (e.g. port already in a group) */
    AEMP_EPERM = -5,     /* refused (e.g. killing a node port) */
    AEMP_ECONFIG = -6,   /* configuration unreadable, invalid or cyclic */
    AEMP_EIO = -7,       /* operating system error (socket, file) */
    AEMP_ETIMEDOUT = -8, /* no answer in time */
    AEMP_EPROTO = -9,    /* the peer broke the protocol */
    AEMP_ESTATE = -10,   /* not possible in this state (e.g. not configured) */
    AEMP_EAUTH = -11,    /* authentication refused or impossible */
};

/* Status of aemp_snd() and the functions that send through it: the message
 * was queued, but more than the high-water mark now waits for its node
 * (see "flow control" below). Not an error. */
enum aemp_status {
    AEMP_BUSY = 1,
};

/* Static text for an AEMP_E* code. */
const char *aemp_strerror(int err);

typedef struct aemp_node aemp_node;
typedef struct aemp_guard aemp_guard;

/* ------------------------------------------------------------------ node */

/* Create a node on `base` (borrowed; must outlive the node) or, when `base`
 * is NULL, on an event_base the node creates and owns. The node has a
 * provisional random ID until aemp_configure(). Returns NULL when out of
 * memory. Free with aemp_node_free(). If SIGPIPE still has its default
 * action it is set to ignored: a peer that vanishes while we write must
 * cost one connection, not the process. */
aemp_node *aemp_node_new(struct event_base *base);

/* Close all connections and listeners, drop all ports, monitors, timers and
 * guards' targets without calling any callback, and free the node. Guards the
 * caller still holds stay valid (inert) until aemp_guard_free(). NULL is ok. */
void aemp_node_free(aemp_node *node);

/* Call release(ud) when the node is freed, before its connections close and
 * its ports are dropped: how a service (which has no main() of its own) gives
 * back what it holds when `aemp run` stops. Called once, newest first. NULL
 * release is AEMP_EINVAL. */
int aemp_at_free(aemp_node *node, void (*release)(void *ud), void *ud);

/* The node's event_base (borrowed, lives as long as the node). */
struct event_base *aemp_node_base(aemp_node *node);

/* Configure the node from profile `profile` (NULL: the host's node name) of
 * the configuration file (aemp_config_path()), with `kv` (borrowed JSON
 * object or NULL) as key/values layered above the built-in defaults and
 * below the file. Sets the node ID ("anon/" becomes "anon/" + random),
 * starts listeners, seeds and services. Call once, before using ports.
 * Returns 0 or an AEMP_E* code with a message in `err`. */
int aemp_configure(aemp_node *node, const char *profile, const cJSON *kv, char *err,
                   size_t errlen);

/* 1.30's configure(@args): `args` (borrowed JSON array, NULL is []) holds
 * KEY, VALUE pairs as aemp_configure()'s `kv`, where the key "profile"
 * names the profile; an odd count starts with the profile name, so
 * ["seed2"] is ["profile", "seed2"]. A later pair wins over an earlier one.
 * Returns as aemp_configure(); AEMP_EINVAL when a key (or the profile) is
 * not a string. */
int aemp_configure_args(aemp_node *node, const cJSON *args, char *err, size_t errlen);

/* Like aemp_configure() but from an already merged effective configuration
 * `cfg` (borrowed object, keys as in the config file). */
int aemp_configure_effective(aemp_node *node, const cJSON *cfg, char *err, size_t errlen);

/* Re-read the configuration file for a node that aemp_configure() set up
 * with the same `profile` and `kv` (borrowed): the seeds are replaced (new
 * ones dialed at once), the "loglevel" key is applied, and services that are
 * new in the list are started; removed services keep running, and a change of
 * any other key (binds, secret, ...) is logged as taking effect on restart.
 * A file that cannot be read or merged changes nothing. 0, or an AEMP_E*
 * code with a message in `err` (a service that failed to start; the rest of
 * the reload is done). */
int aemp_reload(aemp_node *node, const char *profile, const cJSON *kv, char *err, size_t errlen);

/* The node ID (borrowed, valid until the node is freed or reconfigured). */
const char *aemp_node_id(const aemp_node *node);

/* The effective configuration (borrowed, valid while the node lives), or NULL
 * before aemp_configure(). */
const cJSON *aemp_node_config(const aemp_node *node);

/* Run the event loop until aemp_node_stop() or nothing is left to do.
 * Returns 0, or AEMP_EIO if the loop failed. */
int aemp_node_run(aemp_node *node);

/* Make aemp_node_run() return after the current callback. */
void aemp_node_stop(aemp_node *node);

/* ----------------------------------------------------------------- ports */

/* The node part of a port ID: a new string the caller frees. NULL on ENOMEM. */
char *aemp_node_of(const char *port);

/* Create a new local port with a never-reused name and return its ID (caller
 * frees). The port has no callback yet: a message to it kills it. */
char *aemp_port(aemp_node *node);

/* A receive callback. `self` is the port (borrowed for the call), `msg` the
 * message array (borrowed for the call; the first element is the tag when the
 * sender used one). Return 0, or -1 to report failure: the port is then killed
 * with reason ["die", MESSAGE], MESSAGE from aemp_fail() or a default text. */
typedef int (*aemp_rcv_fn)(aemp_node *node, const char *self, const cJSON *msg, void *ud);

/* Set (fn != NULL) or remove (fn == NULL) the callback of local port `port`:
 * the default callback when `tag` is NULL, else the callback for messages
 * whose first element is the string `tag`. Creates the port when `port` names
 * a local port that does not exist yet and fn is not NULL (this is how spawned
 * functions bring $SELF to life). `ud` is borrowed until the callback is
 * replaced or removed or the port dies. AEMP_EINVAL for a remote port or a
 * node port. */
int aemp_rcv(aemp_node *node, const char *port, const char *tag, aemp_rcv_fn fn, void *ud);

/* Send `msg` (taken; a JSON array) to `port`, local or remote. Local delivery
 * happens from the event loop, never inside this call; order between one
 * sender and one port is kept. Returns 0 when accepted for delivery (that is
 * not a proof of delivery), AEMP_BUSY (positive) when it was accepted too
 * but more than the high-water mark now waits for the port's node (a remote
 * node only: see aemp_on_drain), AEMP_EINVAL for a malformed port or a msg
 * that is not an array. */
int aemp_snd(aemp_node *node, const char *port, cJSON *msg);

/* ---------------------------------------------------------- flow control
 *
 * Messages for a remote node wait in memory until its socket takes them. A
 * node that reads is never disconnected for being slower than its senders;
 * one that takes nothing for min(monitor_timeout, 10 s) while more than
 * 4 x max_message_size (at least 16 MiB) waits is ("the peer does not
 * read"). To keep what waits small, a sender stops when aemp_snd() (or
 * aemp_cal(), aemp_snd_on(), ...) returns AEMP_BUSY - that message is
 * queued - and goes on when aemp_on_drain() calls back. Local ports have
 * no mark: sends to them never return AEMP_BUSY. Nothing of this goes on
 * the wire. */

/* Called once, from the event loop, when what waits for node `nodeid`
 * (borrowed for the call) is at or below the low-water mark - also when it
 * is because the node went down and its queue was dropped (monitors say
 * so). */
typedef void (*aemp_drain_fn)(aemp_node *node, const char *nodeid, void *ud);

/* Call fn(node, NODEID, ud) once when what waits for the node of `dest` (a
 * port or node ID, borrowed) is at or below the low-water mark; from the
 * loop soon when it is already (or the node is local or unknown). `ud` is
 * borrowed until then. Several waiters may wait for one node. 0,
 * AEMP_EINVAL for an empty dest or fn NULL, AEMP_ESTATE before
 * configuration, AEMP_ENOMEM. */
int aemp_on_drain(aemp_node *node, const char *dest, aemp_drain_fn fn, void *ud);

/* Forget one waiter registered with exactly these dest node, fn and ud
 * before it is called. 0, or AEMP_ENOENT when there is none. */
int aemp_drain_cancel(aemp_node *node, const char *dest, aemp_drain_fn fn, void *ud);

/* Bytes waiting for the node of `dest` (a port or node ID): queued while
 * connecting plus unwritten output. 0 for a local or unknown node. */
size_t aemp_queued(aemp_node *node, const char *dest);

/* Set the marks (bytes) for every node: aemp_snd() says AEMP_BUSY above
 * `high`, waiters are called at or below `low`. Defaults 8 MiB and 2 MiB.
 * 0, AEMP_EINVAL unless 0 < high and low <= high, AEMP_ESTATE before
 * configuration. */
int aemp_flow_marks(aemp_node *node, size_t high, size_t low);

/* U+0000 in strings: cJSON strings end at NUL, so inside the node U+0000 is
 * the two bytes C0 80 (modified UTF-8). A callback receiving "a\u0000b"
 * sees 'a' C0 80 'b'; C0 80 in a string we send goes out as \u0000. */

/* aemp_snd() with the message given as JSON text of an array (borrowed);
 * \u0000 is decoded to C0 80 as above. */
int aemp_snd_json(aemp_node *node, const char *port, const char *json_array);

/* JSON text to and from the node's form, with U+0000 as above.
 * aemp_json_parse: one JSON value (any type) from the NUL-terminated `text`
 * (borrowed; surrounding whitespace allowed), \u0000 decoded to C0 80; a
 * new item the caller deletes with cJSON_Delete(), NULL when the text is
 * not one valid JSON value or on ENOMEM.
 * aemp_json_print: the unformatted JSON text of `v` (borrowed), C0 80 in
 * strings written as \u0000; a new string the caller frees with free(),
 * NULL on ENOMEM. */
cJSON *aemp_json_parse(const char *text);
char *aemp_json_print(const cJSON *v);

/* Integers beyond 2^53 (which a double does not hold exactly) pass through
 * a node digit for digit: the parser of messages and aemp_json_parse keep
 * the digits of every integer of 16 digits or more in the number item's
 * valuestring (cJSON_Delete frees it, cJSON_Duplicate copies it), and the
 * writer of messages and aemp_json_print print those digits as long as they
 * still read back as the item's valuedouble (so cJSON_SetNumberValue on the
 * item makes the double count again). cJSON_Print* ignore them.
 * aemp_json_create_int64: a new number item holding v exactly (caller
 * owns), NULL on ENOMEM.
 * aemp_json_set_int64: make the number item `item` hold v exactly (and
 * valuedouble its nearest double); AEMP_EINVAL when it is not a number.
 * aemp_json_get_int64: the exact value of `item` (borrowed) into *out: its
 * digits when it keeps them, else its valuedouble when that is a whole
 * number; AEMP_EINVAL when it is not a number, not whole, or outside
 * int64_t (then its digits still pass through). */
cJSON *aemp_json_create_int64(int64_t v);
int aemp_json_set_int64(cJSON *item, int64_t v);
int aemp_json_get_int64(const cJSON *item, int64_t *out);

/* Kill `port`. `reason` (taken; array or NULL) empty or NULL is a normal
 * kill, anything else abnormal. Killing an unknown port is fine (0); killing
 * a node port is refused (AEMP_EPERM). */
int aemp_kil(aemp_node *node, const char *port, cJSON *reason);

/* The port whose callback runs right now ($SELF), borrowed for the duration
 * of that callback; NULL outside callbacks. */
const char *aemp_self(const aemp_node *node);

/* Set the text of the "die" reason of the callback that is running; use it
 * right before returning -1. printf-style. */
void aemp_fail(aemp_node *node, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------- monitors, guards */

/* Release what a guard guards (cancel the monitor, timer, registration) if it
 * is still active, then free the guard. A guard whose target already fired or
 * whose node was freed is inert; freeing it is still required. NULL is ok. */
void aemp_guard_free(aemp_guard *guard);

/* A monitor callback: `port` (borrowed) died with `reason` (borrowed array,
 * empty for a normal kill). Called exactly once. */
typedef void (*aemp_mon_fn)(aemp_node *node, const char *port, const cJSON *reason, void *ud);

/* The four forms of mon. Each fires exactly once when `port` dies (for a
 * nonexistent local port: from the event loop with ["no_such_port", ...]; for
 * a remote port whose node is lost: ["transport_error", NODE, TEXT]).
 * `guard` may be NULL (the monitor lives until it fires); else *guard gets a
 * new guard the caller must aemp_guard_free(), which cancels the monitor if
 * it has not fired. */

/* Call `fn(node, port, reason, ud)`. */
int aemp_mon(aemp_node *node, const char *port, aemp_mon_fn fn, void *ud, aemp_guard **guard);

/* Kill `victim` with the same reason, but only when the reason is abnormal. */
int aemp_mon_kil(aemp_node *node, const char *port, const char *victim, aemp_guard **guard);

/* Kill the port whose callback is running ($SELF) on abnormal death of
 * `port`; AEMP_ESTATE outside a callback. */
int aemp_mon_self(aemp_node *node, const char *port, aemp_guard **guard);

/* Send `msg` (taken; array) with the reason's elements appended to `dest`. */
int aemp_mon_snd(aemp_node *node, const char *port, const char *dest, cJSON *msg,
                 aemp_guard **guard);

/* mon_guard: call release(ud) when `port` dies (any reason) or the guard is
 * freed, whichever comes first; exactly once. */
int aemp_mon_guard(aemp_node *node, const char *port, void (*release)(void *ud), void *ud,
                   aemp_guard **guard);

/* --------------------------------------------------------- timers and cal */

typedef void (*aemp_after_fn)(aemp_node *node, void *ud);

/* Call fn(node, ud) once after `seconds`. `guard` as for monitors. */
int aemp_after(aemp_node *node, double seconds, aemp_after_fn fn, void *ud,
               aemp_guard **guard);

/* The result of aemp_cal(): exactly one of `reply` (the reply message array)
 * and `error` (a reason array: ["timeout"] or the reason the destination died)
 * is non-NULL; both borrowed for the call. */
typedef void (*aemp_cal_fn)(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud);

/* Send `msg` (taken; array) to `port` with the ID of a fresh reply port
 * appended, and call fn once with the first reply. With timeout > 0 the call
 * fails with ["timeout"] after that many seconds; with timeout <= 0 it waits
 * as long as `port` lives (monitor). Returns what aemp_snd() returned (0 or
 * AEMP_BUSY: fn will be called) or an AEMP_E* code (fn will not). */
int aemp_cal(aemp_node *node, const char *port, cJSON *msg, double timeout, aemp_cal_fn fn,
             void *ud);

/* ------------------------------------------------------ spawn, functions */

/* A registered function. For spawn `self` is the new port (its callbacks must
 * be set with aemp_rcv() or it will not exist); for a plain node-port call
 * `self` is NULL. `args` borrowed for the call. Return -1 to report failure
 * (kills `self` with ["die", MESSAGE]). */
typedef int (*aemp_func_fn)(aemp_node *node, const char *self, const cJSON *args, void *ud);

/* The ID of the node that sent what is running now: the spawn request or
 * node-port call inside a registered function, the message inside a receive
 * callback (our own ID for local ones). Borrowed for the duration of that
 * call; NULL outside such calls (timers, monitors, services at start). A
 * function that acts for the node that asked (as Global::connect does) uses
 * this instead of trusting a node ID in its arguments. */
const char *aemp_caller(const aemp_node *node);

/* Register `fn` under `name` (copied) on this node; replaces an existing entry.
 * Only registered names can be spawned or called from the network. */
int aemp_register(aemp_node *node, const char *name, aemp_func_fn fn, void *ud);

/* Spawn registered function `func` on node `nodeid` with `args` (taken; array
 * or NULL). Returns the new port's ID at once (caller frees), NULL on bad
 * arguments. On the local node the function runs from the event loop. */
char *aemp_spawn(aemp_node *node, const char *nodeid, const char *func, cJSON *args);

/* Start a service: a registered name, or "PATH.so:SYMBOL" which is dlopen()ed;
 * SYMBOL must have the type aemp_service_init_fn. */
typedef int (*aemp_service_init_fn)(aemp_node *node, const cJSON *args);
int aemp_service_start(aemp_node *node, const char *spec, char *err, size_t errlen);

/* ---------------------------------------------------------------- nodes */

/* Node up (up = 1) / down (up = 0, reason borrowed) callbacks. */
typedef void (*aemp_node_mon_fn)(aemp_node *node, const char *nodeid, int up,
                                 const cJSON *reason, void *ud);
int aemp_mon_nodes(aemp_node *node, aemp_node_mon_fn fn, void *ud, aemp_guard **guard);

/* The addresses this node listens on, as "host:port" strings (new array,
 * caller owns; empty before configuration or without binds). */
cJSON *aemp_listen_addrs(aemp_node *node);

/* New arrays of node IDs (caller owns). */
cJSON *aemp_up_nodes(aemp_node *node);
cJSON *aemp_known_nodes(aemp_node *node);
int aemp_node_is_up(aemp_node *node, const char *nodeid);

/* The node's counters as a new JSON object (caller owns; NULL when out of
 * memory): "node", "uptime" (seconds since configure), "ports",
 * "monitored_ports", "listen", "total" and "peers" (node ID -> object). The
 * total and each peer hold msgs_in, msgs_out, bytes_in, bytes_out (message
 * JSON bytes), connects, disconnects with disconnect_reasons
 * {closed_by_peer, timeout, protocol, error, replaced}, handshake_failures
 * with handshake_failure_causes {connect, protocol, auth, tls, timeout,
 * closed_by_peer, duplicate} and queued_bytes; a peer also up, seed and,
 * while up, addr, tls, outgoing; the total peers_up. Other nodes get the
 * same object from the node-port request ["devnull", "aemp_stats",
 * REPLYPORT] (`aemp stats NODE`), which Perl nodes silently discard. */
cJSON *aemp_stats(aemp_node *node);

/* --------------------------------------------------------------- groups */

/* Register local `port` (or this node's own ID, as 1.30's grp_reg GROUP =>
 * $NODE) in `group` network-wide until the port dies or the guard is
 * freed. AEMP_EEXIST if it is already a member, AEMP_EINVAL for a remote
 * port. */
int aemp_grp_reg(aemp_node *node, const char *group, const char *port, aemp_guard **guard);

/* Current members of `group` (new array of port IDs, caller owns) or NULL. */
cJSON *aemp_grp_get(aemp_node *node, const char *group);

/* Called on every change of `group`; first call (if there are members) with
 * all members as `added`. All arrays borrowed for the call. */
typedef void (*aemp_grp_fn)(aemp_node *node, const char *group, const cJSON *members,
                            const cJSON *added, const cJSON *removed, void *ud);
int aemp_grp_mon(aemp_node *node, const char *group, aemp_grp_fn fn, void *ud,
                 aemp_guard **guard);

/* -------------------------------------------------------------- logging */

/* Levels as AnyEvent::Log: 1 fatal .. 5 warn, 6 note, 7 info, 8 debug,
 * 9 trace. The process-wide level starts from AEMP_WARNLEVEL or
 * PERL_ANYEVENT_MP_WARNLEVEL, default 5. */
void aemp_log_set_level(int level);
int aemp_log_level(void);
void aemp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a line another node can cause (a refused request, a bad
 * greeting): each call site (its `fmt`, a string literal) writes at most 20
 * lines at once and 5 a second after that; the count of lines left out goes
 * with the site's next line. Every line (of both) has its control
 * characters and invalid UTF-8 escaped (\n, \x1b), so text from a peer
 * cannot forge a line. */
void aemp_log_peer(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Log every message sent and received (level 9 lines written regardless of
 * the level) when on. A new node starts with it on when AEMP_TRACE, else
 * PERL_ANYEVENT_MP_TRACE (1.30's), is set to a value other than "" or "0". */
void aemp_trace_set(aemp_node *node, int on);

/* ----------------------------------------------------- data connections */

/* A data connection (1.30's AnyEvent::MP::DataConn) is a raw byte stream
 * between two nodes for bulk data, made on the ordinary listening port and
 * authenticated like node connections (same secret or certificates, TLS
 * when both nodes have certificates). Each end gets a libevent bufferevent
 * that the receiver of the callback OWNS from then on: it sets its own
 * callbacks and ends it with aemp_dataconn_close() (or bufferevent_free()).
 * Reading and writing are enabled, no callbacks are set, and the input
 * buffer may already hold data that arrived with the handshake: look at it
 * before returning (or call bufferevent_trigger()).
 *
 * Between two nodes the bufferevent is a filter (encrypting with TLS,
 * passing bytes unchanged without) over the socket's bufferevent
 * (bufferevent_get_underlying()), which holds up to 1 MB more on its way
 * out: an empty output buffer does NOT mean everything was sent, and
 * bufferevent_free() drops what is still on its way (with TLS, easily the
 * tail of a stream). To end a stream, call aemp_dataconn_close(): it sends
 * everything, then the end. A socket's EOF and a TLS close_notify both show
 * as BEV_EVENT_EOF. On the node itself the two ends are a socketpair. The
 * bufferevent uses the node's event_base: free it before a node that owns
 * its base.
 *
 * What other nodes make a node hold is bounded: data connections they asked
 * for, expected or in use (until freed), count toward a total below the
 * descriptor limit (RLIMIT_NOFILE) and toward each node's share of it; a
 * request beyond either is refused (the connecting side's callback gets
 * the reason). Expectations of a node that goes down are dropped. */
struct bufferevent;

/* The function a data connection calls on the receiving node with the
 * connector's `args` (borrowed array, for the call) and the connection
 * (`bev`, owned by the function from the call on). */
typedef void (*aemp_dataconn_fn)(aemp_node *node, struct bufferevent *bev, const cJSON *args,
                                 void *ud);

/* Register `fn` under `name` (copied) as a data-connection function (its
 * own namespace, beside aemp_register()'s); replaces an existing entry.
 * Perl's connect_to names any Perl function; a C node accepts only these. */
int aemp_dataconn_register(aemp_node *node, const char *name, aemp_dataconn_fn fn, void *ud);

/* The connecting side's callback, called exactly once from the event loop
 * (never inside aemp_dataconn_connect()), unless the node is freed first:
 * with `bev` (owned by the callback from then on) and error NULL, or with
 * bev NULL and `error` (borrowed for the call) saying what failed. */
typedef void (*aemp_dataconn_cb)(aemp_node *node, struct bufferevent *bev, const char *error,
                                 void *ud);

/* 1.30's connect_to: make a data connection to node `target` (a node ID or
 * a port ID, whose node is used), calling data-connection function
 * `initfunc` (a Perl function name for a Perl node) there with the elements
 * of `initdata` (taken; array or NULL) and the remote end, and `cb` here
 * with the local end. Gives up after `timeout` seconds (it must cover a few
 * network round trips). Either node needs listeners. On the node itself
 * the two ends are a socketpair. 0, or AEMP_EINVAL / AEMP_ENOMEM (then cb
 * is never called). `ud` must stay valid until cb runs. */
int aemp_dataconn_connect(aemp_node *node, const char *target, double timeout,
                          const char *initfunc, cJSON *initdata, aemp_dataconn_cb cb, void *ud);

/* Called once by aemp_dataconn_close() when the connection is gone: status
 * 0 when everything was written (and the sending side shut down), or
 * AEMP_ETIMEDOUT / AEMP_EIO when it could not be within the timeout. */
typedef void (*aemp_dataconn_closed_cb)(aemp_node *node, int status, void *ud);

/* End data connection `bev` (taken; either end, also of a socketpair)
 * without losing data: write everything still queued in plain and TLS
 * alike, end a TLS session with close_notify, shut the sending side down,
 * read and discard until the other side closes too, then free it. Gives up
 * after `timeout` seconds. `cb` (NULL: none) runs then from the event loop,
 * never inside this call, unless the node is freed first (which frees bev).
 * Callable from bev's own callbacks; bev must not be used afterwards. 0, or
 * AEMP_EINVAL / AEMP_ENOMEM (bev freed, cb never called). */
int aemp_dataconn_close(aemp_node *node, struct bufferevent *bev, double timeout,
                        aemp_dataconn_closed_cb cb, void *ud);

/* --------------------------------------------------------- configuration */

/* The configuration file path: $PERL_ANYEVENT_MP_RC, else $AEMP_RC, else
 * $HOME/.perl-anyevent-mp. New string, caller frees; NULL when out of
 * memory or when none of the three is set (no guessing: aemp_configure()
 * and aemp_config_load() then fail with AEMP_ECONFIG saying so). */
char *aemp_config_path(void);

/* ------------------------------------------- more of 1.30's Kernel and MP */

/* 1 when `port` (a port ID or a bare node ID) belongs to this node. */
int aemp_port_is_local(const aemp_node *node, const char *port);

/* 1 when this node knows `nodeid`: itself, a node that is up, one being
 * connected to, or one whose addresses it has learned. */
int aemp_node_is_known(aemp_node *node, const char *nodeid);

/* snd_on: have node `nodeid` send `msg` (taken; array) to `port` (its node
 * port relays ["snd", PORT, MSG...]). AEMP_EINVAL for bad arguments;
 * AEMP_BUSY as for aemp_snd(). */
int aemp_snd_on(aemp_node *node, const char *nodeid, const char *port, cJSON *msg);

/* snd_to_func: call the function registered as `func` on node `nodeid` with
 * `args` (taken; array or NULL): ["", FUNC, ARGS...] to its node port. No
 * reply; on this node the call runs from the event loop. */
int aemp_snd_to_func(aemp_node *node, const char *nodeid, const char *func, cJSON *args);

/* The message form of after: send `msg` (taken; array) to `port` after
 * `seconds`. `guard` as for monitors: freeing it before the timer fires
 * cancels the send. */
int aemp_after_snd(aemp_node *node, double seconds, const char *port, cJSON *msg,
                   aemp_guard **guard);

/* One tag of aemp_rcv_tags(): `tag` NULL is the default callback; `fn` NULL
 * removes the callback. */
struct aemp_rcv_tag {
    const char *tag;
    aemp_rcv_fn fn;
    void *ud;
};

/* rcv with several tags at once: aemp_rcv() for each of `n` entries (array
 * borrowed), all or none: the arguments are checked first. */
int aemp_rcv_tags(aemp_node *node, const char *port, const struct aemp_rcv_tag *tags,
                  size_t n);

/* port { ... }: a new local port with default callback `fn` (not NULL; `ud`
 * borrowed as for aemp_rcv()) in one call. Returns its ID (caller frees) or
 * NULL when out of memory or fn is NULL. */
char *aemp_port_cb(aemp_node *node, aemp_rcv_fn fn, void *ud);

/* peval: run fn(node, port, args, ud) as if it were a callback of `port`:
 * aemp_self() is `port` during the call and a return of -1 kills `port` with
 * ["die", MESSAGE] (aemp_fail() sets MESSAGE). `args` borrowed. Returns what
 * fn returned, or AEMP_EINVAL for a missing port or fn. */
int aemp_peval(aemp_node *node, const char *port, aemp_func_fn fn, const cJSON *args,
               void *ud);

/* psub: remember a port (`port`, or aemp_self() when NULL) and a function,
 * to run later with aemp_psub_call() as aemp_peval() would, e.g. from a
 * libevent callback of one's own. NULL outside a callback when port is NULL,
 * or when out of memory. Free with aemp_psub_free(). */
typedef struct aemp_psub aemp_psub;
aemp_psub *aemp_psub_new(aemp_node *node, const char *port, aemp_func_fn fn, void *ud);
/* Run it (args borrowed). AEMP_ENOENT without running when the remembered
 * local port has died; else what the function returned. */
int aemp_psub_call(aemp_psub *ps, const cJSON *args);
/* The remembered port (borrowed, lives as long as ps). */
const char *aemp_psub_port(const aemp_psub *ps);
void aemp_psub_free(aemp_psub *ps);

/* ---------------------------------------------------------- log catching */

/* A log line: its level and text without date or level (borrowed for the
 * call). */
typedef void (*aemp_log_fn)(int level, const char *text, void *ud);

/* 1.30's @WARN: call fn for every log line of the process at or below
 * `max_level`, whatever aemp_log_level() is (which still decides what goes
 * to stderr: aemp_log_set_level(0) routes lines to fn only). One handler
 * per process; a new call replaces it, fn NULL removes it. fn runs inside
 * aemp_log(), which may be inside any library code: it must not call back
 * into the library (queue and use a timer instead). Lines logged while fn
 * runs are not passed to it again. 0 or AEMP_ENOMEM. */
int aemp_log_set_handler(aemp_log_fn fn, void *ud, int max_level);

/* A line caught from node `nodeid` (all arguments borrowed for the call). */
typedef void (*aemp_logline_fn)(aemp_node *node, const char *nodeid, int level,
                                const char *text, void *ud);

/* 1.30's AnyEvent::MP::LogCatcher::catch: catch the log lines at or below
 * `level` of every other node that is or comes up (or only of the node IDs
 * in `nodes`, borrowed array, which are contacted at once). One local port
 * per node asks it through AnyEvent::MP::LogCatcher::connect; when the node
 * goes, the port is killed, and a node that comes up again is asked again.
 * fn NULL prints "DATE [NODE] <LEVEL> TEXT" on stderr as 1.30 does. A new
 * call replaces the previous one; level < 0 stops catching. Every node
 * serves catchers (up to 64), and the services entry
 * ["AnyEvent::MP::LogCatcher::catch", LEVEL] starts this one. */
int aemp_log_catch(aemp_node *node, int level, const cJSON *nodes, aemp_logline_fn fn,
                   void *ud);

/* ---------------------------------------------- configuration for programs */

/* 1.30's AnyEvent::MP::Config. Load the configuration file at `path` (NULL:
 * aemp_config_path()); a missing file is {"version":1}. *out gets a new
 * object the caller owns. 0 or AEMP_ECONFIG/AEMP_ENOMEM with a message. */
int aemp_config_load(const char *path, cJSON **out, char *err, size_t errlen);

/* find_profile: the effective configuration of `profile` (NULL: the host's
 * node name) in `cfg` (borrowed, as loaded): built-in defaults < `kv`
 * (borrowed object or NULL) < the file's global keys < the parent chain <
 * the profile, as aemp_configure() uses it. *out: new object, caller owns. */
int aemp_config_find_profile(const cJSON *cfg, const char *profile, const cJSON *kv,
                             cJSON **out, char *err, size_t errlen);

/* Save `cfg` (borrowed) to `path` (NULL: aemp_config_path()) atomically, in
 * the layout the Perl tool writes. 0 or AEMP_EIO with a message. */
int aemp_config_save(const char *path, const cJSON *cfg, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
