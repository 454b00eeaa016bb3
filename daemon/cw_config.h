/* cw_config: the INI configuration shared by casewatchd and the casewatch
 * CLI. Every option is one row of a declarative table (section, key, type,
 * default, bounds, description) in cw_config.c; a file is parsed with
 * libinih and validated once. */
#ifndef CW_CONFIG_H
#define CW_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef enum cw_clock { CW_CLOCK_LIVE = 0, CW_CLOCK_EVENT = 1 } cw_clock;

/* One "key = value" of a [rule NAME] section, kept as text for cw_rules
 * to read; `where` is "FILE:LINE" or "-o" for error messages. */
typedef struct cw_rule_kv {
    char *rule, *key, *value, *where;
} cw_rule_kv;

typedef struct cw_pros_name {
    char *key; /* "410923/P017", or "P017" for any unit */
    char *name;
} cw_pros_name;

typedef struct cw_unit_name {
    char code[7];
    char *name;
} cw_unit_name;

/* A plain value object: read its fields, change it only through
 * cw_config_set so that bounds hold. */
typedef struct cw_config {
    /* [redis] */
    char *redis_host;
    int redis_port;
    char *redis_user;
    char *redis_password_file;
    int redis_timeout_ms;
    char *redis_sentinels;
    char *redis_master_name;
    /* [stream] */
    char *stream_key;
    char *stream_dead_key;
    int stream_dead_maxlen;
    int stream_batch;
    int stream_block_ms;
    /* [daemon] */
    char *instance;
    int clock; /* cw_clock */
    char *state_dir;
    int snapshot_interval_ms;
    int log_level;
    char *health_prefix;
    /* [indicators] */
    char *ind_prefix;
    char *utc_offset;
    int utc_offset_min; /* parsed from utc_offset by cw_config_finish */
    int rolling_days;
    int keep_quarters;
    int flush_ms;
    int flush_entries;
    int closed_window;
    /* [limits] */
    int max_open_cases;
    int max_scopes;
    int max_ids_per_case;
    int dead_letter_bytes;
    /* [alerts] */
    char *alerts_channel;
    char *alerts_log_key;
    int alerts_log_maxlen;
    /* [calendar] */
    char *calendar_file;
    /* [feed] (casewatch feed) */
    char *feed_columns;
    char *alerts_firing_key; /* set by cw_config_finish when left empty */
    char *alerts_acks_key;
    /* [rule NAME] sections, in file order */
    cw_rule_kv *rule_kvs;
    size_t nrule_kvs;
    /* [units]: code = name */
    cw_unit_name *units;
    size_t nunits;
    /* [prosecutors]: UNIT/ID or ID = name */
    cw_pros_name *pros;
    size_t npros;
    /* read from redis_password_file by cw_config_finish; never printed */
    char *redis_password;
} cw_config;

/* A configuration holding every default. Returns NULL on out of memory. */
cw_config *cw_config_new(void);
void cw_config_free(cw_config *c);

/* Parses an INI file over the current values. Returns 0, or -1 with a
 * message naming the file, line, section, key and what was expected. */
int cw_config_load(cw_config *c, const char *path, char *err, size_t errlen);

/* The same from an open stream; name is used in messages. */
int cw_config_load_stream(cw_config *c, FILE *f, const char *name, char *err, size_t errlen);

/* Applies one "section.key=value" override (the -o option). Returns 0 or
 * -1 with a message. */
int cw_config_override(cw_config *c, const char *assignment, char *err, size_t errlen);

/* The longest password a password file may hold. */
#define CW_PASSWORD_MAX 4096

/* Cross-checks and reads secrets (the password file, warning when others
 * may read it). The password file is read whole, trailing newlines (LF
 * or CRLF) stripped; a password longer than CW_PASSWORD_MAX bytes, or
 * one holding a NUL byte, is refused with a message naming the file.
 * Call once after load and overrides. Returns 0 or -1. */
int cw_config_finish(cw_config *c, char *err, size_t errlen);

/* The configured name of a 院 (from [units]), or NULL. */
const char *cw_config_unit_name(const cw_config *c, const char *code);
/* The configured name of a unit's prosecutor (from [prosecutors]:
 * "UNIT/ID", else "ID"), or NULL. */
const char *cw_config_pros_name(const cw_config *c, const char *unit, const char *id);

/* Writes the effective configuration as INI (secrets masked). */
void cw_config_print(const cw_config *c, FILE *out);

#endif
