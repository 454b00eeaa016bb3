#!/usr/bin/python3
"""The Python equivalent of `casewatch feed` for JSON lines: parse each
line, check the required keys, pack it with msgpack, XADD pipelined in
batches of 1000. Baseline for the feed benchmark."""
import json, sys
import msgpack, redis

port, key, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
r = redis.Redis(host="127.0.0.1", port=port)
pipe = r.pipeline(transaction=False)
n = bad = 0
with open(path, "rb") as f:
    for line in f:
        try:
            d = json.loads(line)
            if not all(k in d for k in ("v", "id", "ts", "type", "case", "unit")) or len(d["unit"]) != 6:
                raise ValueError("missing key")
        except ValueError:
            bad += 1
            continue
        pipe.xadd(key, {"e": msgpack.packb(d)})
        n += 1
        if n % 1000 == 0:
            pipe.execute()
pipe.execute()
print(n, bad)
