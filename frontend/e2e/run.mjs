#!/usr/bin/env node
// End-to-end test of the Alleycat frontend in a real headless Chromium.
//
// Starts the embedded stack (`alleycat-local`) on free ports with a fresh data directory, serving
// the built frontend (frontend/dist); opens the app, rides racer 7 of class 2 in the browser while
// the simulator rides 50 racers (from its default first id, 101: none of the page's racers 1-100)
// of the same class and race over MQTT; checks the
// page's identity (a local identity from POST /_local/identity, kept in localStorage, used as MQTT
// client id, username and password) and that racer 7 is claimed (POST /api/racers/7/claim, 200)
// before the first message goes out; checks the live screen (messages, connection, "Here now",
// chart), then the finished race (results and leaderboard against the API) and that the claim is
// kept; that a second browser context (another identity) is told racer 7 is taken and does not
// ride it, but can pick and ride another racer; that, once the simulator has filled the class
// with 150 more racers (ids 1001-1150) and ridden racers 95-97 (a collision by choice), a third
// rider sees racers 95-97 listed as riding now and is warned before riding racer 96, then rides
// racer 9 weakly and sees a percentile at the current second (checked against the history
// object's sample) and, finished, a place outside the top 100 and the class size (checked against
// GET /api/racers/9/rank); and that an unreachable API shows an error banner instead of a blank
// page. No failed request is expected for a class without history (the API says there is none).
//
// Run through `bash scripts/frontend-test` (which builds everything first), or directly:
//   cd frontend/e2e && npm ci && node run.mjs
// Environment (all optional):
//   CARGO_TARGET_DIR        where cargo built the binaries (default ~/.cache/alleycat-target;
//                           relative paths are taken from the repository root)
//   ALLEYCAT_LOCAL_BIN      the alleycat-local binary (default $CARGO_TARGET_DIR/debug/alleycat-local)
//   ALLEYCAT_SIMULATOR_BIN  the simulator binary (default $CARGO_TARGET_DIR/debug/simulator)
//   ALLEYCAT_FRONTEND_DIST  the built frontend (default frontend/dist)
//   CHROMIUM_PATH           the browser (default /usr/bin/chromium)
// Artifacts (screenshots, the browser console) go to frontend/e2e/artifacts/.
// Exit status: 0 every check passed, 1 otherwise.

import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

// --- Configuration --------------------------------------------------------------------------------

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
const ARTIFACTS = join(HERE, 'artifacts');

const targetDirEnv = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache', 'alleycat-target');
const TARGET_DIR = isAbsolute(targetDirEnv) ? targetDirEnv : resolve(REPO, targetDirEnv);
const LOCAL_BIN = process.env.ALLEYCAT_LOCAL_BIN || join(TARGET_DIR, 'debug', 'alleycat-local');
const SIMULATOR_BIN = process.env.ALLEYCAT_SIMULATOR_BIN || join(TARGET_DIR, 'debug', 'simulator');
const FRONTEND_DIST = resolve(process.env.ALLEYCAT_FRONTEND_DIST || join(REPO, 'frontend', 'dist'));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const CLASS_ID = 2;
const RACER_ID = 7;
/** The simulator's default first racer id: past the page's racers 1-100. */
const SIM_FIRST_RACER = 101;
const SIM_RACERS = 50;
/** Racers the simulator adds to the class afterwards, so that a weak ride places outside the top 100. */
const FILL_FIRST_RACER = 1001;
const FILL_RACERS = 150;
/** Page racers the simulator rides by choice (`--first-racer-id 95`): the page lists them as riding now. */
const CHOSEN_FIRST_RACER = 95;
const CHOSEN_RACERS = 3;
/** The third rider: warned about racer 96 (riding now), rides racer 9 weakly, at this speed. */
const WARNED_RACER_ID = 96;
const WEAK_RACER_ID = 9;
const WEAK_SPEED = 5;
const SPEED = 20;
const RACE_SECONDS = 60;
const WINDOW_SECONDS = 3600;
/** Riding needs this much of the start window left, so that browser and simulator share a race. */
const WINDOW_MARGIN_MS = 120_000;
const MIN_SIMULATED_HERE_NOW = 10;
/** The racer the second rider picks after being told racer 7 is taken. */
const OTHER_RACER_ID = 8;
const TAKEN_MESSAGE = `Racer ${RACER_ID} is already taken by another rider — pick another racer`;

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

// --- Logging and checks ---------------------------------------------------------------------------

const T0 = Date.now();
const elapsed = () => `${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s`;
const log = (...args) => console.log(`[e2e ${elapsed()}]`, ...args);

/** Every named check, in order, with its outcome. */
const checks = [];

class CheckFailed extends Error {}

