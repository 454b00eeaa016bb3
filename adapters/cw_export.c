#include "cw_export.h"

#include "../proto/cw_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <jansson.h>

#include "../proto/cw_event.h"
#include "../proto/cw_text.h"
#include "cw_args.h"

#define MAX_EXTRA 4
#define MAX_ITEMS CW_EVENT_MAX_KEYS

typedef struct colmap {
    char *from, *to; /* export header -> protocol key */
} colmap;

/* One word of an export: under key (or "bool" for every boolean key),
 * `from` means `to`, and may bring keys of its own (批准逮捕 brings
 * decision = approve). */
typedef struct valmap {
    char *key, *from, *to;
    char *extra_key[MAX_EXTRA], *extra_val[MAX_EXTRA];
    int nextra;
} valmap;

struct cw_export {
    const cw_config *cfg;
    char *path; /* of the last map loaded, for messages */
    colmap *cols;
    size_t ncols;
    valmap *vals;
    size_t nvals;
    /* the plan of the current CSV header */
    size_t nhead;
    char **heads; /* the header's own names */
    char **keys;  /* protocol key of each column, NULL: ignored */
    int derive_id;
};

/* An item of the value being packed: a protocol (or extra) key and its
 * text, typed when packed. */
typedef struct item {
    const char *key;
    size_t keylen;
    const char *s;
    size_t len;
    int is_int; /* iv holds the value (a ts read from text) */
    long long iv;
    int col; /* CSV column, -1 when added here */
    char code[7]; /* a unit code read from a name; s points here */
} item;

cw_export *cw_export_new(const cw_config *cfg) {
    cw_export *x = calloc(1, sizeof(*x));
    if (!x) return NULL;
    x->cfg = cfg;
    return x;
}

static void plan_clear(cw_export *x) {
    for (size_t i = 0; i < x->nhead; i++) {
        free(x->heads[i]);
        free(x->keys[i]);
    }
    free(x->heads);
    free(x->keys);
    x->heads = x->keys = NULL;
    x->nhead = 0;
    x->derive_id = 0;
}

void cw_export_free(cw_export *x) {
    if (!x) return;
    plan_clear(x);
    for (size_t i = 0; i < x->ncols; i++) free(x->cols[i].from), free(x->cols[i].to);
    for (size_t i = 0; i < x->nvals; i++) {
        valmap *v = &x->vals[i];
        free(v->key), free(v->from), free(v->to);
        for (int k = 0; k < v->nextra; k++) free(v->extra_key[k]), free(v->extra_val[k]);
    }
    free(x->cols);
    free(x->vals);
    free(x->path);
    free(x);
}

/* ---- Loading a map ---------------------------------------------------- */

typedef struct load_ctx {
    cw_export *x;
    FILE *f;
    int line;
    int failed;
    char *err;
    size_t errlen;
} load_ctx;

static char *read_line(char *str, int num, void *stream) {
    load_ctx *lc = stream;
    char *r = fgets(str, num, lc->f);
    if (r) lc->line++;
    return r;
}

static int is_key(const char *k) {
    return cw_event_key_kind(k, strlen(k)) != CW_KIND_UNKNOWN;
}

static char *trimmed(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    return strndup(s, n);
}

static int load_fail(load_ctx *lc, const char *fmt, const char *a, const char *b) {
    char why[256];
    snprintf(why, sizeof(why), fmt, a, b);
    cw_errf(lc->err, lc->errlen, "%s:%d: %s", lc->x->path, lc->line, why);
    lc->failed = 1;
    return 1;
}

