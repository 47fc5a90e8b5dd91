/* metrics.h - the node's figures in the Prometheus text exposition format
 * (version 0.0.4) for GET /metrics: aemp_ names, _total counters, base
 * units, HELP and TYPE for every family, escaped label values.
 *
 * The number of series is bounded whatever peers do: per-peer series exist
 * for nodes that are up, or went down less than 5 x monitor_timeout (at
 * least 60 s) ago (then they go away), at most METRICS_MAX_PEERS of them; anonymous nodes
 * share the one peer="anon/" series and nodes past the limit the one
 * peer="other"; per-group series for at most METRICS_MAX_GROUPS groups. */
#ifndef AEMP_OBSERVE_METRICS_H
#define AEMP_OBSERVE_METRICS_H

#include "aemp.h"

struct evbuffer;

#define METRICS_MAX_PEERS 500
#define METRICS_MAX_GROUPS 100

struct metrics;

/* The state the figures need between scrapes (node ups and downs as they
 * happen, when each node went down); NULL when out of memory. Free with
 * metrics_free() before the node. */
struct metrics *metrics_new(aemp_node *node);
void metrics_free(struct metrics *m);

/* Append the whole exposition to `out`. */
void metrics_render(struct metrics *m, struct evbuffer *out);

/* One more HTTP request served (aemp_http_requests_total). */
void metrics_count_request(struct metrics *m);

/* 1 when `nodeid` went down less than the expiry time ago (its series
 * and its place on the page are kept until then), else 0. */
int metrics_recently_down(struct metrics *m, const char *nodeid);

/* Append to `arr` the IDs of the nodes that went down less than the
 * expiry time ago (new strings). */
void metrics_recent_downs(struct metrics *m, cJSON *arr);

/* Escape a Prometheus label value (backslash, double quote, newline) into
 * buf; it is cut short to fit. */
void metrics_escape(const char *s, char *buf, size_t len);

#endif
