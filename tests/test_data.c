/* test_data.c - the data-set code: PIL-exact resizing against PIL goldens
 * (tests/golden/data/data_resize.safetensors, made by tests/golden/gen_data.py), gzip, idx,
 * tar, the CIFAR-10 / STL-10 / (Fashion-)MNIST / folder readers on small files made here
 * (in memory or in a scratch folder that is removed), bad input, and the loader's
 * shuffling, partial batches and resumable state. */
#include "test.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR "tests"
#endif

/* ---- PIL resize goldens ---- */
static int test_resize_pil_golden(void) {
    char path[512];
    ag_array_list l;
    ag_error err;
    int i, cases = 0;
    snprintf(path, sizeof path, "%s/golden/data/data_resize.safetensors", TEST_DATA_DIR);
    memset(&l, 0, sizeof l);
    TEST_CHECK(ag_safetensors_read(path, &l, NULL, &err) == 0, "%s", err.msg);
    for (i = 0; i < l.count; i++) {
        const ag_array *in = &l.items[i], *want;
        char oname[128];
        size_t nl = strlen(in->name), k, bad = 0;
        unsigned char *got;
        int h, w, c, s;
        if (nl < 3 || strcmp(in->name + nl - 3, ".in") != 0) continue;
        snprintf(oname, sizeof oname, "%.*s.out", (int)(nl - 3), in->name);
        want = ag_array_list_find(&l, oname);
        TEST_CHECK(want && in->dtype == AG_DTYPE_U8 && want->dtype == AG_DTYPE_U8 && in->ndim == 3 && want->ndim == 3,
                   "case %s malformed", in->name);
        h = (int)in->shape[0]; w = (int)in->shape[1]; c = (int)in->shape[2]; s = (int)want->shape[0];
        got = (unsigned char *)malloc(want->nbytes);
        TEST_CHECK(got != NULL, "oom");
        TEST_CHECK(ag_image_resize_bilinear_pil((const unsigned char *)in->data, h, w, c, got, s, s) == 0, "resize failed");
        for (k = 0; k < want->nbytes; k++) if (got[k] != ((const unsigned char *)want->data)[k]) bad++;
        if (bad) {
            for (k = 0; got[k] == ((const unsigned char *)want->data)[k]; k++) {}
            fprintf(stderr, "    %s: %lu of %lu bytes differ from PIL; first [%lu] got %d want %d\n", oname, (unsigned long)bad,
                    (unsigned long)want->nbytes, (unsigned long)k, got[k], ((const unsigned char *)want->data)[k]);
        }
        free(got);
        TEST_CHECK(bad == 0, "%s differs from PIL", oname);
        cases++;
    }
    ag_array_list_free(&l);
    TEST_CHECK(cases >= 17, "only %d resize cases in %s", cases, path);
    return 0;
}

const test_case tests_data[] = {
    { "data/resize_pil_golden", test_resize_pil_golden },
    { 0, 0 }
};
