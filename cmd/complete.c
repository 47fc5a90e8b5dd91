/* complete.c - what shell completion asks the tool (`aemp --complete
 * profiles`): the profile names of the configuration file and the shipped
 * profiles, one per line, sorted. Quiet: a missing or broken file yields
 * the shipped names only, and nothing goes to stderr. */
#include "cmds.h"

#include "aemp.h"
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Add the member names of object `o` (borrowed) to names[] (borrowed). */
static void add_names(const char **names, int *n, int max, const cJSON *o)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, o)
    {
        int dup = 0;
        for (int i = 0; i < *n && !dup; i++)
            dup = !strcmp(names[i], e->string);
        if (!dup && *n < max && cJSON_IsObject(e)) names[(*n)++] = e->string;
    }
}

int cmd_complete_profiles(void)
{
    aemp_log_set_level(0); /* a missing profile directory is not news here */
    cJSON *file = NULL, *shipped = config_shipped_profiles();
    char err[512];
    aemp_config_load(NULL, &file, err, sizeof err); /* file stays NULL on failure */
    enum { MAX = 4096 };
    const char **names = malloc(MAX * sizeof *names);
    int n = 0;
    if (names) {
        add_names(names, &n, MAX, cJSON_GetObjectItemCaseSensitive(file, "profile"));
        add_names(names, &n, MAX, shipped);
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        for (int i = 0; i < n; i++)
            printf("%s\n", names[i]);
    }
    free(names);
    cJSON_Delete(file);
    cJSON_Delete(shipped);
    return EXIT_OK;
}
