/*
 * bench/hostile.c - time and peak memory of fbl's parser on each hostile mail
 *
 * Method: each case runs in a child process (fork), which builds the mail,
 * then parses it once with the default limits; the parent reports the
 * child's parse wall time (CLOCK_MONOTONIC, measured in the child) and its
 * peak RSS (getrusage RUSAGE_CHILDREN ru_maxrss) minus the RSS of a child
 * that only built the same mail, so the figure is what parsing added.
 * Usage: bench_hostile [REPEAT]  (default 3; the best time of REPEAT is shown)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "parsers/parse.h"
#include "tests/hostile/hostile.h"

typedef GString *(*builder)(void);

static GString *deep(void)
{
    return fbl_hostile_deep_nesting(1000);
}
static GString *parts(void)
{
    return fbl_hostile_many_parts(100000);
}
static GString *parts_1005(void)
{
    return fbl_hostile_many_parts(1005);
}
static GString *header(void)
{
    return fbl_hostile_long_header((size_t) 1024 * 1024);
}
static GString *headers(void)
{
    return fbl_hostile_many_headers(10001);
}
static GString *self(void)
{
    return fbl_hostile_self_containing(200);
}
static GString *self_same(void)
{
    return fbl_hostile_self_containing_same_boundary(200);
}
static GString *nul(void)
{
    return fbl_hostile_nul_bytes();
}
static GString *charsets(void)
{
    return fbl_hostile_bad_charsets();
}
static GString *b64_over(void)
{
    return fbl_hostile_base64_attachment((size_t) 10 * 1024 * 1024);
}
static GString *b64_under(void)
{
    return fbl_hostile_base64_attachment((size_t) 7 * 1024 * 1024);
}

/* A forward whose text is 1 MiB (the inline scan's bound) of one hostile line shape:
 * inline recovery must stay linear in it. */
static GString *forward_of(const char *unit)
{
    GString *m =
        g_string_new("From: a@customer.example\nTo: abuse@example.net\nSubject: Fwd: spam\n"
                     "\nReceived: from a.example ([192.0.2.1]) by b.example\n");
    while (m->len < (size_t) 1024 * 1024)
        g_string_append(m, unit);
    return m;
}
static GString *inl_blank(void)
{
    return forward_of(" \n");
}
static GString *inl_empty(void)
{
    return forward_of("\n");
}
static GString *inl_collapsed(void)
{
    return forward_of("From: a Sent: b To: c Subject: d ");
}
static GString *inl_markers(void)
{
    return forward_of("---------- Forwarded message ----------\n");
}
static GString *inl_failing(void)
{
    return forward_of("From: x\n\n");
}
static GString *inl_names(void)
{
    return forward_of("X-A: b X-C: d X-E: f ");
}
static GString *inl_lookahead(void)
{
    return forward_of("\n \nFrom: x\n");
}
static GString *inl_masked(void)
{
    return forward_of("\n\nX-A: ***\nSubject: ***\n");
}

static const struct {
    const char *name;
    builder build;
} cases[] = {
    {"1,000-deep multipart nesting", deep},
    {"100,000 parts", parts},
    {"1,005 parts (past the pre-scan)", parts_1005},
    {"1 MiB header line", header},
    {"10,001 header fields", headers},
    {"message/rfc822 in itself x200", self},
    {"the same, one boundary", self_same},
    {"NUL bytes", nul},
    {"invalid UTF-8, unknown charsets", charsets},
    {"10 MiB base64 attachment", b64_over},
    {"7 MiB binary (9.5 MiB base64)", b64_under},
    {"inline: 1 MiB of white-space lines", inl_blank},
    {"inline: 1 MiB of empty lines", inl_empty},
    {"inline: one endless collapsed line", inl_collapsed},
    {"inline: 1 MiB of markers without blocks", inl_markers},
    {"inline: 1 MiB of blocks that fail", inl_failing},
    {"inline: 1 MiB of field names to split at", inl_names},
    {"inline: blanks that look ahead", inl_lookahead},
    {"inline: masked fragments", inl_masked},
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Run one case in a child; returns its max RSS in KiB, the parse time in *ms. */
static long run_child(builder build, bool do_parse, double *ms, char *outcome, size_t outlen)
{
    int fds[2];
    if (pipe(fds) != 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        fbl_parsers_init();
        fbl_parse_options o;
        fbl_parse_options_init(&o);
        fbl_parser *p = fbl_parser_new(&o, NULL);
        GString *mail = build();
        char msg[256] = "built";
        double t = 0;
        if (do_parse) {
            fbl_mail_meta meta = {.mailbox = "bench"};
            double t0 = now();
            fbl_parse_result *r = fbl_parser_parse(p, mail->str, mail->len, &meta);
            t = (now() - t0) * 1000.0;
            if (r->reject != NULL)
                (void) snprintf(msg, sizeof msg, "reject %s (%zu bytes)",
                                fbl_reject_reason_to_string(r->reject->reason), mail->len);
            else
                (void) snprintf(
                    msg, sizeof msg, "%u report(s), %u warning(s) (%zu bytes)", r->reports->len,
                    ((fbl_report *) g_ptr_array_index(r->reports, 0))->warnings->len, mail->len);
            fbl_parse_result_free(r);
        }
        if (write(fds[1], &t, sizeof t) != sizeof t || write(fds[1], msg, sizeof msg) < 0)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    char msg[256] = "";
    if (read(fds[0], ms, sizeof *ms) != sizeof *ms || read(fds[0], msg, sizeof msg) <= 0)
        g_strlcpy(msg, "child failed", sizeof msg);
    close(fds[0]);
    int status;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    g_strlcpy(outcome, msg, outlen);
    return ru.ru_maxrss;
}

int main(int argc, char **argv)
{
    guint64 n = 3;
    if (argc > 1 && !g_ascii_string_to_unsigned(argv[1], 10, 1, 100, &n, NULL)) {
        (void) fprintf(stderr, "usage: bench_hostile [REPEAT 1-100]\n");
        return 64;
    }
    int repeat = (int) n;
    printf("| case | outcome | parse ms (best of %d) | peak RSS added by parsing |\n", repeat);
    printf("|---|---|---:|---:|\n");
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        double best = 1e9, ms = 0, unused;
        long rss = 0;
        char outcome[256], dummy[256];
        for (int k = 0; k < repeat; k++) {
            rss = run_child(cases[i].build, true, &ms, outcome, sizeof outcome);
            best = ms < best ? ms : best;
        }
        long base = run_child(cases[i].build, false, &unused, dummy, sizeof dummy);
        printf("| %s | %s | %.1f | %.1f MiB |\n", cases[i].name, outcome, best,
               (double) (rss - base) / 1024.0);
    }
    return 0;
}
