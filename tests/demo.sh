#!/bin/sh
# demo.sh BIN_DIR — `make run`: a private redis-server on a free loopback
# port, the daemon, a demo feed, and the alerts as they arrive. Ctrl-C
# stops everything this script started (by pid).
set -eu
bin=${1:-bin}
dir=$(mktemp -d /tmp/casewatch-demo-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 16379)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --daemonize no >"$dir/redis.log" 2>&1 &
rpid=$!
dpid=""; spid=""
cleanup() {
    [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
    [ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
    kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
for i in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "demo: redis-server pid $rpid on 127.0.0.1:$port"
# the shipped configuration (default rules), pointed at the private redis
conf=systemd/casewatch.conf
set -- -c "$conf" -o "redis.port=$port" -o "daemon.state_dir=$dir" -o daemon.clock=event \
    -o "units.410922=清丰县人民检察院"
"$bin/casewatchd" "$@" 2>"$dir/daemon.log" &
dpid=$!
echo "demo: casewatchd pid $dpid (log: $dir/daemon.log)"
echo "demo: alerts of 南乐县人民检察院 (410923) as they arrive; Ctrl-C to stop"
"$bin/casewatch" "$@" tail --from 0 --unit 410923 &
spid=$!
sleep 0.5
"$bin/casewatch" "$@" feed tests/data/demo.jsonl || true
echo "demo: the next year, generated, in three 院 (casewatch gen | casewatch feed):"
"$bin/casewatch" "$@" gen --cases 2000 --start 2020-11-03 --days 365 --seed 7 --overdue-rate 0.05 | "$bin/casewatch" "$@" feed
sleep 3
"$bin/casewatch" "$@" status || true
"$bin/casewatch" "$@" ind unit:410923 2021-Q1 || true
"$bin/casewatch" "$@" alerts --unit 410923 || true
if [ -t 0 ]; then wait "$spid"; fi
