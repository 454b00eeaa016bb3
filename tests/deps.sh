#!/bin/sh
# deps.sh check|install|bench|report|packages [ci]|pkg-config — the one
# list of what casewatch builds and tests with: the Makefile, .ci/run and
# tests/fuzz/run.sh read it from here (with bench, what `make bench` needs
# besides; with report, what the report's rendering test needs: Chromium
# and a CJK font).
set -e
PKGS="gcc make pkg-config libuv1-dev libhiredis-dev libmsgpack-dev libcmocka-dev libinih-dev libjansson-dev libcsv-dev libsystemd-dev redis-server redis-tools"
# what CI runs besides: the fuzzers (clang, its sanitizer runtime) and valgrind
CI_PKGS="clang libclang-rt-dev valgrind"
# the libraries as pkg-config names them (cmocka: the tests only)
PKG_CONFIG_NAMES="libuv hiredis msgpack inih jansson libsystemd"
have() {
    for p in $PKG_CONFIG_NAMES cmocka; do
        pkg-config --exists "$p" 2>/dev/null || return 1
    done
    [ -e /usr/include/csv.h ] || return 1
    command -v redis-server >/dev/null 2>&1 || return 1
    command -v redis-cli >/dev/null 2>&1 || return 1
    return 0
}
# what `make bench` needs beyond the build: the Python baselines of the
# feed and replay benchmarks (Debian's python3 with redis-py and msgpack),
# Node.js and npm for the Node.js peer of the replay (bench.sh installs
# ioredis and msgpackr from the npm registry into the build directory), bc
BENCH_PKGS="python3 python3-redis python3-msgpack nodejs npm bc"
bench_have() {
    /usr/bin/python3 -c 'import redis, msgpack' >/dev/null 2>&1 && command -v bc >/dev/null 2>&1 &&
        command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1
}
# what tests/integration/report_chromium.sh needs: a headless browser to
# render the HTML report, and a font with the Chinese characters
REPORT_PKGS="chromium fonts-noto-cjk"
report_have() {
    command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .
}
case "$1" in
check) have ;;
packages) if [ "${2:-}" = ci ]; then echo "$PKGS $CI_PKGS $REPORT_PKGS"; else echo "$PKGS"; fi ;;
pkg-config) echo "$PKG_CONFIG_NAMES" ;;
report)
    report_have && exit 0
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "deps: installing $REPORT_PKGS (to render the report in tests)" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $REPORT_PKGS >&2
    ;;
bench)
    bench_have && exit 0
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "deps: installing $BENCH_PKGS (for make bench)" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $BENCH_PKGS >&2
    ;;
install)
    if have; then exit 0; fi
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "deps: installing $PKGS" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $PKGS >&2
    ;;
*) echo "usage: deps.sh check|install|bench|report|packages [ci]|pkg-config" >&2; exit 2 ;;
esac
