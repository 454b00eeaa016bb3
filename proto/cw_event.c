#include "cw_event.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw_text.h"

/* ---- Event type table ------------------------------------------------ */

static const struct {
    const char *name;
    size_t len; /* of name */
    const char *label;
    int extra_item;
    const char *required;
} types[CW_EV_TYPE_COUNT] = {
#define CW__ROW(e, name, zh, extra, req) {name, sizeof(name) - 1, zh, extra, req},
    CW_EVENT_TYPES(CW__ROW)
#undef CW__ROW
};

const char *cw_event_type_name(cw_event_type t) {
    return (unsigned)t < CW_EV_TYPE_COUNT ? types[t].name : "?";
}

int cw_event_type_is_extra_item(cw_event_type t) {
    return (unsigned)t < CW_EV_TYPE_COUNT && types[t].extra_item;
}

/* One test per type, each a length compare and a memcmp of a constant
 * length, which the compiler turns into a few word compares: no call,
 * no loop over a table. Every event's type goes through here. */
int cw_event_type_from_name(const char *s, size_t len, cw_event_type *out) {
#define CW__MATCH(e, name, zh, extra, req)                                    \
    if (len == sizeof(name) - 1 && memcmp(s, name, sizeof(name) - 1) == 0) { \
        *out = CW_EV_##e;                                                     \
        return 0;                                                             \
    }
    CW_EVENT_TYPES(CW__MATCH)
#undef CW__MATCH
    return -1;
}

/* The wire names of the enumerated values; [0] is "absent". */
typedef struct name_len {
    const char *name;
    size_t len;
} name_len;
#define NAME(s) {s, sizeof(s) - 1}
static const name_len decision_names[] = {NAME(""), NAME("approve"), NAME("reject"), NAME("prosecute"),
                                          NAME("not_prosecute")};
static const name_len sentencing_names[] = {NAME(""), NAME("determinate"), NAME("range"), NAME("none")};
static const name_len reply_names[] = {NAME(""), NAME("procedural"), NAME("substantive")};
#undef NAME

const char *cw_decision_name(cw_decision d) {
    return (unsigned)d < 5 ? decision_names[d].name : "?";
}
const char *cw_sentencing_name(cw_sentencing s) {
    return (unsigned)s < 4 ? sentencing_names[s].name : "?";
}
const char *cw_reply_name(cw_reply r) {
    return (unsigned)r < 3 ? reply_names[r].name : "?";
}

/* ---- Key table ------------------------------------------------------- */

enum key_id {
    K_V, K_ID, K_TS, K_TYPE, K_CASE, K_UNIT, K_DEPT, K_PROS, K_N,
    K_DETAINED, K_COMPLEX, K_ARRESTED, K_FAST, K_PLEA, K_ADOPTED,
    K_DECISION, K_SENTENCING, K_REPLY, K_COUNT
};

/* the msgpack-c object types a kind of key accepts, a bit per type */
#define ACCEPTS(kind)                                                                                       \
    ((kind) == CW_KIND_UINT ? 1u << MSGPACK_OBJECT_POSITIVE_INTEGER                                        \
     : (kind) == CW_KIND_INT ? 1u << MSGPACK_OBJECT_POSITIVE_INTEGER | 1u << MSGPACK_OBJECT_NEGATIVE_INTEGER \
     : (kind) == CW_KIND_BOOL ? 1u << MSGPACK_OBJECT_BOOLEAN                                                \
                              : 1u << MSGPACK_OBJECT_STR)