static int on_map_value(void *user, const char *section, const char *name, const char *value) {
    load_ctx *lc = user;
    cw_export *x = lc->x;
    if (lc->failed) return 1;
    if (strcmp(section, "columns") == 0) {
        if (!is_key(value))
            return load_fail(lc, "[columns] %s: '%s' is not a key of PROTOCOL.md §1 (v, id, ts, type, case, unit, dept, "
                                 "pros, n, detained, complex, arrested, fast, decision, plea, sentencing, adopted, reply)",
                             name, value);
        colmap *n = realloc(x->cols, (x->ncols + 1) * sizeof(*n));
        if (!n) return load_fail(lc, "out of memory%s%s", "", "");
        x->cols = n;
        n[x->ncols].from = strdup(name);
        n[x->ncols].to = strdup(value);
        x->ncols++;
        return 1;
    }
    if (strncmp(section, "values ", 7) == 0) {
        const char *key = section + 7;
        if (strcmp(key, "bool") != 0 && !is_key(key))
            return load_fail(lc, "[values %s]: '%s' is not a key of PROTOCOL.md §1 (or bool, for every yes/no key)", key,
                             key);
        valmap *n = realloc(x->vals, (x->nvals + 1) * sizeof(*n));
        if (!n) return load_fail(lc, "out of memory%s%s", "", "");
        x->vals = n;
        valmap *v = &n[x->nvals++];
        memset(v, 0, sizeof(*v));
        v->key = strdup(key);
        v->from = strdup(name);
        /* "arrest.decided, decision = approve" */
        char *copy = strdup(value), *save = NULL;
        int first = 1;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save), first = 0) {
            if (first) {
                v->to = trimmed(t);
                continue;
            }
            char *eq = strchr(t, '=');
            if (!eq || v->nextra == MAX_EXTRA) {
                free(copy);
                return load_fail(lc, "[values %s] %s: after the value, expected key = value pairs separated by commas",
                                 key, name);
            }
            *eq = '\0';
            v->extra_key[v->nextra] = trimmed(t);
            v->extra_val[v->nextra] = trimmed(eq + 1);
            if (!is_key(v->extra_key[v->nextra])) {
                load_fail(lc, "[values %s]: '%s' is not a key of PROTOCOL.md §1", key, v->extra_key[v->nextra]);
                v->nextra++;
                free(copy);
                return 1;
            }
            v->nextra++;
        }
        free(copy);
        if (!v->to) v->to = strdup("");
        return 1;
    }
    return load_fail(lc, "[%s]: unknown section (expected [columns] or [values KEY])%s", section, "");
}

int cw_export_load(cw_export *x, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) return cw_errf(err, errlen, "column map %s: cannot open: %s", path, strerror(errno));
    free(x->path);
    x->path = strdup(path);
    load_ctx lc = {.x = x, .f = f, .err = err, .errlen = errlen};
    int rc = ini_parse_stream(read_line, &lc, on_map_value, &lc);
    fclose(f);
    if (lc.failed) return -1;
    if (rc > 0) return cw_errf(err, errlen, "%s:%d: not INI syntax (expected [section] or name = value)", path, rc);
    if (rc < 0) return cw_errf(err, errlen, "%s: could not be read", path);
    return 0;
}

/* ---- Header ----------------------------------------------------------- */

static const char *map_column(const cw_export *x, const char *name) {
    for (size_t i = 0; i < x->ncols; i++)
        if (strcmp(x->cols[i].from, name) == 0) return x->cols[i].to;
    return is_key(name) ? name : NULL;
}

