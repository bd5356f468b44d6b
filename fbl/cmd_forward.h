/*
 * cmd_forward.h - `fbl forward --status`, `--retry-dead` and `--backfill`:
 * one run over the vendors' outbox each, printing for its user
 *
 * Layer: fbl/. Called by the `fbl forward` subcommand (cmd_daemons.c) after
 * the configuration is loaded and the log is set up; each connects to
 * PostgreSQL with [postgres] conninfo, does its one job and returns a
 * sysexits(3) code: 69 when PostgreSQL cannot be reached, the code
 * fbl_pg_error_exit_code() gives for a database error (sink/pgconn.h), 64
 * for a wrong use of the flags. Errors and results are printed on @out,
 * never logged; a vendor's answer in a dead letter is masked
 * (fbl_redact_mask_addresses()). Single-threaded; @config is borrowed.
 */
#ifndef FBL_CMD_FORWARD_H
#define FBL_CMD_FORWARD_H

#include <stdio.h>

#include "fbl/config.h"

/*
 * fbl_forward_status - `fbl forward --status`: per vendor, rows pending,
 * sent, dead and limited, and the lag (age of the oldest pending row)
 *
 * Returns: a sysexits code.
 */
int fbl_forward_status(const fbl_config *config, FILE *out);

/*
 * fbl_forward_retry_dead - `fbl forward --retry-dead [VENDOR]`: dead letters
 * become pending again (attempts reset)
 *
 * @vendor: (nullable) one vendor, or all
 * Returns: a sysexits code.
 */
int fbl_forward_retry_dead(const fbl_config *config, const char *vendor, FILE *out);

/*
 * fbl_forward_backfill - `fbl forward --backfill --vendor NAME --since T
 * [--until T]`: give @vendor (configured after reports were stored) outbox
 * rows for the stored reports delivered in [@since, @until), step by step
 * (sink/outbox.h: idempotent, a report's existing row is kept; copies get
 * 'duplicate', rate-limited reports 'limited'). Prints a progress line every
 * few seconds on long runs, then a summary (rows added, already there).
 *
 * @since, @until: (nullable) as fbl_time_arg_parse() takes them; @since is required
 * Returns: a sysexits code (64: no vendor, an unknown one or no --since).
 */
int fbl_forward_backfill(const fbl_config *config, const char *vendor, const char *since,
                         const char *until, FILE *out);

#endif /* FBL_CMD_FORWARD_H */
