/* cw_snap: the snapshot file format: a magic and format version, the
 * sections each module writes with the put/get calls below, and a 64-bit
 * checksum over everything before it. Written to a temporary file, flushed,
 * fsynced and renamed over the last snapshot (then the directory fsynced),
 * so a crash at any moment leaves either the old or the new snapshot whole.
 * Reading checks magic, version, length and checksum before anything is
 * used, and every get is bounds-checked: a corrupt file is refused, never
 * half-loaded. */
#ifndef CW_SNAP_H
#define CW_SNAP_H

#include <stddef.h>
#include <stdint.h>

/* 2: the reconsideration clocks, who handles each case (dept, pros), the
 * clocks' started/overdue counters, the sink's firing set. A version-1
 * file still loads. */
#define CW_SNAP_VERSION 2

typedef struct cw_snap_writer cw_snap_writer;

/* Opens `path`.tmp.<pid> for writing. NULL with a message on failure. */
cw_snap_writer *cw_snap_writer_open(const char *path, char *err, size_t errlen);
void cw_snap_put_u8(cw_snap_writer *w, uint8_t v);
void cw_snap_put_u32(cw_snap_writer *w, uint32_t v);
void cw_snap_put_u64(cw_snap_writer *w, uint64_t v);
void cw_snap_put_i64(cw_snap_writer *w, int64_t v);
void cw_snap_put_bytes(cw_snap_writer *w, const void *p, size_t n); /* u32 length, then the bytes */
void cw_snap_put_str(cw_snap_writer *w, const char *s);
/* Appends the checksum, flushes, fsyncs, renames over `path`, fsyncs the
 * directory, frees w. Returns 0, or -1 with a message (the temporary file
 * is removed; the previous snapshot stays). Bytes written in *size. */
int cw_snap_writer_commit(cw_snap_writer *w, size_t *size, char *err, size_t errlen);
/* Gives up: removes the temporary file, frees w. */
void cw_snap_writer_abort(cw_snap_writer *w);

typedef struct cw_snap_reader {
    const uint8_t *p, *end;
    int bad; /* a get ran past the end or read nonsense */
    uint32_t version; /* of the file: sections read what that version wrote */
} cw_snap_reader;

/* Checks a whole file in memory (magic, a version from 1 to
 * CW_SNAP_VERSION, checksum) and positions r
 * after the header. Returns 0, or -1 with a message naming the problem. */
int cw_snap_reader_init(cw_snap_reader *r, const void *buf, size_t len, char *err, size_t errlen);
uint8_t cw_snap_get_u8(cw_snap_reader *r);
uint32_t cw_snap_get_u32(cw_snap_reader *r);
uint64_t cw_snap_get_u64(cw_snap_reader *r);
int64_t cw_snap_get_i64(cw_snap_reader *r);
/* A pointer into the buffer and its length (not NUL-terminated); NULL and
 * r->bad set when it would run past the end or exceeds max. */
const char *cw_snap_get_bytes(cw_snap_reader *r, size_t max, size_t *len);
/* Copies a string of at most max bytes into out (NUL-terminated, outlen >
 * max). Returns 0 or -1 (r->bad set). */
int cw_snap_get_str(cw_snap_reader *r, char *out, size_t outlen);

/* For tools and fuzzing: the file image of a body (header + body +
 * checksum), malloc'd into *out. Returns its length, 0 on out of memory. */
size_t cw_snap_image(const void *body, size_t len, uint8_t **out);

/* Reads a whole file into memory (caller frees). NULL with errno set. */
void *cw_snap_read_file(const char *path, size_t *len);

#endif
