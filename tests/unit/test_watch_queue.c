/*
 * test_watch_queue.c - fbl/watch_queue.c: files known by the unique part of
 * their names, followed when they move; the bound on waiting names; settling;
 * skipped names on a real Maildir (a FIFO, then a file in its place)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "fbl/watch_queue.h"
#include "tests/unit/harness.h"

#define BOX 7

typedef enum {
    END,
    ADD_NEW,  /* add @name in new/: "+name" or "full" */
    ADD_CUR,  /* the same in cur/ */
    TRACK,    /* known, not waiting (committed already) */
    FIND,     /* "new/NAME", "cur/NAME" or "none" */
    TO_NEW,   /* the known file of @name is now new/@name: "moved", "same" or "to-cur" */
    TO_CUR,   /* ... cur/@name */
    POP,      /* "pop:NAME" or "pop:none"; the file is held */
    WAIT,     /* the held file settles, due in 1 h */
    COMPLETE, /* the held file's writer is done, then it settles */
    FORGET,   /* the held file is done */
    SETTLE,   /* fbl_watch_queue_settle_due() now */
    NAMES,    /* "names=N" */
    LISTING,  /* "list=new,cur", "list=new", "list=cur" or "list=no" */
    LISTED,   /* new/ and cur/ listed in full */
} op;

typedef struct step {
    op op;
    const char *name;
} step;

#define STEPS_MAX 16

typedef struct row {
    const char *what;
    unsigned max_names;
    step steps[STEPS_MAX];
    const char *want; /* what the steps said, space-separated */
} row;

static void say(GString *out, const char *word)
{
    g_string_append_printf(out, "%s%s", out->len > 0 ? " " : "", word);
}

static void say_file(GString *out, const char *prefix, const fbl_watch_file *f)
{
    g_autofree char *word =
        f == NULL ? g_strdup_printf("%snone", prefix)
                  : g_strdup_printf("%s%s/%s", prefix, f->in_cur ? "cur" : "new", f->name);
    say(out, word);
}

static void say_listing(GString *out, const fbl_watch_queue *q)
{
    bool in_new = false, in_cur = false;
    if (!fbl_watch_queue_wants_listing(q, &in_new, &in_cur))
        say(out, "list=no");
    else
        say(out, in_new && in_cur ? "list=new,cur" : in_new ? "list=new" : "list=cur");
}

/* One step; @held is the file POP took, until WAIT, COMPLETE or FORGET. */
static void run_step(fbl_watch_queue *q, const step *s, fbl_watch_file **held, GString *out)
{
    fbl_watch_file *f = NULL;
    switch (s->op) {
    case ADD_NEW:
    case ADD_CUR: {
        f = fbl_watch_queue_add(q, NULL, BOX, s->op == ADD_CUR, s->name);
        g_autofree char *word = f != NULL ? g_strdup_printf("+%s", s->name) : g_strdup("full");
        say(out, word);
        break;
    }
    case TRACK:
        (void) fbl_watch_queue_track(q, NULL, BOX, s->name);
        break;
    case FIND:
        say_file(out, "", fbl_watch_queue_lookup(q, BOX, s->name));
        break;
    case TO_NEW:
    case TO_CUR: {
        f = fbl_watch_queue_lookup(q, BOX, s->name);
        assert_non_null(f);
        bool was_cur = f->in_cur, same = strcmp(f->name, s->name) == 0;
        bool to_cur = fbl_watch_queue_follow(f, s->op == TO_CUR, s->name);
        say(out, to_cur ? "to-cur" : same && was_cur == (s->op == TO_CUR) ? "same" : "moved");
        break;
    }
    case POP:
        *held = fbl_watch_queue_pop(q);
        say_file(out, "pop:", *held);
        break;
    case COMPLETE:
    case WAIT:
        assert_non_null(*held);
        (*held)->complete = s->op == COMPLETE;
        (*held)->due = g_get_monotonic_time() / 1000 + (int64_t) 3600 * 1000;
        fbl_watch_queue_wait(q, g_steal_pointer(held));
        break;
    case FORGET:
        assert_non_null(*held);
        fbl_watch_queue_forget(q, g_steal_pointer(held));
        break;
    case SETTLE:
        fbl_watch_queue_settle_due(q, g_get_monotonic_time() / 1000);
        break;
    case NAMES: {
        g_autofree char *word = g_strdup_printf("names=%u", fbl_watch_queue_names(q));
        say(out, word);
        break;
    }
    case LISTING:
        say_listing(out, q);
        break;
    case LISTED:
        fbl_watch_queue_listed(q, true, true);
        break;
    case END:
        break;
    }
}

