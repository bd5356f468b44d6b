/*
 * report_query.h - the analysts' headline tables for a window, as text cells
 * (what `fbl report` reads; fbl/cmd_report.c names the tables and renders them)
 *
 * Layer: sink/. Blocking libpq I/O on one connection of its own, used by one
 * thread at a time. Reads only what a SELECT over the analyst functions of
 * schema/005_analyst.sql gives, so the rights of fbl_analyst are enough.
 * A caller that must not wait for a long statement (a daemon stopping) gives
 * a cancel test (fbl_report_query_set_cancel()): the statement is then
 * cancelled on the server (PQcancel) as soon as the test says so.
 *
 * One statement per table: it computes the caller's SELECT once (a
 * MATERIALIZED CTE), ranks its rows, and returns the first @top of them, then
 * an "others" line (the rows past @top) and a "total" line, each summing the
 * columns the caller marks.
 *
 * Errors: FBL_PG_ERROR (sink/pgconn.h); FBL_PG_ERROR_SCHEMA when the analyst
 * functions are missing (run fbl migrate), _PRIVILEGE when the role may not
 * read them.
 */
#ifndef FBL_REPORT_QUERY_H
#define FBL_REPORT_QUERY_H

#include <stdbool.h>

#include <glib.h>

#include "sink/pgconn.h"

typedef struct fbl_report_query fbl_report_query;

/*
 * fbl_report_query_new - connect
 *
 * @application_name: pg_stat_activity's name ("fbl report"), unless the
 *   conninfo names one
 * Returns: (transfer full) or NULL with FBL_PG_ERROR.
 */
fbl_report_query *fbl_report_query_new(const char *conninfo, const char *application_name,
                                       GError **error);
void fbl_report_query_free(fbl_report_query *query);

/*
 * fbl_report_query_set_cancel - while a statement runs, call @cancelled
 * about every FBL_REPORT_QUERY_POLL_MS; once it returns true, ask the server
 * to cancel the statement, which then fails with FBL_PG_ERROR_TRANSIENT
 * (SQLSTATE 57014) as soon as the server stops it
 *
 * @cancelled: (nullable) called in the thread running the statement; NULL
 *   (the default): statements run to their end
 */
#define FBL_REPORT_QUERY_POLL_MS 100
void fbl_report_query_set_cancel(fbl_report_query *query, bool (*cancelled)(void));

/* A table's lines (fbl_report_query_table), each as text cells. */
typedef struct fbl_report_rows {
    guint n_rows;
    guint n_cols; /* 2 + the columns asked for */
    char **cells; /* n_rows * n_cols, row by row; NULL for SQL NULL */
} fbl_report_rows;

void fbl_report_rows_free(fbl_report_rows *rows);

/* fbl_report_rows_get - (transfer none) (nullable) a cell; NULL for SQL NULL */
const char *fbl_report_rows_get(const fbl_report_rows *rows, guint row, guint col);

/* What a line is (the first cell of each). */
typedef enum {
    FBL_REPORT_LINE_ROW = 0, /* a row of the table; its second cell is its rank */
    FBL_REPORT_LINE_OTHERS,  /* the rows past top; its second cell is how many */
    FBL_REPORT_LINE_TOTAL,   /* every row; its second cell is how many */
} fbl_report_line;

/* One column of a table: its alias in the SELECT, and whether "others" and "total" sum it. */
typedef struct fbl_report_column {
    const char *name;
    bool sum;
} fbl_report_column;

/*
 * fbl_report_query_table - one table of the window [@since, @until)
 *
 * @select: a SELECT over the analyst functions with $1 since and $2 until
 *   (timestamptz) and $4 the period unit (text), its columns aliased as
 *   @columns' names
 * @order: the rows' order, over the aliases, for the ranks
 * @since, @until: Unix seconds; @until 0: no end ('infinity')
 * @top: rows at most (0: all)
 * @period: the date_trunc() unit of $4: "hour" or "day"
 * @rows: (out) (transfer full) the lines: the rows by rank, then "others",
 *   then "total"; cells: the line's kind (fbl_report_line), its rank or
 *   count, then @columns in order
 * Returns: false with FBL_PG_ERROR.
 */
bool fbl_report_query_table(fbl_report_query *query, const char *select, const char *order,
                            const fbl_report_column *columns, guint n_columns, gint64 since,
                            gint64 until, guint top, const char *period, fbl_report_rows **rows,
                            GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_report_query, fbl_report_query_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_report_rows, fbl_report_rows_free)

#endif /* FBL_REPORT_QUERY_H */