/** Runs one named check; a failure is recorded and rethrown (later checks depend on it). */
async function check(name, fn) {
  const started = Date.now();
  try {
    const detail = await fn();
    checks.push({ name, ok: true, ms: Date.now() - started });
    log(`PASS ${name}${detail ? ` (${detail})` : ''}`);
    return detail;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    checks.push({ name, ok: false, ms: Date.now() - started, message });
    log(`FAIL ${name}: ${message}`);
    throw new CheckFailed(`${name}: ${message}`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/**
 * Calls `probe` until it returns `{ ok: true, ... }` or `timeoutMs` passes; then throws with
 * `what` and the last probe's result, so a failure says what the page looked like.
 */
async function poll(what, probe, { timeoutMs, intervalMs = 100 }) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
    } catch (error) {
      last = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    if (last && last.ok) return last;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Chromium logs every 4xx response as a console error ("Failed to load resource"), also when the
 * app expects it. Two 404s are the API's way of saying "nothing yet", and the app handles them as
 * such: a racer's personal-record curve (`GET /api/racers/{id}/bests`) before their first history
 * merge, and a racer's rank (`GET /api/racers/{id}/rank`) before their final reached the
 * leaderboard. Those are not counted; every other console error is, a class history object's 404
 * among them (the API says a class has none yet instead of signing a URL to nothing).
 */
function isExpectedNotFound(text, url) {
  if (!url || !/^Failed to load resource: the server responded with a status of 404\b/.test(text)) return false;
  const { pathname } = new URL(url);
  return /^\/api\/racers\/\d+\/(bests|rank)$/.test(pathname);
}

// --- Child processes ------------------------------------------------------------------------------

/** A child process whose output is kept (last lines) for the failure report. */
class Child {
  constructor(name, command, args) {
    this.name = name;
    this.command = [command, ...args].join(' ');
    this.lines = { stdout: [], stderr: [] };
    this.process = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exit = new Promise((resolveExit) => {
      this.process.on('error', (error) => {
        this.keep('stderr', `spawn error: ${error.message}`);
        this.exited = { code: null, signal: null, error };
        resolveExit(this.exited);
      });
      this.process.on('exit', (code, signal) => {
        this.exited = { code, signal };
        resolveExit(this.exited);
      });
    });
    for (const stream of ['stdout', 'stderr']) {
      let partial = '';
      this.process[stream].setEncoding('utf8');
      this.process[stream].on('data', (chunk) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop();
        for (const line of parts) this.keep(stream, line);
      });
      this.process[stream].on('end', () => partial && this.keep(stream, partial));
    }
    children.add(this);
  }

  keep(stream, line) {
    const lines = this.lines[stream];
    lines.push(line);
    if (lines.length > 80) lines.shift();
  }

  get running() {
    return this.exited === undefined;
  }

  /** SIGTERM (a graceful stop), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000) {
    if (this.running) {
      this.process.kill('SIGTERM');
      const timer = setTimeout(() => this.running && this.process.kill('SIGKILL'), graceMs);
      await this.exit;
      clearTimeout(timer);
    }
    children.delete(this);
  }

  report() {
    const status = this.running ? 'still running' : `exited with ${JSON.stringify(this.exited)}`;
    let text = `\n--- ${this.name} (${status}): ${this.command}\n`;
    for (const stream of ['stderr', 'stdout']) {
      const lines = this.lines[stream];
      text += lines.length ? `  last ${lines.length} lines of ${stream}:\n${lines.map((l) => `    ${l}`).join('\n')}\n` : `  (no ${stream})\n`;
    }
    return text;
  }
}

const children = new Set();
/** Every child ever started, for the failure report. */
const allChildren = [];

function startChild(name, command, args) {
  const child = new Child(name, command, args);
  allChildren.push(child);
  return child;
}

/** Temporary directories to remove at exit, whatever happens. */
const temporaryDirs = new Set();

// Whatever happens, no child outlives the test and no temporary directory is left.
process.on('exit', () => {
  for (const child of children) if (child.running) child.process.kill('SIGKILL');
  for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log(`${signal}: stopping`);
    for (const child of children) if (child.running) child.process.kill('SIGKILL');
    process.exit(130);
  });
}

/** A TCP port nothing listens on right now. */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function getJson(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function getClaim(base, racerId, authorization) {
  const url = `${base}/api/racers/${racerId}/claim`;
  const response = await fetch(url, {
    headers: authorization ? { authorization } : {},
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

// --- What a page sends: claims and MQTT packets ---------------------------------------------------

/** The fields of an MQTT 3.1.1 CONNECT packet (null if `bytes` is not one). */
function parseMqttConnect(bytes) {
  if (!Buffer.isBuffer(bytes) || bytes.length < 2 || bytes[0] >> 4 !== 1) return null;
  // Skip the fixed header's remaining length (a variable-length integer of 1 to 4 bytes).
  let i = 1;
  while (bytes[i] & 0x80 && i < 4) i += 1;
  i += 1;
  const field = () => {
    const length = bytes.readUInt16BE(i);
    const value = bytes.subarray(i + 2, i + 2 + length);
    i += 2 + length;
    return value;
  };
  const protocol = field().toString('utf8');
  const level = bytes[i++];
  const flags = bytes[i++];
  i += 2; // keep-alive
  const clientId = field().toString('utf8');
  if (flags & 0x04) {
    field(); // will topic
    field(); // will message
  }
  const username = flags & 0x80 ? field().toString('utf8') : null;
  const password = flags & 0x40 ? field().toString('utf8') : null;
  return { protocol, level, clientId, username, password };
}

/**
 * Watches a page: its claim requests (method, racer, authorization, status, body, when answered)
 * and the MQTT packets it sends over WebSocket (CONNECTs, and when each PUBLISH went out).
 */
function watchPage(page) {
  // Events are numbered in the order the browser reports them: "answered before the first
  // PUBLISH" compares these numbers, not clocks.
  let sequence = 0;
  const seen = { claims: [], identityRequests: 0, connects: [], publishes: [] };
  const claimOf = (request) => {
    const match = /^\/api\/racers\/(\d+)\/claim$/.exec(new URL(request.url()).pathname);
    return match && request.method() !== 'OPTIONS' ? Number(match[1]) : null;
  };
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/_local/identity') seen.identityRequests += 1;
    const racerId = claimOf(request);
    if (racerId === null) return;
    seen.claims.push({
      request,
      method: request.method(),
      racerId,
      authorization: request.headers().authorization ?? null,
      sentSeq: ++sequence,
      status: null,
      answeredSeq: null,
      body: undefined,
    });
  });
  page.on('response', (response) => {
    const claim = seen.claims.find((c) => c.request === response.request());
    if (!claim) return;
    claim.status = response.status();
    claim.answeredSeq = ++sequence;
    response.json().then((body) => (claim.body = body), () => (claim.body = null));
  });
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => {
      if (!Buffer.isBuffer(payload) || payload.length === 0) return;
      const type = payload[0] >> 4;
      if (type === 1) seen.connects.push(parseMqttConnect(payload));
      if (type === 3) seen.publishes.push(++sequence);
    });
  });
  return seen;
}

/** A claim as a report shows it. */
const showClaim = ({ request: _request, ...claim }) => claim;

/** Waits for `count` claims of the page to be answered (status and body). */
async function answeredClaims(seen, count, what) {
  const s = await poll(what, async () => ({
    ok: seen.claims.length >= count && seen.claims.every((c) => c.status !== null && c.body !== undefined),
    claims: seen.claims.map(showClaim),
  }), { timeoutMs: 15_000 });
  return s.claims;
}

/** Browser console errors except the 404s the app expects and `alsoExpected` (url, text) ones. */
function watchConsole(page, errors, alsoExpected = () => false) {
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const url = message.location()?.url;
    if (isExpectedNotFound(message.text(), url) || alsoExpected(url, message.text())) return;
    errors.push(`console.error: ${message.text()}${url ? ` (${url})` : ''}`);
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.stack || error.message}`));
}

/** The local identity the page keeps in localStorage for the stack at `base`. */
async function storedIdentity(page, base) {
  const text = await page.evaluate((key) => window.localStorage.getItem(key), `alleycat.identity:${base}`);
  return text === null ? null : JSON.parse(text);
}

/** The class history object, decoded, through `GET /api/history/{classId}` (null while none). */
async function historyObject(base, classId) {
  const link = await getJson(`${base}/api/history/${classId}`);
  if (link.url === null) return null;
  const response = await fetch(link.url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`GET ${link.url}: ${response.status}`);
  const bytes = Buffer.from(await response.arrayBuffer());
  const text = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
  return JSON.parse(text);
}

/** Rides `racers` simulated racers from `first` in class `classId` as fast as possible, to the end. */
async function simulate(dataDir, mqttPort, first, racers, classId) {
  const child = startChild(`simulator ${first}-${first + racers - 1}`, SIMULATOR_BIN, [
    '--target', 'mqtt',
    '--url', `mqtt://127.0.0.1:${mqttPort}`,
    '--mqtt-username', 'operator',
    '--data-dir', dataDir,
    '--racers', String(racers),
    '--first-racer-id', String(first),
    '--class-id', String(classId),
    '--seconds', String(RACE_SECONDS),
    '--window-seconds', String(WINDOW_SECONDS),
    '--speed', '0',
    '--quiet',
  ]);
  const exited = await child.exit;
  if (exited.code !== 0) throw new Error(`the simulator (racers ${first}-${first + racers - 1}) exited with ${JSON.stringify(exited)}`);
}

// --- Page probes (run in the browser) -------------------------------------------------------------

