#include "cw_snap.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[8] = {'C', 'W', 'S', 'N', 'A', 'P', '\r', '\n'};

#define CHUNK (1u << 20) /* the checksum is taken over 1 MiB runs of the file */

struct cw_snap_writer {
    FILE *f;
    char *path, *tmp;
    uint64_t hash;
    size_t size;
    int failed;
    uint8_t *buf;
    size_t nbuf;
};

/* FNV-1a over 8-byte words (and the tail bytewise): fast enough for a
 * few hundred MB, and any flipped bit changes it. */
static uint64_t hash_update(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 1099511628211ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--) h = (h ^ *p++) * 1099511628211ULL;
    return h;
}

#define HASH_SEED 1469598103934665603ULL

/* Hashes and writes the buffered run. */
static void drain(cw_snap_writer *w) {
    if (!w->nbuf) return;
    w->hash = hash_update(w->hash, w->buf, w->nbuf);
    if (!w->failed && fwrite(w->buf, 1, w->nbuf, w->f) != w->nbuf) w->failed = errno ? errno : EIO;
    w->nbuf = 0;
}

static void put_hashed_slow(cw_snap_writer *w, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        size_t k = CHUNK - w->nbuf < n ? CHUNK - w->nbuf : n;
        memcpy(w->buf + w->nbuf, b, k);
        w->nbuf += k;
        b += k;
        n -= k;
        if (w->nbuf == CHUNK) drain(w);
    }
}

/* Appends n bytes (hashed when the chunk is drained). Every field of a
 * snapshot comes through here: the common case, a field that fits in the
 * chunk, is a copy of a size known where it is inlined. */
static inline void put_hashed(cw_snap_writer *w, const void *p, size_t n) {
    w->size += n;
    if (n < CHUNK - w->nbuf) {
        memcpy(w->buf + w->nbuf, p, n);
        w->nbuf += n;
        return;
    }
    put_hashed_slow(w, p, n);
}

