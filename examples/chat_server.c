/* chat_server.c - eg/chat_server of AnyEvent::MP 1.30 in C, the server of
 * the chat by "traditional message passing": a port in the group
 * "eg_chat_server" that takes ["join", CLIENT_PORT, NICK] and
 * ["privmsg", NICK, TEXT] and relays every line as [LINE] to all clients
 * that joined. It monitors each client port and tells everybody when one
 * quits. It pairs with chat_client, the C one or the Perl one.
 *
 *   standalone:  chat_server [PROFILE]
 *   service:     aemp run services '["PATH/libchat_server.so:chat_server_init"]'
 */
#define EG_SYMBOL chat_server
#define EG_USAGE "relays chat lines between chat_client programs (group eg_chat_server)"
#include "eg_common.h"

struct client {
    struct client *next;
    struct server *srv;
    char *port;
    char *nick;
    aemp_guard *mon;
};

struct server {
    char *port;
    aemp_guard *reg;
    struct client *clients;
};

/* msg: print "relaying: TEXT" and send [TEXT] to every client. */
static void relay(aemp_node *node, struct server *srv, const char *text)
{
    eg_say("relaying: %s\n", text);
    for (struct client *c = srv->clients; c; c = c->next) {
        cJSON *msg = cJSON_CreateArray();
        cJSON_AddItemToArray(msg, cJSON_CreateString(text));
        aemp_snd(node, c->port, msg);
    }
}

static void client_free(struct client *c)
{
    aemp_guard_free(c->mon);
    free(c->port);
    free(c->nick);
    free(c);
}

/* The elements of `arr` joined by spaces, as Perl's "@_" prints them. */
static void join_words(const cJSON *arr, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        char *j = cJSON_IsString(e) ? NULL : cJSON_PrintUnformatted(e);
        off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s", off ? " " : "",
                                j ? j : cJSON_IsString(e) ? e->valuestring : "");
        free(j);
        if (off >= len) break;
    }
}

static void on_client_dead(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct client *c = ud;
    struct server *srv = c->srv;
    for (struct client **p = &srv->clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    char why[512], line[1024];
    join_words(reason, why, sizeof why);
    snprintf(line, sizeof line, "%s (quits, %s)", c->nick, why);
    client_free(c); /* its monitor fired: the guard is inert */
    relay(node, srv, line);
}

/* rcv $server, join => sub { my ($client, $nick) = @_; ... } */
static int on_join(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct server *srv = ud;
    const cJSON *port = cJSON_GetArrayItem(msg, 1), *nick = cJSON_GetArrayItem(msg, 2);
    if (!cJSON_IsString(port)) return 0;
    struct client *c = calloc(1, sizeof *c);
    if (!c || !(c->port = strdup(port->valuestring)) ||
        !(c->nick = strdup(cJSON_IsString(nick) ? nick->valuestring : "anonymous")) ||
        aemp_mon(node, c->port, on_client_dead, c, &c->mon)) {
        if (c) client_free(c);
        return 0;
    }
    c->srv = srv;
    c->next = srv->clients;
    srv->clients = c;
    char line[1024];
    snprintf(line, sizeof line, "%s (joins)", c->nick);
    relay(node, srv, line);
    return 0;
}

/* rcv $server, privmsg => sub { my ($nick, $msg) = @_; ... } */
static int on_privmsg(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    const cJSON *nick = cJSON_GetArrayItem(msg, 1), *text = cJSON_GetArrayItem(msg, 2);
    char line[4200];
    snprintf(line, sizeof line, "%s: %s", cJSON_IsString(nick) ? nick->valuestring : "?",
             cJSON_IsString(text) ? text->valuestring : "");
    relay(node, ud, line);
    return 0;
}

static int eg_setup(aemp_node *node, const cJSON *args, int standalone, void **state)
{
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv || !(srv->port = aemp_port(node))) {
        free(srv);
        return -1;
    }
    *state = srv;
    const struct aemp_rcv_tag tags[] = {{"join", on_join, srv}, {"privmsg", on_privmsg, srv}};
    int rc = aemp_rcv_tags(node, srv->port, tags, 2);
    if (!rc) rc = aemp_grp_reg(node, "eg_chat_server", srv->port, &srv->reg);
    if (rc) {
        fprintf(stderr, "chat_server: %s\n", aemp_strerror(rc));
        return -1;
    }
    eg_say("chat server ready on %s (group eg_chat_server)\n", aemp_node_id(node));
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
    free(srv->port);
    free(srv);
}
