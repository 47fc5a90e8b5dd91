/* relaxed.h - the configuration file as 1.30 reads it: JSON::XS in relaxed
 * mode, which also takes shell-style '#' comments wherever whitespace may
 * stand, a comma after the last element of an array or object, and literal
 * TAB characters inside strings. Pure: no I/O. */
#ifndef AEMP_RELAXED_H
#define AEMP_RELAXED_H

#include <stddef.h>

/* Strict JSON text for the relaxed text s[0..len): comments become spaces
 * (their line ends stay), a trailing comma becomes a space, a TAB inside a
 * string becomes \t; every other byte and every line stays where it was, so
 * a parse error's line number is the line of the original. Only a comma
 * that follows a value is dropped ("[1,]", not "[,]" or "[1,,]", which
 * 1.30 refuses too). A new NUL-terminated string the caller frees (its
 * length in *outlen when not NULL), NULL on ENOMEM. */
char *config_relaxed_to_strict(const char *s, size_t len, size_t *outlen);

#endif
