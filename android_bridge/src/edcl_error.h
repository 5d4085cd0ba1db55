/*
 * edcl_error.h - the bridge's single error path.
 *
 * Every function of the bridge that can fail returns an edcl status (0 = OK)
 * and fills an edcl_error; the JNI layer turns it into one EdgeDctException.
 */
#ifndef EDCL_ERROR_H
#define EDCL_ERROR_H

#define EDCL_MESSAGE_LEN 320

/* Status codes: 1..6 are the C core's edct_status values (invalid JPEG,
 * unsupported JPEG, too large, out of memory, bad argument, aborted); the
 * bridge adds its own above them. */
enum {
  EDCL_OK = 0,
  EDCL_ERR_MODEL = 10,   /* model file corrupt, not a bundle, or disagrees with its spec */
  EDCL_ERR_RUNTIME = 11, /* LiteRT failed (accelerator unavailable, invoke failed) */
  EDCL_ERR_IO = 12       /* a file could not be read */
};

typedef struct edcl_error {
  int status;
  char message[EDCL_MESSAGE_LEN];
} edcl_error;

/* Fills err (printf-style) and returns status. */
int edcl_fail(edcl_error *err, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* EDCL_ERROR_H */
