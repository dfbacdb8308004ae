import { describe, expect, it } from 'vitest';
import { Api, ApiError } from './api';
import {
  forgetLocalIdentity,
  loadLocalIdentity,
  localIdentityKey,
  localRider,
  parseLocalIdentity,
  type KeyValueStore,
} from './identity';

const first = { identityId: `local:${'a'.repeat(32)}`, token: 'b'.repeat(64) };
const second = { identityId: `local:${'c'.repeat(32)}`, token: 'd'.repeat(64) };

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

interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
}

/** A stack that mints `identities` in turn and accepts only the tokens it minted. */
function stack(identities: { identityId: string; token: string }[], options: { mint?: () => Response } = {}) {
  const calls: Call[] = [];
  const minted: typeof identities = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const call = {
      method: init?.method ?? 'GET',
      url: String(input),
      headers: { ...(init?.headers as Record<string, string>) },
    };
    calls.push(call);
    if (call.method === 'POST' && call.url === 'http://127.0.0.1:8080/_local/identity') {
      if (options.mint) return options.mint();
      const next = identities[minted.length];
      if (next === undefined) return new Response('no more', { status: 500 });
      minted.push(next);
      return Response.json(next);
    }
    if (call.method === 'GET' && call.url === 'http://127.0.0.1:8080/api/config') {
      const auth = call.headers.authorization;
      const ok = minted.some((i) => auth === `Alleycat ${i.identityId}:${i.token}`);
      return ok ? Response.json({ platform: 'local' }) : Response.json({ message: 'Forbidden' }, { status: 403 });
    }
    return new Response('not found', { status: 404 });
  }) as typeof fetch;
  return { api: new Api('http://127.0.0.1:8080/api', fetchImpl), calls, minted };
}

describe('the local identity', () => {
  it('is obtained from POST /_local/identity on the stack and stored', async () => {
    const s = stack([first]);
    const store = new MapStore();
    const identity = await loadLocalIdentity(s.api, store);
    expect(identity).toEqual(first);
    expect(s.calls.map((c) => `${c.method} ${c.url}`)).toEqual(['POST http://127.0.0.1:8080/_local/identity']);
    expect(localIdentityKey(s.api.base)).toBe('alleycat.identity:http://127.0.0.1:8080');
    expect(JSON.parse(store.getItem('alleycat.identity:http://127.0.0.1:8080')!)).toEqual(first);
  });

  it('survives a reload: the stored identity is reused while the stack accepts it', async () => {
    const s = stack([first, second]);
    const store = new MapStore();
    await loadLocalIdentity(s.api, store);
    // a reload: a new page with the same storage
    const again = await loadLocalIdentity(s.api, store);
    expect(again).toEqual(first);
    expect(s.minted).toEqual([first]);
    expect(s.calls.at(-1)).toEqual({
      method: 'GET',
      url: 'http://127.0.0.1:8080/api/config',
      headers: { accept: 'application/json', authorization: `Alleycat ${first.identityId}:${first.token}` },
    });
  });

  it('is replaced when the stack refuses the stored one (a stack started afresh)', async () => {
    const s = stack([second]);
    const store = new MapStore();
    store.setItem(localIdentityKey(s.api.base), JSON.stringify(first));
    const identity = await loadLocalIdentity(s.api, store);
    expect(identity).toEqual(second);
    expect(JSON.parse(store.getItem(localIdentityKey(s.api.base))!)).toEqual(second);
  });

  it('is replaced when the stored one is unreadable, and forgotten on request', async () => {
    const s = stack([first]);
    const store = new MapStore();
    store.setItem(localIdentityKey(s.api.base), '{"identityId":"local:x"}');
    expect(await loadLocalIdentity(s.api, store)).toEqual(first);
    forgetLocalIdentity(s.api.base, store);
    expect(store.items.size).toBe(0);
  });

  it('is kept per stack', () => {
    expect(localIdentityKey('http://127.0.0.1:8080/api')).not.toBe(localIdentityKey('http://127.0.0.1:8081/api'));
    expect(localIdentityKey('http://127.0.0.1:8080/api')).toBe(localIdentityKey('http://127.0.0.1:8080/other'));
  });

  it('says what failed when the stack gives none', async () => {
    const refused = stack([], { mint: () => new Response('Not Found', { status: 404, statusText: 'Not Found' }) });
    const error = (await loadLocalIdentity(refused.api, new MapStore()).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe(
      'Getting an identity from the embedded stack (POST /_local/identity) failed: HTTP 404, Not Found',
    );
    const bad = stack([], { mint: () => Response.json({ identityId: 'local:x' }) });
    await expect(loadLocalIdentity(bad.api, new MapStore())).rejects.toThrow(/HTTP 200, the identity has no valid token/);
  });

  it('validates its shape', () => {
    expect(parseLocalIdentity(first)).toEqual(first);
    expect(() => parseLocalIdentity(null)).toThrow(/not a JSON object/);
    expect(() => parseLocalIdentity({ token: 't' })).toThrow(/identityId/);
    expect(() => parseLocalIdentity({ identityId: 'a b', token: 't' })).toThrow(/identityId/);
    expect(() => parseLocalIdentity({ identityId: 'local:a', token: '' })).toThrow(/token/);
  });

  it('connects MQTT with client id = username = identity id and password = token', async () => {
    const rider = localRider(first);
    expect(rider.identityId).toBe(first.identityId);
    expect(rider.mqtt).toEqual({ clientId: first.identityId, username: first.identityId, password: first.token });
    expect(await rider.authorize('POST', 'http://127.0.0.1:8080/api/racers/7/claim')).toEqual({
      authorization: `Alleycat ${first.identityId}:${first.token}`,
    });
  });
});