static void test_queue(void **state)
{
    (void) state;
    static const row rows[] = {
        {"known by the unique part, wherever it moves",
         10,
         {{ADD_NEW, "1700000000.M1P1.host"},
          {FIND, "1700000000.M1P1.host:2,S"},
          {TO_CUR, "1700000000.M1P1.host:2,S"},
          {TO_CUR, "1700000000.M1P1.host:2,FS"},
          {TO_CUR, "1700000000.M1P1.host:2,FS"},
          {FIND, "1700000000.M1P1.host"},
          {FIND, "1700000000.M2P1.host"}},
         "+1700000000.M1P1.host new/1700000000.M1P1.host to-cur moved same "
         "cur/1700000000.M1P1.host:2,FS none"},
        {"read in order; forgotten once done",
         10,
         {{ADD_NEW, "a"},
          {ADD_CUR, "b"},
          {POP, NULL},
          {FORGET, NULL},
          {FIND, "a"},
          {POP, NULL},
          {FORGET, NULL},
          {POP, NULL}},
         "+a +b pop:new/a none pop:cur/b pop:none"},
        {"tracked: known, not waiting",
         1,
         {{TRACK, "c"}, {NAMES, NULL}, {FIND, "c"}, {ADD_NEW, "d"}, {NAMES, NULL}},
         "names=0 new/c +d names=1"},
        {"full: the name stays, its directory is listed again at half",
         2,
         {{ADD_NEW, "a"},
          {ADD_NEW, "b"},
          {ADD_NEW, "c"},
          {ADD_CUR, "d"},
          {FIND, "c"},
          {LISTING, NULL},
          {POP, NULL},
          {FORGET, NULL},
          {LISTING, NULL},
          {LISTED, NULL},
          {LISTING, NULL}},
         "+a +b full full none list=no pop:new/a list=new,cur list=no"},
        {"only the full directory is listed again",
         1,
         {{ADD_NEW, "a"}, {ADD_NEW, "b"}, {POP, NULL}, {FORGET, NULL}, {LISTING, NULL}},
         "+a full pop:new/a list=new"},
        {"settling counts against the bound",
         1,
         {{ADD_NEW, "a"},
          {POP, NULL},
          {WAIT, NULL},
          {NAMES, NULL},
          {ADD_NEW, "b"},
          {SETTLE, NULL},
          {POP, NULL}},
         "+a pop:new/a names=1 full pop:none"},
        {"a settling file whose writer is done is read next, first",
         10,
         {{ADD_NEW, "a"},
          {POP, NULL},
          {COMPLETE, NULL},
          {ADD_NEW, "b"},
          {SETTLE, NULL},
          {POP, NULL},
          {FORGET, NULL},
          {POP, NULL}},
         "+a pop:new/a +b pop:new/a pop:new/b"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const row *r = &rows[i];
        g_autoptr(fbl_watch_queue) q = fbl_watch_queue_new(r->max_names);
        g_autoptr(GString) out = g_string_new(NULL);
        GPtrArray *tracked = g_ptr_array_new();
        fbl_watch_file *held = NULL;
        for (const step *s = r->steps; s < r->steps + STEPS_MAX && s->op != END; s++) {
            run_step(q, s, &held, out);
            if (s->op == TRACK)
                g_ptr_array_add(tracked, fbl_watch_queue_lookup(q, BOX, s->name));
        }
        fbl_test_check_str(r->what, "said", r->want, out->str);
        if (held != NULL)
            fbl_watch_queue_forget(q, held);
        for (guint j = 0; j < tracked->len; j++)
            fbl_watch_queue_forget(q, g_ptr_array_index(tracked, j));
        g_ptr_array_unref(tracked);
    }
    fbl_test_rows_done();
}

/* The held file of new/@name, to be skipped. */
static fbl_watch_file *pop_added(fbl_watch_queue *q, const char *name)
{
    assert_non_null(fbl_watch_queue_add(q, NULL, BOX, false, name));
    fbl_watch_file *f = fbl_watch_queue_pop(q);
    assert_non_null(f);
    return f;
}

static void skip_fifo(fbl_watch_queue *q, const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, "new", name, NULL);
    assert_int_equal(mkfifo(path, 0600), 0);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    fbl_watch_queue_skip(q, pop_added(q, name), &st);
}

/* Skipped names, on a real Maildir: the same inode stays skipped, another is looked at. */
static void test_skipped(void **state)
{
    (void) state;
    g_autofree char *dir = fbl_test_maildir_new("fbl-wqueue-XXXXXX");
    g_autoptr(fbl_watch_queue) q = fbl_watch_queue_new(10);
    skip_fifo(q, dir, "fifo");
    skip_fifo(q, dir, "kept");
    skip_fifo(q, dir, "gone");

    assert_null(fbl_watch_queue_lookup(q, BOX, "fifo")); /* skipping forgets the file */
    assert_true(fbl_watch_queue_is_skipped(q, BOX, dir, false, "fifo"));
    assert_false(fbl_watch_queue_is_skipped(q, BOX, dir, true, "fifo")); /* cur/: another name */
    assert_false(fbl_watch_queue_is_skipped(q, BOX + 1, dir, false, "fifo"));

    /* A mail renamed over the FIFO (another inode): looked at anew, the FIFO forgotten. */
    fbl_test_maildir_put(dir, "new", "mail");
    g_autofree char *mail = g_build_filename(dir, "new", "mail", NULL);
    g_autofree char *fifo = g_build_filename(dir, "new", "fifo", NULL);
    assert_int_equal(g_rename(mail, fifo), 0);
    assert_false(fbl_watch_queue_is_skipped(q, BOX, dir, false, "fifo"));
    assert_int_equal(g_unlink(fifo), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_false(fbl_watch_queue_is_skipped(q, BOX, dir, false, "fifo"));

    /* A listing of new/ without "gone" forgets it; one of cur/ leaves new/'s alone. */
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    g_ptr_array_add(names, "kept");
    fbl_watch_queue_prune_skipped(q, BOX, false, names);
    assert_true(fbl_watch_queue_is_skipped(q, BOX, dir, false, "kept"));
    assert_false(fbl_watch_queue_is_skipped(q, BOX, dir, false, "gone"));
    g_ptr_array_set_size(names, 0);
    fbl_watch_queue_prune_skipped(q, BOX, true, names); /* cur/ listed empty: new/ unaffected */
    assert_true(fbl_watch_queue_is_skipped(q, BOX, dir, false, "kept"));
    fbl_watch_queue_prune_skipped(q, BOX, false, names);
    assert_false(fbl_watch_queue_is_skipped(q, BOX, dir, false, "kept"));
    fbl_test_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
