/* cli.h - strict command-line parsing shared by the programs in examples/ (and bench/).

   Include it after autogan.h in a program's .c file (it is not part of the library and uses
   only the C library). One convention across programs: flags are spelled like the reference
   code, with underscores (`--save_stats`, `--gen_bs`); the hyphenated spelling
   (`--save-stats`) is accepted as an alias, and `--flag=value` works like `--flag value`.
   Every error names the program, the flag and the value, prints a hint to run --help, and
   exits with status 2 (parsing happens before any work, so nothing is lost).

       cli c;
       cli_start(&c, "train", argc, argv);
       while (cli_next(&c)) {
           if (cli_is(&c, "--max_iter"))      o.max_iter = (int)cli_int(&c, 0, 100000000);
           else if (cli_is(&c, "--g_lr"))     o.g_lr = cli_float(&c, 0.0, 1.0);
           else if (cli_is(&c, "--ckpt"))     o.ckpt = cli_str(&c);
           else if (cli_is(&c, "--threads"))  o.threads = cli_threads(&c);
           else if (cli_is(&c, "--arch"))     while (cli_more(&c)) arch[n++] = (int)cli_int(&c, 0, 3);
           else if (cli_is(&c, "--help"))     { usage(); exit(0); }
           else if (cli_positional(&c))       add_input(c.arg);
           else cli_unknown(&c);
       }

   cli_start(c, prog, argc, argv)  begin; `prog` prefixes every message
   cli_next(c)          1 while arguments remain; c->arg is the current one
   cli_is(c, name)      the current argument is flag `name` (or its hyphenated alias)
   cli_positional(c)    the current argument is not a flag (does not start with '-', or is "-")
   cli_str(c)           the flag's value as text ("--x needs a value" if there is none)
   cli_int(c, lo, hi)   the value as a decimal integer: the whole text, within [lo, hi]
   cli_u64(c)           the value as an unsigned 64-bit decimal integer (seeds)
   cli_float(c, lo, hi) the value as a finite number within [lo, hi]
   cli_threads(c)       a thread count: 0 (the OpenMP default) to AG_MAX_THREADS
   cli_more(c)          for flags taking a list: 1 if the next argument is a value, and it
                        becomes the current value for cli_int/cli_str (no '-' start, not "--")
   cli_fail(c, fmt,...) print "prog: message" and the --help hint, exit 2
   cli_unknown(c)       "prog: unknown option '--x'", exit 2
   cli_dataset(c, name, path)  a data set name the library knows and, where it needs one, a
                        --data_path: otherwise exit 2 before anything is loaded
   A value is missing when the flag is last or the next argument starts with "--"; a flag
   that takes none (--help, or one a program reads without cli_str) refuses "--flag=value".

   Threads wait passively. OpenMP runtimes spin while a thread waits for the others; when
   other processes share the cores that spinning makes a program 5-20x slower. So when a
   program is built with OpenMP on Linux/POSIX and OMP_WAIT_POLICY is unset, cli_start
   re-executes it (the same pid, argv and environment) with OMP_WAIT_POLICY=passive: the
   runtime reads the variable once, when it starts, so setting it in main() would be too
   late. Setting OMP_WAIT_POLICY yourself (e.g. =active on a quiet machine) keeps yours; if
   the re-execution fails the program just goes on. AUTOGAN_CLI_SHOW_WAIT=1 prints the
   policy in effect to stderr (for the tests). Under a tool that follows the process (valgrind
   needs --trace-children=yes for the new image) set OMP_WAIT_POLICY to skip the step. */
#ifndef AUTOGAN_CLI_H
#define AUTOGAN_CLI_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#if defined(_OPENMP) && (defined(__unix__) || defined(__APPLE__))
#include <unistd.h>
#define CLI__REEXEC 1
extern char **environ;
#endif

typedef struct cli {
    const char *prog;
    int argc, i;
    char **argv;
    const char *arg;          /* the current argument */
    const char *flag;         /* the current flag without "=value", for messages */
    char flag_buf[128];
    const char *inline_value; /* the text after '=' in --flag=value, or NULL */
    const char *list_value;   /* set by cli_more: the next list element */
} cli;

