/*
 * blocklist_export.h - the listed entries as files that DNS servers, rspamd
 * and Postfix load
 *
 * Layer: fbl/. Writes files; no database. Thread-safe (no state).
 *
 * Formats (doc/fbl.1, EXPORT FORMATS):
 *   rbldnsd  IPs: an ip4trie dataset at FILE with the IPv4 entries, and an
 *            ip6trie dataset at FILE.ip6 with the IPv6 ones (always both,
 *            so the rbldnsd command line can name both); domains: a dnset
 *            dataset (each name itself, not its subdomains). Each starts
 *            with $SOA (serial 0: rbldnsd takes the file's mtime), $NS when
 *            nameservers are set, $TTL and the default answer
 *            ":127.0.0.2:Listed by ORG for spam complaints, see URL/$"
 *            (rbldnsd puts the queried entry in place of the '$').
 *   rspamd   one entry a line: a radix map (IPs, v4 and v6) or a domain map,
 *            for a multimap rule.
 *   postfix  IPs: a cidr: table ("203.0.113.7/32 REJECT 5.7.1 Listed by ...")
 *            for check_client_access; domains: the source of a hash: (or
 *            lmdb:) table for check_sender_access ("example.com REJECT
 *            ..."), which `postmap` compiles.
 *
 * Every file is written next to itself (FILE.XXXXXX in the same directory),
 * fsync'd, given mode 0644, renamed over FILE and the directory fsync'd: a
 * reader (rbldnsd checks mtimes, rspamd watches its maps, Postfix reopens
 * cidr tables) sees the old file or the new one, never half of one.
 */
#ifndef FBL_BLOCKLIST_EXPORT_H
#define FBL_BLOCKLIST_EXPORT_H

#include <stdbool.h>

#include <glib.h>

#include "sink/blocklist_query.h"

typedef enum {
    FBL_EXPORT_RBLDNSD = 0,
    FBL_EXPORT_RSPAMD,
    FBL_EXPORT_POSTFIX,
} fbl_export_format;

/* fbl_export_format_from_string - "rbldnsd", "rspamd" or "postfix" */
bool fbl_export_format_from_string(const char *text, fbl_export_format *out);

/* What the answers say ([blocklist] org, url, nameservers, hostmaster, ttl). Borrowed. */
typedef struct fbl_export_text {
    const char *org, *url;          /* required for rbldnsd and postfix */
    const char *const *nameservers; /* (nullable) */
    const char *hostmaster;
    unsigned ttl_s;
} fbl_export_text;

/*
 * fbl_export_render - the file of @format for @entries (char *) of @kind
 *
 * @ipv6: rbldnsd IPs only: the FILE.ip6 dataset (IPv6 entries) instead of
 *   FILE (IPv4 entries); other formats take both families in one file
 * Returns: (transfer full) the text.
 */
char *fbl_export_render(fbl_blocklist_kind kind, fbl_export_format format, const GPtrArray *entries,
                        const fbl_export_text *text, bool ipv6);

/*
 * fbl_export_write - render and write atomically @path (and, for rbldnsd
 * IPs, @path.ip6)
 *
 * Returns: false with FBL_BLOCKLIST_ERROR_WRITE naming the file and errno's text.
 */
bool fbl_export_write(const char *path, fbl_blocklist_kind kind, fbl_export_format format,
                      const GPtrArray *entries, const fbl_export_text *text, GError **error);

/*
 * fbl_export_write_text - @data into @path atomically, as every export is
 * written (above)
 *
 * Returns: false with FBL_BLOCKLIST_ERROR_WRITE naming the file and errno's text.
 */
bool fbl_export_write_text(const char *path, const char *data, GError **error);

/* fbl_export_ip6_path - (transfer full) where rbldnsd's IPv6 dataset goes: @path.ip6 */
char *fbl_export_ip6_path(const char *path);

#endif /* FBL_BLOCKLIST_EXPORT_H */
