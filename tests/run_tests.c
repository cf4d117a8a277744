/* run_tests.c - the test runner: one translation unit with the implementation and every
   test file. Prints a line per test and closes with "N passed, N failed, N skipped" (paths
   this machine cannot run, e.g. a kernel ISA it lacks); exits non-zero
   on any failure. Run from the repository root (make test does). */
#if !defined(_POSIX_C_SOURCE) && !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L   /* popen for the command-line tests */
#endif
#define AUTOGAN_IMPLEMENTATION
#include "../autogan.h"
#include "test.h"
#include <stdlib.h>
#include <time.h>

#include "test_kernels.c"
#include "test_ops.c"
#include "test_models.c"
#include "test_inception.c"
#include "test_readers.c"
#include "test_sample.c"
#include "test_data.c"
#include "test_hardening.c"
#include "test_classifier.c"
#include "test_search.c"
#include "test_train.c"
#include "test_files.c"
#include "test_api.c"

static const test_case *const suites[] = { tests_kernels, tests_ops, tests_models, tests_inception, tests_readers, tests_sample, tests_data, tests_hardening, tests_classifier, tests_search, tests_train, tests_files, tests_api, NULL };

int main(int argc, char **argv) {
    int s, i, passed = 0, failed = 0;
    test_program = argv[0];
    if (argc == 3 && !strcmp(argv[1], "--write-loop")) {
        /* a fresh process for hardening/killed_writers_leak_nothing: writes a 32 MB file
           atomically, over and over, until killed */
        size_t n = (size_t)32 << 20; unsigned char *buf = (unsigned char *)calloc(n, 1); ag_error err;
        if (!buf) return 1;
        for (;;) if (ag_write_file_atomic(argv[2], buf, n, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    }
    /* arguments: run only the tests whose name contains one of them */
    for (s = 0; suites[s]; s++) for (i = 0; suites[s][i].name; i++) {
        clock_t t0; int rc, a, selected = argc < 2;
        for (a = 1; a < argc; a++) if (strstr(suites[s][i].name, argv[a])) selected = 1;
        if (!selected) continue;
        t0 = clock();
        test_skipped_here = 0;
        rc = suites[s][i].fn();
        printf("%s %s (%.2fs cpu)", rc ? "FAIL" : "ok  ", suites[s][i].name, (double)(clock() - t0) / CLOCKS_PER_SEC);
        if (test_skipped_here) printf(" - %d path%s skipped (%s)", test_skipped_here, test_skipped_here > 1 ? "s" : "", test_skip_reason);
        printf("\n");
        fflush(stdout);
        if (rc) failed++; else passed++;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, test_skipped_total);
    return failed ? 1 : 0;
}