#if defined(__GNUC__) || defined(__clang__)
#define CLI__FN static __attribute__((unused))
#define CLI__NORETURN __attribute__((noreturn))
#define CLI__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI__FN static
#define CLI__NORETURN
#define CLI__PRINTF(a, b)
#endif

CLI__FN CLI__NORETURN CLI__PRINTF(2, 3) void cli_fail(const cli *c, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", c->prog);
    va_start(ap, fmt); vfprintf(stderr, fmt, ap); va_end(ap);
    fprintf(stderr, "\n(run '%s --help' for the options)\n", c->prog);
    exit(2);
}

/* the re-execution with OMP_WAIT_POLICY=passive (see the top); returns only when it is not
   needed or it failed. The new environment is the old one plus the variable. */
CLI__FN void cli__passive_wait(char **argv) {
#ifdef CLI__REEXEC
    static char var[] = "OMP_WAIT_POLICY=passive";
    size_t n = 0, k; char **env;
    if (getenv("OMP_WAIT_POLICY") || !argv || !argv[0]) return;
    while (environ && environ[n]) n++;
    if (!(env = (char **)malloc((n + 2) * sizeof *env))) return;
    for (k = 0; k < n; k++) env[k] = environ[k];
    env[n] = var; env[n + 1] = NULL;
    fflush(stdout); fflush(stderr);
    execve("/proc/self/exe", argv, env);             /* Linux: this very executable */
    if (strchr(argv[0], '/')) execve(argv[0], argv, env);   /* elsewhere: the path it was started by */
    free(env);                                       /* both failed: go on as we are */
#else
    (void)argv;
#endif
}

CLI__FN void cli_start(cli *c, const char *prog, int argc, char **argv) {
    cli__passive_wait(argv);
    memset(c, 0, sizeof *c);
    c->prog = prog; c->argc = argc; c->argv = argv; c->i = 0;
    if (getenv("AUTOGAN_CLI_SHOW_WAIT")) {
        const char *w = getenv("OMP_WAIT_POLICY");
#ifdef _OPENMP
        fprintf(stderr, "%s: OMP_WAIT_POLICY=%s\n", prog, w ? w : "(unset: the runtime's default)");
#else
        fprintf(stderr, "%s: built without OpenMP: one thread, OMP_WAIT_POLICY%s%s has no effect\n", prog, w ? "=" : "", w ? w : "");
#endif
    }
}

CLI__FN int cli_next(cli *c) {
    const char *eq;
    if (c->inline_value) cli_fail(c, "%s takes no value (got '%s')", c->flag, c->inline_value);
    c->list_value = NULL;
    if (++c->i >= c->argc) return 0;
    c->arg = c->flag = c->argv[c->i];
    if (c->arg[0] == '-' && c->arg[1] == '-' && (eq = strchr(c->arg, '=')) != NULL) {
        size_t n = (size_t)(eq - c->arg);
        if (n >= sizeof c->flag_buf) n = sizeof c->flag_buf - 1;
        memcpy(c->flag_buf, c->arg, n); c->flag_buf[n] = 0;
        c->flag = c->flag_buf; c->inline_value = eq + 1;
        if (!strcmp(c->flag, "--help")) cli_fail(c, "--help takes no value (got '%s')", c->inline_value);
    }
    return 1;
}

/* `name` in the underscore spelling; '-' and '_' match each other after the leading "--" */
CLI__FN int cli_is(const cli *c, const char *name) {
    const char *a = c->flag, *b = name;
    if (strncmp(a, "--", 2) || strncmp(b, "--", 2)) return strcmp(a, b) == 0;
    for (a += 2, b += 2; *a && *b; a++, b++) {
        if (*a == *b || ((*a == '-' || *a == '_') && (*b == '-' || *b == '_'))) continue;
        return 0;
    }
    return *a == *b;
}

