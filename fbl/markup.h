/*
 * markup.h - text from the database made safe inside HTML and SVG
 *
 * Layer: fbl/. Pure; no state, thread-safe.
 *
 * Everything `fbl report --format html` shows came from strangers' mails
 * (subjects, domains, URL hosts): it goes through here before it reaches a
 * document. The same escaping is right for element content and for quoted
 * attribute values, in HTML and in inline SVG (both are parsed by the HTML
 * parser), so there is one function.
 *
 * Bounds: @max_chars characters at most, then an ellipsis.
 */
#ifndef FBL_MARKUP_H
#define FBL_MARKUP_H

#include <glib.h>

/*
 * fbl_markup_append_escaped - append @text to @out as character data
 *
 * @text: (nullable) any bytes; invalid UTF-8 is replaced (U+FFFD), so are C0
 *   and C1 controls and DEL (a hostile subject may carry them); NULL appends
 *   nothing
 * @max_chars: characters kept at most (then U+2026); 0: all
 *
 * & < > " ' become character references, so the result can end neither an
 * element nor a quoted attribute value, whatever @text holds.
 */
void fbl_markup_append_escaped(GString *out, const char *text, guint max_chars);

#endif /* FBL_MARKUP_H */
