/* config_check.h - what values the configuration keys may hold: the types
 * of known keys, the syntax of bind and seed addresses, the names of
 * framings and auth methods. Pure: no I/O.
 * Every check writes one sentence naming the key (and where it was found)
 * into err and returns AEMP_ECONFIG; 0 when the value is usable. */
#ifndef AEMP_CONFIG_CHECK_H
#define AEMP_CONFIG_CHECK_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* One address of `key` ("binds" or "seeds"): "host:port", "[v6addr]:port",
 * "port" alone or "host" alone (the default port). A port is a decimal
 * number 1..65535; binds also take 0 or "*" (any free port) and the host
 * "*" (every address), seeds need a real host. */
int config_check_addr(const char *key, const char *addr, char *err, size_t errlen);

/* The value `v` (borrowed) of a known key; unknown keys pass. */
int config_check_value(const char *key, const cJSON *v, char *err, size_t errlen);

/* What a value of configuration key `key` is, from the one table of known
 * keys the checks use: how a value typed on the command line is read
 * (cmd/config_value.c). CONFIG_ANY for keys not in the table. */
enum config_kind { CONFIG_ANY, CONFIG_STRING, CONFIG_LIST, CONFIG_NUMBER, CONFIG_BOOL };
enum config_kind config_key_kind(const char *key);

/* The i-th known key (static), in the table's order; NULL past the end. */
const char *config_key_at(size_t i);

/* A few words saying what `key` holds ("seconds", "bytes", "a boolean"),
 * static; NULL for keys not in the table. */
const char *config_key_what(const char *key);

/* The framings of `framing_format` (borrowed list, checked) that this node
 * reads, in its order: a new array to offer in the greeting and to choose
 * from, so a peer never picks one we cannot read. NULL with a message in
 * err when none is left (a configuration that cannot start). NULL
 * framing_format (the key absent): the default, json. */
cJSON *config_framings_read(const cJSON *framing_format, char *err, size_t errlen);

/* Every known key of one layer `obj` (an object: the global part, a
 * profile, configure arguments). `where` (borrowed, may be NULL) names the
 * layer in messages: "profile 'seed'" gives "profile 'seed': \"secret\"
 * must be ...". A layer that is not an object fails too. */
int config_check_layer(const cJSON *obj, const char *where, char *err, size_t errlen);

/* The whole file: "profile" an object of profile objects, the global part
 * and every profile checked with config_check_layer(). Stops at the first
 * problem unless `each` is given: then each(problem text, ud) is called
 * for every one and the result is AEMP_ECONFIG if there was any. */
int config_check_file(const cJSON *file, void (*each)(const char *problem, void *ud), void *ud,
                      char *err, size_t errlen);

#endif
