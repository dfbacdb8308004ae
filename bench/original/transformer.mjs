// The original Alleycat transformer (Node.js), reproduced as the baseline that BENCHMARKS.md
// compares ours with: base64-decode, JSON.parse, add `output`, JSON.stringify + "\n", base64.
//
// Usage: node bench/original/transformer.mjs $TMPDIR/alleycat-bench/firehose-500.json
// (the file is written by `cargo bench -p transformer`; `bench/original/compare.sh` runs both).
// Prints the median of timed runs after 3 warm-up runs, for the handler's own work and for the
// whole invocation (event text in, response text out).
import { readFileSync } from "node:fs";

const handler = (event) => {
  const output = event.records.map((record) => {
    const buffer = Buffer.from(record.data, "base64").toString();
    const jsonRecord = JSON.parse(buffer);
    jsonRecord.output = ((jsonRecord.cadence + 35) * (jsonRecord.resistance + 65)) / 100;
    const dataBuffer = Buffer.from(JSON.stringify(jsonRecord) + "\n", "utf8").toString("base64");
    return { recordId: record.recordId, result: "Ok", data: dataBuffer };
  });
  return { records: output };
};

const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (runs, f) => {
  for (let i = 0; i < 3; i++) f();
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    f();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(samples);
};

const text = readFileSync(process.argv[2], "utf8");
const event = JSON.parse(text);
const n = event.records.length;
const runs = n > 1000 ? 30 : 300;
const own = time(runs, () => handler(event));
const endToEnd = time(runs, () => JSON.stringify(handler(JSON.parse(text))));
const rate = (ms) => Math.round(n / (ms / 1000)).toLocaleString("en-US");
console.log(`${n} records: handler ${own.toFixed(3)} ms (${rate(own)} records/s), end to end ${endToEnd.toFixed(3)} ms (${rate(endToEnd)} records/s)`);
