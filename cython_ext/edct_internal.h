/* edct_internal.h - helpers shared by the edct sources; not part of the API. */
#ifndef EDCT_INTERNAL_H
#define EDCT_INTERNAL_H

#include "edct.h"

/* Resets err to "no error" (status 0, code and offset -1). */
void edct__clear_error(edct_error *err);

/* Fills err with status and a printf-style message; returns status. */
int edct__fail(edct_error *err, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* EDCT_INTERNAL_H */
