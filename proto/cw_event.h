/* cw_event: one case-lifecycle event of PROTOCOL.md §1, decoded from the
 * MessagePack value of a stream entry, validated, and encoded back.
 *
 * Every string of a decoded event is copied into the struct, so a cw_event
 * never points into msgpack-c's zone or the caller's buffer and may outlive
 * both. */
#ifndef CW_EVENT_H
#define CW_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define CW_PROTO_VERSION 1

/* Caps of our own: msgpack-c has none. */
#define CW_EVENT_MAX_BYTES 16384 /* one encoded event */
#define CW_EVENT_MAX_KEYS 64     /* entries in the event map */
#define CW_EVENT_MAX_DEPTH 8     /* nesting inside unknown extra keys */

#define CW_ID_MAX 64
#define CW_CASE_MAX 128
#define CW_NAME_MAX 64 /* dept, pros */
#define CW_UNIT_LEN 6
#define CW_N_MAX 10000

#define CW_TS_MIN 946684800000LL /* 2000-01-01T00:00:00Z */
#define CW_TS_MAX_AHEAD 86400000LL

/* X(enum, wire name, 中文, non-routine 件, required key) */
#define CW_EVENT_TYPES(X)                                                                  \
    X(ARREST_ACCEPTED, "arrest.accepted", "受理审查逮捕", 0, NULL)                          \
    X(ARREST_DECIDED, "arrest.decided", "批准/不批准逮捕", 0, "decision")                   \
    X(ARREST_RECONSIDERATION, "arrest.reconsideration", "不批捕复议", 1, NULL)              \
    X(ARREST_REVIEW, "arrest.review", "不批捕复核", 1, NULL)                                \
    X(ARREST_COMPLAINT, "arrest.complaint", "批捕/不批捕申诉", 1, NULL)                     \
    X(PROSECUTION_ACCEPTED, "prosecution.accepted", "受理审查起诉", 0, NULL)                \
    X(PROSECUTION_EXTENDED, "prosecution.extended", "延长审查起诉期限", 1, NULL)            \
    X(PROSECUTION_RETURNED, "prosecution.returned", "退回补充侦查", 1, NULL)                \
    X(PROSECUTION_RESUBMITTED, "prosecution.resubmitted", "补充侦查完毕重新移送", 0, NULL)  \
    X(PROSECUTION_DECIDED, "prosecution.decided", "起诉/不起诉", 0, "decision")             \
    X(PROSECUTION_WITHDRAWN, "prosecution.withdrawn", "撤回起诉", 1, NULL)                  \
    X(NONPROSECUTION_RECONSIDERATION, "nonprosecution.reconsideration", "不起诉复议", 1, NULL) \
    X(NONPROSECUTION_REVIEW, "nonprosecution.review", "不起诉复核", 1, NULL)                \
    X(NONPROSECUTION_COMPLAINT, "nonprosecution.complaint", "不起诉申诉", 1, NULL)          \
    X(TRIAL_JUDGMENT, "trial.judgment", "一审判决", 0, NULL)                                \
    X(TRIAL_APPEAL, "trial.appeal", "被告人上诉", 1, NULL)                                  \
    X(TRIAL_PROTEST, "trial.protest", "抗诉", 1, NULL)                                      \
    X(TRIAL_REMANDED, "trial.remanded", "发回重审", 1, NULL)                                \
    X(TRIAL_POSTPONED, "trial.postponed", "建议延期审理", 1, NULL)                          \
    X(TRIAL_PETITION, "trial.petition", "刑事申诉", 1, NULL)                                \
    X(COMPENSATION_FILED, "compensation.filed", "国家赔偿", 1, NULL)                        \
    X(ARREST_RECONSIDERATION_DECIDED, "arrest.reconsideration.decided", "不批捕复议决定", 0, NULL) \
    X(ARREST_REVIEW_DECIDED, "arrest.review.decided", "不批捕复核决定", 0, NULL)            \
    X(NONPROSECUTION_RECONSIDERATION_DECIDED, "nonprosecution.reconsideration.decided", "不起诉复议决定", 0, NULL) \
    X(NONPROSECUTION_REVIEW_DECIDED, "nonprosecution.review.decided", "不起诉复核决定", 0, NULL) \
    X(CASE_CLOSED, "case.closed", "办结/归档", 0, NULL)                                     \
    X(LETTER_RECEIVED, "letter.received", "收到群众来信", 0, NULL)                          \
    X(LETTER_REPLIED, "letter.replied", "答复来信", 0, "reply")                             \
    X(HEARING_HELD, "hearing.held", "公开听证", 0, NULL)

typedef enum cw_event_type {
#define CW__ENUM(e, name, zh, extra, req) CW_EV_##e,
    CW_EVENT_TYPES(CW__ENUM)
#undef CW__ENUM
    CW_EV_TYPE_COUNT
} cw_event_type;

typedef enum cw_decision {
    CW_DECISION_NONE = 0,
    CW_DECISION_APPROVE,
    CW_DECISION_REJECT,
    CW_DECISION_PROSECUTE,
    CW_DECISION_NOT_PROSECUTE
} cw_decision;

