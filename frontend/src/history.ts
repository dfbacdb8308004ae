// The class history: for each second, the all-time top-K racers' best output at that second,
// and (newer objects) a sample of every racer's bests that places anyone among all riders ever.
// Fetched at each class selection and before each race: `GET /history/{classId}` gives a
// short-lived URL of the gzip JSON object
// `{"classId":3,"topK":100,"updatedAt":…,"seconds":{"1":{"8":123.45,…},…},"sample":{…}}`, which
// the browser's DecompressionStream unzips, or `url: null` while the class has none.

import { ApiError, type Api, type Fetch } from './api';
import type { Entry } from './ranking';
import { compareEntries } from './ranking';

export interface ClassHistory {
  classId: number;
  /** Whether the class has a history object (false: nobody has finished a race in it yet). */
  exists: boolean;
  /** K of the object (0 = every racer). */
  topK: number;
  updatedAt: number;
  /** Second → entries, best first (ties by lower racer id, as the backend ranks). */
  seconds: Map<number, Entry[]>;
  /** The sample of all riders ever, or `null` (an older object: no percentile yet). */
  sample: HistorySample | null;
}

/**
 * A sample of the class's racers (every racer who ever rode it is a candidate; the backend keeps
 * those with the smallest hash of their id), each racer's all-time best at every second.
 */
export interface HistorySample {
  /** Capacity of the sample. */
  size: number;
  /** Estimated number of racers in the class (exact while fewer than `size`). */
  racers: number;
  /** The sampled bests at `second` (1-based), whole output units, best first; empty if none. */
  at(second: number): readonly number[];
}

/** Where an output stands among all riders at one second. */
export interface Percentile {
  second: number;
  /** The output placed. */
  output: number;
  /** "Top x %": 100 × (sampled bests greater than yours + 1) / (sampled bests + 1). */
  top: number;
  /** Sampled bests greater than the output. */
  greater: number;
  /** Sampled bests at that second. */
  of: number;
  /** Estimated racers in the class. */
  racers: number;
}

export function emptyHistory(classId: number, topK: number): ClassHistory {
  return { classId, exists: false, topK, updatedAt: 0, seconds: new Map(), sample: null };
}

/**
 * Reads the `sample` field of a history object: the one place that knows its wire encoding
 * (`{"size":S,"racers":N,"members":[[racerId,[o1,o2,…]],…]}`, each member's all-time best at
 * second 1, 2, … in whole output units, `null` where it has none), so a change of encoding is a
 * change here only. `null` when the object has no sample (older objects) or it is malformed.
 */
export function readSample(raw: unknown): HistorySample | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const { size, racers, members } = raw as Record<string, unknown>;
  if (typeof size !== 'number' || typeof racers !== 'number' || !Array.isArray(members)) return null;
  const lists: number[][] = [];
  for (const member of members) {
    if (!Array.isArray(member) || !Array.isArray(member[1])) return null;
    (member[1] as unknown[]).forEach((o, index) => {
      if (typeof o !== 'number' || !Number.isFinite(o)) return;
      (lists[index] ??= []).push(o);
    });
  }
  for (const list of lists) list?.sort((a, b) => b - a);
  return { size, racers, at: (second) => lists[second - 1] ?? [] };
}

/**
 * The percentile of a live `output` at `second` among the sampled racers' all-time bests there:
 * "top x %" with x = 100 × (greater + 1) / (count + 1), where greater counts the sampled bests
 * strictly above the output. The sample holds whole units rounded down, so the output is rounded
 * down too: comparing at the same resolution. `null` without a sample, or with nobody sampled at
 * that second.
 */
export function percentileAt(sample: HistorySample | null, second: number, output: number): Percentile | null {
  if (sample === null) return null;
  const bests = sample.at(second);
  if (bests.length === 0) return null;
  const mine = Math.floor(output);
  // Best first: binary search for the first best not greater than `mine`.
  let lo = 0;
  let hi = bests.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bests[mid]! > mine) lo = mid + 1;
    else hi = mid;
  }
  return {
    second,
    output,
    top: (100 * (lo + 1)) / (bests.length + 1),
    greater: lo,
    of: bests.length,
    racers: sample.racers,
  };
}