#define KEY(name, kind, flag) {name, sizeof(name) - 1, kind, flag, ACCEPTS(kind)}
static const struct {
    const char *name;
    size_t len; /* of name */
    cw_key_kind kind;
    unsigned flag;    /* for booleans */
    unsigned accepts; /* ACCEPTS(kind) */
} keys[K_COUNT] = {
    [K_V] = KEY("v", CW_KIND_UINT, 0),
    [K_ID] = KEY("id", CW_KIND_STR, 0),
    [K_TS] = KEY("ts", CW_KIND_INT, 0),
    [K_TYPE] = KEY("type", CW_KIND_STR, 0),
    [K_CASE] = KEY("case", CW_KIND_STR, 0),
    [K_UNIT] = KEY("unit", CW_KIND_STR, 0),
    [K_DEPT] = KEY("dept", CW_KIND_STR, 0),
    [K_PROS] = KEY("pros", CW_KIND_STR, 0),
    [K_N] = KEY("n", CW_KIND_UINT, 0),
    [K_DETAINED] = KEY("detained", CW_KIND_BOOL, CW_F_DETAINED),
    [K_COMPLEX] = KEY("complex", CW_KIND_BOOL, CW_F_COMPLEX),
    [K_ARRESTED] = KEY("arrested", CW_KIND_BOOL, CW_F_ARRESTED),
    [K_FAST] = KEY("fast", CW_KIND_BOOL, CW_F_FAST),
    [K_PLEA] = KEY("plea", CW_KIND_BOOL, CW_F_PLEA),
    [K_ADOPTED] = KEY("adopted", CW_KIND_BOOL, CW_F_ADOPTED),
    [K_DECISION] = KEY("decision", CW_KIND_STR, 0),
    [K_SENTENCING] = KEY("sentencing", CW_KIND_STR, 0),
    [K_REPLY] = KEY("reply", CW_KIND_STR, 0),
};

/* Every key of every event is looked up: tests of the length, then
 * memcmps of a constant length, which the compiler inlines as a load and
 * a compare each, in the order keys come in events. The names are those
 * of keys[] above; test_event checks that each of them finds its own row
 * and that near misses find none. */
#define KEY_IS(lit) (memcmp(s, lit, sizeof(lit) - 1) == 0)
static inline __attribute__((always_inline)) int key_lookup(const char *s, size_t len) {
    if (len == 4) {
        if (KEY_IS("type")) return K_TYPE;
        if (KEY_IS("case")) return K_CASE;
        if (KEY_IS("unit")) return K_UNIT;
        if (KEY_IS("dept")) return K_DEPT;
        if (KEY_IS("pros")) return K_PROS;
        if (KEY_IS("fast")) return K_FAST;
        if (KEY_IS("plea")) return K_PLEA;
        return -1;
    }
    if (len < 4) {
        if (len == 2) {
            if (KEY_IS("id")) return K_ID;
            if (KEY_IS("ts")) return K_TS;
            return -1;
        }
        if (len == 1) {
            if (s[0] == 'v') return K_V;
            if (s[0] == 'n') return K_N;
        }
        return -1;
    }
    if (len == 8) {
        if (KEY_IS("detained")) return K_DETAINED;
        if (KEY_IS("arrested")) return K_ARRESTED;
        if (KEY_IS("decision")) return K_DECISION;
        return -1;
    }
    if (len == 7) {
        if (KEY_IS("complex")) return K_COMPLEX;
        if (KEY_IS("adopted")) return K_ADOPTED;
        return -1;
    }
    if (len == 10 && KEY_IS("sentencing")) return K_SENTENCING;
    if (len == 5 && KEY_IS("reply")) return K_REPLY;
    return -1;
}
#undef KEY_IS

cw_key_kind cw_event_key_kind(const char *key, size_t len) {
    int k = key_lookup(key, len);
    return k < 0 ? CW_KIND_UNKNOWN : keys[k].kind;
}

/* ---- Framing --------------------------------------------------------- */

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* For each first byte, the whole size of a value that has no length
 * bytes: fixint, nil, booleans, fixstr, the fixed-width numbers and
 * fixext. 0 for every other kind (containers, str/bin/ext with a length,
 * 0xc1). A table of constants, computed by the compiler. */
#define FIXED_SIZE(c)                                                               \
    ((c) <= 0x7f || (c) >= 0xe0                   ? 1                               \
     : ((c) & 0xe0) == 0xa0                       ? 1 + ((c) & 0x1f)                \
     : (c) == 0xc0 || (c) == 0xc2 || (c) == 0xc3 ? 1                               \
     : (c) == 0xcc || (c) == 0xd0                 ? 2                               \
     : (c) == 0xcd || (c) == 0xd1 || (c) == 0xd4  ? 3                               \
     : (c) == 0xd5                                ? 4                               \
     : (c) == 0xca || (c) == 0xce || (c) == 0xd2  ? 5                               \
     : (c) == 0xd6                                ? 6                               \
     : (c) == 0xcb || (c) == 0xcf || (c) == 0xd3  ? 9                               \
     : (c) == 0xd7                                ? 10                              \
     : (c) == 0xd8                                ? 18                              \
                                                  : 0)
