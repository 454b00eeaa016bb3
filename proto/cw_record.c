#include "cw_record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cw_event.h"

static void pack_strn(msgpack_packer *pk, const char *s, size_t n) {
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int cw_record_pack_json(msgpack_packer *pk, json_t *v, int depth) {
    if (depth > CW_EVENT_MAX_DEPTH) return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach(v, k, x) {
            pack_strn(pk, k, strlen(k));
            if (cw_record_pack_json(pk, x, depth + 1)) return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, x) {
            if (cw_record_pack_json(pk, x, depth + 1)) return -1;
        }
        return 0;
    }
    case JSON_STRING: pack_strn(pk, json_string_value(v), json_string_length(v)); return 0;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(v)); return 0;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(v)); return 0;
    case JSON_TRUE: msgpack_pack_true(pk); return 0;
    case JSON_FALSE: msgpack_pack_false(pk); return 0;
    case JSON_NULL: msgpack_pack_nil(pk); return 0;
    }
    return -1;
}

int cw_record_from_json(const char *text, size_t len, msgpack_sbuffer *out, char *err, size_t errlen) {
    json_error_t je;
    /* JSON_ALLOW_NUL keeps a "\u0000" inside a string instead of refusing
     * the line; the decoder then judges the key like any other bytes */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root) {
        snprintf(err, errlen, "not JSON: %s (column %d)", je.text, je.column);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    size_t n = 0;
    const char *k;
    json_t *x;
    json_object_foreach(root, k, x) n += !json_is_null(x);
    msgpack_pack_map(&pk, n);
    int rc = 0;
    json_object_foreach(root, k, x) {
        if (json_is_null(x)) continue;
        pack_strn(&pk, k, strlen(k));
        if (cw_record_pack_json(&pk, x, 1)) {
            snprintf(err, errlen, "key '%s' is nested too deeply", k);
            rc = -1;
            break;
        }
    }
    json_decref(root);
    return rc;
}

int cw_record_cell_int(const char *s, size_t n, long long *out) {
    char buf[32];
    if (n == 0 || n >= sizeof(buf)) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || end == buf) return -1;
    *out = v;
    return 0;
}

int cw_record_cell_bool(const char *s, size_t n, int *out) {
    static const char *const yes[] = {"true", "1", "yes"};
    static const char *const no[] = {"false", "0", "no"};
    for (int i = 0; i < 3; i++) {
        if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0) return (*out = 1, 0);
        if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0) return (*out = 0, 0);
    }
    return -1;
}

int cw_record_from_cells(const char *const *names, const size_t *name_lens, const char *const *cells,
                         const size_t *cell_lens, size_t n, msgpack_sbuffer *out, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    size_t present = 0;
    for (size_t i = 0; i < n; i++) present += cell_lens[i] > 0;
    msgpack_pack_map(&pk, present);
    for (size_t i = 0; i < n; i++) {
        if (cell_lens[i] == 0) continue;
        pack_strn(&pk, names[i], name_lens[i]);
        long long iv;
        int bv;
        switch (cw_event_key_kind(names[i], name_lens[i])) {
        case CW_KIND_UINT:
        case CW_KIND_INT:
            if (cw_record_cell_int(cells[i], cell_lens[i], &iv) == 0) {
                msgpack_pack_int64(&pk, iv);
                continue;
            }
            break;
        case CW_KIND_BOOL:
            if (cw_record_cell_bool(cells[i], cell_lens[i], &bv) == 0) {
                if (bv) msgpack_pack_true(&pk);
                else msgpack_pack_false(&pk);
                continue;
            }
            break;
        default: break;
        }
        pack_strn(&pk, cells[i], cell_lens[i]);
    }
    return 0;
}
