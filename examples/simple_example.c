/* simple_example.c - eg/simple_example of AnyEvent::MP 1.30 in C: one node,
 * no network. A port with a "test" callback is sent ["test", 123]; the
 * callback ends the loop and the program prints "Ending with: 123". */
#include "aemp.h"

#include <stdio.h>
#include <stdlib.h>

static int on_test(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    cJSON **data = ud;
    *data = cJSON_Duplicate(cJSON_GetArrayItem(msg, 1), 1);
    aemp_node_stop(node);
    return 0;
}

int main(void)
{
    char err[256] = "";
    aemp_node *node = aemp_node_new(NULL);
    cJSON *cfg = cJSON_Parse("{\"nodeid\":\"anon/\",\"binds\":[]}");
    if (!node || !cfg) return 1;
    int rc = aemp_configure_effective(node, cfg, err, sizeof err);
    cJSON_Delete(cfg);
    if (rc) {
        fprintf(stderr, "simple_example: %s\n", *err ? err : aemp_strerror(rc));
        aemp_node_free(node);
        return 1;
    }
    cJSON *data = NULL;
    char *port = aemp_port(node);
    aemp_rcv(node, port, "test", on_test, &data);
    aemp_snd_json(node, port, "[\"test\", 123]");
    aemp_node_run(node);
    int ok = data != NULL;
    char *text = data ? cJSON_PrintUnformatted(data) : NULL;
    printf("Ending with: %s\n", text ? text : "(nothing)");
    free(text);
    cJSON_Delete(data);
    free(port);
    aemp_node_free(node);
    return ok ? 0 : 1;
}
