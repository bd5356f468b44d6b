/*
 * schema_sql.h - the numbered migrations of schema/, compiled in
 *
 * Layer: sink/. Generated data (schema_sql.c, by embed_sql.cmake from
 * schema/NNN_name.sql at build time): a binary applies exactly the SQL it was
 * built with, never files of another version. Read-only, thread-safe.
 */
#ifndef FBL_SCHEMA_SQL_H
#define FBL_SCHEMA_SQL_H

#include <stddef.h>

typedef struct fbl_schema_sql_migration {
    unsigned version; /* NNN of the file name, > 0, increasing along the array */
    const char *name; /* the rest of the file name, without ".sql" */
    const char *sql;  /* the file's text; several statements, no BEGIN/COMMIT */
} fbl_schema_sql_migration;

/* Every migration, in version order. */
extern const fbl_schema_sql_migration fbl_schema_sql_migrations[];
extern const size_t fbl_schema_sql_count;

#endif /* FBL_SCHEMA_SQL_H */