#define FIXED_SIZE4(c) FIXED_SIZE(c), FIXED_SIZE((c) + 1), FIXED_SIZE((c) + 2), FIXED_SIZE((c) + 3)
#define FIXED_SIZE16(c) FIXED_SIZE4(c), FIXED_SIZE4((c) + 4), FIXED_SIZE4((c) + 8), FIXED_SIZE4((c) + 12)
static const uint8_t fixed_size[256] = {
    FIXED_SIZE16(0x00), FIXED_SIZE16(0x10), FIXED_SIZE16(0x20), FIXED_SIZE16(0x30),
    FIXED_SIZE16(0x40), FIXED_SIZE16(0x50), FIXED_SIZE16(0x60), FIXED_SIZE16(0x70),
    FIXED_SIZE16(0x80), FIXED_SIZE16(0x90), FIXED_SIZE16(0xa0), FIXED_SIZE16(0xb0),
    FIXED_SIZE16(0xc0), FIXED_SIZE16(0xd0), FIXED_SIZE16(0xe0), FIXED_SIZE16(0xf0),
};
#undef FIXED_SIZE16
#undef FIXED_SIZE4
#undef FIXED_SIZE

/* The whole size of the scalar whose first byte is p[0], for the kinds
 * an event is made of (those of fixed_size, and str and bin up to
 * 64 KiB), when its header lies in p[0..avail); else 0. */
static size_t scalar_size(const uint8_t *p, size_t avail) {
    size_t size = fixed_size[p[0]];
    if (size) return size;
    switch (p[0]) {
    case 0xc4: case 0xd9: return avail >= 2 ? 2 + (size_t)p[1] : 0;                /* bin8, str8 */
    case 0xc5: case 0xda: return avail >= 3 ? 3 + ((size_t)p[1] << 8 | p[2]) : 0; /* bin16, str16 */
    default: return 0;
    }
}

/* The common case of cw_msgpack_frame, in one tight loop: a map whose
 * keys are fixstr and whose values are scalars (scalar_size), all lying
 * wholly in buf[0..lim), lim being the lesser of len and max_bytes.
 * Returns 1 and sets *used for such a map, else 0: the caller then walks
 * the bytes the general way, which alone decides what is missing or
 * wrong and says why. A map this accepts is one the general walk accepts
 * with the same length (a depth of 1, every byte inside both len and the
 * cap). */
static inline int frame_flat_map(const uint8_t *p, size_t lim, size_t *used) {
    size_t off, pairs;
    if (lim == 0) return 0;
    if ((p[0] & 0xf0) == 0x80) {
        pairs = p[0] & 0x0f;
        off = 1;
    } else if (p[0] == 0xde && lim >= 3) {
        pairs = (size_t)p[1] << 8 | p[2];
        off = 3;
    } else {
        return 0;
    }
    /* off may run past lim by one value (at most 64 KiB), never wraps,
     * and every byte read lies below lim: the headers are checked
     * against it before they are read, the end once after the loop */
    for (; pairs; pairs--) {
        if (off >= lim || (p[off] & 0xe0) != 0xa0) return 0; /* the key, a fixstr */
        off += 1 + (size_t)(p[off] & 0x1f);
        if (off >= lim) return 0;
        size_t size = fixed_size[p[off]];
        if (!size && !(size = scalar_size(p + off, lim - off))) return 0;
        off += size;
    }
    if (off > lim) return 0;
    *used = off;
    return 1;
}

