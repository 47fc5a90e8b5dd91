/* config.h - the configuration file shared with the Perl aemp tool:
 * loading, profile layering with parent chains, atomic saving.
 * Pure except config_load()/config_save(), which do file I/O. */
#ifndef AEMP_CONFIG_H
#define AEMP_CONFIG_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* Built-in defaults (new object, caller owns): monitor_timeout 30,
 * connect_interval 2, binds ["*"], seeds [], services [], framing_format
 * ["json"], auth_offer, auth_accept, autocork false, nodelay true. */
cJSON *config_defaults(void);

/* Read the file at `path` (borrowed). A missing file yields an empty config
 * {"version":1}. A file that cannot be read or parsed, or whose top level is
 * not an object: AEMP_ECONFIG with a message naming the file and the
 * problem. *out gets a new object the caller owns. */
int config_load(const char *path, cJSON **out, char *err, size_t errlen);

/* The configuration file's path into *out (new string, caller frees):
 * $PERL_ANYEVENT_MP_RC, else $AEMP_RC, else $HOME/.perl-anyevent-mp.
 * AEMP_ECONFIG with a sentence in err when none of them is set (no
 * guessing), AEMP_ENOMEM. aemp_config_path() is this without the reason. */
int config_path(char **out, char *err, size_t errlen);

/* The shipped profiles (profiles/NAME.json, installed under the data dir, or the
 * directory in $AEMP_PROFILE_DIR) as one object {"NAME": {...}}; new object,
 * caller owns; empty object when none are found. */
cJSON *config_shipped_profiles(void);

/* Effective configuration of `profile` (borrowed name; NULL = node name):
 * defaults < kv (borrowed object or NULL) < global part of `file` < parent
 * chain root first < the profile. Shipped profiles lie beneath the file's
 * own profiles of the same name. A parent cycle is AEMP_ECONFIG naming the
 * cycle ("a -> b -> a"); an unknown parent is AEMP_ECONFIG too. Adds
 * "nodeid" (profile's nodeid, else the profile name) and leaves "anon/"
 * untouched (the node replaces it). *out: new object, caller owns. */
int config_effective(const cJSON *file, const char *profile, const cJSON *kv, cJSON **out,
                     char *err, size_t errlen);

/* config_load() of the configuration file (aemp_config_path()), then
 * config_effective() of `profile` with `kv` (both borrowed): what a node
 * configured that way runs with. *out: new object, caller owns. */
int config_load_effective(const char *profile, const cJSON *kv, cJSON **out, char *err,
                          size_t errlen);

/* Write `cfg` (borrowed) to `path` atomically: PATH~new~, old file linked as
 * PATH~, rename over PATH. AEMP_EIO with a message on failure. */
int config_save(const char *path, const cJSON *cfg, char *err, size_t errlen);

/* `v` (borrowed) as the file holds it: JSON::XS's ->pretty style (3-space
 * indent, `"key" : value`), big integers with all their digits, U+0000 as
 * \u0000; no final newline. New string, caller frees; NULL on ENOMEM. */
char *config_pretty(const cJSON *v);

/* The host's node name (uname -n) into buf. */
void config_nodename(char *buf, size_t len);

#endif
