#!/bin/sh
# run.sh SECONDS — builds each libFuzzer target with clang (ASan+UBSan) and
# runs it for SECONDS, seeded from tests/fuzz/seeds. Prints execution counts.
set -eu
secs=${1:-60}
cd "$(dirname "$0")/../.."
command -v clang >/dev/null || { echo "fuzz: clang is needed (apt-get install clang)" >&2; exit 2; }
mkdir -p build/fuzz
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(pkg-config --cflags msgpack jansson)"
for t in tests/fuzz/fuzz_*.c; do
    name=$(basename "$t" .c)
    clang $CFLAGS -o "build/fuzz/$name" "$t" proto/cw_event.c proto/cw_text.c proto/cw_record.c \
        $(pkg-config --libs msgpack jansson)
    corpus="build/fuzz/corpus-$name"
    mkdir -p "$corpus"
    cp tests/fuzz/seeds/* "$corpus/" 2>/dev/null || true
    echo "fuzz: $name for ${secs}s"
    "build/fuzz/$name" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 "$corpus" 2>&1 |
        grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" || true
    # a crash leaves crash-* files and a non-zero status; fail loudly
    if ls crash-* leak-* timeout-* >/dev/null 2>&1; then echo "fuzz: $name found a failure" >&2; exit 1; fi
done