int cw_msgpack_frame(const void *buf, size_t len, size_t max_bytes, size_t *used, const char **why) {
    const uint8_t *p = buf;
    if (frame_flat_map(p, len < max_bytes ? len : max_bytes, used)) return 1;
    size_t off = 0;
    uint64_t left[CW_EVENT_MAX_DEPTH + 1]; /* values still to read, per level */
    int depth = 0;
    left[0] = 1;
    for (;;) {
        if (left[depth] == 0) {
            if (depth == 0) {
                *used = off;
                return 1;
            }
            depth--;
            continue;
        }
        left[depth]--;
        if (off >= len) return off >= max_bytes ? (*why = "value exceeds the size cap", -1) : 0;
        uint8_t c = p[off];
        size_t hdr = 1;      /* header bytes, including c */
        int lenbytes = 0;    /* big-endian length/count bytes after c */
        uint64_t payload = 0;
        uint64_t children = 0;
        int container = 0, is_map = 0;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, bool */
        } else if (c <= 0x8f) {
            container = is_map = 1;
            children = c & 0x0f;
        } else if (c <= 0x9f) {
            container = 1;
            children = c & 0x0f;
        } else if (c <= 0xbf) {
            payload = c & 0x1f;
        } else {
            switch (c) {
            case 0xc4: case 0xd9: lenbytes = 1; break;            /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;            /* bin16, str16 */
            case 0xc6: case 0xdb: lenbytes = 4; break;            /* bin32, str32 */
            case 0xc7: lenbytes = 1; payload = 1; break;           /* ext8: +type */
            case 0xc8: lenbytes = 2; payload = 1; break;
            case 0xc9: lenbytes = 4; payload = 1; break;
            case 0xca: payload = 4; break;
            case 0xcb: payload = 8; break;
            case 0xcc: case 0xd0: payload = 1; break;
            case 0xcd: case 0xd1: payload = 2; break;
            case 0xce: case 0xd2: payload = 4; break;
            case 0xcf: case 0xd3: payload = 8; break;
            case 0xd4: payload = 2; break;
            case 0xd5: payload = 3; break;
            case 0xd6: payload = 5; break;
            case 0xd7: payload = 9; break;
            case 0xd8: payload = 17; break;
            case 0xdc: container = 1; lenbytes = 2; break;
            case 0xdd: container = 1; lenbytes = 4; break;
            case 0xde: container = is_map = 1; lenbytes = 2; break;
            case 0xdf: container = is_map = 1; lenbytes = 4; break;
            default:
                *why = "byte 0xc1 is never used in msgpack";
                return -1;
            }
        }
        hdr += (size_t)lenbytes;
        if (off + hdr > max_bytes) return (*why = "value exceeds the size cap", -1);
        if (off + hdr > len) return 0;
        if (lenbytes) {
            uint64_t n = be(p + off + 1, lenbytes);
            if (container) children = n;
            else payload += n;
        }
        if (container) {
            if (is_map) children *= 2;
            off += hdr;
            /* every element takes at least one byte: a header that claims
             * more than the cap could ever hold is refused before anyone
             * allocates for it */
            if (children > max_bytes - off) return (*why = "container header claims more elements than fit in the size cap", -1);
            if (children == 0) continue;
            if (depth + 1 > CW_EVENT_MAX_DEPTH) return (*why = "value is nested too deeply", -1);
            left[++depth] = children;
            continue;
        }
        if (payload > max_bytes || off + hdr + payload > max_bytes) return (*why = "value exceeds the size cap", -1);
        if (off + hdr + payload > len) return 0;
        off += hdr + (size_t)payload;
    }
}

/* ---- Decoding -------------------------------------------------------- */

/* msgpack_unpack_next frees and re-creates its zone (an 8 KiB malloc) on
 * every call; the decoder keeps one zone instead and clears it per event,
 * which keeps its first chunk: decoding a stream allocates nothing. An
 * event is at most CW_EVENT_MAX_BYTES, so its objects fit a few chunks. */
#define DECODER_ZONE_CHUNK 16384

struct cw_event_decoder {
    msgpack_zone zone;
};

cw_event_decoder *cw_event_decoder_new(void) {
    cw_event_decoder *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    if (!msgpack_zone_init(&d->zone, DECODER_ZONE_CHUNK)) {
        free(d);
        return NULL;
    }
    return d;
}

