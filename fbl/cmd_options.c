/*
 * cmd_options.c - what every subcommand does alike: its options, its config (commands.h)
 */
#include <stdio.h>
#include <sysexits.h>

#include "fbl/commands.h"
#include "fbl/config.h"
#include "sink/pgconn.h"

bool fbl_cmd_parse_options(GOptionContext *ctx, int *argc, char ***argv, int max_args)
{
    const char *name = (*argv)[0];
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, argc, argv, &error)) {
        (void) fprintf(stderr, "fbl %s: %s\n", name, error->message);
        return false;
    }
    if (max_args >= 0 && *argc > 1 + max_args) {
        (void) fprintf(stderr, "fbl %s: unexpected argument '%s' (see --help)\n", name,
                       (*argv)[1 + max_args]);
        return false;
    }
    return true;
}

fbl_config *fbl_cmd_load_config(const char *name, const char *path, const char *db, int *status)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_config) config = fbl_config_load(path, &error);
    if (config == NULL) {
        (void) fprintf(stderr, "fbl %s: %s\n", name, error->message);
        *status = EX_CONFIG;
        return NULL;
    }
    if (db != NULL && !fbl_config_set_conninfo(config, db, &error)) {
        (void) fprintf(stderr, "fbl %s: %s\n", name, error->message);
        *status = EX_USAGE;
        return NULL;
    }
    return g_steal_pointer(&config);
}

int fbl_cmd_pg_failed(const char *name, const GError *error)
{
    (void) fprintf(stderr, "fbl %s: %s\n", name, error->message);
    return fbl_pg_error_exit_code(error);
}
