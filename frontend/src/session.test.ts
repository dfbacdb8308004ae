// The page's flow around the claim, with a fake embedded stack (HTTP and MQTT): the racer is
// claimed before the first message, a racer taken by another rider is not ridden and the page
// says so, and the claim is kept when the ride ends.

import { EventEmitter } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import type { IClientOptions } from 'mqtt';
import type { KeyValueStore } from './identity';
import type { ClientLike } from './mqtt';
import { createSession } from './session';

const WINDOW_SECONDS = 3600;
const identity = { identityId: `local:${'9'.repeat(32)}`, token: 'e'.repeat(64) };

class FakeClient extends EventEmitter {
  connected = false;
  incomingStore = {} as ClientLike['incomingStore'];
  outgoingStore = {} as ClientLike['outgoingStore'];
  published: string[] = [];
  subscribe() {
    return this;
  }
  unsubscribe() {
    return this;
  }
  async publishAsync(_topic: string, payload: string) {
    this.published.push(payload);
    return undefined;
  }
  reconnect() {
    return this;
  }
  end() {
    return this;
  }
}

class MapStore implements KeyValueStore {
  readonly items = new Map<string, string>();
  getItem(key: string) {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.items.set(key, value);
  }
  removeItem(key: string) {
    this.items.delete(key);
  }
}

/**
 * A fake stack: racers in `taken` are held by someone else; every request is logged, with the
 * number of messages published before it (to tell the claim came first).
 */
function fakeStack(taken: Set<number>, claimAnswer?: () => Response, routes: Record<string, (url: URL) => Response> = {}) {
  const client = new FakeClient();
  const requests: {
    method: string;
    path: string;
    authorization?: string;
    publishedBefore: number;
    publishedBeforeAnswer?: number;
  }[] = [];
  const mqttOptions: IClientOptions[] = [];
  const raced = new Set<number>();
  const raceId = () => Math.floor(Date.now() / (WINDOW_SECONDS * 1000));
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const request: (typeof requests)[number] = {
      method,
      path: url.pathname,
      authorization: headers.authorization,
      publishedBefore: client.published.length,
    };
    requests.push(request);
    const claim = /^\/api\/racers\/(\d+)\/claim$/.exec(url.pathname);
    if (method === 'POST' && url.pathname === '/_local/identity') return Response.json(identity);
    if (method === 'POST' && claim) {
      const racerId = Number(claim[1]);
      if (headers.authorization !== `Alleycat ${identity.identityId}:${identity.token}`) {
        return Response.json({ message: 'Forbidden' }, { status: 403 });
      }
      if (claimAnswer) return claimAnswer();
      if (taken.has(racerId)) {
        return Response.json({ error: `racer ${racerId} is held by another rider` }, { status: 409 });
      }
      raced.add(racerId);
      // Answer a little later, noting what was published until then: nothing, if the page waits.
      await new Promise((resolve) => setTimeout(resolve, 20));
      request.publishedBeforeAnswer = client.published.length;
      return Response.json({ racerId, identityId: identity.identityId, expiresAt: Date.now() + 86_400_000 });
    }
    if (method !== 'GET') return Response.json({ error: 'no such route' }, { status: 404 });
    const route = routes[url.pathname];
    if (route) return route(url);
    switch (url.pathname) {
      case '/api/history/2':
        return Response.json({ classId: 2, url: null, expiresAt: null });
      case '/api/config':
        return Response.json({
          platform: 'local',
          region: '',
          identityPoolId: '',
          mqttEndpoint: 'ws://127.0.0.1:9001/mqtt',
          publishTopic: 'alleycat-publish',
          subscribeTopicPrefix: 'alleycat-subscribe/',
          raceSeconds: 3,
          windowSeconds: WINDOW_SECONDS,
          topK: 100,
        });
      case '/api/leaderboard':
        return Response.json({
          classId: 2,
          entries: [...raced].map((racerId) => ({ racerId, name: 'x', best: 1, raceId: raceId(), updatedAt: 0 })),
        });
      case '/api/races':
        return Response.json({
          classId: 2,
          races: raced.size ? [{ raceId: raceId(), racers: raced.size, leader: null, updatedAt: 0, over: true }] : [],
        });
      default:
        if (url.pathname.startsWith('/api/races/')) {
          return Response.json({
            classId: 2,
            raceId: raceId(),
            updatedAt: 0,
            over: true,
            standings: [...raced].map((racerId, i) => ({ rank: i + 1, racerId, output: 1 })),
          });
        }
        return Response.json({ error: 'not found' }, { status: 404 });
    }
  }) as typeof fetch;
  const session = createSession({ search: '?speed=1000', origin: 'http://127.0.0.1:8080' }, undefined, {
    fetch: fetchImpl,
    storage: new MapStore(),
    mqttConnect: (_url, options) => {
      mqttOptions.push(options);
      queueMicrotask(() => {
        client.connected = true;
        client.emit('connect');
      });
      return client as unknown as ClientLike;
    },
  });
  return { session, client, requests, mqttOptions };
}