int cw_export_header(cw_export *x, const char *const *names, const size_t *lens, size_t n, FILE *notes, char *err,
                     size_t errlen) {
    plan_clear(x);
    x->heads = calloc(n ? n : 1, sizeof(char *));
    x->keys = calloc(n ? n : 1, sizeof(char *));
    if (!x->heads || !x->keys) return cw_errf(err, errlen, "out of memory");
    x->nhead = n;
    int mapped = 0; /* an export with its own names: columns it does not name are dropped */
    for (size_t i = 0; i < n; i++) {
        char *h = strndup(names[i], lens[i]);
        x->heads[i] = h ? trimmed(h) : strdup("");
        free(h);
        const char *k = map_column(x, x->heads[i]);
        if (k && strcmp(k, x->heads[i]) != 0) mapped = 1;
    }
    char ignored[1024] = "";
    for (size_t i = 0; i < n; i++) {
        const char *k = map_column(x, x->heads[i]);
        if (!k && !mapped) k = x->heads[i]; /* an extra key, carried along */
        for (size_t j = 0; k && j < i; j++) {
            if (x->keys[j] && strcmp(x->keys[j], k) == 0) {
                if (notes)
                    fprintf(notes, "line 1: column %zu (%s) also gives '%s'; column %zu (%s) is used\n", i + 1,
                            x->heads[i], k, j + 1, x->heads[j]);
                k = NULL;
                break;
            }
        }
        if (k && !k[0]) k = NULL;
        if (!k && is_key(x->heads[i]) == 0 && mapped) {
            size_t at = strlen(ignored);
            snprintf(ignored + at, sizeof(ignored) - at, "%s%zu (%s)", at ? ", " : "", i + 1, x->heads[i]);
        }
        x->keys[i] = k ? strdup(k) : NULL;
    }
    if (ignored[0] && notes) fprintf(notes, "line 1: columns not in the column map, ignored: %s\n", ignored);
    static const char *const required[] = {"ts", "type", "case", "unit"};
    char missing[128] = "";
    int have_id = 0;
    for (size_t i = 0; i < n; i++) have_id |= x->keys[i] && strcmp(x->keys[i], "id") == 0;
    for (size_t r = 0; r < 4; r++) {
        int have = 0;
        for (size_t i = 0; i < n; i++) have |= x->keys[i] && strcmp(x->keys[i], required[r]) == 0;
        if (!have) {
            size_t at = strlen(missing);
            snprintf(missing + at, sizeof(missing) - at, "%s'%s'", at ? ", " : "", required[r]);
        }
    }
    if (missing[0]) {
        char heads[1024] = "";
        for (size_t i = 0; i < n; i++) {
            size_t at = strlen(heads);
            snprintf(heads + at, sizeof(heads) - at, "%s%s", i ? ", " : "", x->heads[i]);
        }
        return cw_errf(err, errlen,
                       "no column gives %s (the header names: %s); name the columns with --columns FILE or "
                       "[feed] columns%s%s",
                       missing, heads, x->path ? ", now " : "", x->path ? x->path : "");
    }
    if (!have_id) {
        x->derive_id = 1;
        if (notes)
            fprintf(notes, "line 1: no column gives 'id': each row's id is derived from its unit, case, type and time "
                           "(feeding the same export again adds nothing twice)\n");
    }
    return 0;
}

void cw_export_where(const cw_export *x, const char *key, size_t keylen, char *out, size_t outlen) {
    out[0] = '\0';
    for (size_t i = 0; i < x->nhead; i++) {
        if (x->keys[i] && strlen(x->keys[i]) == keylen && memcmp(x->keys[i], key, keylen) == 0) {
            if (strcmp(x->heads[i], x->keys[i]) != 0) snprintf(out, outlen, " (column %zu, %s)", i + 1, x->heads[i]);
            return;
        }
    }
}

/* ---- Values ----------------------------------------------------------- */

static const valmap *find_val(const cw_export *x, const char *key, const char *s, size_t n) {
    int boolean = cw_event_key_kind(key, strlen(key)) == CW_KIND_BOOL;
    for (int pass = 0; pass < 2; pass++) {
        const char *k = pass ? (boolean ? "bool" : NULL) : key;
        if (!k) break;
        for (size_t i = 0; i < x->nvals; i++)
            if (strcmp(x->vals[i].key, k) == 0 && strlen(x->vals[i].from) == n && memcmp(x->vals[i].from, s, n) == 0)
                return &x->vals[i];
    }
    return NULL;
}

static int has_vals(const cw_export *x, const char *key) {
    int boolean = cw_event_key_kind(key, strlen(key)) == CW_KIND_BOOL;
    for (size_t i = 0; i < x->nvals; i++)
        if (strcmp(x->vals[i].key, key) == 0 || (boolean && strcmp(x->vals[i].key, "bool") == 0)) return 1;
    return 0;
}

/* Whether s is already a value the protocol takes for key (so that an
 * export may mix its own words with the protocol's). */
static int protocol_value(const char *key, const char *s, size_t n) {
    cw_event_type t;
    int b;
    if (strcmp(key, "type") == 0) return cw_event_type_from_name(s, n, &t) == 0;
    if (cw_event_key_kind(key, strlen(key)) == CW_KIND_BOOL) return cw_record_cell_bool(s, n, &b) == 0;
    static const char *const words[] = {"decision", "approve",  "decision", "reject", "decision",    "prosecute",
                                        "decision", "not_prosecute", "sentencing", "determinate", "sentencing",
                                        "range",    "sentencing", "none", "reply", "procedural", "reply",
                                        "substantive"};
    int known = 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i += 2) {
        if (strcmp(words[i], key) != 0) continue;
        known = 1;
        if (strlen(words[i + 1]) == n && memcmp(words[i + 1], s, n) == 0) return 1;
    }
    return !known;
}

