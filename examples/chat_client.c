/* chat_client.c - eg/chat_client of AnyEvent::MP 1.30 in C, the client of
 * the chat by "traditional message passing".
 *
 * It waits (aemp_grp_mon) for a member of the group "eg_chat_server", makes
 * a port that prints every line it is sent, and sends
 * ["join", CLIENT_PORT, NICK] to the server; each line read from stdin goes
 * to the server as ["privmsg", NICK, LINE]. When the server dies the client
 * port is killed with it (mon SERVER, CLIENT); when the client port dies the
 * client says so and joins again once a server is there. It pairs with
 * chat_server, the C one or the Perl one. Beyond the Perl script: input is
 * read from the first line the server sends (our own "NICK (joins)"), so
 * lines piped in are not lost while connecting, and at the end of stdin the
 * standalone program kills its port and exits.
 *
 *   standalone:  chat_client PROFILE|- [NICK]
 *   service:     aemp run services '[["PATH/libchat_client.so:chat_client_init", "NICK"]]'
 *                (reads the stdin of `aemp run`)
 */
#define EG_SYMBOL chat_client
#define EG_USAGE "reads lines from stdin and chats through chat_server; ARG: NICK"
#include "eg_common.h"
#include "eg_lines.h"

struct chat {
    aemp_node *node;
    int standalone;
    int leaving;
    char *nick;
    char *client; /* our port, gets the relayed lines */
    char *server; /* the server port we joined */
    aemp_guard *grp, *mon_client, *mon_server, *retry, *quit;
    struct eg_lines input;
};

static void try_connect(struct chat *ch);

static void on_input(void *ud, const char *line)
{
    struct chat *ch = ud;
    if (!ch->server) {
        eg_say("(not connected, line dropped)\n");
        return;
    }
    cJSON *msg = cJSON_CreateArray();
    cJSON_AddItemToArray(msg, cJSON_CreateString("privmsg"));
    cJSON_AddItemToArray(msg, cJSON_CreateString(ch->nick));
    cJSON_AddItemToArray(msg, cJSON_CreateString(line));
    aemp_snd(ch->node, ch->server, msg);
}

static void quit_cb(aemp_node *node, void *ud)
{
    aemp_node_stop(node);
}

static void on_eof(void *ud)
{
    struct chat *ch = ud;
    if (!ch->standalone) return;
    /* Leave: the server monitors our port; give the kil a moment to go out. */
    eg_say("(end of input, leaving)\n");
    ch->leaving = 1;
    if (ch->client) aemp_kil(ch->node, ch->client, NULL);
    aemp_after(ch->node, 0.5, quit_cb, ch, &ch->quit);
}

/* $client = port { print "@_" } */
static int on_text(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct chat *ch = ud;
    const cJSON *e;
    cJSON_ArrayForEach(e, msg)
    {
        char *j = cJSON_IsString(e) ? NULL : cJSON_PrintUnformatted(e);
        printf("%s%s", e == msg->child ? "" : " ", j ? j : e->valuestring);
        free(j);
    }
    eg_say("\n");
    /* The first line (our own "NICK (joins)") shows the server has us. */
    if (eg_lines_start(&ch->input, aemp_node_base(node), on_input, on_eof, ch))
        fprintf(stderr, "chat_client: cannot read stdin\n");
    return 0;
}

static void retry_cb(aemp_node *node, void *ud)
{
    struct chat *ch = ud;
    aemp_guard_free(ch->retry); /* fired, inert */
    ch->retry = NULL;
    try_connect(ch);
}

/* mon $client, sub { print "disconnected @_"; &server_connect } */
static void on_client_dead(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct chat *ch = ud;
    char *why = cJSON_PrintUnformatted(reason);
    eg_say("disconnected %s\n", why ? why : "?");
    free(why);
    aemp_guard_free(ch->mon_client); /* fired, inert */
    aemp_guard_free(ch->mon_server);
    ch->mon_client = ch->mon_server = NULL;
    free(ch->client);
    free(ch->server);
    ch->client = ch->server = NULL;
    if (!ch->leaving && !ch->retry) aemp_after(node, 1.0, retry_cb, ch, &ch->retry);
}

static void try_connect(struct chat *ch)
{
    aemp_node *node = ch->node;
    if (ch->client || ch->retry || ch->leaving) return;
    cJSON *members = aemp_grp_get(node, "eg_chat_server");
    const cJSON *first = cJSON_GetArrayItem(members, 0);
    ch->server = cJSON_IsString(first) ? strdup(first->valuestring) : NULL;
    cJSON_Delete(members);
    if (!ch->server) return; /* the group monitor calls again */
    eg_say("connecting...\n");
    ch->client = aemp_port_cb(node, on_text, ch);
    if (!ch->client || aemp_mon(node, ch->client, on_client_dead, ch, &ch->mon_client)) {
        fprintf(stderr, "chat_client: cannot make a port\n");
        free(ch->client);
        free(ch->server);
        ch->client = ch->server = NULL;
        return;
    }
    cJSON *msg = cJSON_CreateArray();
    cJSON_AddItemToArray(msg, cJSON_CreateString("join"));
    cJSON_AddItemToArray(msg, cJSON_CreateString(ch->client));
    cJSON_AddItemToArray(msg, cJSON_CreateString(ch->nick));
    aemp_snd(node, ch->server, msg);
    aemp_mon_kil(node, ch->server, ch->client, &ch->mon_server);
}

static void on_group(aemp_node *node, const char *group, const cJSON *members,
                     const cJSON *added, const cJSON *removed, void *ud)
{
    try_connect(ud);
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
    if (aemp_grp_mon(node, "eg_chat_server", on_group, ch, &ch->grp)) return -1;
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
    aemp_guard_free(ch->mon_client);
    aemp_guard_free(ch->mon_server);
    aemp_guard_free(ch->retry);
    aemp_guard_free(ch->quit);
    free(ch->nick);
    free(ch->client);
    free(ch->server);
    free(ch);
}
