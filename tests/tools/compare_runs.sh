#!/bin/sh
# compare_runs.sh BIN_DIR_A BIN_DIR_B — shows that two builds of casewatchd
# behave alike on the same stream (issue 14: a refactor changes no
# behaviour). Each BIN_DIR holds casewatchd and casewatch.
#
# One stream is generated once: `casewatch gen` of build A (a year of
# cases in 9 院, deadlines going overdue, its own duplicates, late and bad
# lines) mixed with bad entries of every kind PROTOCOL.md §2 names, exact
# duplicates (the same event re-added), late events (weeks to months before
# the newest event time) and one case past [limits] max_ids_per_case, with
# explicit entry ids (compare_runs.py stream). Each build then runs twice,
# each time against a fresh redis-server on a free loopback port loaded
# with those same entries, with systemd/casewatch.conf and
# daemon.clock=event:
#   replay   casewatchd --replay --rebuild (runs to the tip, exits)
#   live     casewatchd as a service: catches up, is stopped with SIGTERM
#            once its health hash shows last_id at the tip and lag 0
# and after each run the indicator hashes, alert log (without emitted_at),
# firing hash, dead-letter stream, health counters and the final snapshot
# are dumped. The table compares A with B, run by run; the exit status is
# 0 only when everything is equal (1 when something differs, 2 when a
# run failed).
#
# Both runs of a build with the same BIN_DIR twice (A vs A) show what is
# deterministic. Set CW_COMPARE_KEEP=1 to keep the work directory (it is
# kept anyway when something differs or fails).
set -eu
if [ $# -ne 2 ] || [ ! -x "$1/casewatchd" ] || [ ! -x "$2/casewatchd" ]; then
    echo "usage: compare_runs.sh BIN_DIR_A BIN_DIR_B (each holding casewatchd and casewatch)" >&2
    exit 2
fi
A=$(cd "$1" && pwd)
B=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
conf=$root/systemd/casewatch.conf
tool="$here/compare_runs.py"
work=$(mktemp -d /tmp/cw-compare-XXXXXX)
rpid=""
dpid=""
status=2
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [ -n "$dpid" ]; then kill -KILL "$dpid" 2>/dev/null || true; wait "$dpid" 2>/dev/null || true; fi
    if [ -n "$rpid" ]; then kill "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true; fi
    if [ "$status" -eq 0 ] && [ "${CW_COMPARE_KEEP:-0}" != 1 ]; then
        rm -rf "$work"
    else
        echo "compare_runs: work directory kept: $work" >&2
    fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM
fail() {
    echo "compare_runs: $*" >&2
    exit 2
}
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_redis DIR: a private redis-server on a free loopback port ($port, $rpid)
start_redis() {
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$1" --daemonize no \
        >"$1/redis.log" 2>&1 &
    rpid=$!
    i=0
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || fail "redis-server on port $port did not start (see $1/redis.log)"
        sleep 0.05
    done
}

stop_redis() {
    kill "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
    rpid=""
}

# run LABEL BIN_DIR MODE: one daemon run on a fresh redis; leaves
# $work/LABEL-MODE/dump.json and main.snap
run() {
    label=$1 bin=$2 mode=$3
    d=$work/$label-$mode
    mkdir -p "$d/state"
    t0=$(now_ms)
    start_redis "$d"
    redis-cli -p "$port" --pipe <"$work/stream.resp" >"$d/load.log" 2>&1 || fail "loading the stream failed (see $d/load.log)"
    grep -q 'errors: 0,' "$d/load.log" || fail "loading the stream: $(tail -n1 "$d/load.log")"
    n=$(redis-cli -p "$port" xlen casewatch:events)
    [ "$n" = "$entries" ] || fail "the stream holds $n entries, not $entries"
    set -- -c "$conf" -o "redis.port=$port" -o "daemon.state_dir=$d/state" -o daemon.clock=event
    if [ "$mode" = replay ]; then
        timeout 120 "$bin/casewatchd" "$@" --replay --rebuild >"$d/replay.out" 2>"$d/daemon.log" ||
            fail "$label: casewatchd --replay --rebuild failed (see $d/daemon.log)"
    else
        "$bin/casewatchd" "$@" 2>"$d/daemon.log" &
        dpid=$!
        python3 "$tool" caught-up "$port" main "$last_id" 90 || fail "$label: the daemon did not catch up (see $d/daemon.log)"
        kill -TERM "$dpid"
        i=0
        while kill -0 "$dpid" 2>/dev/null; do
            i=$((i + 1))
            [ $i -lt 300 ] || fail "$label: the daemon did not stop within 30 s of SIGTERM"
            sleep 0.1
        done
        rc=0
        wait "$dpid" || rc=$?
        dpid=""
        [ $rc -eq 0 ] || fail "$label: the daemon exited with $rc after SIGTERM (see $d/daemon.log)"
    fi
    python3 "$tool" dump "$port" main "$d/dump.json"
    [ -f "$d/state/main.snap" ] && cp "$d/state/main.snap" "$d/main.snap"
    stop_redis
    echo "run $label $mode: $bin, $(($(now_ms) - t0)) ms"
}

t_start=$(now_ms)
"$A/casewatch" -c "$conf" gen --seed 14 --cases 9000 --start 2020-01-01 --days 365 --overdue-rate 0.05 \
    --dup-rate 0.01 --late-rate 0.05 --bad-rate 0.003 \
    --units 410923,410922,410900,410926,410927,410928,411000,411002,411081 \
    >"$work/gen.jsonl" 2>"$work/gen.log" || fail "casewatch gen failed (see $work/gen.log)"
python3 "$tool" stream "$work/gen.jsonl" "$work/stream.resp" "$work/stream.json"
entries=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["entries"])' "$work/stream.json")
last_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["last_id"])' "$work/stream.json")

for mode in replay live; do
    run A "$A" "$mode"
    run B "$B" "$mode"
done

echo
echo "A = $A"
echo "B = $B"
rc=0
python3 "$tool" compare "$conf" replay "$work/A-replay" "$work/B-replay" live "$work/A-live" "$work/B-live" || rc=$?
echo "total $(($(now_ms) - t_start)) ms"
status=$rc
exit $rc
