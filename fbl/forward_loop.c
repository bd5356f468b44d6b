/* forward_loop.c - PLACEHOLDER until the vendor feed lands (issue "vendor feed") */
#define G_LOG_DOMAIN "fbl-forward"
#include "fbl/forward_loop.h"

#include <sysexits.h>

fbl_forward_loop *fbl_forward_loop_new(const fbl_config *config, GError **error)
{
    (void) config;
    g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_KEY,
                "forwarding to vendors is not available in this build yet");
    return NULL;
}

void fbl_forward_loop_free(fbl_forward_loop *loop)
{
    (void) loop;
}

bool fbl_forward_loop_run(fbl_forward_loop *loop, GError **error)
{
    (void) loop;
    (void) error;
    return true;
}

int fbl_forward_status(const fbl_config *config, FILE *out)
{
    (void) config;
    fprintf(out, "forwarding to vendors is not available in this build yet\n");
    return EX_UNAVAILABLE;
}

int fbl_forward_retry_dead(const fbl_config *config, const char *vendor, FILE *out)
{
    (void) config;
    (void) vendor;
    fprintf(out, "forwarding to vendors is not available in this build yet\n");
    return EX_UNAVAILABLE;
}
