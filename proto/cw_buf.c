#include "cw_buf.h"

#include <stdlib.h>
#include <string.h>

void cw_buf_init(cw_buf *b) {
    memset(b, 0, sizeof(*b));
}

void cw_buf_destroy(cw_buf *b) {
    if (!b) return;
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

char *cw_buf_room(cw_buf *b, size_t n) {
    if (b->oom) return NULL;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n + 1) cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = 1;
            return NULL;
        }
        b->buf = nb;
        b->cap = cap;
    }
    return b->buf + b->len;
}
