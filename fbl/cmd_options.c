/*
 * cmd_options.c - the option parsing every subcommand shares (commands.h)
 */
#include <stdio.h>

#include "fbl/commands.h"

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
