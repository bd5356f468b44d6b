/*
 * commands.h - the subcommands of the fbl program
 *
 * Layer: fbl/. Each takes the arguments after its name (argv[0] is the
 * subcommand) and returns a sysexits(3) code.
 */
#ifndef FBL_COMMANDS_H
#define FBL_COMMANDS_H

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

#endif /* FBL_COMMANDS_H */
