/*
 * native_driver.c - the bridge's native classifier driven from C (no JVM),
 * for the sanitizer build (make android-asan-test).
 *
 *   native_driver MODEL [-m MUTATIONS] [-s SEED] [-q 1] JPEG...
 *
 * Classifies every JPEG (errors are fine for unsupported files; a crash or a
 * sanitizer report is not), then MUTATIONS seeded bit-flip / truncation /
 * overwrite variants of them, then corrupt models: truncated, garbage, the
 * metadata renamed, the metadata JSON mutated.  Fails (exit 1) if a corrupt
 * model is accepted or a JPEG named with a "photos/" path fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edcl_classifier.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

#include "read_file.h"

static void mutate(uint8_t *d, size_t *n) {
  size_t size = *n;
  switch (rnd() % 4) {
    case 0: /* bit flips */
      for (int i = 0, k = 1 + (int)(rnd() % 8); i < k; i++) d[rnd() % size] ^= (uint8_t)(1u << (rnd() % 8));
      break;
    case 1: /* truncation */
      *n = (size_t)(rnd() % size);
      break;
    case 2: { /* overwrite a run with random bytes */
      size_t at = rnd() % size, len = 1 + rnd() % 64;
      for (size_t i = at; i < size && i < at + len; i++) d[i] = (uint8_t)rnd();
      break;
    }
    default: { /* flips in the header (first 1 KiB), where markers live */
      size_t lim = size < 1024 ? size : 1024;
      for (int i = 0, k = 1 + (int)(rnd() % 4); i < k; i++) d[rnd() % lim] ^= (uint8_t)(1u << (rnd() % 8));
    }
  }
}

static int expect_model_error(const char *what, const uint8_t *m, size_t n, const edcl_options *o) {
  edcl_classifier *cl = NULL;
  edcl_error err;
  int rc = edcl_create(m, n, o, &cl, &err);
  if (rc == EDCL_OK) {
    fprintf(stderr, "FAIL: corrupt model accepted: %s\n", what);
    edcl_free(cl);
    return 1;
  }
  printf("model %-28s -> error %d: %s\n", what, rc, err.message);
  return 0;
}

static size_t find(const uint8_t *h, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(h + i, needle, k) == 0) return i;
  return (size_t)-1;
}

