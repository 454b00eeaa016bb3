#!/bin/sh
# feed.sh BIN_DIR [LINES] — `casewatch feed` of LINES (default 100000) JSON
# lines into a private redis-server, against the Python equivalent
# (redis-py + msgpack, pipelined) in the same run; median of 3 each.
set -eu
bin=${1:-bin}; lines=${2:-100000}
dir=$(mktemp -d /tmp/casewatch-bench-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --daemonize no >/dev/null 2>&1 &
rpid=$!
trap 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rm -rf "$dir"' EXIT
for i in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
awk -v n="$lines" 'BEGIN { for (i = 0; i < n; i++) printf "{\"v\":1,\"id\":\"b%d\",\"ts\":%.0f,\"type\":\"prosecution.decided\",\"case\":\"南检刑诉受[2020]%d号\",\"unit\":\"410923\",\"dept\":\"第一检察部\",\"pros\":\"P%03d\",\"decision\":\"prosecute\",\"plea\":true,\"sentencing\":\"determinate\",\"n\":%d}\n", i, 1596211200000 + i * 1000, i, i % 40, 1 + i % 3 }' > "$dir/in.jsonl"
now() { date +%s.%N; }
median() { sort -n | sed -n 2p; }
c_times=""; py_times=""
for run in 1 2 3; do
    redis-cli -p "$port" flushall >/dev/null
    t0=$(now); "$bin/casewatch" -o redis.port="$port" feed "$dir/in.jsonl" 2>/dev/null; t1=$(now)
    test "$(redis-cli -p "$port" xlen casewatch:events)" = "$lines"
    c_times="$c_times$(echo "$t1 - $t0" | bc -l)\n"
    redis-cli -p "$port" flushall >/dev/null
    t0=$(now); /usr/bin/python3 tests/bench/feed_py.py "$port" casewatch:events "$dir/in.jsonl" >/dev/null; t1=$(now)
    test "$(redis-cli -p "$port" xlen casewatch:events)" = "$lines"
    py_times="$py_times$(echo "$t1 - $t0" | bc -l)\n"
done
c=$(printf "$c_times" | median); py=$(printf "$py_times" | median)
printf 'feed %s JSON lines: casewatch feed %.2f s (%.0f lines/s), python redis-py+msgpack %.2f s (%.0f lines/s), ratio %.1fx\n' \
    "$lines" "$c" "$(echo "$lines / $c" | bc -l)" "$py" "$(echo "$lines / $py" | bc -l)" "$(echo "$py / $c" | bc -l)"
