/* t.h - the tiny test harness every C test uses.
 *
 * A test file defines `static void test_NAME(void)` functions and lists them
 * with T_MAIN(T(test_a), T(test_b)). The runner forks nothing: each test runs
 * in turn, prints "ok N - name" or "not ok N - name" lines (TAP), and the
 * process exits 1 if any check failed. A test-wide alarm bounds the time. */
#ifndef AEMP_T_H
#define AEMP_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_failed_checks;
static const char *t_current;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "# %s:%d: %s: check failed: %s\n", __FILE__, __LINE__,       \
                    t_current, #cond);                                                   \
            t_failed_checks++;                                                           \
        }                                                                                \
    } while (0)

#define CHECK_STR(a, b)                                                                  \
    do {                                                                                 \
        const char *t_a_ = (a), *t_b_ = (b);                                             \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_)) {                                      \
            fprintf(stderr, "# %s:%d: %s: \"%s\" != \"%s\" (%s vs %s)\n", __FILE__,      \
                    __LINE__, t_current, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)", \
                    #a, #b);                                                             \
            t_failed_checks++;                                                           \
        }                                                                                \
    } while (0)

#define CHECK_INT(a, b)                                                                  \
    do {                                                                                 \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                          \
        if (t_a_ != t_b_) {                                                              \
            fprintf(stderr, "# %s:%d: %s: %lld != %lld (%s vs %s)\n", __FILE__,          \
                    __LINE__, t_current, t_a_, t_b_, #a, #b);                            \
            t_failed_checks++;                                                           \
        }                                                                                \
    } while (0)

struct t_case {
    const char *name;
    void (*fn)(void);
};
#define T(f) {#f, f}

#ifndef T_TIMEOUT
#define T_TIMEOUT 120
#endif

/* Optional hook a test file may define before T_MAIN to filter by name. */
static inline int t_run(const struct t_case *cases, size_t n, int argc, char **argv)
{
    int bad = 0;
    alarm(T_TIMEOUT);
    printf("1..%zu\n", n);
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && !strstr(cases[i].name, argv[1])) {
            printf("ok %zu - %s # SKIP filtered\n", i + 1, cases[i].name);
            continue;
        }
        int before = t_failed_checks;
        t_current = cases[i].name;
        cases[i].fn();
        int ok = t_failed_checks == before;
        printf("%sok %zu - %s\n", ok ? "" : "not ", i + 1, cases[i].name);
        fflush(stdout);
        bad += !ok;
    }
    return bad ? 1 : 0;
}

#define T_MAIN(...)                                                                      \
    int main(int argc, char **argv)                                                      \
    {                                                                                    \
        static const struct t_case cases[] = {__VA_ARGS__};                              \
        return t_run(cases, sizeof cases / sizeof cases[0], argc, argv);                 \
    }

#endif
