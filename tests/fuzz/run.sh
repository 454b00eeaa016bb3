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
    rc=0
    "build/fuzz/$name" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix=build/fuzz/ "$corpus" >"build/fuzz/$name.log" 2>&1 || rc=$?
    grep -E "stat::number_of_executed_units|ERROR|SUMMARY" "build/fuzz/$name.log" || true
    if [ $rc -ne 0 ]; then
        echo "fuzz: $name FAILED (exit $rc); reproducer in build/fuzz/, log build/fuzz/$name.log" >&2
        grep -A30 "ERROR" "build/fuzz/$name.log" >&2 || true
        exit 1
    fi
done
