/*
 * edcl_json.c - a small, strict JSON reader for bundle metadata (see edcl_json.h).
 */
#include "edcl_json.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edct.h"

#define ARENA_BLOCK 16384
#define MAX_NUMBER_LEN 400

typedef struct block {
  struct block *next;
  size_t used, size;
  /* data follows, max_align_t aligned */
} block;

struct edcl_json_doc {
  block *blocks;
  edcl_json root;
};

typedef struct parser {
  const char *p, *end, *start;
  edcl_json_doc *doc;
  edcl_error *err;
} parser;

static size_t header_size(void) {
  size_t a = sizeof(double) > sizeof(void *) ? sizeof(double) : sizeof(void *);
  return (sizeof(block) + a - 1) / a * a;
}

static void *arena_alloc(parser *ps, size_t n) {
  block *b = ps->doc->blocks;
  n = (n + 7) & ~(size_t)7;
  if (b == NULL || b->size - b->used < n) {
    size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    b = malloc(header_size() + size);
    if (b == NULL) {
      edcl_fail(ps->err, EDCT_ERR_NOMEM, "out of memory reading metadata");
      return NULL;
    }
    b->next = ps->doc->blocks;
    b->used = 0;
    b->size = size;
    ps->doc->blocks = b;
  }
  void *out = (char *)b + header_size() + b->used;
  b->used += n;
  return out;
}

static int syntax(parser *ps, const char *what) {
  return edcl_fail(ps->err, EDCL_ERR_MODEL, "metadata is not valid JSON: %s at byte %ld", what,
                   (long)(ps->p - ps->start));
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end &&
         (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static int literal(parser *ps, const char *word, edcl_json_type type, edcl_json *out) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return syntax(ps, "unexpected character");
  ps->p += n;
  out->type = type;
  return 0;
}

/* Length of a valid UTF-8 sequence starting at s (at most avail bytes), or 0. */
static int utf8_len(const unsigned char *s, size_t avail) {
  unsigned c = s[0];
  int n;
  uint32_t cp, min;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  if ((size_t)n > avail) return 0;
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

static char *put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | (cp >> 6));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | (cp >> 12));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | (cp >> 18));
    *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  return o;
}

static int hex4(parser *ps, uint32_t *out) {
  uint32_t v = 0;
  if (ps->end - ps->p < 4) return syntax(ps, "truncated \\u escape");
  for (int i = 0; i < 4; i++) {
    char c = *ps->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    else return syntax(ps, "bad \\u escape");
  }
  *out = v;
  return 0;
}

/* Parses a string (ps->p at the opening quote) into arena memory. */
static int parse_string(parser *ps, const char **out, size_t *len) {
  const char *q = ++ps->p; /* past the quote */
  while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
  if (q >= ps->end) return syntax(ps, "unterminated string");
  char *buf = arena_alloc(ps, (size_t)(q - ps->p) + 1);
  if (buf == NULL) return ps->err->status;
  char *o = buf;
  while (ps->p < q) {
    unsigned char c = (unsigned char)*ps->p;
    if (c < 0x20) return syntax(ps, "control character in string");
    if (c != '\\') {
      int n = utf8_len((const unsigned char *)ps->p, (size_t)(q - ps->p));
      if (n == 0) return syntax(ps, "invalid UTF-8 in string");
      memcpy(o, ps->p, (size_t)n);
      o += n;
      ps->p += n;
      continue;
    }
    ps->p++;
    char e = *ps->p++;
    uint32_t cp;
    switch (e) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u':
        if (hex4(ps, &cp)) return ps->err->status;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return syntax(ps, "lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (q - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
            return syntax(ps, "lone high surrogate");
          ps->p += 2;
          if (hex4(ps, &lo)) return ps->err->status;
          if (lo < 0xDC00 || lo > 0xDFFF) return syntax(ps, "bad surrogate pair");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) return syntax(ps, "NUL character in string");
        o = put_utf8(o, cp);
        break;
      default:
        return syntax(ps, "bad escape");
    }
  }
  *o = '\0';
  ps->p = q + 1;
  *out = buf;
  *len = (size_t)(o - buf);
  return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Validates the JSON number grammar, then converts with strtod using the
 * current locale's decimal point (JSON always writes '.'). */
static int parse_number(parser *ps, edcl_json *out) {
  const char *s = ps->p, *p = s;
  int integer = 1;
  if (p < ps->end && *p == '-') p++;
  if (p >= ps->end || !is_digit(*p)) return syntax(ps, "bad number");
  if (*p == '0') p++;
  else
    while (p < ps->end && is_digit(*p)) p++;
  const char *dot = NULL;
  if (p < ps->end && *p == '.') {
    dot = p++;
    integer = 0;
    if (p >= ps->end || !is_digit(*p)) return syntax(ps, "bad number");
    while (p < ps->end && is_digit(*p)) p++;
  }
  if (p < ps->end && (*p == 'e' || *p == 'E')) {
    p++;
    integer = 0;
    if (p < ps->end && (*p == '+' || *p == '-')) p++;
    if (p >= ps->end || !is_digit(*p)) return syntax(ps, "bad number");
    while (p < ps->end && is_digit(*p)) p++;
  }
  char buf[MAX_NUMBER_LEN + 8];
  const char *point = localeconv()->decimal_point;
  size_t plen = point && *point ? strlen(point) : 1;
  if ((size_t)(p - s) + plen > MAX_NUMBER_LEN) return syntax(ps, "number too long");
  size_t n = 0;
  for (const char *c = s; c < p; c++) {
    if (c == dot && point && *point) {
      memcpy(buf + n, point, plen);
      n += plen;
    } else {
      buf[n++] = *c;
    }
  }
  buf[n] = '\0';
  char *stop = NULL;
  double v = strtod(buf, &stop);
  if (stop != buf + n) return syntax(ps, "bad number");
  if (!isfinite(v)) return syntax(ps, "number out of range");
  out->type = EDCL_JSON_NUMBER;
  out->number = v;
  out->is_integer = integer;
  ps->p = p;
  return 0;
}

