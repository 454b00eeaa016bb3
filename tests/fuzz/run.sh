#!/bin/sh
# run.sh SECONDS — builds each libFuzzer target (tests/fuzz/fuzz_*.c) with
# clang (ASan+UBSan) against the project's library sources and runs it for
# SECONDS, seeded from tests/fuzz/seeds/<target>/. Prints execution counts.
set -eu
secs=${1:-60}
cd "$(dirname "$0")/../.."
command -v clang >/dev/null || { echo "fuzz: clang is needed (apt-get install clang)" >&2; exit 2; }
mkdir -p build/fuzz/obj
PKGS=$(sh tests/deps.sh pkg-config)
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -DCW_VERSION=\"fuzz\" $(pkg-config --cflags $PKGS)"
objs=""
for src in proto/*.c daemon/*.c; do
    case "$src" in daemon/main.c) continue ;; esac
    o="build/fuzz/obj/$(echo "$src" | tr / _).o"
    if [ ! -e "$o" ] || [ "$src" -nt "$o" ]; then clang $CFLAGS -c -o "$o" "$src"; fi
    objs="$objs $o"
done
for t in tests/fuzz/fuzz_*.c; do
    name=$(basename "$t" .c)
    clang $CFLAGS -fsanitize=fuzzer -o "build/fuzz/$name" "$t" $objs $(pkg-config --libs $PKGS) -lm
    corpus="build/fuzz/corpus-$name"
    mkdir -p "$corpus"
    cp tests/fuzz/seeds/"$name"/* "$corpus/" 2>/dev/null || true
    echo "fuzz: $name for ${secs}s"
    rc=0
    "build/fuzz/$name" -max_total_time="$secs" -max_len=16384 -print_final_stats=1 \
        -artifact_prefix=build/fuzz/ "$corpus" >"build/fuzz/$name.log" 2>&1 || rc=$?
    grep -E "stat::number_of_executed_units|ERROR|SUMMARY" "build/fuzz/$name.log" || true
    if [ $rc -ne 0 ]; then
        echo "fuzz: $name FAILED (exit $rc); reproducer in build/fuzz/, log build/fuzz/$name.log" >&2
        grep -A30 "ERROR" "build/fuzz/$name.log" >&2 || true
        exit 1
    fi
done
