// A Node.js consumer of the event stream, the peer of the replay
// benchmark (issue 18): reads the whole stream with XREAD COUNT 1000
// (ioredis), decodes each entry's msgpack event (msgpackr) and keeps a
// few counters (events, per type, per unit, cases seen), writing nothing.
// Prints "entries seconds entries/s" as tests/bench/drain does. The two
// packages are installed by bench.sh into a directory of the build, given
// as NODE_PATH; they are not part of casewatch.
'use strict';
const Redis = require('ioredis');
const { unpack } = require('msgpackr');

const port = Number(process.argv[2]);
const key = process.argv[3] || 'casewatch:events';

async function main() {
    const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
    await r.connect();
    let last = '0-0', n = 0;
    const byType = new Map(), byUnit = new Map(), cases = new Set();
    const t0 = process.hrtime.bigint();
    for (;;) {
        // the values as Buffers (msgpack is binary)
        const reply = await r.xreadBuffer('COUNT', 1000, 'STREAMS', key, last);
        if (!reply) break;
        const entries = reply[0][1];
        for (const [, fields] of entries) {
            for (let i = 0; i + 1 < fields.length; i += 2) {
                if (fields[i].length !== 1 || fields[i][0] !== 0x65) continue; /* "e" */
                const ev = unpack(fields[i + 1]);
                byType.set(ev.type, (byType.get(ev.type) || 0) + 1);
                byUnit.set(ev.unit, (byUnit.get(ev.unit) || 0) + 1);
                cases.add(ev.case);
                n++;
            }
        }
        last = entries[entries.length - 1][0].toString();
        if (entries.length < 1000) break;
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`${n} ${secs.toFixed(3)} ${(n / secs).toFixed(0)}`);
    console.error(`types ${byType.size}, units ${byUnit.size}, cases ${cases.size}`);
    r.disconnect();
}
main().catch((e) => { console.error(e); process.exit(1); });
