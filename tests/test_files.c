/* test_files.c - checkpoint metadata of any length (escaped, read back whole) and run
   directories (the advisory lock, what a directory holds). */

/* every byte value a path may hold, and 20,000 bytes of it, come back exactly */
static int test_json_fields_roundtrip(void) {
    ag_json_fields f; char *v, small[16]; size_t i; int k;
    static char big[20001];
    const char *odd = "a \"quoted\" \\back\\slash/ tab\t newline\n \x01 ctl \xc3\xa9 utf-8";
    memset(&f, 0, sizeof f);
    for (i = 0; i < 20000; i++) big[i] = (char)("./-_\"\\x\t"[i % 8]);
    big[20000] = 0;
    ag_json_add_string(&f, "odd", odd);
    ag_json_add_string(&f, "big", big);
    ag_json_add_int(&f, "n", -1234567890123LL);
    ag_json_add_double(&f, "x", 0.1);
    TEST_CHECK(!f.failed, "builder failed");
    {
        size_t n = f.len + 3; char *obj = (char *)malloc(n);
        TEST_CHECK(obj != NULL, "oom");
        snprintf(obj, n, "{%s}", f.text);
        v = ag_json_get_string_alloc(obj, "odd"); TEST_CHECK(v && !strcmp(v, odd), "odd string changed: %s", v ? v : "(null)"); free(v);
        v = ag_json_get_string_alloc(obj, "big"); TEST_CHECK(v && strlen(v) == 20000 && !memcmp(v, big, 20000), "20,000-byte value changed"); free(v);
        v = ag_json_get_string_alloc(obj, "n"); TEST_CHECK(v && !strcmp(v, "-1234567890123"), "int"); free(v);
        v = ag_json_get_string_alloc(obj, "x"); TEST_CHECK(v && strtod(v, NULL) == 0.1, "double not exact"); free(v);
        TEST_CHECK(ag_json_get_string_alloc(obj, "absent") == NULL, "absent key found");
        /* the fixed-size getter refuses a value that does not fit instead of cutting it */
        k = ag_json_get_string(obj, "big", small, sizeof small);
        TEST_CHECK(k != 0 && small[0] == 0, "a 20,000-byte value was truncated into 16 bytes");
        free(obj);
    }
    /* \u escapes decode to UTF-8, surrogate pairs included; bad escapes fail */
    v = ag_json_get_string_alloc("{\"k\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}", "k");
    TEST_CHECK(v && !strcmp(v, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\\u decoding");
    free(v);
    TEST_CHECK(ag_json_get_string_alloc("{\"k\":\"\\ud83d\"}", "k") == NULL, "lone surrogate accepted");
    TEST_CHECK(ag_json_get_string_alloc("{\"k\":\"\\u0000\"}", "k") == NULL, "NUL accepted");
    TEST_CHECK(ag_json_get_string_alloc("{\"k\":\"a\nb\"}", "k") == NULL, "raw newline accepted");
    ag_json_fields_free(&f);
    TEST_CHECK(f.text == NULL && f.len == 0, "free resets");
    return 0;
}

/* a checkpoint's metadata of any length is written and read whole; the header-only reader
   agrees with the full reader */
static int test_metadata_long_paths(void) {
    ag_params ps; ag_json_fields f; ag_error err; char *meta = NULL, *meta2 = NULL, *v; ag_array_list list;
    const char *path = "build/test_files_meta.safetensors"; size_t i;
    static char longpath[6001];
    for (i = 0; i < 6000; i++) longpath[i] = "./"[i % 2];
    longpath[6000] = 0;
    memset(&ps, 0, sizeof ps); memset(&f, 0, sizeof f); memset(&list, 0, sizeof list);
    ag_json_add_string(&f, "format", "test");
    ag_json_add_string(&f, "data_path", longpath);
    {
        size_t n = f.len + 3; char *obj = (char *)malloc(n);
        TEST_CHECK(obj != NULL, "oom");
        snprintf(obj, n, "{%s}", f.text);
        TEST_CHECK(ag_safetensors_save(path, &ps, obj, &err) == 0, "save: %s", err.msg);
        free(obj);
    }
    TEST_CHECK(ag_safetensors_read(path, &list, &meta, &err) == 0, "read: %s", err.msg);
    TEST_CHECK(ag_safetensors_read_metadata(path, &meta2, &err) == 0 && meta2, "read_metadata: %s", err.msg);
    TEST_CHECK(!strcmp(meta, meta2), "header-only metadata differs from the full reader's");
    v = ag_json_get_string_alloc(meta2, "data_path");
    TEST_CHECK(v && !strcmp(v, longpath), "a 6,000-byte path did not come back whole");
    free(v); AG_FREE(meta); AG_FREE(meta2); ag_array_list_free(&list); ag_json_fields_free(&f);
    TEST_CHECK(ag_safetensors_read_metadata("build/no_such_file.safetensors", &meta2, &err) != 0, "missing file read");
    remove(path);
    return 0;
}

#if !defined(_WIN32)
/* one process per run directory; what a directory holds */
static int test_run_dir_lock_and_describe(void) {
    const char *dir = "build/test_run_dir";
    ag_run_lock a, b; ag_error err; char what[512], cmd[256]; FILE *fp;
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s/Model", dir, dir);
    TEST_CHECK(system(cmd) == 0, "mkdir");
    TEST_CHECK(ag_run_dir_describe("build/no_such_run_dir", what, sizeof what) == 0, "absent dir described as holding a run");
    TEST_CHECK(ag_run_dir_lock(dir, &a, &err) == 0, "first lock: %s", err.msg);
    TEST_CHECK(ag_run_dir_lock(dir, &b, &err) != 0, "a second lock on the same directory was granted");
    TEST_CHECK(strstr(err.msg, "in use by another process") && strstr(err.msg, "pid"), "message: %s", err.msg);
    /* a second process is refused as well */
    snprintf(cmd, sizeof cmd, "flock -n %s/.lock true", dir);
    if (system("command -v flock >/dev/null 2>&1") == 0) TEST_CHECK(system(cmd) != 0, "another process took the lock");
    else test_skip("flock(1) not installed: the cross-process check");
    ag_run_dir_unlock(&a);
    TEST_CHECK(ag_run_dir_lock(dir, &b, &err) == 0, "lock after unlock: %s", err.msg);
    ag_run_dir_unlock(&b);
    /* the lock file and an empty Model/ aside, holds ... Model */
    TEST_CHECK(ag_run_dir_describe(dir, what, sizeof what) == 1 && strstr(what, "Model"), "describe: %s", what);
    snprintf(cmd, sizeof cmd, "rm -rf %s/Model", dir); TEST_CHECK(system(cmd) == 0, "rm");
    TEST_CHECK(ag_run_dir_describe(dir, what, sizeof what) == 0, "a directory holding only .lock is described as a run: %s", what);
    snprintf(cmd, sizeof cmd, "%s/eval.csv", dir);
    fp = fopen(cmd, "w"); TEST_CHECK(fp != NULL, "create"); fclose(fp);
    TEST_CHECK(ag_run_dir_describe(dir, what, sizeof what) == 1 && strstr(what, "eval.csv"), "describe: %s", what);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir); (void)system(cmd);
    return 0;
}
#endif


/* a --data_path that does not exist is named as such (it was read as a file in ".") */
static int test_missing_data_path_named(void) {
    ag_dataset ds; ag_error err;
    memset(&ds, 0, sizeof ds);
    TEST_CHECK(ag_dataset_load(&ds, "mnist", "build/no_such_data_dir", "train", 0, &err) != 0, "a missing path loaded");
    TEST_CHECK(strstr(err.msg, "build/no_such_data_dir") && strstr(err.msg, "no such file"), "message: %s", err.msg);
    TEST_CHECK(ag_dataset_load(&ds, "fashion-mnist", "build/no_such_data_dir", "test", 0, &err) != 0 &&
               strstr(err.msg, "build/no_such_data_dir"), "message: %s", err.msg);
    return 0;
}

static const test_case tests_files[] = {
    { "files/json_fields_roundtrip", test_json_fields_roundtrip },
    { "files/metadata_long_paths", test_metadata_long_paths },
    { "files/missing_data_path_named", test_missing_data_path_named },
#if !defined(_WIN32)
    { "files/run_dir_lock_and_describe", test_run_dir_lock_and_describe },
#endif
    { NULL, NULL }
};
