/* batch.c - the sink's unit of work */
#include "sink/batch.h"

struct fbl_batch {
    GPtrArray *mails; /* fbl_sink_mail * */
    guint reports;
    size_t bytes;
};

fbl_sink_mail *fbl_sink_mail_new(void)
{
    fbl_sink_mail *m = g_new0(fbl_sink_mail, 1);
    m->reports = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_report_free);
    m->size = -1;
    return m;
}

void fbl_sink_mail_free(fbl_sink_mail *m)
{
    if (m == NULL)
        return;
    g_free(m->mailbox);
    if (m->raw != NULL)
        g_bytes_unref(m->raw);
    g_ptr_array_unref(m->reports);
    fbl_reject_free(m->reject);
    g_free(m);
}

fbl_batch *fbl_batch_new(void)
{
    fbl_batch *b = g_new0(fbl_batch, 1);
    b->mails = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_sink_mail_free);
    return b;
}

void fbl_batch_free(fbl_batch *b)
{
    if (b == NULL)
        return;
    g_ptr_array_unref(b->mails);
    g_free(b);
}

/* A report's rows and JSON take roughly this much beside the raw bytes. */
#define REPORT_OVERHEAD 4096

void fbl_batch_add(fbl_batch *b, fbl_sink_mail *m)
{
    g_ptr_array_add(b->mails, m);
    b->reports += m->reports->len;
    b->bytes += (m->raw != NULL ? g_bytes_get_size(m->raw) : 0) +
                (size_t) (m->reports->len + 1) * REPORT_OVERHEAD;
}

guint fbl_batch_mails(const fbl_batch *b)
{
    return b->mails->len;
}

guint fbl_batch_reports(const fbl_batch *b)
{
    return b->reports;
}

size_t fbl_batch_bytes(const fbl_batch *b)
{
    return b->bytes;
}

const fbl_sink_mail *fbl_batch_get(const fbl_batch *b, guint i)
{
    g_assert(i < b->mails->len);
    return g_ptr_array_index(b->mails, i);
}