void cw_event_decoder_free(cw_event_decoder *d) {
    if (!d) return;
    msgpack_zone_destroy(&d->zone);
    free(d);
}

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *kind_words(cw_key_kind k) {
    switch (k) {
    case CW_KIND_UINT: return "an unsigned integer";
    case CW_KIND_INT: return "an integer";
    case CW_KIND_BOOL: return "a boolean";
    case CW_KIND_STR: return "a string";
    default: return "a value";
    }
}

/* memcpy for the short strings of an event, without a call: two copies
 * of a constant size that overlap in the middle cover 4 to 32 bytes. */
static inline void copy_short(char *dst, const char *src, size_t n) {
    if (n >= 8 && n <= 16) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n > 16 && n <= 32) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 4 && n < 8) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else {
        memcpy(dst, src, n);
    }
}

/* Checks a string value's UTF-8 and length and copies it into dst. The
 * reasons come in this order: not UTF-8, a NUL byte, empty, too long. */
static inline int take_str(const msgpack_object *o, const char *key, size_t min, size_t max, char *dst,
                    char *err, size_t errlen) {
    size_t n = o->via.str.size;
    int text = cw_utf8_check(o->via.str.ptr, n);
    if (text != CW_UTF8_OK || n - min > max - min) { /* one test for the common case; min <= max */
        if (text == CW_UTF8_BAD) return fail(err, errlen, "key '%s' is not valid UTF-8", key);
        /* U+0000 is valid UTF-8 but would cut the string short everywhere
         * it is used as a C string, making two different ids the same */
        if (text == CW_UTF8_NUL) return fail(err, errlen, "key '%s' contains a NUL byte", key);
        if (n < min) return fail(err, errlen, "key '%s' is empty", key);
        return fail(err, errlen, "key '%s' is longer than %zu bytes", key, max);
    }
    copy_short(dst, o->via.str.ptr, n);
    dst[n] = '\0';
    return 0;
}

/* Whether the 6 bytes at p are ASCII digits, a word at a time: every
 * byte is 0x3X, and adding 6 keeps it so only for 0x30-0x39 (no carry
 * leaves a byte: the first test saw 0x3X in each). */
static inline int six_digits(const char *p) {
    uint32_t a;
    uint16_t b;
    memcpy(&a, p, 4);
    memcpy(&b, p + 4, 2);
    return (a & 0xF0F0F0F0u) == 0x30303030u && ((a + 0x06060606u) & 0xF0F0F0F0u) == 0x30303030u &&
           (b & 0xF0F0u) == 0x3030u && ((uint16_t)(b + 0x0606u) & 0xF0F0u) == 0x3030u;
}

/* Which of names[1..n) the string value is (index 0 is the "absent"
 * name ""), or 0 for none. */
static int one_of(const msgpack_object *o, const name_len *names, int n) {
    for (int i = 1; i < n; i++)
        if (names[i].len == o->via.str.size && memcmp(o->via.str.ptr, names[i].name, names[i].len) == 0) return i;
    return 0;
}

static int decode_map(const msgpack_object *root, int64_t now_ms, cw_event *ev, char *err, size_t errlen) {
    if (root->type != MSGPACK_OBJECT_MAP) return fail(err, errlen, "event is not a msgpack map");
    const msgpack_object_map *m = &root->via.map;
    if (m->size > CW_EVENT_MAX_KEYS)
        return fail(err, errlen, "event map has %u keys, more than %d", m->size, CW_EVENT_MAX_KEYS);

    const msgpack_object *val[K_COUNT]; /* val[id] is set where seen has bit id */
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_kv *kv = &m->ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) return fail(err, errlen, "map key #%u is not a string", i + 1);
        int id = key_lookup(kv->key.via.str.ptr, kv->key.via.str.size);
        if (id < 0) continue; /* unknown extra keys are ignored */
        if (seen & (1u << id)) return fail(err, errlen, "key '%s' appears twice", keys[id].name);
        if ((unsigned)kv->val.type >= 32 || !(keys[id].accepts >> kv->val.type & 1))
            return fail(err, errlen, "key '%s' must be %s", keys[id].name, kind_words(keys[id].kind));
        val[id] = &kv->val;
        seen |= 1u << id;
    }
