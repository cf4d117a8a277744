/* test.h - the tiny test harness shared by every tests/test_*.c file.
 *
 * A test is a function `static int name(void)` returning 0 on pass. Inside it, use
 * TEST_CHECK(cond, fmt, ...) which prints the reason and returns 1 on failure, and
 * TEST_CLOSE(what, got, want, atol, rtol) for float comparisons. Each test file ends
 * with a table registered in tests/run_tests.c. A path a test cannot run on this machine
 * (a kernel ISA the CPU lacks) is reported with test_skip(reason), never silently passed.
 * The runner prints one line per test (with its skips) and closes with
 * "N passed, N failed, N skipped" (skipped: paths); its exit code is non-zero on any failure. */
#ifndef AUTOGAN_TEST_H
#define AUTOGAN_TEST_H
#include <stdio.h>
#include <math.h>
#include <string.h>

typedef struct test_case { const char *name; int (*fn)(void); } test_case;

/* argv[0] of the runner, for tests that start it again as a child process */
static const char *test_program = "./build/run_tests";

/* skipped paths: counted over the run, and per test for its report line */
static int test_skipped_total, test_skipped_here;
static char test_skip_reason[160];
static void test_skip(const char *reason) {
    test_skipped_total++; test_skipped_here++;
    snprintf(test_skip_reason, sizeof test_skip_reason, "%s", reason);
}

#define TEST_CHECK(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "    %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); return 1; } } while (0)

/* |got-want| <= atol + rtol*|want| for n floats; prints the worst element on failure. */
static int test_close_arrays(const char *what, const float *got, const float *want, size_t n,
                             double atol, double rtol) {
    size_t i, worst = 0; double worst_excess = 0.0; int bad = 0;
    for (i = 0; i < n; i++) {
        double g = got[i], w = want[i], d = fabs(g - w), lim = atol + rtol * fabs(w);
        if (!(d <= lim)) { /* catches NaN too */
            double ex = (d != d) ? 1e30 : d - lim;
            if (!bad || ex > worst_excess) { worst_excess = ex; worst = i; }
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "    %s: %d of %zu elements off (atol %g, rtol %g); worst [%zu] got %.9g want %.9g\n",
                what, bad, n, atol, rtol, worst, (double)got[worst], (double)want[worst]);
        return 1;
    }
    return 0;
}
#define TEST_CLOSE(what, got, want, n, atol, rtol) do { \
    if (test_close_arrays((what), (got), (want), (n), (atol), (rtol))) { \
        fprintf(stderr, "    at %s:%d\n", __FILE__, __LINE__); return 1; } } while (0)

/* Runs a shell command with stderr joined to stdout into out (at most cap-1 bytes, the rest
   read and dropped); returns its exit status, -1 when it did not exit. For the tests of the
   command-line programs (POSIX popen). */
#if !defined(_WIN32)
#include <sys/wait.h>
static int test_run_command(const char *cmd, char *out, size_t cap) {
    char full[4096]; FILE *p; size_t n = 0; int st;
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    if (!(p = popen(full, "r"))) return -1;
    out[0] = 0;
    while (n + 1 < cap) { size_t r = fread(out + n, 1, cap - 1 - n, p); if (!r) break; n += r; }
    out[n] = 0;
    { char sink[256]; while (fread(sink, 1, sizeof sink, p)) {} }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
#endif

#endif