/** What the live screen shows now: messages, connection, "Here now", chart, race panel. */
function liveSnapshot({ racerId, simFirst, simLast }) {
  const q = (sel) => document.querySelector(`[data-testid=${sel}]`);
  const all = (sel) => [...document.querySelectorAll(`[data-testid=${sel}]`)];
  const messages = all('message-row');
  const hereNow = all('here-now-row').map((row) => ({
    racerId: Number(row.getAttribute('data-racer-id')),
    output: row.getAttribute('data-output'),
    self: row.getAttribute('data-self'),
  }));
  const numeric = (v) => v !== null && v.trim() !== '' && Number.isFinite(Number(v));
  const own = hereNow.find((row) => row.racerId === racerId);
  const simulated = hereNow.filter((row) => row.racerId >= simFirst && row.racerId <= simLast);
  const progress = q('race-progress');
  return {
    state: q('race-panel')?.getAttribute('data-state') ?? null,
    connection: q('connection-state')?.textContent.trim() ?? null,
    raceId: q('race-id')?.textContent.trim() ?? null,
    liveOutput: q('live-output')?.textContent.trim() ?? null,
    progress: progress
      ? {
          value: progress.getAttribute('value') ?? progress.getAttribute('aria-valuenow'),
          max: progress.getAttribute('max') ?? progress.getAttribute('aria-valuemax'),
        }
      : null,
    messages: messages.length,
    sent: messages.filter((row) => row.getAttribute('data-direction') === 'sent').length,
    received: messages.filter((row) => row.getAttribute('data-direction') === 'received').length,
    hereNowRows: hereNow.length,
    own: own ?? null,
    ownIsSelf: own?.self === 'true',
    simulated: simulated.length,
    simulatedNumeric: simulated.filter((row) => numeric(row.output)).length,
    nonNumericOutputs: hereNow.filter((row) => !numeric(row.output)).slice(0, 5),
    selfRows: hereNow.filter((row) => row.self === 'true').map((row) => row.racerId),
    chartCanvases: q('live-chart')?.querySelectorAll('canvas').length ?? null,
    newestMessage: messages[0]?.textContent.trim().slice(0, 300) ?? null,
  };
}

/** Rows of the race results and the leaderboard. */
function finishedSnapshot() {
  const rows = (sel, attr) =>
    [...document.querySelectorAll(`[data-testid=${sel}]`)].map((row) => ({
      racerId: Number(row.getAttribute('data-racer-id')),
      value: row.getAttribute(attr),
    }));
  const select = document.querySelector('[data-testid=results-race-select]');
  return {
    state: document.querySelector('[data-testid=race-panel]')?.getAttribute('data-state') ?? null,
    resultsSelect: select ? { value: select.value ?? null, text: select.textContent.trim().slice(0, 200) } : null,
    results: rows('result-row', 'data-output'),
    leaderboard: rows('leaderboard-row', 'data-best'),
  };
}

// --- The test -------------------------------------------------------------------------------------

