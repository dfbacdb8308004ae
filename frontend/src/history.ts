// The class history: for each second, the all-time top-K racers' best output at that second.
// Fetched once per class selection: `GET /history/{classId}` gives a short-lived URL of the gzip
// JSON object `{"classId":3,"topK":100,"updatedAt":…,"seconds":{"1":{"8":123.45,…},…}}`, which
// the browser's DecompressionStream unzips.

import { ApiError, type Api, type Fetch } from './api';
import type { Entry } from './ranking';
import { compareEntries } from './ranking';

export interface ClassHistory {
  classId: number;
  /** K of the object (0 = every racer). */
  topK: number;
  updatedAt: number;
  /** Second → entries, best first (ties by lower racer id, as the backend ranks). */
  seconds: Map<number, Entry[]>;
}

export function emptyHistory(classId: number, topK: number): ClassHistory {
  return { classId, topK, updatedAt: 0, seconds: new Map() };
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
    topK: modern && typeof object.topK === 'number' ? object.topK : defaultTopK,
    updatedAt: modern && typeof object.updatedAt === 'number' ? object.updatedAt : 0,
    seconds: new Map(),
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
 * Fetches a class's history. A class nobody has finished a race in has no object yet: that is an
 * empty history, not an error.
 */
export async function fetchHistory(
  api: Api,
  classId: number,
  defaultTopK: number,
  fetchImpl: Fetch = (...args) => fetch(...args),
): Promise<ClassHistory> {
  const link = await api.historyLink(classId);
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