CLI__FN int cli_positional(const cli *c) { return c->arg[0] != '-' || c->arg[1] == 0; }

CLI__FN CLI__NORETURN void cli_unknown(const cli *c) {
    if (cli_positional(c)) cli_fail(c, "unexpected argument '%s'", c->arg);
    cli_fail(c, "unknown option '%s'", c->flag);
}

CLI__FN const char *cli_str(cli *c) {
    const char *v;
    if (c->list_value) { v = c->list_value; c->list_value = NULL; return v; }
    if (c->inline_value) { v = c->inline_value; c->inline_value = NULL; if (!*v) cli_fail(c, "%s needs a value", c->flag); return v; }
    if (c->i + 1 >= c->argc || strncmp(c->argv[c->i + 1], "--", 2) == 0) cli_fail(c, "%s needs a value", c->flag);
    return c->argv[++c->i];
}

CLI__FN int cli_more(cli *c) {
    const char *v;
    if (c->inline_value) { c->list_value = c->inline_value; c->inline_value = NULL; return 1; }
    if (c->i + 1 >= c->argc) return 0;
    v = c->argv[c->i + 1];
    if (v[0] == '-' && v[1] != 0 && !(v[1] >= '0' && v[1] <= '9')) return 0;
    if (!strcmp(v, "--")) return 0;
    c->list_value = v; c->i++;
    return 1;
}

CLI__FN long long cli_int(cli *c, long long lo, long long hi) {
    const char *v = cli_str(c); char *end; long long x;
    errno = 0;
    x = strtoll(v, &end, 10);
    if (end == v || *end || v[0] == ' ' || v[0] == '\t' || v[0] == '+')
        cli_fail(c, "%s '%s' is not an integer", c->flag, v);
    if (errno == ERANGE || x < lo || x > hi)
        cli_fail(c, "%s %s is out of range (%lld to %lld)", c->flag, v, lo, hi);
    return x;
}

CLI__FN unsigned long long cli_u64(cli *c) {
    const char *v = cli_str(c); char *end; unsigned long long x;
    errno = 0;
    if (!(v[0] >= '0' && v[0] <= '9')) cli_fail(c, "%s '%s' is not a non-negative integer", c->flag, v);
    x = strtoull(v, &end, 10);
    if (*end) cli_fail(c, "%s '%s' is not a non-negative integer", c->flag, v);
    if (errno == ERANGE) cli_fail(c, "%s %s is out of range (0 to %llu)", c->flag, v, (unsigned long long)-1);
    return x;
}

CLI__FN double cli_float(cli *c, double lo, double hi) {
    const char *v = cli_str(c); char *end; double x;
    errno = 0;
    x = strtod(v, &end);
    if (end == v || *end || v[0] == ' ' || v[0] == '\t') cli_fail(c, "%s '%s' is not a number", c->flag, v);
    if (!isfinite(x) || errno == ERANGE || x < lo || x > hi) cli_fail(c, "%s %s is out of range (%g to %g)", c->flag, v, lo, hi);
    return x;
}

CLI__FN int cli_threads(cli *c) { return (int)cli_int(c, 0, AG_MAX_THREADS); }

/* the data sets ag_dataset_load knows; those read from a file need --data_path (Fashion-MNIST
   has its shipped/Debian default) */
CLI__FN void cli_dataset(const cli *c, const char *name, const char *path) {
    static const char *const known[] = { "cifar10", "stl10", "mnist", "fashion-mnist", "folder" };
    size_t k;
    for (k = 0; k < sizeof known / sizeof known[0]; k++) if (!strcmp(name, known[k])) break;
    if (k == sizeof known / sizeof known[0]) cli_fail(c, "--dataset '%s': unknown data set (cifar10, stl10, mnist, fashion-mnist or folder)", name);
    if (!path && strcmp(name, "fashion-mnist")) cli_fail(c, "--dataset %s needs --data_path (the archive as downloaded, or its folder)", name);
}

#endif /* AUTOGAN_CLI_H */
