#!/bin/sh
# oom_rss.sh BIN_DIR [N] [OOM_S] — casewatchd's RSS while Redis refuses
# every write (maxmemory 1, noeviction) for OOM_S seconds (default 15)
# with a backlog of N events (default 1,000,000) in the stream, against
# the same backlog without the fault. A private redis-server on a free
# loopback port, stopped by its pid. Prints one line per run: peak RSS
# during the catch-up (or the OOM), the seconds until every hash is
# written and the writer says writes land again, the hashes written, and
# whether reading was paused for the writer.
set -eu
bin=${1:-bin}; n=${2:-1000000}; oom=${3:-15}
dir=$(mktemp -d /tmp/casewatch-oom-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
rpid=$!
dpid=""
trap '[ -n "$dpid" ] && kill $dpid 2>/dev/null; kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
for i in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
R() { redis-cli -p "$port" "$@"; }
O="-c systemd/casewatch.conf -o redis.port=$port -o daemon.log_level=info"

echo "oom_rss: preloading $n events (casewatch gen | casewatch feed)"
"$bin/casewatch" $O gen --seed 1 --cases $((n / 5)) --lines "$n" --days 730 --dup-rate 0.01 --late-rate 0.05 2>/dev/null \
    | "$bin/casewatch" $O feed 2>&1 | tail -n1
len=$(R xlen casewatch:events)

rss() { awk '/^VmRSS/ {print $2 * 1024}' /proc/"$1"/status 2>/dev/null || echo 0; }
mb() { awk -v b="$1" 'BEGIN {printf "%.0f MB", b / 1e6}'; }
now() { date +%s.%N; }

# one run: $1 = seconds of OOM from the moment the lease is held (0: none)
run() {
    fault=$1
    R --scan --pattern 'casewatch:*' | grep -v '^casewatch:events$' | while read -r k; do R del "$k" >/dev/null; done
    sd=$(mktemp -d "$dir/state-XXXXXX")
    "$bin/casewatchd" $O -o daemon.state_dir="$sd" 2>"$sd/log" &
    dpid=$!
    # the lease (or, for a daemon without one, the first health write)
    while [ "$(R exists casewatch:daemon:main:lease)" != 1 ] && [ "$(R exists casewatch:daemon:main)" != 1 ]; do sleep 0.001; done
    t0=$(now)
    peak=0
    if [ "$fault" -gt 0 ]; then
        R config set maxmemory-policy noeviction >/dev/null
        R config set maxmemory 1 >/dev/null
        end=$(echo "$t0 + $fault" | bc)
        while [ "$(echo "$(now) < $end" | bc)" = 1 ]; do
            r=$(rss $dpid); [ "$r" -gt "$peak" ] && peak=$r
            sleep 0.2
        done
        during=$(R --scan --pattern 'casewatch:ind:*' | wc -l)
        R config set maxmemory 0 >/dev/null
        t0=$(now)
    fi
    # until every entry is read and written, and writes land
    while :; do
        r=$(rss $dpid); [ "$r" -gt "$peak" ] && peak=$r
        read_=$(R hget casewatch:daemon:main entries_read)
        lag=$(R hget casewatch:daemon:main lag)
        refused=$(R hget casewatch:daemon:main writes_refused_since)
        [ "${read_:-0}" -ge "$len" ] && [ "${lag:-1}" = 0 ] && [ "${refused:-0}" = 0 ] && break
        sleep 0.2
    done
    sleep 1.5 # the last flush and heartbeat
    t1=$(now)
    hashes=$(R --scan --pattern 'casewatch:ind:*' | wc -l)
    paused=$(grep -c "reading paused" "$sd/log" || true)
    grep -m1 "reading paused" "$sd/log" | sed "s/^/  /" >&2 || true
    refusals=$(grep -c "Redis refuses writes" "$sd/log" || true)
    kill -TERM $dpid; wait $dpid || true; dpid=""
    if [ "$fault" -gt 0 ]; then
        printf 'OOM %s s from the lease on, %s-event backlog: peak RSS %s (during and after); %s indicator hashes existed during it; %.1f s after memory came back, all %s hashes written; "Redis refuses writes" logged %s time(s); reading paused %s time(s)\n' \
            "$fault" "$len" "$(mb "$peak")" "$during" "$(echo "$t1 - $t0 - 1.5" | bc)" "$hashes" "$refusals" "$paused"
    else
        printf 'no fault, %s-event backlog: peak RSS %s; caught up and written in %.1f s; %s hashes\n' \
            "$len" "$(mb "$peak")" "$(echo "$t1 - $t0 - 1.5" | bc)" "$hashes"
    fi
}
run 0
run "$oom"