describe('the race flow with claims', () => {
  it('connects MQTT as the local identity', async () => {
    const { session, mqttOptions } = fakeStack(new Set());
    await session.loadConfig();
    expect(session.state.identityId).toBe(identity.identityId);
    expect(mqttOptions).toHaveLength(1);
    expect(mqttOptions[0]).toMatchObject({
      clientId: identity.identityId,
      username: identity.identityId,
      password: identity.token,
    });
    session.dispose();
  });

  it('does not ride a racer another rider holds, says so, and lets the rider pick another', async () => {
    const { session, client, requests } = fakeStack(new Set([7]));
    await session.loadConfig();
    session.selectClass(2);
    session.selectRacer(7);
    await session.startRace();
    expect(session.state.phase).toBe('idle');
    expect(session.state.claiming).toBe(false);
    expect(session.state.claimProblem).toEqual({
      kind: 'taken',
      message: 'Racer 7 is already taken by another rider — pick another racer',
    });
    expect(session.state.raceId).toBeNull();
    expect(client.published).toEqual([]);
    expect(requests.filter((r) => r.method === 'POST' && r.path.startsWith('/api/'))).toHaveLength(1);

    // another racer: the message goes, and that one is claimed and ridden
    session.selectRacer(8);
    expect(session.state.claimProblem).toBeNull();
    await session.startRace();
    expect(session.state.phase).toBe('finished');
    expect(client.published).toHaveLength(3);
    expect(JSON.parse(client.published[0]!)).toMatchObject({ racerId: 8, classId: 2, second: 1 });
    session.dispose();
  });

  it('claims before the first message, and keeps the claim after the ride', async () => {
    const { session, client, requests } = fakeStack(new Set());
    await session.loadConfig();
    session.selectClass(2);
    session.selectRacer(7);
    await session.startRace();
    expect(session.state.phase).toBe('finished');
    expect(session.state.claimProblem).toBeNull();
    expect(session.state.claim).toMatchObject({ racerId: 7, identityId: identity.identityId });
    const claims = requests.filter((r) => r.path === '/api/racers/7/claim');
    expect(claims).toEqual([
      {
        method: 'POST',
        path: '/api/racers/7/claim',
        authorization: `Alleycat ${identity.identityId}:${identity.token}`,
        publishedBefore: 0,
        publishedBeforeAnswer: 0,
      },
    ]);
    expect(client.published).toHaveLength(3);
    expect(requests.some((r) => r.method === 'DELETE')).toBe(false);

    // riding again claims again (which renews the claim)
    await session.startRace();
    expect(requests.filter((r) => r.path === '/api/racers/7/claim' && r.method === 'POST')).toHaveLength(2);
    session.dispose();
  });

  it('says what failed when the claim fails, and does not ride', async () => {
    const { session, client } = fakeStack(new Set(), () => Response.json({ error: 'internal error' }, { status: 500 }));
    await session.loadConfig();
    session.selectRacer(7);
    await session.startRace();
    expect(session.state.phase).toBe('idle');
    expect(session.state.claimProblem).toEqual({
      kind: 'failed',
      message: 'Claiming racer 7 (POST /racers/7/claim) failed: HTTP 500, internal error',
    });
    expect(client.published).toEqual([]);
    session.dispose();
  });
});

