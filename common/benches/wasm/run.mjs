// Times the engine in V8: node run.mjs JOBS path/to/buildscope_engine_wasm_bench.wasm (see src/lib.rs).
import { readFileSync } from 'fs';
const jobs = Number(process.argv[2] || 1000000);
const wasm = readFileSync(process.argv[3]);
const { instance } = await WebAssembly.instantiate(wasm, { env: { now_ms: () => performance.now() } });
const e = instance.exports;
console.log(`setup ${jobs} jobs: ${e.setup(jobs).toFixed(0)} ms, wire ${e.wire_len()} bytes`);
const median = (f, n = 31) => { const xs = []; for (let i = 0; i < n; i++) xs.push(f()); xs.sort((a, b) => a - b); return `${xs[Math.floor(n / 2)].toFixed(1)} (min ${xs[0].toFixed(1)})`; };
console.log(`decode: ${median(() => e.bench_decode(), 31)} ms`);
console.log(`filter: ${median(() => e.bench_filter())} ms`);
const names = ['filter+group builder (broad)', 'filter+group builder (one worker)', 'group builder (no filter)', 'pivot builder x day + totals', 'heatmap worker x day', 'top-20 workers by failure rate'];
names.forEach((n, i) => console.log(`${n}: ${median(() => e.bench_query(i))} ms`));
for (const i of [99, 0, 1, 2, 3, 4, 5]) console.log(`digest ${i}: ${(e.digest(i) & 0xffffffffffffffffn).toString(16).padStart(16, '0')}`);
