/*
 * cmd_keygen.c - `fbl keygen`: a CURVE key pair for a watcher or a sink
 * (PREFIX.key secret, mode 0600; PREFIX.pub public)
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <sysexits.h>

#include <glib.h>

#include "fbl/curve.h"

int fbl_cmd_keygen(int argc, char **argv)
{
    gboolean force = FALSE;
    GOptionEntry entries[] = {
        {"force", 'f', 0, G_OPTION_ARG_NONE, &force, "Replace existing key files", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("PREFIX");
    g_option_context_set_summary(
        ctx, "Make a CURVE key pair for the ZeroMQ link between watchers and sinks:\n"
             "PREFIX.key, the secret key (mode 0600: for [watch] or [sink] curve_secret_file),\n"
             "and PREFIX.pub, the public key (a sink's: [watch] curve_server_public_file;\n"
             "a watcher's: a file in the sink's [sink] curve_clients_dir). Prints the public key.");
    g_option_context_set_description(ctx, "Exit status: 0 written, 64 usage error, 73 a file "
                                          "exists or cannot be written.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, -1))
        return EX_USAGE;
    if (argc != 2) {
        (void) fprintf(stderr, "fbl keygen: give one PREFIX, e.g. /etc/fbl/sink (see --help)\n");
        return EX_USAGE;
    }
    char public_key[FBL_CURVE_KEY_LEN + 1];
    if (!fbl_curve_write_keypair(argv[1], force, public_key, &error)) {
        (void) fprintf(stderr, "fbl keygen: %s\n", error->message);
        return EX_CANTCREAT;
    }
    (void) printf("%s\n", public_key);
    (void) fprintf(stderr, "fbl keygen: wrote %s.key (secret, mode 0600) and %s.pub (public)\n",
                   argv[1], argv[1]);
    return EX_OK;
}
