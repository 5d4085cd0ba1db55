/*
 * edcl_json.h - a small, strict JSON reader (RFC 8259) for bundle metadata.
 *
 * Parses a whole document into a tree held in one arena; malformed input,
 * invalid UTF-8, nesting deeper than EDCL_JSON_MAX_DEPTH and trailing data
 * are errors.  Numbers are converted locale-independently.
 */
#ifndef EDCL_JSON_H
#define EDCL_JSON_H

#include <stddef.h>

#include "edcl_error.h"

#define EDCL_JSON_MAX_DEPTH 64

typedef enum edcl_json_type {
  EDCL_JSON_NULL = 0,
  EDCL_JSON_FALSE,
  EDCL_JSON_TRUE,
  EDCL_JSON_NUMBER,
  EDCL_JSON_STRING,
  EDCL_JSON_ARRAY,
  EDCL_JSON_OBJECT
} edcl_json_type;

typedef struct edcl_json edcl_json;
struct edcl_json {
  edcl_json_type type;
  double number;      /* EDCL_JSON_NUMBER */
  int is_integer;     /* the number was written without fraction or exponent */
  const char *string; /* EDCL_JSON_STRING: UTF-8, NUL-terminated */
  size_t length;      /* string bytes, or item count of an array/object */
  edcl_json *items;   /* array items / object values */
  const char **keys;  /* object keys (NUL-terminated UTF-8) */
};

typedef struct edcl_json_doc edcl_json_doc;

/* Parses text[0, size); returns NULL with err filled (status EDCL_ERR_MODEL,
 * or EDCT_ERR_NOMEM) on failure. */
edcl_json_doc *edcl_json_parse(const char *text, size_t size, edcl_error *err);
const edcl_json *edcl_json_root(const edcl_json_doc *doc);
void edcl_json_free(edcl_json_doc *doc);

/* The value of key in an object (the last one if repeated), or NULL. */
const edcl_json *edcl_json_get(const edcl_json *object, const char *key);

#endif /* EDCL_JSON_H */
