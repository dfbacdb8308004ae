// Who this page is to the backend: the identity its MQTT connection and its claims carry.
//
// - AWS: the Cognito unauthenticated identity (see aws.ts). The MQTT client id must be exactly the
//   identity id (the guest policy allows connecting only as `client/<own identity id>`), and API
//   requests carry `Authorization: Bearer <the identity's Cognito OpenID token>`.
// - The embedded stack: a local identity from `POST /_local/identity` (`{"identityId","token"}`),
//   kept in localStorage so that a reload keeps the identity and the racers it claimed. MQTT
//   connects with client id = username = identityId and password = token; API requests carry
//   `Authorization: Alleycat <identityId>:<token>`.

import { ApiError, jsonOf, reasonOf, type Api } from './api';

/** How this page appears to the backend. */
export interface RiderIdentity {
  readonly identityId: string;
  /** The MQTT CONNECT fields this identity connects with. */
  readonly mqtt: MqttIdentity;
  /** Headers authorizing a request without a body (`method` to `url`) as this identity. */
  authorize(method: string, url: string): Promise<Record<string, string>>;
}

export interface MqttIdentity {
  clientId: string;
  username?: string;
  password?: string;
}

/** An identity of the embedded stack, as `POST /_local/identity` answers it. */
export interface LocalIdentity {
  identityId: string;
  token: string;
}

/** The part of `Storage` used here (a Map-backed fake in tests). */
export type KeyValueStore = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

/** Checks the shape of a local identity (from the stack or from storage). */
export function parseLocalIdentity(value: unknown): LocalIdentity {
  if (typeof value !== 'object' || value === null) throw new Error('the identity is not a JSON object');
  const { identityId, token } = value as Record<string, unknown>;
  if (typeof identityId !== 'string' || identityId === '' || /\s/.test(identityId)) {
    throw new Error('the identity has no valid identityId');
  }
  if (typeof token !== 'string' || token === '' || /\s/.test(token)) {
    throw new Error('the identity has no valid token');
  }
  return { identityId, token };
}

/** The origin of the stack serving the API at `apiBase` (where `/_local/…` lives). */
export function stackOrigin(apiBase: string): string {
  return new URL(apiBase).origin;
}

/** The localStorage key of the local identity for the stack serving `apiBase`. */
export function localIdentityKey(apiBase: string): string {
  return `alleycat.identity:${stackOrigin(apiBase)}`;
}

/** The `Authorization` header value of a local identity. */
export function localAuthorization(identity: LocalIdentity): string {
  return `Alleycat ${identity.identityId}:${identity.token}`;
}

/** A local identity as the page uses it. */
export function localRider(identity: LocalIdentity): RiderIdentity {
  return {
    identityId: identity.identityId,
    mqtt: { clientId: identity.identityId, username: identity.identityId, password: identity.token },
    authorize: async () => ({ authorization: localAuthorization(identity) }),
  };
}

function readStored(storage: KeyValueStore, key: string): LocalIdentity | null {
  let text: string | null;
  try {
    text = storage.getItem(key);
  } catch {
    return null;
  }
  if (text === null) return null;
  try {
    return parseLocalIdentity(JSON.parse(text));
  } catch {
    forget(storage, key);
    return null;
  }
}

function forget(storage: KeyValueStore, key: string): void {
  try {
    storage.removeItem(key);
  } catch {
    // nothing to forget
  }
}

const MINT = 'Getting an identity from the embedded stack (POST /_local/identity)';

/** Asks the stack for a new identity. */
export async function mintLocalIdentity(api: Api): Promise<LocalIdentity> {
  const response = await api.send(MINT, 'POST', `${stackOrigin(api.base)}/_local/identity`);
  if (!response.ok) throw new ApiError(MINT, response.status, await reasonOf(response));
  try {
    return parseLocalIdentity(await jsonOf<unknown>(MINT, response));
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(MINT, response.status, (error as Error).message);
  }
}

/**
 * Whether the stack still accepts a stored identity. Any request under the API with the
 * `Authorization` header is verified before the function runs, and refused with 403 if the token
 * is not the stack's (a stack started afresh has another secret): `GET /config` is the cheapest.
 * Anything but a 403 (including a network failure) counts as accepted: the identity is kept.
 */
export async function stackAccepts(api: Api, identity: LocalIdentity): Promise<boolean> {
  try {
    const response = await api.send('Checking the stored identity', 'GET', `${api.base}/config`, {
      authorization: localAuthorization(identity),
    });
    return response.status !== 403;
  } catch {
    return true;
  }
}

/**
 * The page's local identity: the stored one while the stack accepts it, else a new one from the
 * stack, stored for the next visit.
 */
export async function loadLocalIdentity(api: Api, storage: KeyValueStore): Promise<LocalIdentity> {
  const key = localIdentityKey(api.base);
  const stored = readStored(storage, key);
  if (stored !== null && (await stackAccepts(api, stored))) return stored;
  if (stored !== null) forget(storage, key);
  const fresh = await mintLocalIdentity(api);
  try {
    storage.setItem(key, JSON.stringify(fresh));
  } catch {
    // Storage full or disabled: the identity lasts as long as the page.
  }
  return fresh;
}

/** Forgets the stored local identity (the stack refused it), so the next load gets a new one. */
export function forgetLocalIdentity(apiBase: string, storage: KeyValueStore): void {
  forget(storage, localIdentityKey(apiBase));
}

/** `localStorage`, or a store that lasts as long as the page where it is unavailable. */
export function browserStorage(): KeyValueStore {
  try {
    if (typeof localStorage !== 'undefined' && localStorage !== null) return localStorage;
  } catch {
    // access denied (storage disabled)
  }
  return memoryStore;
}

const memoryEntries = new Map<string, string>();
const memoryStore: KeyValueStore = {
  getItem: (key) => memoryEntries.get(key) ?? null,
  setItem: (key, value) => void memoryEntries.set(key, value),
  removeItem: (key) => void memoryEntries.delete(key),
};
