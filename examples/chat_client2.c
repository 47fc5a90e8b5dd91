/* chat_client2.c - eg/chat_client2 of AnyEvent::MP 1.30 in C, the client of
 * the "bridge-head" chat.
 *
 * It waits (aemp_grp_mon) for a member of the group "eg_chat_server2" (the
 * server registers its node ID), makes a port that prints every line it is
 * sent, and spawns "::client_connect" ON THE SERVER'S NODE with
 * [CLIENT_PORT, NICK]. That spawned port is the client's bridge head: lines
 * read from stdin go to it as [LINE], and the server relays them to every
 * client. The client monitors the handler and the handler the client port:
 * when the handler (or the server's node) goes, the client port is killed
 * and the client connects again once a server is there. It pairs with
 * chat_server2, the C one or the Perl one. Beyond the Perl script: input is
 * read from the first line the server sends (our own "NICK (joins)"), so
 * lines piped in are not lost while connecting, and at the end of stdin the
 * standalone program kills its port and exits.
 *
 *   standalone:  chat_client2 PROFILE|- [NICK]
 *   service:     aemp run services '[["PATH/libchat_client2.so:chat_client2_init", "NICK"]]'
 *                (reads the stdin of `aemp run`)
 */
#define EG_SYMBOL chat_client2
#define EG_USAGE "reads lines from stdin and chats through chat_server2; ARG: NICK"
#include "eg_common.h"
#include "eg_lines.h"

struct chat {
    aemp_node *node;
    int standalone;
    char *nick;
    char *client;   /* our port, gets the relayed lines */
    char *handler;  /* our bridge head on the server's node */
    aemp_guard *grp, *mon_handler, *retry, *quit;
    struct eg_lines input; /* stdin, read from the first line we are sent */
};

static void try_connect(struct chat *ch);
static void start_input(struct chat *ch);

static int on_text(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    const cJSON *text = cJSON_GetArrayItem(msg, 0);
    if (cJSON_IsString(text)) eg_say("%s\n", text->valuestring);
    /* The first line (our own "NICK (joins)") shows the handler is there. */
    start_input(ud);
    return 0;
}

static void retry_cb(aemp_node *node, void *ud)
{
    struct chat *ch = ud;
    aemp_guard_free(ch->retry); /* fired, inert */
    ch->retry = NULL;
    try_connect(ch);
}

static void on_handler_dead(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct chat *ch = ud;
    char *why = cJSON_PrintUnformatted(reason);
    eg_say("(disconnected: %s)\n", why ? why : "?");
    free(why);
    aemp_guard_free(ch->mon_handler); /* fired, inert */
    ch->mon_handler = NULL;
    free(ch->handler);
    ch->handler = NULL;
    if (ch->client) aemp_kil(node, ch->client, NULL);
    free(ch->client);
    ch->client = NULL;
    if (!ch->quit && !ch->retry) aemp_after(node, 1.0, retry_cb, ch, &ch->retry);
}

static void try_connect(struct chat *ch)
{
    aemp_node *node = ch->node;
    if (ch->handler || ch->retry || ch->quit) return;
    cJSON *members = aemp_grp_get(node, "eg_chat_server2");
    const cJSON *first = cJSON_GetArrayItem(members, 0);
    char *srvnode = cJSON_IsString(first) ? aemp_node_of(first->valuestring) : NULL;
    cJSON_Delete(members);
    if (!srvnode) return; /* the group monitor calls again */
    ch->client = aemp_port(node);
    if (!ch->client || aemp_rcv(node, ch->client, NULL, on_text, ch)) {
        fprintf(stderr, "chat_client2: cannot make a port\n");
        free(srvnode);
        return;
    }
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateString(ch->client));
    cJSON_AddItemToArray(args, cJSON_CreateString(ch->nick));
    ch->handler = aemp_spawn(node, srvnode, "::client_connect", args);
    if (!ch->handler || aemp_mon(node, ch->handler, on_handler_dead, ch, &ch->mon_handler)) {
        fprintf(stderr, "chat_client2: cannot spawn on %s\n", srvnode);
        free(ch->handler);
        ch->handler = NULL;
        aemp_kil(node, ch->client, NULL);
        free(ch->client);
        ch->client = NULL;
        aemp_after(node, 1.0, retry_cb, ch, &ch->retry);
    } else {
        eg_say("(connecting to the chat server on %s as %s)\n", srvnode, ch->nick);
    }
    free(srvnode);
}

static void on_group(aemp_node *node, const char *group, const cJSON *members,
                     const cJSON *added, const cJSON *removed, void *ud)
{
    try_connect(ud);
}

static void send_line(struct chat *ch, const char *line)
{
    if (!ch->handler) {
        eg_say("(not connected, line dropped)\n");
        return;
    }
    cJSON *msg = cJSON_CreateArray();
    cJSON_AddItemToArray(msg, cJSON_CreateString(line));
    aemp_snd(ch->node, ch->handler, msg);
}

static void quit_cb(aemp_node *node, void *ud)
{
    aemp_node_stop(node);
}

static void on_input(void *ud, const char *line)
{
    send_line(ud, line);
}

static void on_eof(void *ud)
{
    struct chat *ch = ud;
    if (!ch->standalone) return;
    /* Leave: killing our port makes the server drop the handler; give that
     * message a moment to go out, then end the loop. */
    eg_say("(end of input, leaving)\n");
    if (ch->client) aemp_kil(ch->node, ch->client, NULL);
    aemp_after(ch->node, 0.5, quit_cb, ch, &ch->quit);
}

static void start_input(struct chat *ch)
{
    if (eg_lines_start(&ch->input, aemp_node_base(ch->node), on_input, on_eof, ch))
        fprintf(stderr, "chat_client2: cannot read stdin\n");
}

static int eg_setup(aemp_node *node, const cJSON *args, int standalone, void **state)
{
    struct chat *ch = calloc(1, sizeof *ch);
    if (!ch) return -1;
    *state = ch;
    ch->node = node;
    ch->standalone = standalone;
    const cJSON *nick = cJSON_GetArrayItem(args, 0);
    ch->nick = strdup(cJSON_IsString(nick) ? nick->valuestring : aemp_node_id(node));
    if (!ch->nick) return -1;
    if (aemp_grp_mon(node, "eg_chat_server2", on_group, ch, &ch->grp)) return -1;
    eg_say("(waiting for a chat server)\n");
    try_connect(ch);
    return 0;
}

static void eg_free(void *state)
{
    struct chat *ch = state;
    if (!ch) return;
    eg_lines_free(&ch->input);
    aemp_guard_free(ch->grp);
    aemp_guard_free(ch->mon_handler);
    aemp_guard_free(ch->retry);
    aemp_guard_free(ch->quit);
    free(ch->nick);
    free(ch->client);
    free(ch->handler);
    free(ch);
}
