/*
 * fuzz_log.h - GLib criticals as findings, for the fuzz targets
 *
 * A failed g_return_if_fail() logs a critical and carries on with a wrong
 * value: a bug, which should stop the run with an input libFuzzer saves.
 * g_log_set_always_fatal() would end the process with SIGTRAP (G_BREAKPOINT),
 * which libFuzzer does not catch; abort() it handles like any crash.
 */
#ifndef FBL_FUZZ_LOG_H
#define FBL_FUZZ_LOG_H

#include <stdlib.h>

#include <glib.h>

static void fuzz_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
                             gpointer data)
{
    g_log_default_handler(domain, level, message, data);
    if ((level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)) != 0)
        abort();
}

/* fuzz_log_init - from LLVMFuzzerInitialize(): every critical aborts */
static inline void fuzz_log_init(void)
{
    g_log_set_default_handler(fuzz_log_handler, NULL);
}

#endif /* FBL_FUZZ_LOG_H */