int main(int argc, char **argv) {
  int mutations = 0, failures = 0, argi = 1, quiet = 0;
  edcl_options opts;
  edcl_error err;
  edcl_classifier *cl = NULL;
  int idx[1000];
  double scores[1000];
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [-m MUTATIONS] [-s SEED] JPEG...\n", argv[0]);
    return 2;
  }
  const char *model_path = argv[argi++];
  for (; argi + 1 < argc && argv[argi][0] == '-'; argi += 2) {
    if (strcmp(argv[argi], "-m") == 0) mutations = atoi(argv[argi + 1]);
    else if (strcmp(argv[argi], "-q") == 0) quiet = atoi(argv[argi + 1]);
    else if (strcmp(argv[argi], "-s") == 0) rng_state ^= strtoull(argv[argi + 1], NULL, 10) * 0x9E37ULL + 1;
  }
  edcl_default_options(&opts);
  opts.num_threads = 1;
  if (edcl_create_from_file(model_path, &opts, &cl, &err) != EDCL_OK) {
    fprintf(stderr, "FAIL: cannot load %s: %s\n", model_path, err.message);
    return 1;
  }
  int nfiles = argc - argi, ok = 0, bad = 0;
  for (int i = argi; i < argc; i++) {
    size_t n = 0;
    int count = 0;
    uint8_t *d = read_file(argv[i], &n);
    if (d == NULL) { fprintf(stderr, "FAIL: cannot read %s\n", argv[i]); failures++; continue; }
    int rc = edcl_classify(cl, d, n, idx, scores, 1000, &count, &err);
    if (rc == EDCL_OK) {
      ok++;
      if (!quiet) printf("%s: %d %.6f\n", argv[i], idx[0], scores[0]);
    } else {
      bad++;
      if (!quiet) printf("%s: error %d: %s\n", argv[i], rc, err.message);
      if (strstr(argv[i], "/photos/")) {
        fprintf(stderr, "FAIL: %s: %s\n", argv[i], err.message);
        failures++;
      }
    }
    free(d);
  }
  printf("files: %d classified, %d refused\n", ok, bad);
  ok = bad = 0;
  for (int m = 0; m < mutations && nfiles > 0; m++) {
    size_t n = 0;
    int count = 0;
    uint8_t *d = read_file(argv[argi + (int)(rnd() % (uint64_t)nfiles)], &n);
    if (d == NULL || n == 0) { free(d); continue; }
    mutate(d, &n);
    uint8_t *exact = malloc(n ? n : 1); /* exact-size copy so ASan sees overreads */
    memcpy(exact, d, n);
    free(d);
    if (edcl_classify(cl, exact, n, idx, scores, 1000, &count, &err) == EDCL_OK) ok++;
    else bad++;
    free(exact);
  }
  printf("mutations: %d classified, %d refused\n", ok, bad);
  edcl_free(cl);

  /* Corrupt models. */
  size_t msize = 0;
  uint8_t *model = read_file(model_path, &msize), *copy = malloc(msize + 1);
  size_t meta_at = find(model, msize, "{\"version\"");
  size_t name_at = find(model, msize, "edge_dct");
  failures += expect_model_error("empty", model, 0, &opts);
  failures += expect_model_error("truncated to 64 bytes", model, 64, &opts);
  failures += expect_model_error("truncated to half", model, msize / 2, &opts);
  for (size_t i = 0; i < msize; i++) copy[i] = (uint8_t)rnd();
  failures += expect_model_error("garbage", copy, msize, &opts);
  memcpy(copy, model, msize);
  memcpy(copy + 4, "XXXX", 4);
  failures += expect_model_error("bad file identifier", copy, msize, &opts);
  if (name_at != (size_t)-1) {
    memcpy(copy, model, msize);
    copy[name_at + 7] = 'X';
    failures += expect_model_error("without edge_dct metadata", copy, msize, &opts);
  }
  if (meta_at != (size_t)-1) {
    static const struct { const char *from, *to, *what; } edits[] = {
        {"{\"version\"", "[\"version\"", "metadata not JSON"},
        {"\"split\"", "\"splot\"", "bad layout"},
        {"\"grid\":[28,28]", "\"grid\":[26,28]", "grid disagrees"},
        {"\"version\":1", "\"version\":2", "version 2"},
        {"\"labels\":[", "\"labelz\":[", "no labels"},
        {"\"size\":256", "\"size\":2.5", "resize.size not an int"},
    };
    for (size_t e = 0; e < sizeof(edits) / sizeof(edits[0]); e++) {
      size_t at = find(model, msize, edits[e].from);
      if (at == (size_t)-1) { fprintf(stderr, "note: '%s' not found\n", edits[e].from); continue; }
      memcpy(copy, model, msize);
      memcpy(copy + at, edits[e].to, strlen(edits[e].to));
      failures += expect_model_error(edits[e].what, copy, msize, &opts);
    }
    /* The JSON reader on mutated metadata (no LiteRT: fast, many). */
    size_t end = meta_at;
    while (end < msize && model[end] != 0) end++; /* the JSON ends before padding */
    size_t len = end - meta_at;
    int parsed = 0, refused = 0;
    for (int m = 0; m < 2000; m++) {
      uint8_t *j = malloc(len);
      size_t n = len;
      memcpy(j, model + meta_at, len);
      mutate(j, &n);
      edcl_meta meta;
      if (edcl_meta_parse((const char *)j, n, &meta, &err) == EDCL_OK) parsed++;
      else refused++;
      edcl_meta_free(&meta);
      free(j);
    }
    printf("mutated metadata JSON: %d parsed, %d refused\n", parsed, refused);
  }
  /* Bit flips anywhere in the model (LiteRT verifies the flatbuffer): no crash, either way. */
  int accepted = 0, rejected = 0;
  for (int m = 0; m < 20; m++) {
    edcl_classifier *c2 = NULL;
    memcpy(copy, model, msize);
    for (int k = 0, nk = 1 + (int)(rnd() % 4); k < nk; k++) {
      size_t at = rnd() % 3 == 0 ? rnd() % (msize < 4096 ? msize : 4096) : rnd() % msize;
      copy[at] ^= (uint8_t)(1u << (rnd() % 8));
    }
    if (edcl_create(copy, msize, &opts, &c2, &err) == EDCL_OK) {
      int count = 0;
      size_t n = 0;
      uint8_t *d = read_file(argv[argi], &n);
      if (d && nfiles > 0) edcl_classify(c2, d, n, idx, scores, 1000, &count, &err);
      free(d);
      edcl_free(c2);
      accepted++;
    } else {
      rejected++;
    }
  }
  printf("bit-flipped models: %d loaded, %d refused\n", accepted, rejected);
  free(copy);
  free(model);
  printf(failures ? "FAILED (%d)\n" : "OK\n", failures);
  return failures ? 1 : 0;
}
