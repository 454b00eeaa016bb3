/* libFuzzer target: the configuration parser and the rules read from it.
 * Whatever the bytes, loading must not crash, leak or invoke UB; a file
 * that loads must print and its rules either load or be refused with a
 * message. (The password file is never read: cw_config_finish is not
 * called.) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/cw_config.h"
#include "../../daemon/cw_log.h"
#include "../../daemon/cw_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *devnull;
    if (!devnull) {
        devnull = fopen("/dev/null", "w");
        cw_log_level = 0; /* quiet */
    }
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f) return 0;
    cw_config *c = cw_config_new();
    char err[512];
    err[0] = '\0';
    if (cw_config_load_stream(c, f, "fuzz", err, sizeof(err)) == 0) {
        cw_config_print(c, devnull);
        cw_rules *r = cw_rules_new(c, err, sizeof(err));
        if (!r && !err[0]) abort(); /* a refusal says why */
        if (r) {
            cw_clock_rules k;
            cw_rules_clocks(r, &k);
        }
        cw_rules_free(r);
    } else if (!err[0]) {
        abort();
    }
    fclose(f);
    cw_config_free(c);
    return 0;
}
