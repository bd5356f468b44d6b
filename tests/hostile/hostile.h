/*
 * hostile.h - hostile mails built in memory, for tests/hostile and bench/hostile
 *
 * Every builder returns a complete mail (transfer full, free with
 * g_string_free). Contents are deterministic.
 */
#ifndef FBL_TESTS_HOSTILE_H
#define FBL_TESTS_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

/* @depth multiparts, each inside the last, each with its own boundary. */
GString *fbl_hostile_deep_nesting(unsigned depth);

/* One multipart/mixed with @parts small text parts. */
GString *fbl_hostile_many_parts(unsigned parts);

/* A forward whose Subject is @bytes long, on one line. */
GString *fbl_hostile_long_header(size_t bytes);

/* A mail with @count header fields. */
GString *fbl_hostile_many_headers(unsigned count);

/* A report attaching a copy of itself, @levels deep, each level's boundary distinct. */
GString *fbl_hostile_self_containing(unsigned levels);

/* The same, every level reusing one boundary (so the levels run into each other). */
GString *fbl_hostile_self_containing_same_boundary(unsigned levels);

/* An ARF report with NUL bytes in its text, its fields and the original. */
GString *fbl_hostile_nul_bytes(void);

/* A forward of a spam in unknown charsets, with invalid UTF-8 and RFC 2047 junk. */
GString *fbl_hostile_bad_charsets(void);

/* A forward of a spam with a base64 attachment of @bytes decoded bytes. */
GString *fbl_hostile_base64_attachment(size_t bytes);

/* (transfer full) hex SHA-256 of that attachment's decoded bytes */
char *fbl_hostile_attachment_sha256(size_t bytes);

#endif /* FBL_TESTS_HOSTILE_H */
