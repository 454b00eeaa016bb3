#!/usr/bin/python3
"""A Python consumer of the event stream, the peer of the replay benchmark
(issue 18): reads the whole stream with XREAD COUNT 1000 (redis-py,
Debian's python3-redis), decodes each entry's msgpack event and keeps a
few counters (events, per type, per unit, cases seen), writing nothing.
Prints "entries seconds entries/s" as tests/bench/drain does."""
import sys, time
import msgpack, redis

port = int(sys.argv[1])
key = sys.argv[2] if len(sys.argv) > 2 else "casewatch:events"
r = redis.Redis(host="127.0.0.1", port=port)
last = b"0-0"
n = 0
by_type, by_unit, cases = {}, {}, set()
t0 = time.monotonic()
while True:
    reply = r.xread({key: last}, count=1000)
    if not reply:
        break
    entries = reply[0][1]
    for eid, fields in entries:
        ev = msgpack.unpackb(fields[b"e"], raw=False)
        t, u = ev.get("type"), ev.get("unit")
        by_type[t] = by_type.get(t, 0) + 1
        by_unit[u] = by_unit.get(u, 0) + 1
        cases.add(ev.get("case"))
        n += 1
    last = entries[-1][0]
    if len(entries) < 1000:
        break
secs = time.monotonic() - t0
print(n, "%.3f" % secs, "%.0f" % (n / secs if secs else 0))
print("types %d, units %d, cases %d" % (len(by_type), len(by_unit), len(cases)), file=sys.stderr)