cw_snap_writer *cw_snap_writer_open(const char *path, char *err, size_t errlen) {
    cw_snap_writer *w = calloc(1, sizeof(*w));
    if (!w) return snprintf(err, errlen, "out of memory"), NULL;
    w->path = strdup(path);
    size_t tl = strlen(path) + 32;
    w->tmp = malloc(tl);
    w->buf = malloc(CHUNK);
    if (!w->path || !w->tmp || !w->buf) {
        cw_snap_writer_abort(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(w->tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 || !(w->f = fdopen(fd, "wb"))) {
        snprintf(err, errlen, "cannot create %s: %s", w->tmp, strerror(errno));
        if (fd >= 0) close(fd);
        free(w->path);
        free(w->tmp);
        free(w->buf);
        free(w);
        return NULL;
    }
    w->hash = HASH_SEED;
    put_hashed(w, MAGIC, sizeof(MAGIC));
    cw_snap_put_u32(w, CW_SNAP_VERSION);
    return w;
}

void cw_snap_put_u8(cw_snap_writer *w, uint8_t v) {
    put_hashed(w, &v, 1);
}
void cw_snap_put_u32(cw_snap_writer *w, uint32_t v) {
    put_hashed(w, &v, 4);
}
void cw_snap_put_u64(cw_snap_writer *w, uint64_t v) {
    put_hashed(w, &v, 8);
}
void cw_snap_put_i64(cw_snap_writer *w, int64_t v) {
    put_hashed(w, &v, 8);
}
void cw_snap_put_bytes(cw_snap_writer *w, const void *p, size_t n) {
    cw_snap_put_u32(w, (uint32_t)n);
    put_hashed(w, p, n);
}
void cw_snap_put_str(cw_snap_writer *w, const char *s) {
    cw_snap_put_bytes(w, s, strlen(s));
}

void cw_snap_writer_abort(cw_snap_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    if (w->tmp) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w->buf);
    free(w);
}

int cw_snap_writer_commit(cw_snap_writer *w, size_t *size, char *err, size_t errlen) {
    drain(w);
    uint64_t h = w->hash;
    if (!w->failed && fwrite(&h, 1, 8, w->f) != 8) w->failed = errno ? errno : EIO;
    w->size += 8;
    if (!w->failed && fflush(w->f) != 0) w->failed = errno;
    if (!w->failed && fsync(fileno(w->f)) != 0) w->failed = errno;
    if (w->failed) {
        snprintf(err, errlen, "writing %s: %s", w->tmp, strerror(w->failed));
        cw_snap_writer_abort(w);
        return -1;
    }
    fclose(w->f);
    w->f = NULL;
    if (rename(w->tmp, w->path) != 0) {
        snprintf(err, errlen, "renaming %s to %s: %s", w->tmp, w->path, strerror(errno));
        cw_snap_writer_abort(w);
        return -1;
    }
    /* the rename itself must reach the disk */
    char *copy = strdup(w->path);
    int dfd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
    if (size) *size = w->size;
    free(w->path);
    free(w->tmp);
    free(w->buf);
    free(w);
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

int cw_snap_reader_init(cw_snap_reader *r, const void *buf, size_t len, char *err, size_t errlen) {
    const uint8_t *b = buf;
    if (len < sizeof(MAGIC) + 4 + 8 || memcmp(b, MAGIC, sizeof(MAGIC)) != 0) {
        snprintf(err, errlen, "not a casewatch snapshot (bad magic or too short: %zu bytes)", len);
        return -1;
    }
    uint32_t version;
    memcpy(&version, b + sizeof(MAGIC), 4);
    if (version < 1 || version > CW_SNAP_VERSION) {
        snprintf(err, errlen, "snapshot format version %u, this casewatchd reads versions 1 to %u", version,
                 CW_SNAP_VERSION);
        return -1;
    }
    uint64_t h = HASH_SEED, want;
    for (size_t off = 0; off < len - 8; off += CHUNK) h = hash_update(h, b + off, len - 8 - off < CHUNK ? len - 8 - off : CHUNK);
    memcpy(&want, b + len - 8, 8);
    if (h != want) {
        snprintf(err, errlen, "snapshot checksum mismatch (truncated or corrupt file)");
        return -1;
    }
    r->p = b + sizeof(MAGIC) + 4;
    r->end = b + len - 8;
    r->bad = 0;
    r->version = version;
    return 0;
}

static const uint8_t *take(cw_snap_reader *r, size_t n) {
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

uint8_t cw_snap_get_u8(cw_snap_reader *r) {
    const uint8_t *p = take(r, 1);
    return p ? *p : 0;
}
uint32_t cw_snap_get_u32(cw_snap_reader *r) {
    uint32_t v = 0;
    const uint8_t *p = take(r, 4);
    if (p) memcpy(&v, p, 4);
    return v;
}
uint64_t cw_snap_get_u64(cw_snap_reader *r) {
    uint64_t v = 0;
    const uint8_t *p = take(r, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}
int64_t cw_snap_get_i64(cw_snap_reader *r) {
    return (int64_t)cw_snap_get_u64(r);
}
const char *cw_snap_get_bytes(cw_snap_reader *r, size_t max, size_t *len) {
    uint32_t n = cw_snap_get_u32(r);
    if (n > max) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = take(r, n);
    *len = p ? n : 0;
    return (const char *)p;
}
int cw_snap_get_str(cw_snap_reader *r, char *out, size_t outlen) {
    size_t n;
    const char *p = cw_snap_get_bytes(r, outlen - 1, &n);
    if (!p) {
        out[0] = '\0';
        return -1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

void *cw_snap_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (got != (size_t)st.st_size) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = got;
    return buf;
}

size_t cw_snap_image(const void *body, size_t len, uint8_t **out) {
    size_t total = sizeof(MAGIC) + 4 + len + 8;
    uint8_t *b = malloc(total);
    if (!b) return 0;
    uint32_t v = CW_SNAP_VERSION;
    memcpy(b, MAGIC, sizeof(MAGIC));
    memcpy(b + sizeof(MAGIC), &v, 4);
    if (len) memcpy(b + sizeof(MAGIC) + 4, body, len);
    uint64_t h = HASH_SEED;
    for (size_t off = 0; off < total - 8; off += CHUNK) h = hash_update(h, b + off, total - 8 - off < CHUNK ? total - 8 - off : CHUNK);
    memcpy(b + total - 8, &h, 8);
    *out = b;
    return total;
}