async function main() {
  log(`repository ${REPO}`);
  for (const [what, path] of [
    ['alleycat-local binary', LOCAL_BIN],
    ['simulator binary', SIMULATOR_BIN],
    ['Chromium', CHROMIUM],
    ['built frontend', join(FRONTEND_DIST, 'index.html')],
  ]) {
    if (!existsSync(path)) {
      throw new CheckFailed(`${what} not found at ${path} (bash scripts/frontend-test builds everything)`);
    }
  }
  await rm(ARTIFACTS, { recursive: true, force: true });
  await mkdir(ARTIFACTS, { recursive: true });

  const dataDir = await mkdtemp(join(tmpdir(), 'alleycat-e2e-'));
  temporaryDirs.add(dataDir);
  let browser;
  let page;
  const consoleErrors = [];
  const expectedNotFound = [];
  const consoleLog = [];
  try {
    // The stack.
    const [httpPort, mqttPort, wsPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const base = `http://127.0.0.1:${httpPort}`;
    const stack = startChild('alleycat-local', LOCAL_BIN, [
      '--data-dir', dataDir,
      '--host', '127.0.0.1',
      '--http-port', String(httpPort),
      '--mqtt-port', String(mqttPort),
      '--ws-port', String(wsPort),
      '--frontend-dir', FRONTEND_DIST,
      '--race-seconds', String(RACE_SECONDS),
      '--window-seconds', String(WINDOW_SECONDS),
      '--firehose-interval-seconds', '2',
      '--leaderboard-batching-window-ms', '200',
      '--log', 'warn,rumqttd=off',
    ]);
    await check('embedded stack starts (GET /_local/status)', async () => {
      await poll('GET /_local/status to answer 200', async () => {
        if (!stack.running) throw new Error(`alleycat-local exited: ${JSON.stringify(stack.exited)}`);
        const response = await fetch(`${base}/_local/status`, { signal: AbortSignal.timeout(2000) });
        return { ok: response.status === 200, status: response.status };
      }, { timeoutMs: 30_000, intervalMs: 200 });
      const config = await getJson(`${base}/api/config`);
      assert(config.platform === 'local', `/api/config platform ${config.platform}`);
      assert(config.raceSeconds === RACE_SECONDS && config.windowSeconds === WINDOW_SECONDS,
        `/api/config race ${config.raceSeconds}s window ${config.windowSeconds}s`);
      return `${base}, MQTT ${mqttPort}, WebSocket ${wsPort}, data ${dataDir}`;
    });
    if (!stack.running) throw new CheckFailed('alleycat-local stopped');

    // The browser.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
    log(`Chromium ${browser.version()}`);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    const seen = watchPage(page);
    page.on('console', (message) => {
      const location = message.location();
      const where = location?.url ? ` (${location.url}:${location.lineNumber})` : '';
      consoleLog.push(`${new Date().toISOString()} ${message.type()}: ${message.text()}${where}`);
      if (message.type() !== 'error') return;
      if (isExpectedNotFound(message.text(), location?.url)) expectedNotFound.push(location.url);
      else consoleErrors.push(`console.error: ${message.text()}${where}`);
    });
    page.on('pageerror', (error) => {
      consoleLog.push(`${new Date().toISOString()} pageerror: ${error.stack || error.message}`);
      consoleErrors.push(`page error: ${error.stack || error.message}`);
    });
    page.on('requestfailed', (request) => {
      consoleLog.push(`${new Date().toISOString()} requestfailed: ${request.method()} ${request.url()} ${request.failure()?.errorText ?? ''}`);
    });

    const url = `${base}/?speed=${SPEED}`;
    await check('app loads, idle and connected', async () => {
      const response = await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
      assert(response && response.ok(), `GET ${url}: ${response?.status()}`);
      const snapshot = await poll('race panel idle and connection-state "connected"', async () => {
        const s = await page.evaluate(liveSnapshot, { racerId: RACER_ID, simFirst: SIM_FIRST_RACER, simLast: SIM_FIRST_RACER + SIM_RACERS - 1 });
        return { ...s, ok: s.state === 'idle' && s.connection === 'connected' };
      }, { timeoutMs: 30_000 });
      return `state ${snapshot.state}, connection ${snapshot.connection}`;
    });

    let identity;
    await check('the page has a local identity and connects MQTT as it; a reload keeps it', async () => {
      const s = await poll('a local identity in localStorage, shown in the footer', async () => {
        const stored = await storedIdentity(page, base);
        const shown = await page.evaluate(() => document.querySelector('[data-testid=identity-id]')?.textContent.trim() ?? null);
        return { ok: stored !== null && shown === stored.identityId, stored, shown };
      }, { timeoutMs: 10_000 });
      identity = s.stored;
      assert(/^local:[0-9a-f]{32}$/.test(identity.identityId), `identityId ${JSON.stringify(identity.identityId)}`);
      assert(/^[0-9a-f]{64}$/.test(identity.token), 'the token is not 64 hex digits');
      assert(seen.identityRequests === 1, `${seen.identityRequests} requests to /_local/identity`);
      const connects = [...seen.connects];
      assert(connects.length >= 1, 'no MQTT CONNECT seen on the page\'s WebSocket');
      for (const c of connects) {
        assert(c && c.protocol === 'MQTT' && c.level === 4, `CONNECT ${JSON.stringify(c)} is not MQTT 3.1.1`);
        assert(c.clientId === identity.identityId && c.username === identity.identityId && c.password === identity.token,
          `CONNECT client id ${JSON.stringify(c.clientId)}, username ${JSON.stringify(c.username)}, password ${c.password === identity.token ? 'the token' : 'not the token'}; expected the identity ${identity.identityId} and its token`);
      }
      // A reload: the same identity (no new one asked for), connected again.
      await page.reload({ waitUntil: 'load', timeout: 30_000 });
      await poll('connection-state "connected" after the reload', async () => {
        const connection = await page.evaluate(() => document.querySelector('[data-testid=connection-state]')?.textContent.trim());
        return { ok: connection === 'connected', connection };
      }, { timeoutMs: 30_000 });
      const again = await storedIdentity(page, base);
      assert(again?.identityId === identity.identityId && again?.token === identity.token,
        `after a reload the identity is ${JSON.stringify(again?.identityId)}, was ${identity.identityId}`);
      assert(seen.identityRequests === 1, `a reload asked for a new identity (${seen.identityRequests} requests to /_local/identity)`);
      const last = seen.connects.at(-1);
      assert(seen.connects.length > connects.length && last?.clientId === identity.identityId,
        `after the reload the page connected as ${JSON.stringify(last?.clientId)}`);
      return `${identity.identityId}, MQTT client id = username = identity id, password = token (${seen.connects.length} CONNECTs); kept across a reload`;
    });

    await check('class and racer selects offer classes 1-6 and racers 1-100', async () => {
      const options = await page.evaluate(() => {
        const values = (sel) => [...(document.querySelector(`[data-testid=${sel}]`)?.options ?? [])].map((o) => o.value);
        return { classes: values('class-select'), racers: values('racer-select') };
      });
      const numbers = (values) => values.map(Number).filter(Number.isInteger);
      const classes = numbers(options.classes);
      const racers = numbers(options.racers);
      for (let c = 1; c <= 6; c += 1) assert(classes.includes(c), `class-select lacks ${c}: ${options.classes.join(',')}`);
      for (let r = 1; r <= 100; r += 1) assert(racers.includes(r), `racer-select lacks ${r} (${options.racers.length} options)`);
      return `${options.classes.length} classes, ${options.racers.length} racers`;
    });

    await check(`select class ${CLASS_ID} and racer ${RACER_ID}`, async () => {
      await page.locator('[data-testid=class-select]').selectOption(String(CLASS_ID), { timeout: 10_000 });
      await page.locator('[data-testid=racer-select]').selectOption(String(RACER_ID), { timeout: 10_000 });
      // A class change resubscribes: be connected again before riding.
      await poll('connection-state "connected" after the selection', async () => {
        const s = await page.evaluate(() => ({
          connection: document.querySelector('[data-testid=connection-state]')?.textContent.trim(),
          classId: document.querySelector('[data-testid=class-select]')?.value,
          racerId: document.querySelector('[data-testid=racer-select]')?.value,
        }));
        return { ...s, ok: s.connection === 'connected' && s.classId === String(CLASS_ID) && s.racerId === String(RACER_ID) };
      }, { timeoutMs: 20_000 });
    });

    // Browser and simulator must start in the same start window (raceId = floor(ms / window)).
    const windowMs = WINDOW_SECONDS * 1000;
    const left = windowMs - (Date.now() % windowMs);
    if (left < WINDOW_MARGIN_MS) {
      log(`only ${(left / 1000).toFixed(0)}s left in the current ${WINDOW_SECONDS}s start window: waiting ` +
        `${((left + 1000) / 1000).toFixed(0)}s for the next one, so that browser and simulator share one race`);
      await sleep(left + 1000);
    }
    const raceId = Math.floor(Date.now() / windowMs);
    const simLast = SIM_FIRST_RACER + SIM_RACERS - 1;
    const probeArgs = { racerId: RACER_ID, simFirst: SIM_FIRST_RACER, simLast };
    const before = await page.evaluate(liveSnapshot, probeArgs);

    // Ride: the simulator's racers and the browser's racer, concurrently.
    log(`riding race ${raceId} of class ${CLASS_ID}: racer ${RACER_ID} in the browser, racers ${SIM_FIRST_RACER}-${simLast} in the simulator, speed ${SPEED}`);
    const simulator = startChild('simulator', SIMULATOR_BIN, [
      '--target', 'mqtt',
      '--url', `mqtt://127.0.0.1:${mqttPort}`,
      // The trusted producer: the operator secret the stack keeps in its data directory.
      '--mqtt-username', 'operator',
      '--data-dir', dataDir,
      '--racers', String(SIM_RACERS),
      '--class-id', String(CLASS_ID),
      // No --first-racer-id: the default (101) is what keeps the README's flow apart.
      '--seconds', String(RACE_SECONDS),
      '--window-seconds', String(WINDOW_SECONDS),
      '--speed', String(SPEED),
      '--quiet',
    ]);

    await check('Start Race starts a race (racing, button disabled)', async () => {
      await page.locator('[data-testid=start-race]').click({ timeout: 10_000 });
      // Read state and button together, while racing.
      const handle = await page.waitForFunction(() => {
        const state = document.querySelector('[data-testid=race-panel]')?.getAttribute('data-state');
        const button = document.querySelector('[data-testid=start-race]');
        if (state === 'racing') return { state, disabled: Boolean(button?.disabled) };
        if (state === 'finished') return { state, disabled: null };
        return false;
      }, null, { timeout: 10_000, polling: 'raf' });
      const shown = await handle.jsonValue();
      assert(shown.state === 'racing', `the race panel went to "${shown.state}" without showing "racing"`);
      assert(shown.disabled, 'start-race is enabled while racing');
    });

    let claimExpiresAt;
    await check(`racer ${RACER_ID} is claimed (POST /api/racers/${RACER_ID}/claim, 200) before the first message`, async () => {
      const claims = await answeredClaims(seen, 1, `the claim of racer ${RACER_ID} to be answered`);
      assert(claims.length === 1, `${claims.length} claim requests: ${JSON.stringify(claims)}`);
      const [claim] = claims;
      assert(claim.method === 'POST' && claim.racerId === RACER_ID, `the claim was ${claim.method} of racer ${claim.racerId}`);
      assert(claim.authorization === `Alleycat ${identity.identityId}:${identity.token}`,
        `the claim's Authorization is ${JSON.stringify(claim.authorization?.slice(0, 60))}…, not the page's identity`);
      assert(claim.status === 200, `the claim answered ${claim.status} ${JSON.stringify(claim.body)}`);
      const body = claim.body ?? {};
      assert(body.racerId === RACER_ID && body.identityId === identity.identityId,
        `the claim's answer ${JSON.stringify(body)} is not racer ${RACER_ID} held by ${identity.identityId}`);
      assert(Number.isFinite(body.expiresAt) && body.expiresAt > Date.now() + 23 * 3600_000,
        `the claim expires at ${body.expiresAt}, not about a day from now`);
      claimExpiresAt = body.expiresAt;
      await poll('a PUBLISH on the page\'s WebSocket', async () => ({ ok: seen.publishes.length > 0 }), { timeoutMs: 10_000 });
      const early = seen.publishes.filter((at) => at < claim.answeredSeq);
      assert(early.length === 0, `${early.length} PUBLISH packet(s) went out before the claim was answered`);
      const anonymous = await getClaim(base, RACER_ID);
      assert(anonymous.held === true && anonymous.mine === false,
        `GET /api/racers/${RACER_ID}/claim without an identity says ${JSON.stringify(anonymous)}`);
      const mine = await getClaim(base, RACER_ID, claim.authorization);
      assert(mine.held === true && mine.mine === true && mine.expiresAt === body.expiresAt,
        `GET /api/racers/${RACER_ID}/claim as the page says ${JSON.stringify(mine)}`);
      return `held by ${identity.identityId} until ${new Date(body.expiresAt).toISOString()}; ` +
        `${seen.publishes.length} PUBLISH packets so far, all after the claim's answer`;
    });

    await check('race-id shows the current race', async () => {
      const s = await poll('race-id to show digits', async () => {
        const text = await page.evaluate(() => document.querySelector('[data-testid=race-id]')?.textContent.trim() ?? null);
        return { ok: /^\d+$/.test(text ?? ''), text };
      }, { timeoutMs: 10_000 });
      assert(Number(s.text) === raceId, `race-id shows ${s.text}, expected floor(now / ${windowMs}) = ${raceId}`);
      return s.text;
    });

    let runningMessages;
    await check('live screen: messages sent and received, connected, "Here now", chart', async () => {
      const s = await poll(`messages growing (sent and received), "connected", racer ${RACER_ID} (self) and >= ${MIN_SIMULATED_HERE_NOW} simulated racers with numeric outputs in "Here now", a canvas in the chart`, async () => {
        const snap = await page.evaluate(liveSnapshot, probeArgs);
        const ok =
          snap.messages > before.messages &&
          snap.sent >= 2 && snap.received >= 1 &&
          snap.connection === 'connected' &&
          snap.own !== null && snap.ownIsSelf && snap.own.output !== null && Number.isFinite(Number(snap.own.output)) &&
          snap.selfRows.length === 1 &&
          snap.simulatedNumeric >= MIN_SIMULATED_HERE_NOW &&
          snap.chartCanvases > 0;
        return { ...snap, ok };
      }, { timeoutMs: 45_000 });
      runningMessages = { count: s.messages, newest: s.newestMessage };
      await page.screenshot({ path: join(ARTIFACTS, 'running.png'), fullPage: true });
      return `state ${s.state}, ${s.messages} messages (${s.sent} sent, ${s.received} received, ${before.messages} before), ` +
        `"Here now" ${s.hereNowRows} rows with ${s.simulated} simulated, own output ${s.own.output}, live output ${s.liveOutput}, ` +
        `progress ${JSON.stringify(s.progress)}; running.png`;
    });

    await check('live-output and race-progress show the ride', async () => {
      const s = await page.evaluate(liveSnapshot, probeArgs);
      assert(/\d/.test(s.liveOutput ?? ''), `live-output is ${JSON.stringify(s.liveOutput)}`);
      assert(s.progress && Number(s.progress.value) > 0 && Number(s.progress.max) > 0,
        `race-progress is ${JSON.stringify(s.progress)}`);
      return `live-output ${s.liveOutput}, progress ${s.progress.value}/${s.progress.max}`;
    });

    await check('race finishes (race-panel data-state=finished)', async () => {
      await page.waitForSelector('[data-testid=race-panel][data-state=finished]', { state: 'attached', timeout: 60_000 });
      const enabled = await page.locator('[data-testid=start-race]').isEnabled();
      if (!enabled) log('note: start-race is still disabled after the race finished');
    });

    await check('messages kept coming during the race', async () => {
      const s = await page.evaluate(liveSnapshot, probeArgs);
      assert(s.messages > runningMessages.count || s.newestMessage !== runningMessages.newest,
        `the messages panel did not change since the live check: ${s.messages} rows, newest ${JSON.stringify(s.newestMessage)}`);
      return `${runningMessages.count} -> ${s.messages} rows (${s.sent} sent, ${s.received} received)`;
    });

    await check('simulator delivers every record (exit 0)', async () => {
      const timeout = sleep(90_000).then(() => 'timeout');
      const exited = await Promise.race([simulator.exit, timeout]);
      assert(exited !== 'timeout', 'the simulator is still running 90 s later');
      assert(exited.code === 0, `the simulator exited with ${JSON.stringify(exited)}`);
    });

    const apiRaceUrl = `${base}/api/races/${raceId}?classId=${CLASS_ID}`;
    const apiLeaderboardUrl = `${base}/api/leaderboard?classId=${CLASS_ID}&limit=100`;

    await check(`API race standings hold racer ${RACER_ID} and all ${SIM_RACERS} simulated racers`, async () => {
      const s = await poll(`GET ${apiRaceUrl} to list racer ${RACER_ID} and racers ${SIM_FIRST_RACER}-${simLast}`, async () => {
        const race = await getJson(apiRaceUrl);
        const ids = new Set(race.standings.map((entry) => entry.racerId));
        const missing = [RACER_ID];
        for (let id = SIM_FIRST_RACER; id <= simLast; id += 1) missing.push(id);
        const stillMissing = missing.filter((id) => !ids.has(id));
        return { ok: stillMissing.length === 0, racers: ids.size, missing: stillMissing.slice(0, 10) };
      }, { timeoutMs: 30_000, intervalMs: 250 });
      return `${s.racers} racers`;
    });

    await check(`race results and leaderboard list racer ${RACER_ID}`, async () => {
      const s = await poll(`result-row and leaderboard-row of racer ${RACER_ID}`, async () => {
        const [snap, board] = await Promise.all([page.evaluate(finishedSnapshot), getJson(apiLeaderboardUrl)]);
        const ok = snap.results.some((row) => row.racerId === RACER_ID) && snap.leaderboard.some((row) => row.racerId === RACER_ID);
        const apiRank = board.entries.findIndex((entry) => entry.racerId === RACER_ID);
        return { ok, state: snap.state, apiLeaderboard: `racer ${RACER_ID} at rank ${apiRank + 1} of ${board.entries.length} in the API's leaderboard`, resultsSelect: snap.resultsSelect, results: snap.results.length, leaderboard: snap.leaderboard.length,
          ownResult: snap.results.find((row) => row.racerId === RACER_ID) ?? null,
          ownBest: snap.leaderboard.find((row) => row.racerId === RACER_ID) ?? null };
      }, { timeoutMs: 30_000, intervalMs: 250 });
      return `${s.results} result rows, ${s.leaderboard} leaderboard rows`;
    });

    await check('race results and leaderboard equal the API', async () => {
      // Poll both sides: the API is eventually consistent, the page refreshes on its own.
      const s = await poll(`the page's result and leaderboard rows to equal ${apiRaceUrl} and ${apiLeaderboardUrl}`, async () => {
        const [snap, race, board] = await Promise.all([page.evaluate(finishedSnapshot), getJson(apiRaceUrl), getJson(apiLeaderboardUrl)]);
        const apiOutput = new Map(race.standings.map((entry) => [entry.racerId, entry.output]));
        const apiBest = new Map(board.entries.map((entry) => [entry.racerId, entry.best]));
        const ownResult = snap.results.find((row) => row.racerId === RACER_ID);
        const ownBest = snap.leaderboard.find((row) => row.racerId === RACER_ID);
        const resultMismatches = snap.results
          .filter((row) => Number(row.value) !== apiOutput.get(row.racerId) || row.value === null || row.value.trim() === '')
          .map((row) => ({ racerId: row.racerId, page: row.value, api: apiOutput.get(row.racerId) ?? null }));
        const leaderboardMismatches = snap.leaderboard
          .filter((row) => Number(row.value) !== apiBest.get(row.racerId) || row.value === null || row.value.trim() === '')
          .map((row) => ({ racerId: row.racerId, page: row.value, api: apiBest.get(row.racerId) ?? null }));
        const ok = Boolean(ownResult && ownBest) && resultMismatches.length === 0 && leaderboardMismatches.length === 0 &&
          Number(ownResult.value) === apiOutput.get(RACER_ID) && Number(ownBest.value) === apiBest.get(RACER_ID);
        return {
          ok,
          own: { pageOutput: ownResult?.value ?? null, apiOutput: apiOutput.get(RACER_ID) ?? null, pageBest: ownBest?.value ?? null, apiBest: apiBest.get(RACER_ID) ?? null },
          rows: { results: snap.results.length, leaderboard: snap.leaderboard.length },
          resultMismatches: resultMismatches.slice(0, 5),
          leaderboardMismatches: leaderboardMismatches.slice(0, 5),
        };
      }, { timeoutMs: 30_000, intervalMs: 500 });
      await page.screenshot({ path: join(ARTIFACTS, 'finished.png'), fullPage: true });
      return `racer ${RACER_ID}: output ${s.own.pageOutput} = API ${s.own.apiOutput}, best ${s.own.pageBest} = API ${s.own.apiBest}; ` +
        `all ${s.rows.results} result rows and ${s.rows.leaderboard} leaderboard rows equal the API; finished.png`;
    });

    await check(`the claim of racer ${RACER_ID} is kept after the ride`, async () => {
      const released = seen.claims.filter((c) => c.method !== 'POST');
      assert(released.length === 0, `the page sent ${released.map((c) => `${c.method} racer ${c.racerId}`).join(', ')}`);
      const mine = await getClaim(base, RACER_ID, `Alleycat ${identity.identityId}:${identity.token}`);
      assert(mine.held === true && mine.mine === true && mine.expiresAt >= claimExpiresAt,
        `GET /api/racers/${RACER_ID}/claim as the page says ${JSON.stringify(mine)}`);
      return `held, expires ${new Date(mine.expiresAt).toISOString()}`;
    });

    await check('no console errors or page errors', async () => {
      assert(consoleErrors.length === 0, `${consoleErrors.length} error(s):\n  ${consoleErrors.join('\n  ')}`);
      return expectedNotFound.length
        ? `not counted: ${expectedNotFound.length} expected 404(s) of data that does not exist yet (${[...new Set(expectedNotFound.map((u) => new URL(u).pathname))].join(', ')})`
        : undefined;
    });

    // A second rider: another browser context is another localStorage, so another identity.
    const riderContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const rider = await riderContext.newPage();
      const riderSeen = watchPage(rider);
      const riderErrors = [];
      // Chromium logs the 409 of the refused claim as a failed load: expected here.
      watchConsole(rider, riderErrors, (url, text) =>
        /status of 409\b/.test(text) && url !== undefined && new URL(url).pathname === `/api/racers/${RACER_ID}/claim`);
      let riderIdentity;

      await check(`a second rider (another identity) is told racer ${RACER_ID} is taken and does not ride it`, async () => {
        const response = await rider.goto(url, { waitUntil: 'load', timeout: 30_000 });
        assert(response && response.ok(), `GET ${url}: ${response?.status()}`);
        const ready = await poll('the second page idle, connected, with its identity', async () => {
          const snap = await rider.evaluate(liveSnapshot, probeArgs);
          const stored = await storedIdentity(rider, base);
          return { ok: snap.state === 'idle' && snap.connection === 'connected' && stored !== null, state: snap.state, connection: snap.connection, stored };
        }, { timeoutMs: 30_000 });
        riderIdentity = ready.stored;
        assert(riderIdentity.identityId !== identity.identityId, `the second context has the first's identity ${identity.identityId}`);
        await rider.locator('[data-testid=class-select]').selectOption(String(CLASS_ID), { timeout: 10_000 });
        await rider.locator('[data-testid=racer-select]').selectOption(String(RACER_ID), { timeout: 10_000 });
        await poll('the second page connected after the selection', async () => {
          const connection = await rider.evaluate(() => document.querySelector('[data-testid=connection-state]')?.textContent.trim());
          return { ok: connection === 'connected', connection };
        }, { timeoutMs: 20_000 });
        await rider.locator('[data-testid=start-race]').click({ timeout: 10_000 });
        await rider.locator('[data-testid=claim-error]').waitFor({ state: 'visible', timeout: 15_000 });
        const claims = await answeredClaims(riderSeen, 1, `the second rider's claim of racer ${RACER_ID} to be answered`);
        assert(claims.length === 1 && claims[0].method === 'POST' && claims[0].racerId === RACER_ID && claims[0].status === 409,
          `the second rider's claims: ${JSON.stringify(claims)}`);
        assert(claims[0].authorization === `Alleycat ${riderIdentity.identityId}:${riderIdentity.token}`,
          'the second rider claimed with another identity than its own');
        // Long enough for a ride at ×20 to have sent tens of messages, had it started.
        await sleep(2000);
        const shown = await rider.evaluate(() => {
          const q = (sel) => document.querySelector(`[data-testid=${sel}]`);
          return {
            message: q('claim-error')?.textContent.trim() ?? null,
            reason: q('claim-error')?.getAttribute('data-reason') ?? null,
            state: q('race-panel')?.getAttribute('data-state') ?? null,
            raceId: q('race-id')?.textContent.trim() ?? null,
            sentRows: document.querySelectorAll('[data-testid=message-row][data-direction=sent]').length,
            racerSelectEnabled: q('racer-select')?.disabled === false,
            classSelectEnabled: q('class-select')?.disabled === false,
            startEnabled: q('start-race')?.disabled === false,
          };
        });
        assert(shown.message === TAKEN_MESSAGE, `claim-error says ${JSON.stringify(shown.message)}, expected ${JSON.stringify(TAKEN_MESSAGE)}`);
        assert(shown.reason === 'taken', `claim-error data-reason=${shown.reason}`);
        assert(shown.state === 'idle' && shown.raceId === '', `the race panel is ${shown.state}, race-id ${JSON.stringify(shown.raceId)}`);
        assert(riderSeen.publishes.length === 0 && shown.sentRows === 0,
          `the second rider sent ${riderSeen.publishes.length} PUBLISH packets (${shown.sentRows} sent rows)`);
        assert(shown.racerSelectEnabled && shown.classSelectEnabled && shown.startEnabled,
          `the rider cannot pick again: ${JSON.stringify(shown)}`);
        const theirs = await getClaim(base, RACER_ID, claims[0].authorization);
        assert(theirs.held === true && theirs.mine === false, `GET /api/racers/${RACER_ID}/claim as the second rider says ${JSON.stringify(theirs)}`);
        await rider.screenshot({ path: join(ARTIFACTS, 'taken.png'), fullPage: true });
        return `"${shown.message}", state ${shown.state}, no PUBLISH; taken.png`;
      });

      await check(`the second rider picks racer ${OTHER_RACER_ID} instead, claims and rides it`, async () => {
        await rider.locator('[data-testid=racer-select]').selectOption(String(OTHER_RACER_ID), { timeout: 10_000 });
        await rider.locator('[data-testid=claim-error]').waitFor({ state: 'detached', timeout: 5_000 });
        await rider.locator('[data-testid=start-race]').click({ timeout: 10_000 });
        await rider.waitForSelector('[data-testid=race-panel][data-state=racing], [data-testid=race-panel][data-state=finished]', { state: 'attached', timeout: 15_000 });
        const claims = await answeredClaims(riderSeen, 2, `the second rider's claim of racer ${OTHER_RACER_ID} to be answered`);
        const claim = claims[1];
        assert(claim.racerId === OTHER_RACER_ID && claim.status === 200 && claim.body?.identityId === riderIdentity.identityId,
          `the claim of racer ${OTHER_RACER_ID}: ${JSON.stringify(claim)}`);
        await poll('a PUBLISH from the second rider', async () => ({ ok: riderSeen.publishes.length > 0 }), { timeoutMs: 10_000 });
        const early = riderSeen.publishes.filter((at) => at < claim.answeredSeq);
        assert(early.length === 0, `${early.length} PUBLISH packet(s) went out before the claim was answered`);
        assert(riderErrors.length === 0, `the second page logged ${riderErrors.length} error(s):\n  ${riderErrors.join('\n  ')}`);
        return `racer ${OTHER_RACER_ID} held by ${riderIdentity.identityId}, ${riderSeen.publishes.length} PUBLISH packets after the claim`;
      });
    } finally {
      await riderContext.close().catch(() => {});
    }

    // A full class: 150 more simulated racers, and three of the page's racers ridden by the
    // simulator on purpose. A third rider sees who rides now, is warned, and rides weakly.
    const total = SIM_RACERS + 2 + FILL_RACERS + CHOSEN_RACERS;
    await check(`the simulator fills class ${CLASS_ID} to ${total} racers, riding racers ${CHOSEN_FIRST_RACER}-${CHOSEN_FIRST_RACER + CHOSEN_RACERS - 1} by choice`, async () => {
      await Promise.all([
        simulate(dataDir, mqttPort, FILL_FIRST_RACER, FILL_RACERS, CLASS_ID),
        simulate(dataDir, mqttPort, CHOSEN_FIRST_RACER, CHOSEN_RACERS, CLASS_ID),
      ]);
      // Settled: every consumer caught up, the leaderboard counts the finishers (racer 8's ride
      // may have ended before its final), and the history object unchanged for 3 s.
      let seenUpdate = { updatedAt: null, at: 0 };
      const s = await poll(`the stack to settle with ${total - 1} or more racers on the leaderboard and a history sample`, async () => {
        const status = await getJson(`${base}/_local/status`);
        const idle = status.consumers.every((c) => c.checkpoint >= c.latest);
        const rank = await getJson(`${base}/api/racers/${FILL_FIRST_RACER}/rank?classId=${CLASS_ID}`);
        const history = await historyObject(base, CLASS_ID);
        const updatedAt = history?.updatedAt ?? null;
        if (updatedAt !== seenUpdate.updatedAt) seenUpdate = { updatedAt, at: Date.now() };
        const stable = Date.now() - seenUpdate.at >= 3000;
        return { ok: idle && stable && rank.of >= total - 1 && Boolean(history?.sample), idle, stable, of: rank.of, sampled: history?.sample?.racers ?? null };
      }, { timeoutMs: 90_000, intervalMs: 500 });
      return `${s.of} racers on the leaderboard, about ${s.sampled} in the history's sample`;
    });

    const weakContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const weak = await weakContext.newPage();
      const weakErrors = [];
      watchConsole(weak, weakErrors);
      const weakUrl = `${base}/?speed=${WEAK_SPEED}`;

      await check(`a third rider sees racers ${CHOSEN_FIRST_RACER}-${CHOSEN_FIRST_RACER + CHOSEN_RACERS - 1} riding now and is warned before riding racer ${WARNED_RACER_ID}`, async () => {
        const response = await weak.goto(weakUrl, { waitUntil: 'load', timeout: 30_000 });
        assert(response && response.ok(), `GET ${weakUrl}: ${response?.status()}`);
        await poll('the third page connected', async () => {
          const connection = await weak.evaluate(() => document.querySelector('[data-testid=connection-state]')?.textContent.trim());
          return { ok: connection === 'connected', connection };
        }, { timeoutMs: 30_000 });
        await weak.locator('[data-testid=class-select]').selectOption(String(CLASS_ID), { timeout: 10_000 });
        const expected = [RACER_ID, OTHER_RACER_ID];
        for (let id = CHOSEN_FIRST_RACER; id < CHOSEN_FIRST_RACER + CHOSEN_RACERS; id += 1) expected.push(id);
        const listed = await poll(`riding-now to list racers ${expected.join(', ')}`, async () => {
          const ids = await weak.evaluate(() => document.querySelector('[data-testid=riding-now]')?.getAttribute('data-racer-ids') ?? null);
          const list = ids ? ids.split(',').map(Number) : [];
          return { ok: expected.every((id) => list.includes(id)) && list.every((id) => id >= 1 && id <= 100), list };
        }, { timeoutMs: 20_000, intervalMs: 250 });
        await weak.locator('[data-testid=racer-select]').selectOption(String(WARNED_RACER_ID), { timeout: 10_000 });
        const warning = weak.locator('[data-testid=riding-now-warning]');
        await warning.waitFor({ state: 'visible', timeout: 5_000 });
        const text = (await warning.textContent()).trim();
        const button = (await weak.locator('[data-testid=start-race]').textContent()).trim();
        assert(text.startsWith(`Racer ${WARNED_RACER_ID} is riding now in this class`), `the warning says ${JSON.stringify(text)}`);
        assert(button === 'Ride anyway', `the start button says ${JSON.stringify(button)}`);
        await weak.locator('[data-testid=racer-select]').selectOption(String(WEAK_RACER_ID), { timeout: 10_000 });
        await warning.waitFor({ state: 'detached', timeout: 5_000 });
        await weak.screenshot({ path: join(ARTIFACTS, 'riding-now.png'), fullPage: true });
        return `riding now: ${listed.list.join(', ')}; "${text.slice(0, 60)}…"; riding-now.png`;
      });

      let percentileShown;
      await check(`racer ${WEAK_RACER_ID}, ridden weakly, sees a percentile at the current second that the history's sample confirms`, async () => {
        // The object the page loads when the race starts: nothing rides until then.
        const history = await historyObject(base, CLASS_ID);
        assert(Array.isArray(history?.sample?.members), 'the class history has no sample');
        await weak.locator('[data-testid=start-race]').click({ timeout: 10_000 });
        await weak.waitForSelector('[data-testid=race-panel][data-state=racing]', { state: 'attached', timeout: 15_000 });
        for (let i = 0; i < 6; i += 1) {
          await weak.getByRole('button', { name: 'Lower cadence' }).click({ timeout: 5_000 });
          await weak.getByRole('button', { name: 'Lower resistance' }).click({ timeout: 5_000 });
        }
        const shown = await poll('alltime-percentile while racing', async () => {
          const p = await weak.evaluate(() => {
            const el = document.querySelector('[data-testid=alltime-percentile]');
            if (!el) return null;
            const n = (name) => Number(el.getAttribute(name));
            return { second: n('data-second'), output: n('data-output'), top: n('data-top'), greater: n('data-greater'), of: n('data-of'), text: el.textContent.replace(/\s+/g, ' ').trim() };
          });
          return { ok: p !== null && p.second > 1, ...p };
        }, { timeoutMs: 20_000, intervalMs: 100 });
        // The members' bests at that second (whole units; null where a member has none).
        const bests = history.sample.members
          .map(([, seconds]) => seconds[shown.second - 1])
          .filter((b) => typeof b === 'number');
        const greater = bests.filter((b) => b > Math.floor(shown.output)).length;
        const top = (100 * (greater + 1)) / (bests.length + 1);
        assert(shown.of === bests.length && shown.greater === greater && Math.abs(shown.top - top) < 1e-9,
          `the page says ${JSON.stringify(shown)}, the sample ${greater} of ${bests.length} greater (top ${top})`);
        assert(new RegExp(`^top [0-9.]+% at second ${shown.second}\\b`).test(shown.text), `the panel says ${JSON.stringify(shown.text)}`);
        percentileShown = shown;
        await weak.screenshot({ path: join(ARTIFACTS, 'percentile.png'), fullPage: true });
        return `"${shown.text}" (${greater} of ${bests.length} sampled bests above output ${shown.output}); percentile.png`;
      });

      await check(`finished, racer ${WEAK_RACER_ID} sees its place outside the top 100 and the class size, as GET /api/racers/${WEAK_RACER_ID}/rank says`, async () => {
        await weak.waitForSelector('[data-testid=race-panel][data-state=finished]', { state: 'attached', timeout: 60_000 });
        const s = await poll(`leaderboard-rank of racer ${WEAK_RACER_ID} to equal the API's`, async () => {
          const rank = await getJson(`${base}/api/racers/${WEAK_RACER_ID}/rank?classId=${CLASS_ID}`);
          const shown = await weak.evaluate((racerId) => {
            const el = document.querySelector('[data-testid=leaderboard-rank]');
            const row = document.querySelector(`[data-testid=leaderboard-row][data-racer-id="${racerId}"]`);
            return {
              racerId: el ? Number(el.getAttribute('data-racer-id')) : null,
              place: el ? Number(el.getAttribute('data-place')) : null,
              of: el ? Number(el.getAttribute('data-of')) : null,
              text: el?.textContent.replace(/\s+/g, ' ').trim() ?? null,
              rowPlace: row ? Number(row.getAttribute('data-place')) : null,
              rowBest: row?.getAttribute('data-best') ?? null,
            };
          }, WEAK_RACER_ID);
          const ok = shown.racerId === WEAK_RACER_ID && shown.place === rank.place && shown.of === rank.of &&
            shown.rowPlace === rank.place && Number(shown.rowBest) === rank.best;
          return { ok, api: rank, shown };
        }, { timeoutMs: 30_000, intervalMs: 500 });
        assert(s.api.place > 100, `racer ${WEAK_RACER_ID} placed ${s.api.place} of ${s.api.of}: inside the top 100`);
        assert(s.api.of >= total, `the class counts ${s.api.of} racers, expected ${total} or more`);
        const pages = await poll('the leaderboard to page forward', async () => {
          await weak.locator('[data-testid=leaderboard-next]').click({ timeout: 5_000 });
          const page = await weak.evaluate(() => document.querySelector('[data-testid=leaderboard]')?.getAttribute('data-page'));
          const first = await weak.evaluate(() => document.querySelector('[data-testid=leaderboard-row]')?.getAttribute('data-place'));
          return { ok: page === '1' && Number(first) > 1, page, first };
        }, { timeoutMs: 10_000, intervalMs: 500 });
        assert(weakErrors.length === 0, `the third page logged ${weakErrors.length} error(s):\n  ${weakErrors.join('\n  ')}`);
        await weak.screenshot({ path: join(ARTIFACTS, 'rank.png'), fullPage: true });
        return `"${s.shown.text}" (percentile shown: top ${percentileShown.top.toFixed(1)}%), page 2 starts at place ${pages.first}; rank.png`;
      });
    } finally {
      await weakContext.close().catch(() => {});
    }

    // An unreachable API: an error banner, not a blank page. Its console errors (the failed
    // fetches) are expected and not counted.
    await check('an unreachable API shows the api-error banner', async () => {
      const context2 = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      try {
        const page2 = await context2.newPage();
        const response = await page2.goto(`${base}/?api=${encodeURIComponent('http://127.0.0.1:1/api')}`, { waitUntil: 'load', timeout: 30_000 });
        assert(response && response.ok(), `GET /?api=...: ${response?.status()}`);
        await page2.locator('[data-testid=api-error]').waitFor({ state: 'visible', timeout: 20_000 });
        const shown = await page2.evaluate(() => ({
          text: document.body.innerText.trim().length,
          banner: document.querySelector('[data-testid=api-error]')?.textContent.trim() ?? '',
          racePanel: Boolean(document.querySelector('[data-testid=race-panel]')),
        }));
        assert(shown.banner.length > 0, 'the api-error banner is empty');
        assert(shown.text > shown.banner.length, `the page shows nothing but the banner (${shown.text} characters of text)`);
        await page2.screenshot({ path: join(ARTIFACTS, 'api-error.png'), fullPage: true });
        return `banner "${shown.banner.slice(0, 80)}", race panel ${shown.racePanel ? 'shown' : 'absent'}; api-error.png`;
      } finally {
        await context2.close();
      }
    });
  } finally {
    const failed = checks.some((c) => !c.ok);
    if (page && checks.some((c) => !c.ok)) {
      await page.screenshot({ path: join(ARTIFACTS, 'failure.png'), fullPage: true }).catch(() => {});
    }
    await writeFile(join(ARTIFACTS, 'console.log'), consoleLog.join('\n') + '\n').catch(() => {});
    if (browser) await browser.close().catch(() => {});
    await Promise.all([...children].map((child) => child.stop()));
    if (failed) {
      for (const child of allChildren) console.error(child.report());
      if (consoleErrors.length) console.error(`--- browser console errors:\n  ${consoleErrors.join('\n  ')}`);
    }
    await rm(dataDir, { recursive: true, force: true }).catch(() => {});
    temporaryDirs.delete(dataDir);
  }
}

let ok = false;
try {
  await main();
  ok = checks.length > 0 && checks.every((c) => c.ok);
} catch (error) {
  if (!(error instanceof CheckFailed)) {
    console.error(`[e2e ${elapsed()}] error: ${error instanceof Error ? error.stack : error}`);
  } else if (!checks.some((c) => !c.ok)) {
    console.error(`[e2e ${elapsed()}] ${error.message}`);
  }
  // On failure, the report of the children and the console was printed by main's finally.
  if (!checks.some((c) => !c.ok)) for (const child of allChildren) console.error(child.report());
}
console.log(`\n[e2e] ${checks.filter((c) => c.ok).length}/${checks.length} checks passed in ${((Date.now() - T0) / 1000).toFixed(1)}s` +
  `${ok ? '' : ' — FAILED'}; artifacts in ${ARTIFACTS}`);
for (const c of checks) console.log(`  ${c.ok ? 'PASS' : 'FAIL'} ${c.name}${c.ok ? '' : `: ${c.message}`}`);
process.exit(ok ? 0 : 1);
