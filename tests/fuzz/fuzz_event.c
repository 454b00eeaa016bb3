/* libFuzzer target: the event decoder and the streaming reader. Whatever
 * the bytes, decoding must not crash, leak or invoke UB, an accepted event
 * must satisfy the protocol's invariants, and the reader fed the same
 * bytes in pieces must agree with whole-buffer framing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/cw_event.h"
#include "../../proto/cw_text.h"

#define NOW 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cw_event_decoder *d;
    if (!d) d = cw_event_decoder_new();
    cw_event ev;
    char why[256];
    if (cw_event_decode(d, data, size, NOW, &ev, why, sizeof(why)) == 0) {
        if (strlen(ev.unit) != 6 || ev.n < 1 || ev.n > CW_N_MAX || ev.ts < CW_TS_MIN) abort();
        if (!cw_utf8_valid(ev.case_id, strlen(ev.case_id)) || !ev.id[0]) abort();
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        cw_event back;
        if (cw_event_encode(&ev, &sb) != 0) abort();
        if (cw_event_decode(d, sb.data, sb.size, NOW, &back, why, sizeof(why)) != 0) abort();
        if (memcmp(&ev, &back, sizeof(ev)) != 0) abort();
        msgpack_sbuffer_destroy(&sb);
    } else if (!why[0] || !cw_utf8_valid(why, strlen(why))) {
        abort();
    }
    /* the reader, fed in 3-byte pieces, returns whole values only */
    cw_event_reader *r = cw_event_reader_new();
    size_t off = 0;
    int broken = 0;
    while (off < size && !broken) {
        size_t n = size - off < 3 ? size - off : 3;
        cw_event_reader_feed(r, data + off, n);
        off += n;
        const char *v;
        size_t len;
        int rc;
        while ((rc = cw_event_reader_next(r, &v, &len, why, sizeof(why))) == 1) {
            size_t used;
            const char *w;
            if (cw_msgpack_frame(v, len, CW_EVENT_MAX_BYTES, &used, &w) != 1 || used != len) abort();
        }
        broken = rc < 0;
    }
    cw_event_reader_free(r);
    return 0;
}