typedef struct vec {
  edcl_json *items;
  const char **keys;
  size_t n, cap;
} vec;

static int vec_push(parser *ps, vec *v, const char *key, const edcl_json *item) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 8;
    edcl_json *items = realloc(v->items, cap * sizeof(*items));
    if (items == NULL) return edcl_fail(ps->err, EDCT_ERR_NOMEM, "out of memory reading metadata");
    v->items = items;
    const char **keys = realloc(v->keys, cap * sizeof(*keys));
    if (keys == NULL) return edcl_fail(ps->err, EDCT_ERR_NOMEM, "out of memory reading metadata");
    v->keys = keys;
    v->cap = cap;
  }
  v->items[v->n] = *item;
  v->keys[v->n] = key;
  v->n++;
  return 0;
}

static int parse_value(parser *ps, int depth, edcl_json *out);

/* Arrays and objects: children collected in a growable vector, then moved
 * into the arena. */
static int parse_container(parser *ps, int depth, edcl_json *out) {
  int object = *ps->p == '{';
  char close = object ? '}' : ']';
  vec v = {NULL, NULL, 0, 0};
  int rc = 0;
  if (depth >= EDCL_JSON_MAX_DEPTH) return syntax(ps, "nesting too deep");
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
  } else {
    for (;;) {
      const char *key = NULL;
      size_t klen;
      edcl_json item;
      skip_ws(ps);
      if (object) {
        if (ps->p >= ps->end || *ps->p != '"') { rc = syntax(ps, "expected a key"); break; }
        if ((rc = parse_string(ps, &key, &klen)) != 0) break;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') { rc = syntax(ps, "expected ':'"); break; }
        ps->p++;
      }
      if ((rc = parse_value(ps, depth + 1, &item)) != 0) break;
      if ((rc = vec_push(ps, &v, key, &item)) != 0) break;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
      if (ps->p < ps->end && *ps->p == close) { ps->p++; break; }
      rc = syntax(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
      break;
    }
  }
  if (rc == 0) {
    memset(out, 0, sizeof(*out));
    out->type = object ? EDCL_JSON_OBJECT : EDCL_JSON_ARRAY;
    out->length = v.n;
    if (v.n) {
      out->items = arena_alloc(ps, v.n * sizeof(edcl_json));
      if (out->items == NULL) rc = ps->err->status;
      else memcpy(out->items, v.items, v.n * sizeof(edcl_json));
      if (rc == 0 && object) {
        out->keys = arena_alloc(ps, v.n * sizeof(char *));
        if (out->keys == NULL) rc = ps->err->status;
        else memcpy(out->keys, v.keys, v.n * sizeof(char *));
      }
    }
  }
  free(v.items);
  free(v.keys);
  return rc;
}

static int parse_value(parser *ps, int depth, edcl_json *out) {
  memset(out, 0, sizeof(*out));
  skip_ws(ps);
  if (ps->p >= ps->end) return syntax(ps, "unexpected end");
  switch (*ps->p) {
    case '{':
    case '[': return parse_container(ps, depth, out);
    case '"':
      out->type = EDCL_JSON_STRING;
      return parse_string(ps, &out->string, &out->length);
    case 't': return literal(ps, "true", EDCL_JSON_TRUE, out);
    case 'f': return literal(ps, "false", EDCL_JSON_FALSE, out);
    case 'n': return literal(ps, "null", EDCL_JSON_NULL, out);
    default: return parse_number(ps, out);
  }
}

edcl_json_doc *edcl_json_parse(const char *text, size_t size, edcl_error *err) {
  edcl_json_doc *doc = calloc(1, sizeof(*doc));
  if (doc == NULL) {
    edcl_fail(err, EDCT_ERR_NOMEM, "out of memory reading metadata");
    return NULL;
  }
  parser ps = {text, text + size, text, doc, err};
  if (text == NULL && size) {
    edcl_fail(err, EDCT_ERR_ARGUMENT, "no metadata text");
  } else if (parse_value(&ps, 0, &doc->root) == 0) {
    skip_ws(&ps);
    if (ps.p == ps.end) return doc;
    syntax(&ps, "trailing data");
  }
  edcl_json_free(doc);
  return NULL;
}

const edcl_json *edcl_json_root(const edcl_json_doc *doc) { return &doc->root; }

void edcl_json_free(edcl_json_doc *doc) {
  if (doc == NULL) return;
  block *b = doc->blocks;
  while (b) {
    block *next = b->next;
    free(b);
    b = next;
  }
  free(doc);
}

const edcl_json *edcl_json_get(const edcl_json *object, const char *key) {
  if (object == NULL || object->type != EDCL_JSON_OBJECT) return NULL;
  for (size_t i = object->length; i-- > 0;)
    if (strcmp(object->keys[i], key) == 0) return &object->items[i];
  return NULL;
}
