// Typed calls of the Alleycat HTTP API. Every failure becomes an ApiError that says what failed.

import { parseClientConfig } from './config';
import type {
  ClientConfig,
  HistoryLink,
  LeaderboardView,
  RaceList,
  RaceView,
  RacerBestsView,
  RacerRank,
} from './types';

export type Fetch = typeof fetch;

/** A failed API call: what was asked (`what`), the HTTP status if any, and the server's reason. */
export class ApiError extends Error {
  constructor(
    readonly what: string,
    readonly status: number | null,
    readonly reason: string,
  ) {
    super(`${what} failed: ${status === null ? '' : `HTTP ${status}, `}${reason}`);
    this.name = 'ApiError';
  }
}

/**
 * The `error` of an `{"error": …}` body (the API's), or the `message` of a `{"message": …}` body
 * (API Gateway's own, e.g. `Forbidden`), else a short piece of the body, else the status text.
 */
export async function reasonOf(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body === 'object' && body !== null) {
      const { error, message } = body as { error?: unknown; message?: unknown };
      if (typeof error === 'string') return error;
      if (typeof message === 'string') return message;
    }
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200) || response.statusText || 'no reason given';
}

/** The JSON body of a response, or an ApiError saying it is not JSON. */
export async function jsonOf<T>(what: string, response: Response): Promise<T> {
  try {
    return (await response.json()) as T;
  } catch {
    throw new ApiError(what, response.status, 'the answer is not JSON');
  }
}

export class Api {
  constructor(
    readonly base: string,
    private readonly fetchImpl: Fetch = (...args) => fetch(...args),
  ) {}

  /** GETs `path` (with `query`) and returns the JSON body; `notFound` is returned on 404 if given. */
  async get<T>(what: string, path: string, query: Record<string, string | number> = {}, notFound?: T): Promise<T> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) params.set(key, String(value));
    const qs = params.toString();
    const response = await this.send(what, 'GET', `${this.base}${path}${qs ? `?${qs}` : ''}`);
    if (response.status === 404 && notFound !== undefined) return notFound;
    if (!response.ok) throw new ApiError(what, response.status, await reasonOf(response));
    return jsonOf<T>(what, response);
  }

  /**
   * Sends a request without a body to `url` with `headers` (and `accept: application/json`);
   * a network failure becomes an ApiError, any HTTP answer is returned as is.
   */
  async send(what: string, method: string, url: string, headers: Record<string, string> = {}): Promise<Response> {
    try {
      return await this.fetchImpl(url, { method, headers: { accept: 'application/json', ...headers } });
    } catch (error) {
      throw new ApiError(what, null, `network error (${(error as Error).message || 'unreachable'})`);
    }
  }

  async config(): Promise<ClientConfig> {
    const body = await this.get<unknown>('Loading the configuration (GET /config)', '/config');
    try {
      return parseClientConfig(body);
    } catch (error) {
      throw new ApiError('Loading the configuration (GET /config)', 200, (error as Error).message);
    }
  }

  races(classId: number, limit = 20): Promise<RaceList> {
    return this.get(`Races of class ${classId}`, '/races', { classId, limit });
  }

  race(raceId: number, classId: number): Promise<RaceView> {
    return this.get(`Results of race ${raceId} (class ${classId})`, `/races/${raceId}`, { classId });
  }

  /** A page of the class leaderboard: the first, or the one `cursor` (a page's `next`) names. */
  leaderboard(classId: number, limit = 20, cursor: string | null = null): Promise<LeaderboardView> {
    const query: Record<string, string | number> = { classId, limit };
    if (cursor !== null) query.cursor = cursor;
    return this.get(`Leaderboard of class ${classId}`, '/leaderboard', query);
  }

  /** The racer's place on the class leaderboard and the class size, or `null` if not on it. */
  rank(racerId: number, classId: number): Promise<RacerRank | null> {
    return this.get<RacerRank | null>(
      `Rank of racer ${racerId} (class ${classId})`,
      `/racers/${racerId}/rank`,
      { classId },
      null,
    );
  }

  /** The racer's personal-record curve, or `null` if they never rode the class. */
  bests(racerId: number, classId: number): Promise<RacerBestsView | null> {
    return this.get<RacerBestsView | null>(
      `Personal records of racer ${racerId} (class ${classId})`,
      `/racers/${racerId}/bests`,
      { classId },
      null,
    );
  }

  historyLink(classId: number): Promise<HistoryLink> {
    return this.get(`History link of class ${classId}`, `/history/${classId}`);
  }
}
