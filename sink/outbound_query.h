/*
 * outbound_query.h - complaints about our own users' mail: accounts and
 * their state, sent volumes, clears (schema/011_outbound.sql)
 *
 * Layer: sink/. Blocking libpq I/O on one connection of its own, used by one
 * thread at a time. fbl_outbound_query_accounts() reads
 * fbl.outbound_accounts() (account names: fbl_security, fbl_writer or the
 * owner) or, pseudonymised, fbl.outbound_account_keys() (fbl_analyst too);
 * the imports and clears write fbl.outbound_volumes and fbl.outbound_clears
 * (fbl_security or the owner). The state rule is the SQL's, one place.
 *
 * Errors: FBL_PG_ERROR (sink/pgconn.h); FBL_PG_ERROR_SCHEMA when 011 is not
 * applied (run fbl migrate), _PRIVILEGE when the role may not.
 */
#ifndef FBL_OUTBOUND_QUERY_H
#define FBL_OUTBOUND_QUERY_H

#include <stdbool.h>

#include <glib.h>

#include "sink/pgconn.h"

typedef struct fbl_outbound_query fbl_outbound_query;

/* The thresholds ([outbound] warn_rate, act_rate, min_complaints). */
typedef struct fbl_outbound_rules {
    unsigned warn_ppm, act_ppm; /* parts per million: 1000 = 0.1 % */
    unsigned min_complaints;
} fbl_outbound_rules;

/* One account of the window. */
typedef struct fbl_outbound_account {
    char *account; /* the name, or (pseudonymised) the 16-hex-digit key */
    char *domain;  /* (nullable) pseudonymised only: the account's domain */
    char *state;   /* ok, warn, act or cleared */
    guint64 complaints, reporters, last_hour, last_day, peak_hour, source_ips;
    guint64 counted; /* the complaints after the last clear */
    gint64 sent;     /* -1: no volume loaded */
    char *rate;      /* (nullable) complaint rate in percent, as PostgreSQL writes it */
    gint64 first_seen, last_seen, cleared_at; /* Unix seconds; 0: none */
    char *fingerprints;                       /* (nullable) PostgreSQL's array text */
} fbl_outbound_account;

void fbl_outbound_account_free(fbl_outbound_account *account);

/* One source IP of the window. */
typedef struct fbl_outbound_ip {
    char *ip;
    guint64 complaints, reporters, accounts, last_hour, last_day, peak_hour;
    gint64 first_seen, last_seen;
} fbl_outbound_ip;

void fbl_outbound_ip_free(fbl_outbound_ip *ip);

/* A day's count of one account, as fbl outbound import-volumes reads it. */
typedef struct fbl_outbound_volume {
    char *account; /* lower case */
    char day[11];  /* YYYY-MM-DD */
    guint64 sent;
} fbl_outbound_volume;

void fbl_outbound_volume_free(fbl_outbound_volume *volume);

/*
 * fbl_outbound_query_new - connect (application_name @application_name
 * unless the conninfo says)
 *
 * Returns: (transfer full) or NULL with FBL_PG_ERROR.
 */
fbl_outbound_query *fbl_outbound_query_new(const char *conninfo, const char *application_name,
                                           GError **error);
void fbl_outbound_query_free(fbl_outbound_query *query);

/*
 * fbl_outbound_query_accounts - the accounts with complaints in [@since,
 * @until) (Unix seconds), most complaints first
 *
 * @pseudonymised: read fbl.outbound_account_keys() (no names)
 * @out: (out) (transfer full) fbl_outbound_account *, freed with the array
 * Returns: false with FBL_PG_ERROR.
 */
bool fbl_outbound_query_accounts(fbl_outbound_query *query, gint64 since, gint64 until,
                                 const fbl_outbound_rules *rules, bool pseudonymised,
                                 GPtrArray **out, GError **error);

/*
 * fbl_outbound_query_ips - the source IPs of the window's complaints
 *
 * @out: (out) (transfer full) fbl_outbound_ip *, freed with the array
 * Returns: false with FBL_PG_ERROR.
 */
bool fbl_outbound_query_ips(fbl_outbound_query *query, gint64 since, gint64 until, GPtrArray **out,
                            GError **error);

/*
 * fbl_outbound_query_import_volumes - store @volumes (fbl_outbound_volume *)
 * in one transaction; a day already loaded for an account is replaced
 *
 * Returns: false with FBL_PG_ERROR (nothing stored).
 */
bool fbl_outbound_query_import_volumes(fbl_outbound_query *query, const GPtrArray *volumes,
                                       GError **error);

/*
 * fbl_outbound_query_clear - record that @account (lower case) is cleared,
 * by the session's database user and @os_user, for @reason (nullable)
 *
 * @cleared_at: (out) (optional) the time recorded, Unix seconds
 * Returns: false with FBL_PG_ERROR.
 */
bool fbl_outbound_query_clear(fbl_outbound_query *query, const char *account, const char *os_user,
                              const char *reason, gint64 *cleared_at, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_outbound_query, fbl_outbound_query_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_outbound_volume, fbl_outbound_volume_free)

#endif /* FBL_OUTBOUND_QUERY_H */
