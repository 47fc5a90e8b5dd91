/* chat_client.c - the client of the "bridge-head" chat example.
 *
 * It waits (aemp_grp_mon) for a member of the group "chat_server", makes a
 * port that prints every line it is sent, and spawns "chat::client_handler"
 * ON THE SERVER'S NODE with [CLIENT_PORT, NICK]. That spawned port is the
 * client's bridge head: lines read from stdin go to it, and the server relays
 * them to every client. The client monitors the handler and the handler the
 * client port: when the handler (or the server's node) goes, the client port
 * is killed and the client connects again once a server is there. Input is
 * read from the first line the server sends (our own "NICK (joins)"), so
 * lines piped in are not lost while connecting. At the end of stdin the
 * standalone program kills its port and exits.
 *
 *   standalone:  chat_client PROFILE|- [NICK]
 *   service:     aemp run services '[["PATH/libchat_client.so:chat_client_init", "NICK"]]'
 *                (reads the stdin of `aemp run`)
 */
#define EG_SYMBOL chat_client
#define EG_USAGE "reads lines from stdin and chats through chat_server; ARG: NICK"
#include "eg_common.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/event.h>

struct chat {
    aemp_node *node;
    int standalone;
    char *nick;
    char *client;   /* our port, gets the relayed lines */
    char *handler;  /* our bridge head on the server's node */
    aemp_guard *grp, *mon_handler, *retry, *quit;
    struct event *input;
    int input_on;   /* stdin is watched (from the first line we are sent) */
    int input_poll; /* stdin cannot be polled (file, /dev/null): just read */
    char buf[4096];
    size_t len;
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
    cJSON *members = aemp_grp_get(node, "chat_server");
    const cJSON *first = cJSON_GetArrayItem(members, 0);
    char *srvnode = cJSON_IsString(first) ? aemp_node_of(first->valuestring) : NULL;
    cJSON_Delete(members);
    if (!srvnode) return; /* the group monitor calls again */
    ch->client = aemp_port(node);
    if (!ch->client || aemp_rcv(node, ch->client, NULL, on_text, ch)) {
        fprintf(stderr, "chat_client: cannot make a port\n");
        free(srvnode);
        return;
    }
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateString(ch->client));
    cJSON_AddItemToArray(args, cJSON_CreateString(ch->nick));
    ch->handler = aemp_spawn(node, srvnode, "chat::client_handler", args);
    if (!ch->handler || aemp_mon(node, ch->handler, on_handler_dead, ch, &ch->mon_handler)) {
        fprintf(stderr, "chat_client: cannot spawn on %s\n", srvnode);
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

static void on_stdin(evutil_socket_t fd, short what, void *ud)
{
    struct chat *ch = ud;
    ssize_t n = read(0, ch->buf + ch->len, sizeof ch->buf - 1 - ch->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        if (ch->len) {
            ch->buf[ch->len] = 0;
            send_line(ch, ch->buf);
            ch->len = 0;
        }
        event_del(ch->input);
        ch->input_poll = 0;
        if (!ch->standalone) return;
        /* Leave: killing our port makes the server drop the handler; give
         * that message a moment to go out, then end the loop. */
        eg_say("(end of input, leaving)\n");
        if (ch->client) aemp_kil(ch->node, ch->client, NULL);
        aemp_after(ch->node, 0.5, quit_cb, ch, &ch->quit);
        return;
    }
    ch->len += (size_t)n;
    char *start = ch->buf, *nl;
    while ((nl = memchr(start, '\n', ch->len - (size_t)(start - ch->buf)))) {
        *nl = 0;
        if (nl > start && nl[-1] == '\r') nl[-1] = 0;
        send_line(ch, start);
        start = nl + 1;
    }
    ch->len -= (size_t)(start - ch->buf);
    memmove(ch->buf, start, ch->len);
    if (ch->len == sizeof ch->buf - 1) { /* a very long line: send what we have */
        ch->buf[ch->len] = 0;
        send_line(ch, ch->buf);
        ch->len = 0;
    }
    if (ch->input_poll) { /* a file: read the next chunk from the loop */
        struct timeval now = {0, 0};
        event_add(ch->input, &now);
    }
}

/* Watch stdin: an fd event for ttys, pipes and sockets; epoll refuses
 * regular files and /dev/null, which never block, so those are read a chunk
 * per loop iteration from a zero timeout instead. */
static void start_input(struct chat *ch)
{
    if (ch->input_on) return;
    ch->input_on = 1;
    struct event_base *base = aemp_node_base(ch->node);
    struct stat st;
    int pollable = fstat(0, &st) == 0 && !S_ISREG(st.st_mode) &&
                   !(S_ISCHR(st.st_mode) && !isatty(0));
    if (pollable) {
        ch->input = event_new(base, 0, EV_READ | EV_PERSIST, on_stdin, ch);
        if (ch->input && event_add(ch->input, NULL) == 0) return;
        if (ch->input) event_free(ch->input);
    }
    ch->input_poll = 1;
    ch->input = event_new(base, -1, 0, on_stdin, ch);
    struct timeval now = {0, 0};
    if (!ch->input || event_add(ch->input, &now)) {
        fprintf(stderr, "chat_client: cannot read stdin\n");
        ch->input_poll = 0;
    }
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
    if (aemp_grp_mon(node, "chat_server", on_group, ch, &ch->grp)) return -1;
    eg_say("(waiting for a chat server)\n");
    try_connect(ch);
    return 0;
}

static void eg_free(void *state)
{
    struct chat *ch = state;
    if (!ch) return;
    if (ch->input) event_free(ch->input);
    aemp_guard_free(ch->grp);
    aemp_guard_free(ch->mon_handler);
    aemp_guard_free(ch->retry);
    aemp_guard_free(ch->quit);
    free(ch->nick);
    free(ch->client);
    free(ch->handler);
    free(ch);
}
