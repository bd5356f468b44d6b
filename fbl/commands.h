/*
 * commands.h - the subcommands of the fbl program
 *
 * Layer: fbl/. Each takes the arguments after its name (argv[0] is the
 * subcommand) and returns a sysexits(3) code.
 */
#ifndef FBL_COMMANDS_H
#define FBL_COMMANDS_H

#include <stdbool.h>

#include <glib.h>

int fbl_cmd_parse(int argc, char **argv);
int fbl_cmd_migrate(int argc, char **argv);
int fbl_cmd_reparse(int argc, char **argv);
int fbl_cmd_watch(int argc, char **argv);
int fbl_cmd_sink(int argc, char **argv);
int fbl_cmd_run(int argc, char **argv);
int fbl_cmd_forward(int argc, char **argv);
int fbl_cmd_report(int argc, char **argv);
int fbl_cmd_prune(int argc, char **argv);
int fbl_cmd_keygen(int argc, char **argv);
int fbl_cmd_export(int argc, char **argv);
int fbl_cmd_blocklist(int argc, char **argv);
int fbl_cmd_outbound(int argc, char **argv);
/* fbl_cmd_export_accounts - `fbl export accounts` (fbl_cmd_export hands it over) */
int fbl_cmd_export_accounts(int argc, char **argv);

/*
 * fbl_cmd_parse_options - parse @ctx's options out of @argc/@argv (argv[0]
 * the subcommand), allowing at most @max_args arguments after them (-1: any)
 *
 * Returns: true, or false after saying "fbl NAME: why" on stderr (a bad
 * option, or an argument too many): the caller exits EX_USAGE.
 */
bool fbl_cmd_parse_options(GOptionContext *ctx, int *argc, char ***argv, int max_args);

/*
 * fbl_cmd_load_config - the config file @path (NULL: the default), its
 * conninfo replaced by @db when given (--db)
 *
 * Returns: (transfer full) the config, or NULL after saying "fbl @name: why"
 * on stderr with @status set: EX_CONFIG for the file, EX_USAGE for --db.
 */
struct fbl_config *fbl_cmd_load_config(const char *name, const char *path, const char *db,
                                       int *status);

/*
 * fbl_cmd_pg_failed - say "fbl @name: @error's message" on stderr
 *
 * Returns: the sysexits code of the PostgreSQL error (fbl_pg_error_exit_code()).
 */
int fbl_cmd_pg_failed(const char *name, const GError *error);

struct fbl_export_text;
struct fbl_outbound_rules;

/* fbl_cmd_outbound_rules - @config's [outbound] thresholds */
void fbl_cmd_outbound_rules(const struct fbl_config *config, struct fbl_outbound_rules *out);

/*
 * fbl_cmd_export_text - what the exported answers say: @config's [blocklist]
 * org, url, nameservers, hostmaster and ttl (borrowed from @config)
 */
void fbl_cmd_export_text(const struct fbl_config *config, struct fbl_export_text *out);

#endif /* FBL_COMMANDS_H */