typedef enum cw_sentencing {
    CW_SENTENCING_ABSENT = 0,
    CW_SENTENCING_DETERMINATE,
    CW_SENTENCING_RANGE,
    CW_SENTENCING_NONE
} cw_sentencing;

typedef enum cw_reply { CW_REPLY_NONE = 0, CW_REPLY_PROCEDURAL, CW_REPLY_SUBSTANTIVE } cw_reply;

/* Boolean keys: a bit in `present` says the key was sent, the same bit in
 * `flags` carries its value. */
enum {
    CW_F_DETAINED = 1 << 0,
    CW_F_COMPLEX = 1 << 1,
    CW_F_ARRESTED = 1 << 2,
    CW_F_FAST = 1 << 3,
    CW_F_PLEA = 1 << 4,
    CW_F_ADOPTED = 1 << 5
};

typedef struct cw_event {
    uint32_t v;
    cw_event_type type;
    int64_t ts; /* ms since the epoch, UTC */
    uint32_t n; /* persons; 1 when absent */
    uint16_t present;
    uint16_t flags;
    cw_decision decision;
    cw_sentencing sentencing;
    cw_reply reply;
    char id[CW_ID_MAX + 1];
    char case_id[CW_CASE_MAX + 1];
    char unit[CW_UNIT_LEN + 1];
    char dept[CW_NAME_MAX + 1]; /* "" when absent */
    char pros[CW_NAME_MAX + 1]; /* "" when absent */
} cw_event;

/* What a key of the event map holds, for adapters that must type a value
 * that arrived as text (CSV). */
typedef enum cw_key_kind {
    CW_KIND_UNKNOWN = 0,
    CW_KIND_UINT,
    CW_KIND_INT,
    CW_KIND_BOOL,
    CW_KIND_STR
} cw_key_kind;

cw_key_kind cw_event_key_kind(const char *key, size_t len);

const char *cw_event_type_name(cw_event_type t);
int cw_event_type_is_extra_item(cw_event_type t);  /* counts as a 非常态件 */
int cw_event_type_from_name(const char *s, size_t len, cw_event_type *out);
const char *cw_decision_name(cw_decision d);
const char *cw_sentencing_name(cw_sentencing s);
const char *cw_reply_name(cw_reply r);

static inline int cw_event_flag(const cw_event *ev, unsigned f) { return (ev->flags & f) != 0; }
static inline int cw_event_has(const cw_event *ev, unsigned f) { return (ev->present & f) != 0; }

/* A decoder keeps msgpack-c's zone between calls, so decoding a stream of
 * entries does not allocate per event. Not thread-safe; one per thread. */
typedef struct cw_event_decoder cw_event_decoder;

cw_event_decoder *cw_event_decoder_new(void);
void cw_event_decoder_free(cw_event_decoder *d);

/* Decodes and validates one MessagePack value (the `e` field of a stream
 * entry). `now_ms` is the wall clock the ts window is checked against.
 * Returns 0 and fills *ev, or -1 and writes a short English reason naming
 * the key and the problem into err (errlen bytes, NUL-terminated). `d` may
 * be NULL (a temporary decoder is used). Nothing of buf is kept. */
int cw_event_decode(cw_event_decoder *d, const void *buf, size_t len, int64_t now_ms, cw_event *ev,
                    char *err, size_t errlen);

/* One field of a stream entry, as XREAD returns it. */
typedef struct cw_entry_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} cw_entry_field;

/* Decodes a whole stream entry: exactly one field, named `e`, holding the
 * event. Same contract as cw_event_decode. */
int cw_event_decode_entry(cw_event_decoder *d, const cw_entry_field *fields, size_t nfields,
                          int64_t now_ms, cw_event *ev, char *err, size_t errlen);

/* Appends the canonical MessagePack encoding of ev (present keys only) to
 * out. Returns 0, or -1 when out could not grow. */
int cw_event_encode(const cw_event *ev, msgpack_sbuffer *out);

/* Framing without decoding: looks at buf[0..len) for one complete
 * MessagePack value of at most max_bytes, honouring the map/array/depth
 * caps above without allocating. Returns 1 and sets *used when a value is
 * complete, 0 when more bytes are needed, -1 (reason in *why) when the
 * bytes can never become an acceptable value. */
int cw_msgpack_frame(const void *buf, size_t len, size_t max_bytes, size_t *used, const char **why);

/* A reader for a byte stream of concatenated events (e.g. a msgpack export
 * on stdin) that may arrive in pieces of any size, down to one byte. */
typedef struct cw_event_reader cw_event_reader;

cw_event_reader *cw_event_reader_new(void);
void cw_event_reader_free(cw_event_reader *r);
/* Copies len bytes into the reader. Returns 0, or -1 on out of memory. */
int cw_event_reader_feed(cw_event_reader *r, const void *buf, size_t len);
/* Takes the next complete value out of the reader. Returns 1 with *value
 * and *len pointing into the reader (valid until the next feed or next
 * call), 0 when more bytes are needed, -1 when the stream is broken
 * (reason in err; the reader cannot resynchronise and stays broken). */
int cw_event_reader_next(cw_event_reader *r, const char **value, size_t *len, char *err, size_t errlen);
/* Bytes fed but not yet returned (a partial value at end of input). */
size_t cw_event_reader_pending(const cw_event_reader *r);

#endif