static int add_item(item *items, int *nitems, const char *key, const char *s, size_t len, int col) {
    for (int i = 0; i < *nitems; i++)
        if (strcmp(items[i].key, key) == 0) return 0; /* a key once: the first wins */
    if (*nitems == MAX_ITEMS) return -1;
    items[(*nitems)++] = (item){.key = key, .keylen = strlen(key), .s = s, .len = len, .col = col};
    return 0;
}

/* Translates the value of one key in place: value words, unit names, times.
 * `where` names the cell for messages. */
static int translate(cw_export *x, item *it, item *items, int *nitems, int lenient, int foreign, const char *where,
                     char *err, size_t errlen) {
    const char *key = it->key;
    if (has_vals(x, key)) {
        const valmap *v = find_val(x, key, it->s, it->len);
        if (v) {
            it->s = v->to;
            it->len = strlen(v->to);
            for (int k = 0; k < v->nextra; k++)
                if (add_item(items, nitems, v->extra_key[k], v->extra_val[k], strlen(v->extra_val[k]), -1) < 0)
                    return cw_errf(err, errlen, "%s: too many keys", where);
        } else if (!lenient && foreign && !protocol_value(key, it->s, it->len)) {
            /* under the protocol's own key name, the decoder judges the value */
            int own = 0;
            for (size_t i = 0; i < x->nvals; i++) own |= strcmp(x->vals[i].key, key) == 0;
            return cw_errf(err, errlen, "%s: '%.*s' is not a word of [values %s] in %s, nor a value of '%s'", where,
                           (int)(it->len > 64 ? 64 : it->len), it->s, own ? key : "bool",
                           x->path ? x->path : "the column map", key);
        }
    }
    if (strcmp(key, "unit") == 0 && it->len && !(it->s[0] >= '0' && it->s[0] <= '9')) {
        char name[256], code[7], why[1024];
        snprintf(name, sizeof(name), "%.*s", (int)it->len, it->s);
        if (cw_args_unit(x->cfg, name, 0, code, why, sizeof(why)) == 0) {
            memcpy(it->code, code, 7);
            it->s = it->code;
            it->len = 6;
        } else if (!lenient) {
            return cw_errf(err, errlen, "%s: %s", where, why);
        }
    }
    if (strcmp(key, "ts") == 0) {
        long long v;
        int64_t ms;
        char why[256];
        if (cw_record_cell_int(it->s, it->len, &v) == 0) {
            it->is_int = 1;
            it->iv = v;
        } else if (cw_args_time(it->s, it->len, x->cfg->utc_offset_min, &ms, why, sizeof(why)) == 0) {
            it->is_int = 1;
            it->iv = ms;
        } else if (!lenient) {
            return cw_errf(err, errlen, "%s: %s", where, why);
        }
    }
    return 0;
}

