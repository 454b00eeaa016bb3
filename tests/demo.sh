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
cat > "$dir/casewatch.conf" <<CONF
[redis]
port = $port
[daemon]
state_dir = $dir
clock = event
[units]
410900 = 濮阳市人民检察院
410922 = 清丰县人民检察院
410923 = 南乐县人民检察院
410926 = 范县人民检察院
CONF
"$bin/casewatchd" -c "$dir/casewatch.conf" 2>"$dir/daemon.log" &
dpid=$!
echo "demo: casewatchd pid $dpid (log: $dir/daemon.log)"
echo "demo: alerts as they arrive (Ctrl-C to stop):"
redis-cli -p "$port" --no-raw psubscribe 'casewatch:alerts' &
spid=$!
sleep 0.5
"$bin/casewatch" -c "$dir/casewatch.conf" feed tests/data/demo.jsonl || true
echo "demo: stream length $(redis-cli -p "$port" xlen casewatch:events)"
if [ -t 0 ]; then wait "$spid"; else sleep 3; fi
