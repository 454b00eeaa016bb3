#!/bin/sh
# bench.sh BIN_DIR BUILD_DIR [N] — `make bench`: in one run on this machine,
# with a private redis-server on a free loopback port (stopped by its pid):
#  (a) the raw drain baseline (XREAD COUNT 1000, discard) over N events:
#      lean (hiredis's reader building no reply tree: ~1.4M entries/s,
#      the issue's own figure, and the baseline of the ratios) and with
#      hiredis's reply tree (the ratio earlier tables gave),
#  (b) casewatchd --replay --rebuild over the same stream, all indicators,
#      the shipped rules and the sinks on, timed as a whole process (a
#      replay logs only its net change, PROTOCOL.md section 3b; each run
#      starts with nothing firing, so each logs the same ~1,000 alerts),
#  (b') its peers, consumers of the same stream that keep a few counters
#      and write nothing: Python (redis-py + msgpack, tests/bench/peer_py.py)
#      and Node.js (ioredis + msgpackr, tests/bench/peer_node.js; the two
#      packages installed from the npm registry into $build/bench-node),
#  (b'') the replay's read path with no engine (tests/bench/readpath): its
#      reads alone, and its reads with decoding on a second worker: what
#      the daemon could reach if applying an event cost nothing,
#  (c) end-to-end latency XADD -> alert at a subscriber at 5k events/s,
#  (d) RSS per open case at 1M open cases, (e) snapshot write/load times,
#      and the open-case table alone loaded at 1M, 2M and 5M open cases (5M
#      is [limits] max_open_cases' default),
#  (f) the longest loop stall of a live daemon when the day moves for
#      20,000 prosecutors (every rolling window rewritten at once),
#  (g) the alert sink alone (tests/bench/alerts),
# medians of 3, each figure with its ratio to the baseline; the table is
# appended to BENCHMARKS.md. Also runs the feed benchmark.
set -eu
bin=${1:-bin}; build=${2:-build/rel}; n=${3:-1000000}
dir=$(mktemp -d /tmp/casewatch-bench-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
rpid=$!
trap 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
for i in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
tck=$(getconf CLK_TCK)
redis_cpu() { awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' /proc/$rpid/stat; } # seconds so far
# `times` must run in this shell, not in a $(...) subshell, which starts at 0
kids_cpu() { awk 'NR == 2 {gsub(/[ms]/, " "); printf "%.2f", $1 * 60 + $2 + $3 * 60 + $4}' "$1"; } # waited children
O="-c systemd/casewatch.conf -o redis.port=$port -o daemon.state_dir=$dir -o daemon.log_level=warning"

# the stream: n events of n/5 cases over two years in 3 units (casewatch
# gen): reviews decided on a uniform day inside their period (28 days, 10
# fast-track, +15 extended), 3% of them overdue by 3-6 days; 1% duplicates,
# 5% late events
echo "bench: preloading $n events (casewatch gen | casewatch feed)"
"$bin/casewatch" $O gen --seed 1 --cases $((n / 5)) --lines "$n" --days 730 --dup-rate 0.01 --late-rate 0.05 \
    --overdue-rate 0.03 2>/dev/null \
    | "$bin/casewatch" $O feed 2>&1 | tail -n1
len=$(redis-cli -p "$port" xlen casewatch:events)

# the Node.js peer's two packages, in the build directory (not shipped)
nodedir="$build/bench-node"
if [ ! -d "$nodedir/node_modules/ioredis" ] || [ ! -d "$nodedir/node_modules/msgpackr" ]; then
    mkdir -p "$nodedir"
    (cd "$nodedir" && npm install --no-audit --no-fund --no-save --prefix . ioredis@6 msgpackr@2 >/dev/null 2>&1) ||
        echo "bench: npm install of ioredis and msgpackr failed: no Node.js peer"
fi
pys=""; nodes=""
for run in 1 2 3; do
    p=$(/usr/bin/python3 tests/bench/peer_py.py "$port" 2>/dev/null | awk '{print $3}')
    pys="$pys ${p:-0}"
    j=$(NODE_PATH="$nodedir/node_modules" node tests/bench/peer_node.js "$port" 2>/dev/null | awk '{print $3}')
    nodes="$nodes ${j:-0}"
    echo "bench: peers run $run: Python $p entries/s, Node.js $j entries/s"
done

drains=""; leans=""; replays=""; stalls=""; rcpus=""; dcpus=""; lcpus=""; reads=""; rdecs=""
for run in 1 2 3; do
    d=$("$build/tests/bench/drain" "$port" | awk '{print $3}')
    drains="$drains $d"
    l=$("$build/tests/bench/drain" "$port" --lean | awk '{print $3}')
    leans="$leans $l"
    # the replay's read path with no engine (tests/bench/readpath): what
    # the daemon's own reading, and reading + decoding, reach by themselves
    # (a run that fails says why in readpath.err and counts for nothing)
    rp=$("$build/tests/bench/readpath" "$port" 2>>"$dir/readpath.err" | awk '{print $3}') || rp=""
    [ -n "$rp" ] && reads="$reads $rp"
    rd=$("$build/tests/bench/readpath" "$port" --decode 2>>"$dir/readpath.err" | awk '{print $3}') || rd=""
    [ -n "$rd" ] && rdecs="$rdecs $rd"
    redis-cli -p "$port" --scan --pattern 'casewatch:ind:*' | xargs -r -n 1000 redis-cli -p "$port" del >/dev/null
    redis-cli -p "$port" del casewatch:alerts:log casewatch:alerts:firing casewatch:events:dead >/dev/null
    rm -f "$dir"/*.snap
    c0=$(redis_cpu); t0=$(date +%s.%N); times >"$dir/times0" # only casewatchd between the two
    # the loop thread's CPU (its tid is the pid), read every 50 ms without
    # forking a reader: the engine is one thread, and bounds the replay
    "$bin/casewatchd" $O --rebuild --replay >"$dir/replay.out" & dpid=$!
    loop_ticks=0
    while read -r st 2>/dev/null <"/proc/$dpid/task/$dpid/stat"; do
        set -- $st
        [ "$3" = Z ] && break
        loop_ticks=$((${14} + ${15}))
        sleep 0.05
    done
    wait $dpid
    times >"$dir/times1"; t1=$(date +%s.%N); c1=$(redis_cpu)
    k0=$(kids_cpu "$dir/times0"); k1=$(kids_cpu "$dir/times1")
    line=$(cat "$dir/replay.out")
    r=$(echo "$len $t0 $t1" | awk '{printf "%.0f", $1 / ($3 - $2)}')
    replays="$replays $r"
    rcpu=$(echo "$c0 $c1" | awk '{printf "%.2f", $2 - $1}'); rcpus="$rcpus $rcpu"
    dcpu=$(echo "$k0 $k1" | awk '{printf "%.2f", $2 - $1}'); dcpus="$dcpus $dcpu"
    lcpu=$(echo "$loop_ticks $tck" | awk '{printf "%.2f", $1 / $2}'); lcpus="$lcpus $lcpu"
    stall=$(echo "$line" | sed -n 's/.*longest loop stall \([0-9]*\) ms.*/\1/p')
    stalls="$stalls ${stall:-0}"
    echo "bench: run $run: read path alone ${rp:-failed} entries/s, with decoding ${rd:-failed}"
    echo "bench: run $run: drain $l entries/s lean, $d with reply trees; replay $r entries/s as a process, CPU: casewatchd $dcpu s (its loop thread $lcpu s), redis-server $rcpu s ($line)"
done
drain=$(echo $drains | tr ' ' '\n' | median)
lean=$(echo $leans | tr ' ' '\n' | median)
replay=$(echo $replays | tr ' ' '\n' | median)
readp=$(echo $reads | tr ' ' '\n' | grep . | median)
readd=$(echo $rdecs | tr ' ' '\n' | grep . | median)
[ -n "$readp" ] || { readp=0; grep -v '\[info\]' "$dir/readpath.err" | sed 's/^/bench: /' | sort -u; }
[ -n "$readd" ] || readd=0
ratio=$(echo "$replay $lean" | awk '{printf "%.2f", $1 / $2}')
py=$(echo $pys | tr ' ' '\n' | median)
node=$(echo $nodes | tr ' ' '\n' | median)
py_x=$(echo "$replay $py" | awk '{printf "%.1f", $2 ? $1 / $2 : 0}')
node_x=$(echo "$replay $node" | awk '{printf "%.1f", $2 ? $1 / $2 : 0}')
tree_ratio=$(echo "$replay $drain" | awk '{printf "%.2f", $1 / $2}')
maxstall=$(echo $stalls | tr ' ' '\n' | sort -n | tail -n1)
alerts=$(redis-cli -p "$port" xlen casewatch:alerts:log)
# redis-server is one thread: the CPU it spends serving a replay (the XREADs,
# the indicator hashes, and the net change's alerts, PROTOCOL.md section 3b)
# bounds the replay rate whatever the daemon does: at the CPU it spent per
# entry here, this is as fast as a replay can go, even with a daemon that
# costs nothing
rcpu=$(echo $rcpus | tr ' ' '\n' | median)
dcpu=$(echo $dcpus | tr ' ' '\n' | median)
ceiling=$(echo "$len $rcpu" | awk '{printf "%.0f", $1 / $2}')
ceiling_ratio=$(echo "$ceiling $lean" | awk '{printf "%.2f", $1 / $2}')
# and the loop thread: entries / its CPU seconds, even with no waiting
lcpu=$(echo $lcpus | tr ' ' '\n' | median)
loop_ceiling=$(echo "$len $lcpu" | awk '{printf "%.0f", ($2 > 0 ? $1 / $2 : 0)}')
loop_ratio=$(echo "$loop_ceiling $lean" | awk '{printf "%.2f", $1 / $2}')
echo "bench: raw drain      $lean entries/s lean, $drain with reply trees (medians of 3)"
echo "bench: read path      $readp entries/s alone, $readd with decoding, nothing applied (medians of 3; ratios $(echo "$readp $readd $lean" | awk '{printf "%.2f, %.2f", $1 / $3, $2 / $3}'))"
echo "bench: --replay       $replay entries/s (median of 3), ratio $ratio to the lean drain ($tree_ratio to the one with reply trees); $alerts alerts logged"
echo "bench: replay CPU     casewatchd $dcpu s, redis-server $rcpu s (medians); redis alone caps a replay at $ceiling entries/s, ratio $ceiling_ratio"
echo "bench: loop thread    $lcpu s of CPU per replay (median): it alone caps a replay at $loop_ceiling entries/s, ratio $loop_ratio"
echo "bench: peers          Python $py entries/s, Node.js $node entries/s (medians of 3); the replay is ${py_x}x and ${node_x}x them"

# (c) latency at 5k events/s, daemon following live
redis-cli -p "$port" del casewatch:events >/dev/null
rm -f "$dir"/*.snap
"$bin/casewatchd" $O -o daemon.clock=event & dpid=$!
sleep 1
lat=$("$build/tests/bench/latency" "$port" 5000 10)
kill -TERM $dpid; wait $dpid || true
set -- $lat
echo "bench: latency at 5k events/s: $2 of $1 alerts, p50 $3 ms, p99 $4 ms, max $5 ms"

# (f) loop stall at scale: a live daemon, 20,000 prosecutors (80,000
# hashes), then a new day for each: every rolling window moves at once
scopes() { # day: one event per prosecutor on 2020-07-0(1+day)
    awk -v day="$1" 'BEGIN { for (i = 0; i < 20000; i++)
        printf "{\"v\":1,\"id\":\"s%d-%d\",\"ts\":%.0f,\"type\":\"%s\",\"case\":\"c%d\",\"unit\":\"41%04d\",\"dept\":\"第一检察部\",\"pros\":\"P%05d\"}\n",
            day, i, 1593565200000 + day * 86400000 + i, day ? "hearing.held" : "arrest.accepted", i, 900 + i % 50, i }'
}
SC="$O -o stream.key=bench:scopes -o indicators.prefix=bench:ind -o alerts.log_key=bench:alerts -o daemon.instance=scopes -o daemon.clock=event"
rm -f "$dir"/*.snap
"$bin/casewatchd" $SC & spid=$!
sleep 0.5
for day in 0 1 2; do scopes $day | "$bin/casewatch" $SC feed >/dev/null 2>&1; sleep 2; done
scale_stall=$(redis-cli -p "$port" hget casewatch:daemon:scopes max_stall_ms)
scale_hashes=$(redis-cli -p "$port" --scan --pattern 'bench:ind:*' | wc -l)
kill -TERM $spid; wait $spid || true
echo "bench: longest loop stall with 20,000 prosecutors as their day moves: $scale_stall ms ($scale_hashes hashes)"

# (g) the alert sink alone: 200,000 alerts, each batch one MULTI/EXEC of
# log entries and firing-hash changes (PROTOCOL.md section 3a)
sinks=""
for run in 1 2 3; do
    redis-cli -p "$port" del bench:alerts:log bench:alerts:firing >/dev/null
    sinks="$sinks $("$build/tests/bench/alerts" "$port" 200000 | awk '{print $4}')"
done
sink=$(echo $sinks | tr ' ' '\n' | median)
echo "bench: alert sink alone: $sink alerts/s (median of 3:$sinks)"

# the loop held by deadline lights changing at a midnight, 1M open clocks
clk=$("$build/tests/bench/bench_clocks" 1000000)
echo "$clk" | sed 's/^/bench: /'

# (d) (e)
mem=$("$build/tests/bench/bench_cases" 1000000)
echo "$mem" | sed 's/^/bench: /'
per=$(echo "$mem" | awk '/bytes per open case/ {print $5; exit}')
snap=$(echo "$mem" | awk '/^snapshot/')
loads=$("$build/tests/bench/bench_cases" load 1000000 2000000 5000000)
echo "$loads" | sed 's/^/bench: /'
load_at() { echo "$loads" | awk -v n="$1" '$3 == n {print $6 " s"}'; }

cat >>BENCHMARKS.md <<TABLE

## make bench, $(date -u +%Y-%m-%d) ($n events; medians of 3)

| figure | value | ratio to the raw drain |
|---|---|---|
| raw drain (XREAD COUNT 1000, discard; hiredis's reader, no reply tree) | $lean entries/s | 1.00 |
| raw drain as in earlier tables (hiredis builds and frees its reply tree) | $drain entries/s | $(echo "$drain $lean" | awk '{printf "%.2f", $1 / $2}') |
| the replay's read path alone (tests/bench/readpath: stream check + XREAD parsed into batches on a worker, nothing decoded or applied) | $readp entries/s | $(echo "$readp $lean" | awk '{printf "%.2f", $1 / $2}') |
| the replay's read path with decoding on a second worker, nothing applied (readpath --decode) | $readd entries/s | $(echo "$readd $lean" | awk '{printf "%.2f", $1 / $2}') |
| casewatchd --replay --rebuild, whole process, shipped rules and sinks on ($alerts net changes logged) | $replay entries/s | $ratio ($tree_ratio to the drain with reply trees) |
| Python peer (redis-py + msgpack: XREAD COUNT 1000, a few counters) | $py entries/s | $(echo "$py $lean" | awk '{printf "%.2f", $1 / $2}') (the replay: ${py_x}x) |
| Node.js peer (ioredis + msgpackr: the same) | $node entries/s | $(echo "$node $lean" | awk '{printf "%.2f", $1 / $2}') (the replay: ${node_x}x) |
| CPU per replay: casewatchd / redis-server | $dcpu s / $rcpu s | |
| ceiling set by redis-server's CPU alone (entries / its CPU seconds) | $ceiling entries/s | $ceiling_ratio |
| ceiling set by casewatchd's loop thread alone (entries / its CPU seconds: $lcpu s) | $loop_ceiling entries/s | $loop_ratio |
| latency XADD → alert at a subscriber, 5k events/s | p50 $3 ms, p99 $4 ms, max $5 ms ($2/$1 alerts) | |
| longest loop stall during the replays (10 ms probe timer) | $maxstall ms | |
| longest loop stall, live, 20,000 prosecutors' windows moving at once ($scale_hashes hashes) | $scale_stall ms | |
| alert sink alone (200,000 alerts: log entry + firing hash + 2 publications each) | $sink alerts/s | |
| RSS per open case at 1M open cases | $per bytes | |
| snapshot at 1M open cases | $(echo "$snap" | sed 's/^snapshot *//') | |
| deadline lights, 1M open clocks (the case table alone) | $(echo "$clk" | tr '\n' ';' | sed 's/;$//; s/;/; /g') | |
| snapshot load, open-case table alone (median of 3): 1M / 2M / 5M open cases | $(load_at 1000000) / $(load_at 2000000) / $(load_at 5000000) | |
TABLE
echo "bench: table appended to BENCHMARKS.md"
sh tests/bench/feed.sh "$bin" 100000
