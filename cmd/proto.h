/* proto.h - what the protocol subcommand files (msg_cmds.c, trace_cmd.c,
 * run_cmd.c, stats_cmds.c, logs_cmds.c) share: the state of one run,
 * options, the anonymous node, signals, messages and results. Implemented
 * in proto_common.c. */
#ifndef AEMP_PROTO_H
#define AEMP_PROTO_H

#include "aemp.h"

#include <event2/event.h>
#include <stdio.h>

#define DEFAULT_TIMEOUT 5.0

/* Options a subcommand accepts besides --timeout (bits of pst.allowed). */
enum {
    OPT_DOT = 1,   /* trace --dot */
    OPT_JSON = 2,  /* --json: one JSON value per line on stdout */
    OPT_QUIET = 4, /* snd --quiet: nothing on stdout on success */
    OPT_WATCH = 8, /* stats --watch / top: --count N, --interval S */
};

/* State of one protocol subcommand run. */
struct pst {
    aemp_node *node;
    const char *sub;             /* subcommand name, for messages */
    unsigned allowed;            /* OPT_* the subcommand accepts */
    double timeout;              /* seconds */
    int timeout_given;           /* --timeout on the command line */
    int dot, json, quiet, watch; /* options given */
    int verbose;                 /* --verbose: the anonymous node's log lines too */
    int count;                   /* --count N (0: until q or a signal) */
    double interval;             /* --interval S (default 1) */
    int interval_given;          /* --interval on the command line */
    int literal_from;            /* parse_opts: positionals from this index followed `--` */
    int done;                    /* a result or failure was reported */
    int status;                  /* exit status once done */
    char *target;                /* port or node the command talks to (owned) */
    char *request;               /* cal to a node port: the request name (borrowed from argv) */
    aemp_guard *timer;           /* overall timeout, or NULL */
    /* trace, stats */
    cJSON *results; /* object NODE -> answer, or null (owned) */
    int pending;
    char *first; /* first node asked (owned) */
};

/* Print "aemp: SUB: ..." on stderr and return `status`. */
int msg(struct pst *st, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Report the end of the command and stop the loop. The first call wins. */
void finish(struct pst *st, int status);

/* Parse options (--timeout S, --timeout=S, the ones in st->allowed, `--`
 * ending options). With `anywhere`, options may also follow the positional
 * arguments (subcommands whose positionals are not a message); without,
 * the first positional ends them, and a later first `--` is dropped and
 * marks where literal words start (st->literal_from, an index of pos[]).
 * The positional arguments are collected, in order, into pos[] (borrowed
 * from argv), *npos their count. Returns an exit status. */
int parse_opts(struct pst *st, int argc, char **argv, int anywhere, char **pos, int *npos);

/* The log level of a protocol subcommand's anonymous node: 3, so that a
 * failure is the one line the subcommand prints; 7 with `verbose`;
 * AEMP_WARNLEVEL or PERL_ANYEVENT_MP_WARNLEVEL, when set, win. */
void cli_log_level(int verbose);

/* Start the anonymous node from profile "aemp"; print why and return an
 * exit status on failure. */
int start_anon(struct pst *st);

/* SIGINT and SIGTERM on `base` call fn(signal, what, arg) until
 * stop_signals_free(); the two events go to ev[]. 0, or -1 when one could not
 * be installed (free them all the same). */
int stop_signals_add(struct event_base *base, event_callback_fn fn, void *arg, struct event *ev[2]);
void stop_signals_free(struct event *ev[2]);

/* Run the loop until done; the loop ending by itself is a failure. */
void run_loop(struct pst *st);

/* Free what the run holds (the guard may be NULL); returns `status`. */
int cleanup(struct pst *st, aemp_guard *timer_guard, int status);

/* Print why st->target gave no answer within the timeout as the failure of
 * the run: its node not reachable (with what our node saw: no seeds, no
 * seed answering, the node unknown to the network), or up but silent (to
 * st->request if set). Returns EXIT_FAIL. */
int fail_no_answer(struct pst *st);

/* A port or node ID a user typed (`what`: "port" or "node", for the
 * message): refuse what cannot be one, with exit status 2. */
int check_id(struct pst *st, const char *id, const char *what);

/* Options anywhere and exactly one positional argument, a port or node ID
 * (`what` names it in messages: "PORT", "NODE"), checked with check_id():
 * *arg points into argv, or the exit status is returned. */
int parse_one(struct pst *st, int argc, char **argv, const char *what, const char **arg);

/* `v` on one line of stdout as compact JSON. */
void print_json_line(const cJSON *v);
/* A string from a message as its bytes: C0 80 (U+0000 inside the node,
 * aemp.h) written as the NUL byte it stands for. */
void put_text(FILE *out, const char *s);

/* JSON of an array without its outer brackets on one line of `out`. */
void print_unbracketed(FILE *out, const cJSON *arr);

/* Strings of a JSON array or the keys of an object, sorted (borrowed; new
 * array of pointers, caller frees). */
const char **sorted_strings(const cJSON *c, int keys, int *n);

#endif