#define HAS(id) (seen & (1u << (id)))

    /* an unknown version is named first: its other keys may differ */
    if (HAS(K_V) && val[K_V]->via.u64 != CW_PROTO_VERSION)
        return fail(err, errlen, "key 'v' is %llu, only protocol version %d is known",
                    (unsigned long long)val[K_V]->via.u64, CW_PROTO_VERSION);
    static const int required[] = {K_V, K_ID, K_TS, K_TYPE, K_CASE, K_UNIT};
    const uint32_t all_required = 1u << K_V | 1u << K_ID | 1u << K_TS | 1u << K_TYPE | 1u << K_CASE | 1u << K_UNIT;
    if ((seen & all_required) != all_required)
        for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
            if (!HAS(required[i])) return fail(err, errlen, "key '%s' is required", keys[required[i]].name);

    memset(ev, 0, sizeof(*ev));
    ev->v = CW_PROTO_VERSION;

    if (take_str(val[K_ID], "id", 1, CW_ID_MAX, ev->id, err, errlen)) return -1;

    /* a positive integer above INT64_MAX is out of any window too */
    if (val[K_TS]->type == MSGPACK_OBJECT_POSITIVE_INTEGER && val[K_TS]->via.u64 > (uint64_t)INT64_MAX)
        return fail(err, errlen, "key 'ts' is more than one day in the future");
    ev->ts = val[K_TS]->via.i64;
    if (ev->ts < CW_TS_MIN) return fail(err, errlen, "key 'ts' is before 2000-01-01");
    if (ev->ts > now_ms + CW_TS_MAX_AHEAD) return fail(err, errlen, "key 'ts' is more than one day in the future");

    /* every known name is ASCII: UTF-8 needs checking only for the
     * reason a name that is none of them gets */
    const msgpack_object *t = val[K_TYPE];
    if (cw_event_type_from_name(t->via.str.ptr, t->via.str.size, &ev->type) < 0) {
        if (!cw_utf8_valid(t->via.str.ptr, t->via.str.size)) return fail(err, errlen, "key 'type' is not valid UTF-8");
        int shown = t->via.str.size > 40 ? 40 : (int)t->via.str.size;
        /* cut at a character boundary so the reason stays UTF-8 */
        while (shown > 0 && shown < (int)t->via.str.size && (t->via.str.ptr[shown] & 0xC0) == 0x80) shown--;
        return fail(err, errlen, "key 'type' names an unknown event type '%.*s'", shown, t->via.str.ptr);
    }

    if (take_str(val[K_CASE], "case", 1, CW_CASE_MAX, ev->case_id, err, errlen)) return -1;

    const msgpack_object *u = val[K_UNIT];
    if (u->via.str.size != CW_UNIT_LEN || !six_digits(u->via.str.ptr)) return fail(err, errlen, "key 'unit' must be 6 digits");
    memcpy(ev->unit, u->via.str.ptr, CW_UNIT_LEN);

    if (HAS(K_DEPT) && take_str(val[K_DEPT], "dept", 1, CW_NAME_MAX, ev->dept, err, errlen)) return -1;
    if (HAS(K_PROS) && take_str(val[K_PROS], "pros", 1, CW_NAME_MAX, ev->pros, err, errlen)) return -1;

    ev->n = 1;
    if (HAS(K_N)) {
        uint64_t n = val[K_N]->via.u64;
        if (n < 1 || n > CW_N_MAX) return fail(err, errlen, "key 'n' must be between 1 and %d", CW_N_MAX);
        ev->n = (uint32_t)n;
    }

    /* the booleans sent, lowest key first */
    for (uint32_t b = seen & ((1u << (K_ADOPTED + 1)) - (1u << K_DETAINED)); b; b &= b - 1) {
        int k = __builtin_ctz(b);
        ev->present |= keys[k].flag;
        if (val[k]->via.boolean) ev->flags |= keys[k].flag;
    }

    if (HAS(K_DECISION)) {
        ev->decision = (cw_decision)one_of(val[K_DECISION], decision_names, 5);
        if (ev->decision == CW_DECISION_NONE)
            return fail(err, errlen, "key 'decision' must be approve, reject, prosecute or not_prosecute");
    }
    if (HAS(K_SENTENCING)) {
        ev->sentencing = (cw_sentencing)one_of(val[K_SENTENCING], sentencing_names, 4);
        if (ev->sentencing == CW_SENTENCING_ABSENT)
            return fail(err, errlen, "key 'sentencing' must be determinate, range or none");
    }
    if (HAS(K_REPLY)) {
        ev->reply = (cw_reply)one_of(val[K_REPLY], reply_names, 3);
        if (ev->reply == CW_REPLY_NONE) return fail(err, errlen, "key 'reply' must be procedural or substantive");
    }

    const char *req = types[ev->type].required;
    if (req && !HAS(key_lookup(req, strlen(req))))
        return fail(err, errlen, "key '%s' is required for %s", req, types[ev->type].name);
    if (ev->type == CW_EV_ARREST_DECIDED && ev->decision != CW_DECISION_APPROVE && ev->decision != CW_DECISION_REJECT)
        return fail(err, errlen, "key 'decision' must be approve or reject for arrest.decided");
    if (ev->type == CW_EV_PROSECUTION_DECIDED && ev->decision != CW_DECISION_PROSECUTE &&
        ev->decision != CW_DECISION_NOT_PROSECUTE)
        return fail(err, errlen, "key 'decision' must be prosecute or not_prosecute for prosecution.decided");
    return 0;
