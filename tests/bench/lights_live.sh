#!/bin/sh
# lights_live.sh BIN_DIR [N] — the event loop at a midnight that changes N
# deadline lights at once, live: N detained arrest reviews with 2 days
# left (yellow), fed to a daemon whose wall clock is shifted to shortly
# before a local midnight (CW_TEST_NOW_OFFSET_MS), which then turns all N
# orange (N resolutions, N firings). Prints the longest loop stall before
# and after that midnight (the health hash's max_stall_ms) and how long
# the N changes took to reach the alert log. Needs /usr/bin/python3 with
# redis and msgpack (tests/deps.sh bench).
set -eu
bin=$(cd "${1:-bin}" && pwd)
n=${2:-1000000}
dir=$(mktemp -d /tmp/cw-lights-XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --daemonize no >"$dir/redis.log" 2>&1 &
rpid=$!
dpid=""
trap 'kill $dpid 2>/dev/null || true; kill $rpid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
for i in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
# the daemon's clock: lead seconds before the next local (+08:00) midnight
lead=$(( n / 15000 + 150 )) # the feed, then over a minute for its stalls to leave the window
eval "$(/usr/bin/python3 - "$lead" <<'EOF'
import sys, time
lead = int(sys.argv[1])
now = int(time.time() * 1000)
off = 8 * 3600 * 1000
day = (now + off) // 86400000
midnight = (day + 1) * 86400000 - off
shifted = midnight - lead * 1000
print(f"offset={shifted - now}; midnight_real={midnight - (shifted - now)}; dday={day}")
EOF
)"
CW_TEST_NOW_OFFSET_MS=$offset ${LIGHTS_WRAP:-} "$bin/casewatchd" -c systemd/casewatch.conf -o "redis.port=$port" \
    -o "daemon.state_dir=$dir" -o daemon.clock=live -o calendar.file=systemd/holidays-cn.conf \
    -o daemon.snapshot_interval_ms=0 -o daemon.log_level=warning 2>"$dir/daemon.log" &
dpid=$!
sleep 2
# N reviews, 7 days from day D-6 (detained: no holiday move): 2 days left on D
/usr/bin/python3 - "$port" "$n" "$dday" <<'EOF'
import sys, msgpack, redis
port, n, d = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ts = (d - 6) * 86400000 - 8 * 3600 * 1000 + 12 * 3600 * 1000
r = redis.Redis(port=port)
p = r.pipeline(transaction=False)
for i in range(n):
    e = {"v": 1, "id": f"L{i}", "ts": ts, "type": "arrest.accepted", "case": f"L{i}", "unit": "410923",
         "dept": "第一检察部", "pros": f"P{i % 40:03d}", "detained": True}
    p.xadd("casewatch:events", {"e": msgpack.packb(e)})
    if i % 5000 == 4999:
        p.execute()
p.execute()
EOF
fed=$(date +%s)
# wait until every yellow is out (the log holds the last 100,000)
for i in $(seq 600); do
    lag=$(redis-cli -p "$port" hget casewatch:daemon:main lag)
    [ "$(redis-cli -p "$port" hget casewatch:daemon:main events)" = "$n" ] && [ "$lag" = 0 ] && break
    sleep 0.5
done
now=$(/usr/bin/python3 -c 'import time; print(int(time.time()*1000))')
if [ "$now" -ge "$midnight_real" ]; then
    echo "lights_live: feeding $n events took past the daemon's midnight; give it more lead" >&2
    exit 1
fi
# the feed's stalls (maps growing to N entries) leave the minute window
sleep 1
before=$(redis-cli -p "$port" hget casewatch:daemon:main max_stall_ms)
wait_ms=$(( midnight_real - now ))
sleep $(( wait_ms / 1000 + 1 ))
t0=$(/usr/bin/python3 -c 'import time; print(time.time())')
# the midnight's 2N changes reach the log: the last entry is an orange firing
for i in $(seq 1200); do
    last=$(redis-cli -p "$port" --raw xrevrange casewatch:alerts:log + - count 1 | grep -c '"orange"' || true)
    firing=$(redis-cli -p "$port" hget casewatch:daemon:main alerts_firing)
    orange=$(redis-cli -p "$port" --raw hvals casewatch:alerts:firing | grep -c '"orange"' || true)
    [ "$orange" -ge "$n" ] && break
    sleep 0.5
done
t1=$(/usr/bin/python3 -c 'import time; print(time.time())')
sleep 2
recent=$(redis-cli -p "$port" hget casewatch:daemon:main stall_recent_ms)
echo "lights_live: $n open clocks turning orange at one midnight: longest loop stall ${recent} ms over the minute of that midnight (${before} ms over the whole run before it, feeding included); $orange orange lights in the firing hash $(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}') s after midnight"
