/* transport.c: PROVISIONAL placeholder until the transport lands; remote
 * messages are dropped with a log line. */
#include "transport.h"
#include "aemp.h"

int transport_start(struct aemp_node *node, char *err, size_t errlen)
{
    (void)node; (void)err; (void)errlen;
    return 0;
}
void transport_send(struct aemp_node *node, const char *nodeid, cJSON *msg)
{
    (void)node;
    aemp_log(4, "no transport yet: message to %s dropped", nodeid);
    cJSON_Delete(msg);
}
int transport_is_up(struct aemp_node *node, const char *nodeid)
{
    (void)node; (void)nodeid;
    return 0;
}
void transport_up_nodes(struct aemp_node *node, cJSON *arr) { (void)node; (void)arr; }
void transport_known_nodes(struct aemp_node *node, cJSON *arr) { (void)node; (void)arr; }
void transport_set_addrs(struct aemp_node *node, const char *nodeid, const cJSON *addrs)
{
    (void)node; (void)nodeid; (void)addrs;
}
int transport_node_is_seed(struct aemp_node *node, const char *nodeid)
{
    (void)node; (void)nodeid;
    return 0;
}
cJSON *transport_listen_addrs(struct aemp_node *node)
{
    (void)node;
    return cJSON_CreateArray();
}
void transport_free(struct aemp_node *node) { (void)node; }
