// Times the engine (the release wasm of common/benches/wasm, plain exports) and DuckDB-WASM
// (from node_modules, single-threaded "eh" bundle in its Web Worker) on the same rows, in the
// same page. tests/src/bin/engine_bench.rs serves /bench/{engine.wasm,jobs.csv,params.json},
// reads window.benchResult and checks DuckDB's answers against the engine's.
//
// Each SQL statement below is the DuckDB form of the engine query with the same index in
// common/benches/wasm/src/lib.rs (`setup`); keep the two lists in step.
import * as duckdb from '/node_modules/@duckdb/duckdb-wasm/dist/duckdb-browser.mjs';
import { tableToIPC } from 'apache-arrow';

const logEl = document.getElementById('log');
const log = (s) => { logEl.textContent += s + '\n'; };

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0] };
};

async function main() {
  const p = await (await fetch('/bench/params.json')).json();
  const engineRuns = Math.max(31, p.runs);

  // --- The engine -------------------------------------------------------------------------
  const { instance } = await WebAssembly.instantiateStreaming(fetch('/bench/engine.wasm'),
    { env: { now_ms: () => performance.now() } });
  const e = instance.exports;
  const setupMs = e.setup(p.jobs);
  log(`engine: generated and encoded ${p.jobs} jobs in ${setupMs.toFixed(0)} ms, wire ${e.wire_len()} bytes`);
  const engineTime = (f) => { const xs = []; for (let i = 0; i < engineRuns; i++) xs.push(f()); return stats(xs); };
  const engine = [engineTime(() => e.bench_decode()), engineTime(() => e.bench_filter())];
  for (let i = 0; i < 6; i++) engine.push(engineTime(() => e.bench_query(i)));
  log('engine: timed');

  // --- DuckDB-WASM ------------------------------------------------------------------------
  const dist = '/node_modules/@duckdb/duckdb-wasm/dist';
  const worker = new Worker(`${dist}/duckdb-browser-eh.worker.js`);
  const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), worker);
  await db.instantiate(`${dist}/duckdb-eh.wasm`);
  const conn = await db.connect();
  const version = (await conn.query('SELECT version() AS v')).toArray()[0].v;
  const csv = new Uint8Array(await (await fetch('/bench/jobs.csv')).arrayBuffer());
  await db.registerFileBuffer('jobs.csv', csv);
  let t = performance.now();
  await conn.query(`CREATE TABLE jobs AS SELECT source, project, branch, builder, worker, result,
      epoch_ms(time_ms) AS ts, duration, queue_wait
    FROM read_csv('jobs.csv', header = true, columns = {'source': 'VARCHAR', 'project': 'VARCHAR',
      'branch': 'VARCHAR', 'builder': 'VARCHAR', 'worker': 'VARCHAR', 'result': 'VARCHAR',
      'time_ms': 'BIGINT', 'duration': 'DOUBLE', 'queue_wait': 'DOUBLE'})`);
  const csvLoadMs = performance.now() - t;
  await db.dropFile('jobs.csv');
  log(`duckdb ${version}: loaded the CSV in ${csvLoadMs.toFixed(0)} ms`);
  // DuckDB's "decode": Arrow IPC (its native interchange format; the writer in this
  // duckdb-wasm build fails on COPY ... TO parquet with "function signature mismatch") into
  // a table. Dropping the previous copy is not timed.
  const ipc = tableToIPC(await conn.query('SELECT * FROM jobs'), 'stream');
  const decodeDuck = async () => {
    await conn.query('DROP TABLE IF EXISTS jobs_decoded');
    const copy = ipc.slice(); // the insert hands its buffer to the worker
    const t0 = performance.now();
    await conn.insertArrowFromIPCStream(copy, { name: 'jobs_decoded', create: true });
    return performance.now() - t0;
  };

  const broad = `ts >= epoch_ms(${p.last_month_ms}) AND result IS DISTINCT FROM 'cancelled' AND worker ILIKE '%linux%'`;
  const decided = `result IN ('success', 'warnings', 'failure', 'exception')`;
  const failureRate = `count(*) FILTER (WHERE result IN ('failure', 'exception'))::DOUBLE / nullif(count(*) FILTER (WHERE ${decided}), 0)`;
  const successRate = `count(*) FILTER (WHERE result IN ('success', 'warnings'))::DOUBLE / nullif(count(*) FILTER (WHERE ${decided}), 0)`;
  const byBuilder = (where) => `SELECT builder, count(*) AS n, avg(duration) AS mean,
      quantile_cont(duration, 0.5) AS p50, quantile_cont(duration, 0.95) AS p95, ${failureRate} AS failure_rate
    FROM jobs ${where ? 'WHERE ' + where : ''} GROUP BY builder ORDER BY builder NULLS LAST`;
  const rogue = p.rogue.replaceAll("'", "''");
  const queries = [
    ['decode (wire → table; DuckDB: Arrow IPC)', null],
    ['filter only (last 30 days, not cancelled, worker ~ linux)', `SELECT count(*) AS n FROM jobs WHERE ${broad}`],
    ['filter + group by builder: count/mean/p50/p95/failure rate', byBuilder(broad)],
    ['same, filter = one worker', byBuilder(`worker = '${rogue}'`)],
    ['same, no filter', byBuilder('')],
    ['pivot builder × day success rate + totals', `SELECT builder, date_trunc('day', ts) AS day, ${successRate} AS success_rate
      FROM jobs WHERE ts IS NOT NULL GROUP BY CUBE (builder, day) ORDER BY builder NULLS LAST, day NULLS LAST`],
    ['heatmap worker × day: count, failure rate', `SELECT worker, date_trunc('day', ts) AS day, count(*) AS n, ${failureRate} AS failure_rate
      FROM jobs WHERE ts IS NOT NULL GROUP BY worker, day ORDER BY worker NULLS LAST, day`],
    // Failure rate adds up, so "other" merges the per-worker counts (as the engine does).
    ['top-20 workers by failure rate + other', `WITH w AS (
        SELECT worker, count(*) AS n, count(*) FILTER (WHERE result IN ('failure', 'exception')) AS f,
          count(*) FILTER (WHERE ${decided}) AS d FROM jobs GROUP BY worker),
      r AS (SELECT *, row_number() OVER (ORDER BY f::DOUBLE / nullif(d, 0) DESC NULLS LAST, worker NULLS LAST) AS rank FROM w)
      SELECT CASE WHEN rank <= 20 THEN worker ELSE '(other)' END AS worker, sum(f)::DOUBLE / nullif(sum(d), 0) AS failure_rate, sum(n) AS n
      FROM r GROUP BY 1 ORDER BY failure_rate DESC NULLS LAST, worker`],
  ];
  const results = [];
  for (const [i, [name, sql]] of queries.entries()) {
    if (sql === null) {
      await decodeDuck();
      const xs = [];
      for (let r = 0; r < p.runs; r++) xs.push(await decodeDuck());
      results.push({ name, sql: 'insertArrowFromIPCStream', engine: engine[i], duck: stats(xs), groups: null });
      log(`duckdb: ${name}: ${results[i].duck.median.toFixed(1)} ms`);
      continue;
    }
    const warm = await conn.query(sql);
    const xs = [];
    for (let r = 0; r < p.runs; r++) {
      t = performance.now();
      await conn.query(sql);
      xs.push(performance.now() - t);
    }
    results.push({ name, sql, engine: engine[i], duck: stats(xs), groups: i === 0 ? null : warm.numRows });
    log(`duckdb: ${name}: ${results[i].duck.median.toFixed(1)} ms`);
  }

  // What the runner compares with the engine's answers.
  const plain = (v) => (typeof v === 'bigint' ? Number(v) : v);
  const rows = async (sql) => (await conn.query(sql)).toArray().map((r) => Object.values(r.toJSON()).map(plain));
  const check = {
    filter: plain((await conn.query(queries[1][1])).toArray()[0].n),
    groups: [await rows(queries[2][1]), await rows(queries[3][1]), await rows(queries[4][1])],
  };
  await conn.close();
  await db.terminate();
  window.benchResult = { userAgent: navigator.userAgent, duckdb: version, engineRuns, setupMs, wireBytes: e.wire_len(),
    ipcBytes: ipc.length, csvLoadMs, queries: results, check };
  log('done');
}

main().catch((err) => { window.benchError = String((err && err.stack) || err); });
