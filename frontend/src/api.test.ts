import { describe, expect, it } from 'vitest';
import { Api, ApiError } from './api';

function api(handler: (url: string) => Response | Promise<Response>) {
  const calls: string[] = [];
  const fetchImpl = (async (input: RequestInfo | URL) => {
    calls.push(String(input));
    return handler(String(input));
  }) as typeof fetch;
  return { client: new Api('http://h/api', fetchImpl), calls };
}

describe('Api', () => {
  it('builds the routes and query strings', async () => {
    const { client, calls } = api(() => Response.json({ classId: 1, races: [], entries: [], standings: [] }));
    await client.races(1, 5);
    await client.race(5400172, 3);
    await client.leaderboard(2, 20);
    expect(calls).toEqual([
      'http://h/api/races?classId=1&limit=5',
      'http://h/api/races/5400172?classId=3',
      'http://h/api/leaderboard?classId=2&limit=20',
    ]);
  });

  it('says what failed, with the API\u2019s own reason', async () => {
    const { client } = api(() => Response.json({ error: 'classId must be an integer from 1 to 6' }, { status: 400 }));
    const error = (await client.leaderboard(9).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(400);
    expect(error.message).toBe('Leaderboard of class 9 failed: HTTP 400, classId must be an integer from 1 to 6');
  });

  it('reports network errors and non-JSON answers', async () => {
    const down = api(() => Promise.reject(new TypeError('Failed to fetch')));
    await expect(down.client.races(1)).rejects.toThrow('Races of class 1 failed: network error (Failed to fetch)');
    const html = api(() => new Response('<html>', { status: 200 }));
    await expect(html.client.races(1)).rejects.toThrow(/not JSON/);
    const gateway = api(() => new Response('Bad Gateway', { status: 502, statusText: 'Bad Gateway' }));
    await expect(gateway.client.races(1)).rejects.toThrow('HTTP 502, Bad Gateway');
  });

  it('pages the leaderboard with a cursor, and asks a racer\u2019s rank', async () => {
    const { client, calls } = api((url) =>
      url.includes('/rank')
        ? Response.json({ classId: 2, racerId: 7, place: 137, of: 1100, best: 151.5, raceId: 9 })
        : Response.json({ classId: 2, entries: [], next: null }),
    );
    await client.leaderboard(2, 20, 'abc/+=');
    await expect(client.rank(7, 2)).resolves.toMatchObject({ place: 137, of: 1100 });
    expect(calls).toEqual([
      'http://h/api/leaderboard?classId=2&limit=20&cursor=abc%2F%2B%3D',
      'http://h/api/racers/7/rank?classId=2',
    ]);
    const missing = api(() => Response.json({ message: 'racer 7 has no leaderboard row in class 2' }, { status: 404 }));
    await expect(missing.client.rank(7, 2)).resolves.toBeNull();
  });

  it('takes a missing personal-record curve as none', async () => {
    const { client } = api(() => Response.json({ error: 'no bests of racer 7 in class 1' }, { status: 404 }));
    await expect(client.bests(7, 1)).resolves.toBeNull();
    await expect(client.race(1, 1)).rejects.toThrow(/HTTP 404/);
  });

  it('validates GET /config', async () => {
    const { client } = api(() => Response.json({ platform: 'local' }));
    await expect(client.config()).rejects.toThrow(/Loading the configuration .* failed: HTTP 200, config field region/);
  });
});
