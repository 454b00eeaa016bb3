#!/bin/sh
# demo.sh BIN_DIR — `make run`: a private redis-server on a free loopback
# port, the daemon, a demo feed, and the alerts as they arrive. Ctrl-C
# stops everything this script started (by pid), in order, and exits 0.
set -eu
bin=${1:-bin}
# On a terminal, Ctrl-C is for the demo, not for make: the demo runs in a
# process group of its own that holds the terminal, so make never sees the
# signal and ends with the demo's exit status (0) instead of an error.
if [ -t 0 ] && [ -z "${CW_DEMO_FG:-}" ] && command -v python3 >/dev/null 2>&1; then
    CW_DEMO_FG=1 exec python3 -c '
import os, signal, sys
try:
    tty = os.open("/dev/tty", os.O_RDWR)
    fg = os.tcgetpgrp(tty)
except OSError:
    os.execvp("sh", ["sh"] + sys.argv[1:])
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    os.tcsetpgrp(tty, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    os.execvp("sh", ["sh"] + sys.argv[1:])
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
_, st = os.waitpid(pid, 0)
os.tcsetpgrp(tty, fg)
sys.exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st))
' "$0" "$@"
fi
dir=$(mktemp -d /tmp/casewatch-demo-XXXXXX)
log=$dir.daemon.log
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 16379)
# redis-server and the daemon in sessions of their own: Ctrl-C reaches only
# this script, which stops the follower first, then the daemon, then Redis
own=""; command -v setsid >/dev/null 2>&1 && own=setsid
$own redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --daemonize no >"$dir/redis.log" 2>&1 &
rpid=$!
dpid=""; spid=""
cleanup() {
    trap - EXIT INT TERM
    [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
    [ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
    kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null || true
    rm -rf "$dir"
    echo "demo: stopped; the daemon's log is kept: $log"
}
trap cleanup EXIT
trap 'echo; cleanup; exit 0' INT TERM
for i in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "demo: redis-server pid $rpid on 127.0.0.1:$port"
# the shipped configuration (default rules), pointed at the private redis
conf=systemd/casewatch.conf
set -- -c "$conf" -o "redis.port=$port" -o "daemon.state_dir=$dir" -o daemon.clock=event \
    -o "units.410922=清丰县人民检察院" -o calendar.file=systemd/holidays-cn.conf
$own "$bin/casewatchd" "$@" 2>"$log" &
dpid=$!
echo "demo: casewatchd pid $dpid (log: $log, kept when the demo ends)"
echo "demo: alerts of 南乐县人民检察院 (410923) as they arrive:"
"$bin/casewatch" "$@" tail --from 0 --unit 410923 &
spid=$!
sleep 0.5
echo "demo: feeding tests/data/demo.jsonl; the 2 lines it reports as bad are bad on purpose (to show how bad records are named):"
"$bin/casewatch" "$@" feed tests/data/demo.jsonl || true
echo "demo: the next year, generated, in three 院 (casewatch gen | casewatch feed):"
"$bin/casewatch" "$@" gen --cases 2000 --start 2020-11-03 --days 365 --seed 7 --overdue-rate 0.05 | "$bin/casewatch" "$@" feed
sleep 3
if [ -t 0 ]; then echo "demo: the daemon's status and one indicator hash; then new alerts as they come. Ctrl-C to stop"; else echo "demo: the daemon's status and one indicator hash (not on a terminal: the demo ends here)"; fi
"$bin/casewatch" "$@" status || true
"$bin/casewatch" "$@" ind unit:410923 2021-Q1 || true
"$bin/casewatch" "$@" alerts --unit 410923 || true
report="${TMPDIR:-/tmp}/casewatch-report-410923-2021-Q3.html"
"$bin/casewatch" "$@" report 2021-Q3 --scope unit:410923 -o "$report" 2>/dev/null &&
    echo "demo: the quarterly report (通报) of 南乐县人民检察院, 2021-Q3: $report" || true
if [ -t 0 ]; then wait "$spid"; fi