/** "3" for 3 %, "0.4" below 1 %: rounded up, so "top 3 %" never claims more than it is. */
export function formatTop(top: number): string {
  if (top >= 1) return String(Math.min(100, Math.ceil(top)));
  return String(Math.max(0.1, Math.ceil(top * 10) / 10));
}

/** Whether `bytes` start with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Gunzips with the platform's DecompressionStream (browsers, Node 18+). */
export async function gunzip(bytes: Uint8Array): Promise<string> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}

/**
 * Parses a history object's JSON: the current shape (`seconds` under metadata) or the original
 * Alleycat shape (seconds at the top level), as the backend's codec reads both.
 */
export function parseHistory(json: unknown, classId: number, defaultTopK: number): ClassHistory {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error('the history object is not a JSON object');
  }
  const object = json as Record<string, unknown>;
  const modern = typeof object.seconds === 'object' && object.seconds !== null;
  const secondsObject = (modern ? object.seconds : object) as Record<string, unknown>;
  if (modern && typeof object.classId === 'number' && object.classId !== classId) {
    throw new Error(`the history object is for class ${object.classId}, not ${classId}`);
  }
  const history: ClassHistory = {
    classId,
    exists: true,
    topK: modern && typeof object.topK === 'number' ? object.topK : defaultTopK,
    updatedAt: modern && typeof object.updatedAt === 'number' ? object.updatedAt : 0,
    seconds: new Map(),
    sample: modern ? readSample(object.sample) : null,
  };
  for (const [secondText, racers] of Object.entries(secondsObject)) {
    const second = Number(secondText);
    if (!/^\d+$/.test(secondText) || second < 1) continue;
    if (typeof racers !== 'object' || racers === null) continue;
    const entries: Entry[] = [];
    for (const [racerText, output] of Object.entries(racers as Record<string, unknown>)) {
      if (!/^\d+$/.test(racerText) || typeof output !== 'number' || !Number.isFinite(output)) continue;
      entries.push({ racerId: Number(racerText), output });
    }
    entries.sort(compareEntries);
    history.seconds.set(second, entries);
  }
  return history;
}

/** Decodes a fetched object: gunzip if gzip (a proxy may already have decoded it), then parse. */
export async function decodeHistory(bytes: Uint8Array, classId: number, defaultTopK: number): Promise<ClassHistory> {
  const text = isGzip(bytes) ? await gunzip(bytes) : new TextDecoder().decode(bytes);
  return parseHistory(JSON.parse(text), classId, defaultTopK);
}

/**
 * Fetches a class's history. A class nobody has finished a race in has no object yet: the API says
 * so (`url: null`) and nothing is fetched; that is an empty history, not an error. (A 404 of the
 * object, from a backend that signs a URL regardless, is taken the same way.)
 */
export async function fetchHistory(
  api: Api,
  classId: number,
  defaultTopK: number,
  fetchImpl: Fetch = (...args) => fetch(...args),
): Promise<ClassHistory> {
  const link = await api.historyLink(classId);
  if (link.url === null) return emptyHistory(classId, defaultTopK);
  const what = `History of class ${classId}`;
  let response: Response;
  try {
    response = await fetchImpl(link.url);
  } catch (error) {
    throw new ApiError(what, null, `network error (${(error as Error).message || 'unreachable'})`);
  }
  if (response.status === 404) return emptyHistory(classId, defaultTopK);
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    throw new ApiError(what, response.status, text.trim().slice(0, 200) || response.statusText);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  try {
    return await decodeHistory(bytes, classId, defaultTopK);
  } catch (error) {
    throw new ApiError(what, response.status, `unreadable object (${(error as Error).message})`);
  }
}
