#!/usr/bin/env node
// bench_graphile.js - the peer of bench/bus/bench_bus.c: the same no-op job benchmark run
// by graphile-worker on the same PostgreSQL, printing the same figures in the same format.
//
//   node bench_graphile.js --url URL --events N --concurrency C [--publishers P] [--rate R]
//                          [--json]
//
// N jobs are added with addJob (graphile_worker.add_job, each call its own transaction)
// from P concurrent publisher loops, while a runner with `concurrency` C handles them with
// a no-op task that records add->handler latency (a monotonic time carried in the payload;
// publishers and runner share this process, so the clocks agree). The run ends when every
// job is handled and its completion committed (graphile-worker deletes completed jobs, so:
// the jobs table is empty). graphile-worker runs with its defaults otherwise (no local
// queue, no batched completion), as a user would get it. --rate R paces the publishers as
// bench_bus does: job k is added no earlier than k/R s after the start. The database must be empty or
// already migrated by graphile-worker; nothing else in it is touched.
// It must not change the durability settings of the server.
"use strict";

const os = require("os");
const fs = require("fs");
const { Pool } = require("pg");
const { run, makeWorkerUtils, Logger } = require("graphile-worker");
const workerVersion = require("graphile-worker/package.json").version;

const TIMEOUT_MS = 600000;
const POLL_MS = 2;

function usage(msg) {
  if (msg) process.stderr.write(`bench_graphile: ${msg}\n`);
  process.stderr.write(
    "usage: bench_graphile.js --url URL --events N --concurrency C [--publishers P] [--rate R]" +
      " [--json]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const o = { url: null, events: 10000, concurrency: 5, publishers: 4, rate: 0, json: false };
  const ints = {
    "--events": "events",
    "--concurrency": "concurrency",
    "--publishers": "publishers",
    "--rate": "rate",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") {
      o.json = true;
    } else if (a === "--url") {
      if (i + 1 >= argv.length) usage("--url needs a value");
      o.url = argv[++i];
    } else if (ints[a]) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      const v = argv[++i];
      if (!/^[0-9]+$/.test(v) || Number(v) < 1 || Number(v) > 10000000)
        usage(`${a} must be an integer from 1 to 10000000, not '${v}'`);
      o[ints[a]] = Number(v);
    } else if (a === "--help" || a === "-h") {
      usage();
    } else {
      usage(`unknown option '${a}'`);
    }
  }
  if (!o.url) usage("--url is required");
  if (o.concurrency > 1000) usage("--concurrency must be at most 1000");
  if (o.publishers > 1000) usage("--publishers must be at most 1000");
  return o;
}

function cpuModel() {
  try {
    const line = fs
      .readFileSync("/proc/cpuinfo", "utf8")
      .split("\n")
      .find((l) => l.startsWith("model name"));
    if (line) return line.slice(line.indexOf(":") + 1).trim();
  } catch (_) {
    /* fall back to what Node knows */
  }
  return os.cpus()[0] ? os.cpus()[0].model : "unknown";
}

function machine() {
  return {
    nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    cpu: cpuModel(),
    mem_mb: Math.round(os.totalmem() / (1024 * 1024)),
  };
}

function nowUs() {
  return Number(process.hrtime.bigint() / 1000n);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  let idx = Math.ceil((p / 100) * sorted.length) - 1;
  if (idx < 0) idx = 0;
  return sorted[idx];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const logger = new Logger(() => () => {});
  const pool = new Pool({ connectionString: o.url, max: o.concurrency + o.publishers + 4 });
  const onError = (e) => process.stderr.write(`bench_graphile: pool: ${e.message}\n`);
  pool.on("error", onError);
  pool.on("connect", (client) => client.on("error", onError));

  const settings = await pool.query(
    "SELECT current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fs," +
      " current_setting('server_version') AS v",
  );
  const durability = `synchronous_commit=${settings.rows[0].sc} fsync=${settings.rows[0].fs}`;

  const utils = await makeWorkerUtils({ pgPool: pool, logger });
  await utils.migrate();

  const latencies = new Float64Array(o.events);
  let handled = 0;
  let allHandled;
  const handledAll = new Promise((resolve) => (allHandled = resolve));
  const runner = await run({
    pgPool: pool,
    concurrency: o.concurrency,
    noHandleSignals: true,
    logger,
    taskList: {
      noop: async (payload) => {
        latencies[payload.seq] = (nowUs() - payload.t) / 1000;
        if (++handled === o.events) allHandled();
      },
    },
  });

  const t0 = nowUs();
  let next = 0;
  let publishEnd = 0;
  const publisher = async () => {
    for (;;) {
      const seq = next++;
      if (seq >= o.events) return;
      if (o.rate > 0) {
        const wait = (t0 + (seq * 1e6) / o.rate - nowUs()) / 1000;
        if (wait > 0) await sleep(wait);
      }
      await utils.addJob("noop", { seq, t: nowUs(), orderId: `order-${seq}` });
    }
  };
  const publishing = Promise.all(Array.from({ length: o.publishers }, publisher)).then(() => {
    publishEnd = nowUs();
  });

  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out: ${handled} of ${o.events} jobs handled`)),
      TIMEOUT_MS,
    );
  });
  await Promise.race([Promise.all([publishing, handledAll]), timeout]);
  clearTimeout(timer);
  // Handled is not yet completed: wait for the completions to commit.
  for (;;) {
    const r = await pool.query("SELECT count(*)::int AS n FROM graphile_worker.jobs");
    if (r.rows[0].n === 0) break;
    if (nowUs() - t0 > TIMEOUT_MS * 1000) throw new Error("timed out waiting for completions");
    await sleep(POLL_MS);
  }
  const t1 = nowUs();

  await runner.stop();
  await utils.release();
  await pool.end();

  const seconds = (t1 - t0) / 1e6;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const res = {
    impl: "graphile-worker",
    version: workerVersion,
    backend: "postgres",
    events: o.events,
    concurrency: o.concurrency,
    publishers: o.publishers,
    rate: o.rate,
    seconds: Number(seconds.toFixed(3)),
    events_per_s: Math.round(o.events / seconds),
    publish_per_s: Math.round(o.events / ((publishEnd - t0) / 1e6)),
    p50_ms: Number(percentile(sorted, 50).toFixed(3)),
    p99_ms: Number(percentile(sorted, 99).toFixed(3)),
    durability,
    server: `PostgreSQL ${settings.rows[0].v}`,
    machine: machine(),
  };
  if (o.json) {
    process.stdout.write(JSON.stringify(res) + "\n");
  } else {
    const m = res.machine;
    process.stdout.write(
      `graphile-worker ${res.version} postgres: ${res.events} events, concurrency ${res.concurrency},` +
        ` ${res.publishers} publishers\n` +
        `  ${res.events_per_s} events/s end to end (${res.seconds} s), publish ${res.publish_per_s}/s\n` +
        `  publish->handler latency p50 ${res.p50_ms} ms, p99 ${res.p99_ms} ms\n` +
        `  ${res.server}, ${res.durability}\n` +
        `  machine: ${m.nproc} CPUs, ${m.cpu}, ${m.mem_mb} MB\n`,
    );
  }
}

main().catch((e) => {
  process.stderr.write(`bench_graphile: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
