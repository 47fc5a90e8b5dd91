/* procstat.c - process metrics from /proc/self (see procstat.h). */
#include "procstat.h"

#include <event2/buffer.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The fields of /proc/self/stat after the command name: utime is field
 * 14, stime 15, starttime 22 (counted from 1 at the pid). */
static int self_stat(double *cpu, double *start_ticks)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    if (!p) return -1;
    unsigned long long ut = 0, st = 0, start = 0;
    int field = 2;
    for (char *s = p + 1; *s && field < 22;) {
        while (*s == ' ') s++;
        field++;
        if (field == 14) ut = strtoull(s, NULL, 10);
        if (field == 15) st = strtoull(s, NULL, 10);
        if (field == 22) start = strtoull(s, NULL, 10);
        while (*s && *s != ' ') s++;
    }
    if (field < 22) return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *cpu = (double)(ut + st) / hz;
    *start_ticks = (double)start / hz;
    return 0;
}

static double boot_time(void)
{
    char line[256];
    double bt = -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "btime ", 6)) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static long rss_bytes(void)
{
    long pages = -1, size;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &pages) != 2) pages = -1;
    fclose(f);
    return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void procstat_render(struct evbuffer *out)
{
    double cpu = 0, start = 0, bt;
    int have_stat = self_stat(&cpu, &start) == 0;
    family(out, "process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.");
    if (have_stat) evbuffer_add_printf(out, "process_cpu_seconds_total %.2f\n", cpu);
    long rss = rss_bytes();
    family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    if (rss >= 0) evbuffer_add_printf(out, "process_resident_memory_bytes %ld\n", rss);
    long fds = open_fds();
    family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
    if (fds >= 0) evbuffer_add_printf(out, "process_open_fds %ld\n", fds);
    struct rlimit rl;
    family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        evbuffer_add_printf(out, "process_max_fds %llu\n",
                            rl.rlim_cur == RLIM_INFINITY ? 0ULL : (unsigned long long)rl.rlim_cur);
    family(out, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    if (have_stat && (bt = boot_time()) >= 0)
        evbuffer_add_printf(out, "process_start_time_seconds %.2f\n", bt + start);
}
