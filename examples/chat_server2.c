/* chat_server2.c - eg/chat_server2 of AnyEvent::MP 1.30 in C, the server of
 * the "bridge-head" chat: it registers its node ID in the group
 * "eg_chat_server2" and the function "::client_connect" (1.30 resolves that
 * name to main::client_connect; both names are registered). A client spawns
 * ::client_connect on this node with [CLIENT_PORT, NICK]; the spawned port
 * (the client's bridge head on the server) relays every line it gets to all
 * connected clients as [TEXT]. The handler monitors the client port and the
 * client monitors the handler, so when either dies the other side cleans
 * up: here the handler is killed, the client leaves the list and everybody
 * is told that NICK quit. It pairs with chat_client2, the C one or the Perl
 * one.
 *
 *   standalone:  chat_server2 [PROFILE]
 *   service:     aemp run services '["PATH/libchat_server2.so:chat_server2_init"]'
 */
#define EG_SYMBOL chat_server2
#define EG_USAGE "relays chat lines between chat_client2 programs"
#include "eg_common.h"

struct client;

struct server {
    aemp_guard *reg;  /* our node ID in the group "eg_chat_server2" */
    struct client *clients;
};

struct client {
    struct server *srv;
    struct client *next;
    char *self;       /* the spawned handler port */
    char *client;     /* the client's port on its node */
    char *nick;
    char *why;        /* how the client went, for the quit line */
    aemp_guard *mon_client, *mon_self;
};

static void broadcast(aemp_node *node, struct server *srv, const char *text)
{
    eg_say("relaying: %s\n", text);
    for (struct client *c = srv->clients; c; c = c->next) {
        cJSON *msg = cJSON_CreateArray();
        cJSON_AddItemToArray(msg, cJSON_CreateString(text));
        aemp_snd(node, c->client, msg);
    }
}

static void client_free(struct client *c)
{
    aemp_guard_free(c->mon_client);
    aemp_guard_free(c->mon_self);
    free(c->self);
    free(c->client);
    free(c->nick);
    free(c->why);
    free(c);
}

static char *reason_text(const cJSON *reason)
{
    if (!cJSON_GetArraySize(reason)) return strdup("normal");
    return cJSON_PrintUnformatted(reason);
}

/* The handler port died (killed below, or anything else): leave the list. */
static void on_self_dead(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct client *c = ud;
    struct server *srv = c->srv;
    for (struct client **p = &srv->clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    char *why = c->why ? NULL : reason_text(reason);
    char line[1024];
    snprintf(line, sizeof line, "%s (quits, %s)", c->nick, c->why ? c->why : why ? why : "?");
    free(why);
    client_free(c); /* mon_self fired and is inert; mon_client is cancelled */
    broadcast(node, srv, line);
}

/* The client port died: kill its bridge head. on_self_dead() cleans up. */
static void on_client_dead(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct client *c = ud;
    free(c->why);
    c->why = reason_text(reason);
    aemp_kil(node, c->self, NULL); /* may free c */
}

static int on_line(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct client *c = ud;
    const cJSON *text = cJSON_GetArrayItem(msg, 0);
    if (!cJSON_IsString(text)) return 0;
    char line[4200];
    snprintf(line, sizeof line, "%s: %s", c->nick, text->valuestring);
    broadcast(node, c->srv, line);
    return 0;
}

/* ::client_connect, spawned by a client with [CLIENT_PORT, NICK]. */
static int client_handler(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    struct server *srv = ud;
    const cJSON *port = cJSON_GetArrayItem(args, 0), *nick = cJSON_GetArrayItem(args, 1);
    if (!self || !cJSON_IsString(port)) {
        aemp_fail(node, "::client_connect: spawn it with [CLIENT_PORT, NICK]");
        return -1;
    }
    struct client *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->srv = srv;
    c->self = strdup(self);
    c->client = strdup(port->valuestring);
    c->nick = strdup(cJSON_IsString(nick) ? nick->valuestring : "anonymous");
    if (!c->self || !c->client || !c->nick || aemp_rcv(node, self, NULL, on_line, c) ||
        aemp_mon(node, c->self, on_self_dead, c, &c->mon_self)) {
        client_free(c);
        aemp_fail(node, "::client_connect: out of memory");
        return -1;
    }
    c->next = srv->clients;
    srv->clients = c;
    /* From here on c belongs to on_self_dead(). */
    if (aemp_mon(node, c->client, on_client_dead, c, &c->mon_client)) {
        aemp_fail(node, "::client_connect: cannot monitor %s", c->client);
        return -1;
    }
    char line[1024];
    snprintf(line, sizeof line, "%s (joins)", c->nick);
    broadcast(node, srv, line);
    return 0;
}

static int eg_setup(aemp_node *node, const cJSON *args, int standalone, void **state)
{
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv) return -1;
    *state = srv;
    int rc = aemp_register(node, "::client_connect", client_handler, srv);
    if (!rc) rc = aemp_register(node, "main::client_connect", client_handler, srv);
    if (!rc) rc = aemp_grp_reg(node, "eg_chat_server2", aemp_node_id(node), &srv->reg);
    if (rc) {
        fprintf(stderr, "chat_server2: %s\n", aemp_strerror(rc));
        return -1;
    }
    eg_say("chat server ready on %s (group eg_chat_server2)\n", aemp_node_id(node));
    return 0;
}

static void eg_free(void *state)
{
    struct server *srv = state;
    if (!srv) return;
    while (srv->clients) {
        struct client *c = srv->clients;
        srv->clients = c->next;
        client_free(c);
    }
    aemp_guard_free(srv->reg);
    free(srv);
}