static void pack_strn(msgpack_packer *pk, const char *s, size_t n) {
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Packs an item typed by what the protocol expects for its key; text that
 * does not read as its type is packed as text, for the decoder to name. */
static void pack_item(msgpack_packer *pk, const item *it) {
    pack_strn(pk, it->key, it->keylen);
    if (it->is_int) {
        msgpack_pack_int64(pk, it->iv);
        return;
    }
    long long iv;
    int bv;
    switch (cw_event_key_kind(it->key, it->keylen)) {
    case CW_KIND_UINT:
    case CW_KIND_INT:
        if (cw_record_cell_int(it->s, it->len, &iv) == 0) {
            msgpack_pack_int64(pk, iv);
            return;
        }
        break;
    case CW_KIND_BOOL:
        if (cw_record_cell_bool(it->s, it->len, &bv) == 0) {
            if (bv) msgpack_pack_true(pk);
            else msgpack_pack_false(pk);
            return;
        }
        break;
    default: break;
    }
    pack_strn(pk, it->s, it->len);
}

/* "d:" and 16 hex digits of FNV-1a over what identifies the act. */
static void derive_id(const item *items, int nitems, char out[19]) {
    static const char *const parts[] = {"unit", "case", "type", "ts"};
    uint64_t h = 1469598103934665603ULL;
    for (int p = 0; p < 4; p++) {
        char num[24];
        const char *s = "";
        size_t n = 0;
        for (int i = 0; i < nitems; i++) {
            if (strcmp(items[i].key, parts[p]) != 0) continue;
            if (items[i].is_int) n = (size_t)snprintf(num, sizeof(num), "%lld", items[i].iv), s = num;
            else s = items[i].s, n = items[i].len;
        }
        for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
        h = (h ^ 0x1f) * 1099511628211ULL; /* a separator no text holds */
    }
    snprintf(out, 19, "d:%016llx", (unsigned long long)h);
}

static void trim_cell(const char **s, size_t *n) {
    while (*n && ((*s)[0] == ' ' || (*s)[0] == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r')) (*n)--;
}

int cw_export_row(cw_export *x, const char *const *cells, const size_t *lens, size_t n, int lenient,
                  msgpack_sbuffer *out, char *err, size_t errlen) {
    item items[MAX_ITEMS];
    int nitems = 0;
    for (size_t i = 0; i < n && i < x->nhead; i++) {
        const char *s = cells[i];
        size_t len = lens[i];
        trim_cell(&s, &len);
        if (!x->keys[i] || len == 0) continue;
        if (add_item(items, &nitems, x->keys[i], s, len, (int)i) < 0)
            return cw_errf(err, errlen, "more than %d keys", MAX_ITEMS);
    }
    for (int i = 0; i < nitems; i++) {
        char where[300];
        int foreign = items[i].col < 0 || strcmp(x->heads[items[i].col], items[i].key) != 0;
        if (items[i].col >= 0) snprintf(where, sizeof(where), "column %d (%s)", items[i].col + 1, x->heads[items[i].col]);
        else snprintf(where, sizeof(where), "key '%s'", items[i].key);
        if (translate(x, &items[i], items, &nitems, lenient, foreign, where, err, errlen) < 0) return -1;
    }
    char id[19];
    if (x->derive_id) {
        derive_id(items, nitems, id);
        add_item(items, &nitems, "id", id, strlen(id), -1);
    }
    add_item(items, &nitems, "v", "1", 1, -1);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (size_t)nitems);
    for (int i = 0; i < nitems; i++) pack_item(&pk, &items[i]);
    return 0;
}

/* ---- JSON lines ------------------------------------------------------- */

int cw_export_json(cw_export *x, const char *text, size_t len, int lenient, msgpack_sbuffer *out, char *err,
                   size_t errlen) {
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root) return cw_errf(err, errlen, "not JSON: %s (column %d)", je.text, je.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return cw_errf(err, errlen, "not a JSON object");
    }
    /* string values become items (translated); others are packed as they are */
    item items[MAX_ITEMS];
    json_t *other[MAX_ITEMS];
    const char *other_key[MAX_ITEMS];
    int nitems = 0, nother = 0, rc = 0;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (json_is_null(v)) continue;
        const char *key = map_column(x, k);
        if (!key) key = k;
        if (nitems + nother >= MAX_ITEMS) {
            rc = cw_errf(err, errlen, "more than %d keys", MAX_ITEMS);
            break;
        }
        if (json_is_string(v) && is_key(key)) {
            size_t before = (size_t)nitems;
            add_item(items, &nitems, key, json_string_value(v), json_string_length(v), -1);
            if ((size_t)nitems == before) continue; /* a second name for one key */
            char where[300];
            snprintf(where, sizeof(where), "key '%s'", k);
            if ((rc = translate(x, &items[nitems - 1], items, &nitems, lenient, strcmp(k, key) != 0, where, err,
                                errlen)) < 0)
                break;
        } else {
            int dup = 0;
            for (int i = 0; i < nother; i++) dup |= strcmp(other_key[i], key) == 0;
            for (int i = 0; i < nitems; i++) dup |= strcmp(items[i].key, key) == 0;
            if (dup) continue;
            other_key[nother] = key;
            other[nother++] = v;
        }
    }
    if (rc == 0) {
        int have_v = 0;
        for (int i = 0; i < nother; i++) have_v |= strcmp(other_key[i], "v") == 0;
        if (!have_v) add_item(items, &nitems, "v", "1", 1, -1);
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, (size_t)(nitems + nother));
        for (int i = 0; i < nitems; i++) pack_item(&pk, &items[i]);
        for (int i = 0; i < nother && rc == 0; i++) {
            pack_strn(&pk, other_key[i], strlen(other_key[i]));
            if (cw_record_pack_json(&pk, other[i], 1)) rc = cw_errf(err, errlen, "key '%s' is nested too deeply", other_key[i]);
        }
    }
    json_decref(root);
    return rc;
}