#undef HAS
}

int cw_event_decode(cw_event_decoder *d, const void *buf, size_t len, int64_t now_ms, cw_event *ev,
                    char *err, size_t errlen) {
    if (len == 0) return fail(err, errlen, "event is empty");
    if (len > CW_EVENT_MAX_BYTES)
        return fail(err, errlen, "event is %zu bytes, more than the cap of %d", len, CW_EVENT_MAX_BYTES);
    size_t used = 0;
    /* the common case inline (len is within the cap), else the whole walk */
    if (!frame_flat_map(buf, len, &used)) {
        const char *why = NULL;
        int r = cw_msgpack_frame(buf, len, CW_EVENT_MAX_BYTES, &used, &why);
        if (r < 0) return fail(err, errlen, "event is not acceptable msgpack: %s", why);
        if (r == 0) return fail(err, errlen, "event is truncated msgpack");
    }
    if (used != len) return fail(err, errlen, "event has %zu trailing bytes after the msgpack value", len - used);

    cw_event_decoder tmp;
    cw_event_decoder *dd = d;
    if (!dd) {
        dd = &tmp;
        if (!msgpack_zone_init(&dd->zone, DECODER_ZONE_CHUNK))
            return fail(err, errlen, "event could not be unpacked: out of memory");
    }
    size_t off = 0;
    msgpack_object root;
    /* the objects live in the zone until the next decode: decode_map
     * copies every string it keeps into ev */
    msgpack_unpack_return ur = msgpack_unpack(buf, len, &off, &dd->zone, &root);
    int rc;
    if (ur != MSGPACK_UNPACK_SUCCESS)
        rc = fail(err, errlen, ur == MSGPACK_UNPACK_NOMEM_ERROR ? "event could not be unpacked: out of memory"
                                                                 : "event is not valid msgpack");
    else
        rc = decode_map(&root, now_ms, ev, err, errlen);
    if (d) msgpack_zone_clear(&dd->zone);
    else msgpack_zone_destroy(&dd->zone);
    return rc;
}

int cw_event_decode_entry(cw_event_decoder *d, const cw_entry_field *fields, size_t nfields, int64_t now_ms,
                          cw_event *ev, char *err, size_t errlen) {
    if (nfields == 0) return fail(err, errlen, "entry has no field 'e'");
    if (nfields > 1) return fail(err, errlen, "entry has %zu fields, expected only 'e'", nfields);
    if (fields[0].name_len != 1 || fields[0].name[0] != 'e') return fail(err, errlen, "entry has no field 'e'");
    return cw_event_decode(d, fields[0].value, fields[0].value_len, now_ms, ev, err, errlen);
}

