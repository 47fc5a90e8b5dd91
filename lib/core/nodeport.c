/* nodeport.c - requests to the node port (the port with the empty name,
 * PROTOCOL.md section 4): remote kil and mon, relays, node information, and
 * calls of registered functions. Anything else is logged and dropped. */
#include "core.h"

#include "builtin.h"
#include "stats.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* Reply to R... (the reply port then extra leading elements, `r` borrowed)
 * with `result` (taken): snd R..., RESULT. An R that is not a port ID is
 * ignored. */
static void reply(aemp_node *node, const cJSON *r, cJSON *result)
{
    if (!r || !cJSON_IsString(r) || !*r->valuestring) {
        cJSON_Delete(result);
        return;
    }
    cJSON *msg = cJSON_CreateArray();
    for (const cJSON *e = r->next; e; e = e->next)
        cJSON_AddItemToArray(msg, cJSON_Duplicate(e, 1));
    cJSON_AddItemToArray(msg, result);
    aemp_snd(node, r->valuestring, msg);
}

/* The elements from `from` on (borrowed) as a new array. */
static cJSON *rest(const cJSON *from)
{
    cJSON *a = cJSON_CreateArray();
    for (; from; from = from->next)
        cJSON_AddItemToArray(a, cJSON_Duplicate(from, 1));
    return a;
}

/* snd PORTID, MSG... from here; `m` is the PORTID element (borrowed). */
static void relay(aemp_node *node, const cJSON *m)
{
    if (m && cJSON_IsString(m)) aemp_snd(node, m->valuestring, rest(m->next));
}

/* The one eval request a C node answers: what 1.30's `aemp restart NODE`
 * sends (a fixed text, compared without its white space), not code. */
static const char PERL_RESTART[] =
    "my $w; $w = AE::idle sub { undef $w; use AnyEvent::Watchdog::Util ();"
    "AnyEvent::Watchdog::Util::restart}; ()";

static int is_perl_restart(const char *code)
{
    const char *a = code, *b = PERL_RESTART;
    for (;;) {
        while (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r') a++;
        while (*b == ' ') b++;
        if (*a != *b) return 0;
        if (!*a) return 1;
        a++, b++;
    }
}

/* 1.30's restart as the restart function of `aemp run` (watchdog.c);
 * answered as 1.30's eval answers: R..., "" on success, R..., ERROR else. */
static void perl_restart(aemp_node *node, const char *srcnode, const cJSON *r)
{
    cJSON *none = cJSON_CreateArray();
    int rc = spawn_call(node, srcnode, "AnyEvent::Watchdog::Util::restart", none);
    cJSON_Delete(none);
    const char *err = "";
    if (rc == AEMP_ENOENT)
        err = "this C node cannot restart itself (it does not run under aemp run): restart it "
              "where it runs";
    else if (rc)
        err = node->core->failmsg[0] ? node->core->failmsg : "restart refused";
    reply(node, r, cJSON_CreateString(err));
}

void nodeport_handle(aemp_node *node, const char *srcnode, const cJSON *msg)
{
    const cJSON *jtag = msg->child;
    if (!jtag) return;
    if (!cJSON_IsString(jtag)) {
        aemp_log_peer(5, "node-port request from %s without a tag dropped", srcnode);
        return;
    }
    const char *tag = jtag->valuestring;
    const cJSON *a = jtag->next; /* first argument */
    const char *a0 = a && cJSON_IsString(a) ? a->valuestring : NULL; /* a may be absent */
    if (!*tag || !strcmp(tag, "devnull")) {
        /* ["devnull", "aemp_stats", R...]: a request Perl nodes discard */
        if (a0 && !strcmp(a0, STATS_REQUEST)) reply(node, a->next, aemp_stats(node));
        return;
    } else if (!strcmp(tag, "kil")) {
        if (a0 && *a0) core_kill_local(node, a0, rest(a->next));
    } else if (!strcmp(tag, "mon1")) {
        if (a0) mon_remote_add(node, srcnode, a0);
    } else if (!strcmp(tag, "mon0")) {
        if (a0) mon_remote_del(node, srcnode, a0);
    } else if (!strcmp(tag, "kil0")) {
        char *id = a0 ? core_port_id(srcnode, a0) : NULL;
        if (!id) return;
        cJSON *reason = rest(a->next);
        mon_fire(node, id, reason);
        cJSON_Delete(reason);
        free(id);
    } else if (!strcmp(tag, "snd")) {
        relay(node, a);
    } else if (!strcmp(tag, "snd_multiple")) {
        for (const cJSON *m = a; m; m = m->next)
            if (cJSON_IsArray(m)) relay(node, m->child);
    } else if (!strcmp(tag, "info")) {
        reply(node, a, cJSON_CreateString(node->id));
    } else if (!strcmp(tag, "up_nodes") || !strcmp(tag, "known_nodes")) {
        cJSON *list = tag[0] == 'u' ? aemp_up_nodes(node) : aemp_known_nodes(node);
        /* The reply carries the IDs as separate elements, like 1.30. */
        if (!list || !a || !cJSON_IsString(a)) {
            cJSON_Delete(list);
            return;
        }
        cJSON *m = cJSON_CreateArray();
        for (const cJSON *e = a->next; e; e = e->next)
            cJSON_AddItemToArray(m, cJSON_Duplicate(e, 1));
        while (list->child)
            cJSON_AddItemToArray(m, cJSON_DetachItemViaPointer(list, list->child));
        cJSON_Delete(list);
        aemp_snd(node, a->valuestring, m);
    } else if (!strcmp(tag, "time")) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        reply(node, a, cJSON_CreateNumber((double)tv.tv_sec + tv.tv_usec / 1e6));
    } else if (!strcmp(tag, "eval") && a0 && is_perl_restart(a0)) {
        perl_restart(node, srcnode, a->next);
    } else if (!strcmp(tag, "eval")) {
        aemp_log_peer(5, "eval request from %s refused: a C node cannot evaluate Perl code",
                 srcnode);
        if (a) reply(node, a->next, cJSON_CreateString("eval is not supported"));
    } else if (!strcmp(tag, "AnyEvent::MP::_spawn")) {
        const cJSON *f = a ? a->next : NULL;
        if (!a0 || !*a0 || !cJSON_IsString(f)) {
            aemp_log_peer(5, "malformed spawn request from %s dropped", srcnode);
            return;
        }
        cJSON *args = rest(f->next);
        spawn_run(node, srcnode, a0, f->valuestring, args);
        cJSON_Delete(args);
    } else if (!builtins_request(node, srcnode, tag, a)) {
        cJSON *args = rest(a);
        if (spawn_call(node, srcnode, tag, args) == AEMP_ENOENT)
            aemp_log_peer(4, "request %s from %s dropped: no function of that name is registered",
                     tag, srcnode);
        cJSON_Delete(args);
    }
}

cJSON *aemp_stats(aemp_node *node)
{
    return stats_json(node->transport, node->id, node->core->ports.len, node->core->mons.len);
}
