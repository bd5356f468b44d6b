/* parse_pool.c - parsing and encoding on worker threads, handed back in order (see parse_pool.h) */
#define G_LOG_DOMAIN "fbl-watch"
#include "fbl/parse_pool.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gio/gio.h>

#include "fbl/wire.h"

struct fbl_parse_pool {
    const fbl_parser *parser;
    GPtrArray *threads; /* GThread * */
    /* fbl_parse_job * for the workers; the pool itself tells one worker to stop */
    GAsyncQueue *todo;
    GAsyncQueue *done; /* fbl_parse_job * a worker finished */
    GQueue order;      /* fbl_parse_job *: pushed, not popped, oldest first (the owner's) */
    int efd;           /* written by a worker after each job it finished; -1 without workers */
    gint closing;      /* atomic: the workers skip what is left */
};

fbl_parse_job *fbl_parse_job_new(fbl_mailfile *mail, const fbl_mail_meta *meta)
{
    fbl_parse_job *job = g_new0(fbl_parse_job, 1);
    job->mail = *mail;
    mail->data = NULL;
    job->meta = *meta;
    return job;
}

void fbl_parse_job_free(fbl_parse_job *job)
{
    if (job == NULL)
        return;
    fbl_mailfile_clear(&job->mail);
    fbl_parse_result_free(job->result);
    if (job->frames != NULL)
        g_ptr_array_unref(job->frames);
    g_free(job);
}

/* Parse the job's mail and encode its message; the raw bytes move into the RAW frame. */
static void run_job(const fbl_parser *parser, fbl_parse_job *job)
{
    job->result = fbl_mailfile_parse(parser, &job->mail, &job->meta);
    GBytes *raw = job->mail.data != NULL ? g_byte_array_free_to_bytes(job->mail.data) : NULL;
    job->mail.data = NULL;
    job->frames = fbl_wire_encode_mail(job->result, job->meta.mailbox, job->meta.received_at,
                                       job->mail.size, raw);
    for (guint i = 0; i < job->frames->len; i++)
        job->bytes += g_bytes_get_size(g_ptr_array_index(job->frames, i));
    if (raw != NULL)
        g_bytes_unref(raw);
}

/* Tell the owner's poll that a job is done. The counter cannot overflow in practice
 * (2^64 - 2 jobs between two reads); a failure would only delay the owner's wake-up
 * to its next turn (watch.c polls at least every 200 ms). */
static void wake(fbl_parse_pool *pool)
{
    uint64_t one = 1;
    if (write(pool->efd, &one, sizeof one) < 0)
        g_debug("parse pool: eventfd write: %s", g_strerror(errno));
}

static gpointer worker_main(gpointer data)
{
    fbl_parse_pool *pool = data;
    for (;;) {
        gpointer item = g_async_queue_pop(pool->todo);
        if (item == pool)
            return NULL;
        fbl_parse_job *job = item;
        if (!g_atomic_int_get(&pool->closing))
            run_job(pool->parser, job);
        g_async_queue_push(pool->done, job);
        wake(pool);
    }
}

fbl_parse_pool *fbl_parse_pool_new(const fbl_parser *parser, unsigned threads, GError **error)
{
    g_return_val_if_fail(threads >= 1, NULL);
    fbl_parse_pool *pool = g_new0(fbl_parse_pool, 1);
    pool->parser = parser;
    pool->threads = g_ptr_array_new();
    pool->todo = g_async_queue_new();
    pool->done = g_async_queue_new();
    g_queue_init(&pool->order);
    pool->efd = -1;
    if (threads == 1)
        return pool;
    pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pool->efd < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "eventfd: %s", g_strerror(e));
        fbl_parse_pool_free(pool);
        return NULL;
    }
    for (unsigned i = 0; i < threads; i++)
        g_ptr_array_add(pool->threads, g_thread_new("fbl-parse", worker_main, pool));
    return pool;
}

void fbl_parse_pool_free(fbl_parse_pool *pool)
{
    if (pool == NULL)
        return;
    g_atomic_int_set(&pool->closing, 1);
    /* The jobs were queued before these: every worker skips them, then stops. */
    for (guint i = 0; i < pool->threads->len; i++)
        g_async_queue_push(pool->todo, pool);
    for (guint i = 0; i < pool->threads->len; i++)
        g_thread_join(g_ptr_array_index(pool->threads, i));
    g_ptr_array_unref(pool->threads);
    /* Every job is in order; done and todo hold nothing else now. */
    while (g_async_queue_try_pop(pool->done) != NULL)
        continue;
    g_async_queue_unref(pool->done);
    g_async_queue_unref(pool->todo);
    fbl_parse_job *job;
    while ((job = g_queue_pop_head(&pool->order)) != NULL)
        fbl_parse_job_free(job);
    if (pool->efd >= 0 && close(pool->efd) != 0)
        g_debug("parse pool: close eventfd: %s", g_strerror(errno));
    g_free(pool);
}

void fbl_parse_pool_push(fbl_parse_pool *pool, fbl_parse_job *job)
{
    g_queue_push_tail(&pool->order, job);
    if (pool->threads->len == 0) {
        run_job(pool->parser, job);
        job->_done = true;
        return;
    }
    g_async_queue_push(pool->todo, job);
}

/* Take in what the workers finished: the eventfd is read first, so a job finished
 * after the queue was emptied writes it again and wakes the next poll. */
static void collect(fbl_parse_pool *pool)
{
    uint64_t count;
    if (read(pool->efd, &count, sizeof count) < 0 && errno != EAGAIN)
        g_debug("parse pool: eventfd read: %s", g_strerror(errno));
    fbl_parse_job *job;
    while ((job = g_async_queue_try_pop(pool->done)) != NULL)
        job->_done = true;
}

fbl_parse_job *fbl_parse_pool_pop(fbl_parse_pool *pool)
{
    if (pool->efd >= 0)
        collect(pool);
    const fbl_parse_job *head = g_queue_peek_head(&pool->order);
    if (head == NULL || !head->_done)
        return NULL;
    return g_queue_pop_head(&pool->order);
}

unsigned fbl_parse_pool_pending(const fbl_parse_pool *pool)
{
    return pool->order.length;
}

int fbl_parse_pool_fd(const fbl_parse_pool *pool)
{
    return pool->efd;
}

unsigned fbl_parse_pool_threads(const fbl_parse_pool *pool)
{
    return pool->threads->len;
}
