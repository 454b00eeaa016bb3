#include "cw_batch.h"

#include <stdlib.h>
#include <string.h>

struct cw_batch {
    cw_event_decoder *dec;
    cw_batch_entry *entries;
    size_t n, cap;
    cw_entry_field *fields; /* all entries' fields, side by side */
    size_t nfields, capfields;
    char *bytes; /* every id, name and value, NUL-terminated */
    size_t capbytes;
    /* cw_batch_add_*: bytes used so far, a name waiting for its value
     * (its offset + 1, 0: none, and its length), memory ran out */
    size_t nbytes, pending, pending_len;
    int oom;
    int64_t now_ms;
};

cw_batch *cw_batch_new(void) {
    cw_batch *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    if (!(b->dec = cw_event_decoder_new())) {
        free(b);
        return NULL;
    }
    return b;
}

void cw_batch_free(cw_batch *b) {
    if (!b) return;
    cw_event_decoder_free(b->dec);
    free(b->entries);
    free(b->fields);
    free(b->bytes);
    free(b);
}

static int is_entry(const redisReply *e) {
    return e && e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING;
}

static size_t nfields_of(const redisReply *e) {
    const redisReply *f = e->element[1];
    return f->type == REDIS_REPLY_ARRAY ? f->elements / 2 : 0;
}

static size_t len_of(const redisReply *s) {
    return s->type == REDIS_REPLY_STRING ? s->len : 0;
}

/* Grows *p to hold n items of size sz; 0 or -1. */
static int fit(void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < n) c *= 2;
    void *q = realloc(*p, c * sz);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static char *put(char **o, const char *s, size_t len) {
    char *at = *o;
    if (len) memcpy(at, s, len);
    at[len] = '\0';
    *o += len + 1;
    return at;
}

int cw_batch_fill(cw_batch *b, const redisReply *entries, int64_t now_ms) {
    b->n = b->nfields = 0;
    b->now_ms = now_ms;
    /* sizes first, so that nothing moves while pointers are taken */
    size_t n = 0, nf = 0, bytes = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (!is_entry(e)) continue;
        n++;
        bytes += e->element[0]->len + 1;
        size_t k = nfields_of(e);
        nf += k;
        for (size_t j = 0; j < 2 * k; j++) bytes += len_of(e->element[1]->element[j]) + 1;
    }
    if (fit((void **)&b->entries, &b->cap, n, sizeof(*b->entries)) < 0 ||
        fit((void **)&b->fields, &b->capfields, nf, sizeof(*b->fields)) < 0 ||
        fit((void **)&b->bytes, &b->capbytes, bytes, 1) < 0)
        return -1;
    char *o = b->bytes;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (!is_entry(e)) continue;
        cw_batch_entry *be = &b->entries[b->n++];
        be->id = put(&o, e->element[0]->str, e->element[0]->len);
        be->fields = &b->fields[b->nfields];
        be->nfields = nfields_of(e);
        for (size_t j = 0; j < be->nfields; j++) {
            const redisReply *k = e->element[1]->element[2 * j], *v = e->element[1]->element[2 * j + 1];
            cw_entry_field *f = &b->fields[b->nfields++];
            f->name_len = len_of(k);
            f->name = put(&o, k->str, f->name_len);
            f->value_len = len_of(v);
            f->value = put(&o, v->str, f->value_len);
        }
        be->ok = 0;
        be->why[0] = '\0';
    }
    return 0;
}

/* ---- Filled as a reply is parsed (cw_batch_begin .. cw_batch_end) ---- */

void cw_batch_begin(cw_batch *b, int64_t now_ms) {
    b->n = b->nfields = b->nbytes = b->pending = 0;
    b->oom = 0;
    b->now_ms = now_ms;
}

/* Copies s into the batch's bytes (NUL-terminated); its offset, or -1.
 * The bytes may still move: pointers into them are set by cw_batch_end. */
static long long add_bytes(cw_batch *b, const char *s, size_t len) {
    if (b->oom || fit((void **)&b->bytes, &b->capbytes, b->nbytes + len + 1, 1) < 0) {
        b->oom = 1;
        return -1;
    }
    size_t at = b->nbytes;
    if (len) memcpy(b->bytes + at, s, len);
    b->bytes[at + len] = '\0';
    b->nbytes += len + 1;
    return (long long)at;
}

/* The last entry's name without a value is not a field. */
static void drop_pending(cw_batch *b) {
    if (b->pending) b->nbytes = b->pending - 1;
    b->pending = 0;
}

int cw_batch_add_entry(cw_batch *b, const char *id, size_t len) {
    drop_pending(b);
    if (b->oom || fit((void **)&b->entries, &b->cap, b->n + 1, sizeof(*b->entries)) < 0 || add_bytes(b, id, len) < 0) {
        b->oom = 1;
        return -1;
    }
    cw_batch_entry *e = &b->entries[b->n++];
    e->id = NULL; /* set by cw_batch_end */
    e->fields = NULL;
    e->nfields = 0;
    e->ok = 0;
    e->why[0] = '\0';
    return 0;
}

int cw_batch_add_string(cw_batch *b, const char *s, size_t len) {
    if (!b->n) return 0; /* no entry: nothing it belongs to */
    long long at = add_bytes(b, s, len);
    if (at < 0) return -1;
    if (!b->pending) { /* a name: a field once its value comes */
        b->pending = (size_t)at + 1;
        b->pending_len = len;
        return 0;
    }
    b->pending = 0;
    if (fit((void **)&b->fields, &b->capfields, b->nfields + 1, sizeof(*b->fields)) < 0) {
        b->oom = 1;
        return -1;
    }
    cw_entry_field *f = &b->fields[b->nfields++];
    f->name = f->value = NULL; /* set by cw_batch_end */
    f->name_len = b->pending_len;
    f->value_len = len;
    b->entries[b->n - 1].nfields++;
    return 0;
}

/* The strings lie in the bytes in the order they were added: one walk
 * sets every pointer. */
int cw_batch_end(cw_batch *b) {
    drop_pending(b);
    if (b->oom) {
        b->n = b->nfields = 0;
        return -1;
    }
    char *o = b->bytes;
    cw_entry_field *f = b->fields;
    for (size_t i = 0; i < b->n; i++) {
        cw_batch_entry *e = &b->entries[i];
        e->id = o;
        o += strlen(o) + 1; /* a stream id holds no NUL */
        e->fields = f;
        for (size_t j = 0; j < e->nfields; j++, f++) {
            f->name = o;
            o += f->name_len + 1;
            f->value = o;
            o += f->value_len + 1;
        }
    }
    return 0;
}

void cw_batch_decode(cw_batch *b) {
    for (size_t i = 0; i < b->n; i++) {
        cw_batch_entry *e = &b->entries[i];
        e->ok = cw_event_decode_entry(b->dec, e->fields, e->nfields, b->now_ms, &e->ev, e->why, sizeof(e->why)) == 0;
        cw_engine_prepare(e->ok ? &e->ev : NULL, &e->keys);
    }
}

void cw_batch_clear(cw_batch *b) {
    b->n = b->nfields = 0;
}

size_t cw_batch_size(const cw_batch *b) {
    return b->n;
}

const cw_batch_entry *cw_batch_at(const cw_batch *b, size_t i) {
    return i < b->n ? &b->entries[i] : NULL;
}