describe('the page around a race', () => {
  it('reloads the class history before each race, and asks for no object while there is none', async () => {
    const { session, requests } = fakeStack(new Set());
    await session.loadConfig();
    session.selectClass(2);
    session.selectRacer(7);
    await vi.waitFor(() => expect(session.state.history?.classId).toBe(2));
    const links = () => requests.filter((r) => r.path === '/api/history/2').length;
    const selected = links();
    await session.startRace();
    expect(links()).toBe(selected + 1);
    await session.startRace();
    expect(links()).toBe(selected + 2);
    expect(session.state.history?.exists).toBe(false);
    expect(requests.every((r) => r.path.startsWith('/api/') || r.path === '/_local/identity')).toBe(true);
    expect(session.state.errors).toEqual([]);
    session.dispose();
  });

  it('shows the percentile at the current second from the history sample', async () => {
    const history = {
      classId: 2,
      topK: 100,
      updatedAt: 1,
      seconds: { '1': { '500': 400 } },
      // Every sampled best far above any ride of the page, but one far below.
      sample: {
        size: 512,
        racers: 3000,
        members: [400, 390, 380, 10].map((best, i) => [i + 1, [best, best, best]]),
      },
    };
    const { session } = fakeStack(new Set(), undefined, {
      '/api/history/2': () => Response.json({ classId: 2, url: 'http://objects/class-2.json.gz', expiresAt: 1 }),
    });
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async () => Response.json(history)) as typeof fetch;
    try {
      await session.loadConfig();
      session.selectClass(2);
      session.selectRacer(7);
      await session.startRace();
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(session.state.history?.sample?.racers).toBe(3000);
    expect(session.state.percentile).toMatchObject({ second: 3, top: (100 * 4) / 5, greater: 3, of: 4, racers: 3000 });
    expect(session.state.percentile?.output).toBe(session.state.series.self[2]);
    session.dispose();
  });

  it('says before the ride that the picked racer is riding now, and rides on the next press', async () => {
    const raceId = Math.floor(Date.now() / (WINDOW_SECONDS * 1000));
    const open = { raceId, racers: 2, leader: null, updatedAt: 0, over: false };
    // Racer 42 rides in the open race (someone else), and whoever this page rides.
    let ridden = (): number[] => [];
    const { session, client, requests } = fakeStack(new Set(), undefined, {
      '/api/races': () => Response.json({ classId: 2, races: [open] }),
      [`/api/races/${raceId}`]: () =>
        Response.json({
          classId: 2,
          raceId,
          updatedAt: 0,
          over: false,
          standings: [150, 42, ...ridden()].map((racerId, i) => ({ rank: i + 1, racerId, output: 200 - i })),
        }),
    });
    ridden = () => [...new Set(client.published.map((m) => (JSON.parse(m) as { racerId: number }).racerId))];
    await session.loadConfig();
    session.selectClass(2);
    session.selectRacer(42);
    // Found out at the press (the list was not loaded yet): no message goes out.
    await session.startRace();
    expect(session.state.ridingNow).toEqual([{ racerId: 42, raceIds: [raceId] }]);
    expect(session.state.phase).toBe('idle');
    expect(client.published).toEqual([]);
    // Pressed again with the warning shown: the rider chose to ride.
    await session.startRace();
    expect(session.state.phase).toBe('finished');
    expect(client.published).toHaveLength(3);
    expect(requests.filter((r) => r.path === '/api/racers/42/claim')).toHaveLength(2);
    // Another racer is not riding: it rides on the first press.
    session.selectRacer(8);
    await session.startRace();
    expect(client.published).toHaveLength(6);
    session.dispose();
  });

  it('shows the rank and pages through the leaderboard', async () => {
    const entries = Array.from({ length: 45 }, (_, i) => ({ place: i + 1, racerId: 200 + i, name: 'x', best: 900 - i, raceId: 1, updatedAt: 0 }));
    const { session, requests } = fakeStack(new Set(), undefined, {
      '/api/leaderboard': (url) => {
        const start = Number(url.searchParams.get('cursor') ?? 0);
        const limit = Number(url.searchParams.get('limit'));
        const next = start + limit < entries.length ? String(start + limit) : null;
        return Response.json({ classId: 2, entries: entries.slice(start, start + limit), next });
      },
      '/api/racers/7/rank': () => Response.json({ classId: 2, racerId: 7, place: 46, of: 46, best: 1, raceId: 1 }),
    });
    await session.loadConfig();
    session.selectClass(2);
    session.selectRacer(7);
    await vi.waitFor(() => expect(session.state.rank).not.toBeNull());
    // Not on the first page, but more pages follow: the rank says where.
    expect(session.state.rank).toMatchObject({ place: 46, of: 46 });
    expect(session.state.leaderboard.map((e) => e.racerId)).toEqual(entries.slice(0, 20).map((e) => e.racerId));
    expect(session.state.leaderboardHasNext).toBe(true);
    expect(session.state.leaderboardHasPrevious).toBe(false);
    await session.nextLeaderboardPage();
    await session.nextLeaderboardPage();
    expect(session.state.leaderboard.map((e) => e.racerId)).toEqual(entries.slice(40).map((e) => e.racerId));
    expect([session.state.leaderboardPage, session.state.leaderboardFirstPlace, session.state.leaderboardHasNext]).toEqual([2, 41, false]);
    await session.previousLeaderboardPage();
    expect(session.state.leaderboard[0]?.racerId).toBe(220);
    expect(session.state.leaderboardHasPrevious).toBe(true);
    expect(requests.filter((r) => r.path === '/api/racers/7/rank').length).toBeGreaterThan(0);
    session.dispose();
  });

  it('asks no rank when the racer cannot be on the board', async () => {
    const { session, requests } = fakeStack(new Set());
    await session.loadConfig();
    session.selectClass(2);
    session.selectRacer(7);
    await vi.waitFor(() => expect(requests.some((r) => r.path === '/api/history/2')).toBe(true));
    expect(requests.some((r) => r.path.endsWith('/rank'))).toBe(false);
    expect(session.state.rank).toBeNull();
    session.dispose();
  });
});
