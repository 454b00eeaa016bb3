/* cw_buf: a growable byte buffer embedded in its owner and reused from one
 * message to the next, so that writing the hundreds of thousands of
 * messages of a replay (alert JSON, commands in Redis's wire format)
 * allocates only while the buffer grows. */
#ifndef CW_BUF_H
#define CW_BUF_H

#include <stddef.h>

typedef struct cw_buf {
    char *buf;
    size_t len, cap;
    int oom; /* a write could not grow the buffer; kept until cw_buf_reset */
} cw_buf;

void cw_buf_init(cw_buf *b);
/* Frees the bytes; b may be NULL. */
void cw_buf_destroy(cw_buf *b);

/* Forgets the bytes written (the memory is kept). */
static inline void cw_buf_reset(cw_buf *b) {
    b->len = 0;
    b->oom = 0;
}

/* Room for n more bytes after len, and a NUL after them: where to write
 * them (the caller then adds what it wrote to len), or NULL with oom set. */
char *cw_buf_room(cw_buf *b, size_t n);

#endif