/* ---- Encoding -------------------------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v) {
    pack_str(pk, k);
    pack_str(pk, v);
}

int cw_event_encode(const cw_event *ev, msgpack_sbuffer *out) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    size_t before = out->size;
    uint32_t n = 6; /* v id ts type case unit */
    if (ev->dept[0]) n++;
    if (ev->pros[0]) n++;
    if (ev->n != 1) n++;
    for (int k = K_DETAINED; k <= K_ADOPTED; k++) n += (ev->present & keys[k].flag) != 0;
    n += ev->decision != CW_DECISION_NONE;
    n += ev->sentencing != CW_SENTENCING_ABSENT;
    n += ev->reply != CW_REPLY_NONE;

    msgpack_pack_map(&pk, n);
    pack_str(&pk, "v");
    msgpack_pack_uint32(&pk, ev->v ? ev->v : CW_PROTO_VERSION);
    pack_kv_str(&pk, "id", ev->id);
    pack_str(&pk, "ts");
    msgpack_pack_int64(&pk, ev->ts);
    pack_kv_str(&pk, "type", cw_event_type_name(ev->type));
    pack_kv_str(&pk, "case", ev->case_id);
    pack_kv_str(&pk, "unit", ev->unit);
    if (ev->dept[0]) pack_kv_str(&pk, "dept", ev->dept);
    if (ev->pros[0]) pack_kv_str(&pk, "pros", ev->pros);
    if (ev->n != 1) {
        pack_str(&pk, "n");
        msgpack_pack_uint32(&pk, ev->n);
    }
    for (int k = K_DETAINED; k <= K_ADOPTED; k++) {
        if (!(ev->present & keys[k].flag)) continue;
        pack_str(&pk, keys[k].name);
        if (ev->flags & keys[k].flag) msgpack_pack_true(&pk);
        else msgpack_pack_false(&pk);
    }
    if (ev->decision != CW_DECISION_NONE) pack_kv_str(&pk, "decision", cw_decision_name(ev->decision));
    if (ev->sentencing != CW_SENTENCING_ABSENT) pack_kv_str(&pk, "sentencing", cw_sentencing_name(ev->sentencing));
    if (ev->reply != CW_REPLY_NONE) pack_kv_str(&pk, "reply", cw_reply_name(ev->reply));
    /* msgpack_sbuffer_write reports allocation failure through its return,
     * which the packer drops; a buffer that did not grow is the symptom */
    return out->size > before ? 0 : -1;
}

/* ---- Streaming reader ------------------------------------------------ */

struct cw_event_reader {
    char *buf;
    size_t len, cap, start; /* bytes buf[start..len) are pending */
    size_t consumed;        /* bytes returned since the stream began */
    int broken;
    char why[128];
};

cw_event_reader *cw_event_reader_new(void) {
    return calloc(1, sizeof(cw_event_reader));
}

void cw_event_reader_free(cw_event_reader *r) {
    if (!r) return;
    free(r->buf);
    free(r);
}

int cw_event_reader_feed(cw_event_reader *r, const void *data, size_t len) {
    if (r->start > 0) { /* compact before growing */
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + len) cap *= 2;
        char *nb = realloc(r->buf, cap);
        if (!nb) return -1;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

int cw_event_reader_next(cw_event_reader *r, const char **value, size_t *len, char *err, size_t errlen) {
    if (r->broken) return fail(err, errlen, "%s", r->why);
    size_t used = 0;
    const char *why = NULL;
    int rc = cw_msgpack_frame(r->buf + r->start, r->len - r->start, CW_EVENT_MAX_BYTES, &used, &why);
    if (rc == 0) return 0;
    if (rc < 0) {
        r->broken = 1;
        snprintf(r->why, sizeof(r->why), "msgpack stream broken at byte %zu: %s", r->consumed, why);
        return fail(err, errlen, "%s", r->why);
    }
    *value = r->buf + r->start;
    *len = used;
    r->start += used;
    r->consumed += used;
    return 1;
}

size_t cw_event_reader_pending(const cw_event_reader *r) {
    return r->len - r->start;
}
