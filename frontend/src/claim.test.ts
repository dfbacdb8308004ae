import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Api, ApiError } from './api';
import { CognitoGuest, cognitoRider, type GuestCredentials } from './aws';
import { claimRacer, takenMessage } from './claim';
import { localRider } from './identity';
import { parseClientConfig } from './config';
import { authorizationParts, expectedHeaderSignature } from './sigv4-check';

interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

function api(base: string, answer: (call: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const call = {
      method: init?.method ?? 'GET',
      url: String(input),
      headers: { ...(init?.headers as Record<string, string>) },
      body: init?.body,
    };
    calls.push(call);
    return answer(call);
  }) as typeof fetch;
  return { client: new Api(base, fetchImpl), calls };
}

const local = localRider({ identityId: `local:${'1'.repeat(32)}`, token: 'f'.repeat(64) });
const granted = (racerId: number, identityId: string) =>
  Response.json({ racerId, identityId, expiresAt: 1_714_800_000_000 });

describe('claimRacer on the embedded stack', () => {
  it('POSTs /racers/{id}/claim with the Alleycat authorization and rides on 200', async () => {
    const { client, calls } = api('http://127.0.0.1:8080/api', () => granted(7, local.identityId));
    const outcome = await claimRacer(client, local, 7);
    expect(outcome).toEqual({
      kind: 'claimed',
      claim: { racerId: 7, identityId: local.identityId, expiresAt: 1_714_800_000_000 },
    });
    expect(calls).toEqual([
      {
        method: 'POST',
        url: 'http://127.0.0.1:8080/api/racers/7/claim',
        headers: { accept: 'application/json', authorization: `Alleycat ${local.identityId}:${'f'.repeat(64)}` },
        body: undefined,
      },
    ]);
  });

  it('on 409 says plainly that the racer is taken', async () => {
    const { client } = api('http://127.0.0.1:8080/api', () =>
      Response.json({ error: 'racer 42 is held by another rider' }, { status: 409 }),
    );
    const outcome = await claimRacer(client, local, 42);
    expect(outcome).toEqual({ kind: 'taken', message: 'Racer 42 is already taken by another rider — pick another racer' });
    expect(takenMessage(7)).toBe('Racer 7 is already taken by another rider — pick another racer');
  });

  it('says what failed otherwise', async () => {
    const cases: [() => Response | Promise<Response>, string][] = [
      [
        () => Response.json({ error: 'internal error' }, { status: 500 }),
        'Claiming racer 7 (POST /racers/7/claim) failed: HTTP 500, internal error',
      ],
      [
        () => Response.json({ message: 'Forbidden' }, { status: 403 }),
        'Claiming racer 7 (POST /racers/7/claim) failed: HTTP 403, Forbidden — the backend did not accept this page’s identity; reload the page to get a new one',
      ],
      [
        () => Promise.reject(new TypeError('Failed to fetch')),
        'Claiming racer 7 (POST /racers/7/claim) failed: network error (Failed to fetch)',
      ],
      [
        () => new Response('<html>', { status: 200 }),
        'Claiming racer 7 (POST /racers/7/claim) failed: HTTP 200, the answer is not JSON',
      ],
      [
        () => granted(8, local.identityId),
        'Claiming racer 7 (POST /racers/7/claim) failed: HTTP 200, the answer is a claim of racer 8',
      ],
      [
        () => granted(7, 'local:someone-else'),
        `Claiming racer 7 (POST /racers/7/claim) failed: HTTP 200, the claim is held by "local:someone-else", not by this page's identity ${local.identityId}`,
      ],
    ];
    for (const [answer, message] of cases) {
      const { client } = api('http://127.0.0.1:8080/api', answer);
      const error = (await claimRacer(client, local, 7).catch((e: unknown) => e)) as ApiError;
      expect(error).toBeInstanceOf(ApiError);
      expect(error.message).toBe(message);
    }
  });
});

const awsConfig = parseClientConfig({
  platform: 'aws',
  region: 'eu-west-1',
  identityPoolId: 'eu-west-1:00000000-1111-2222-3333-444444444444',
  mqttEndpoint: 'a1b2c3d4e5-ats.iot.eu-west-1.amazonaws.com',
  publishTopic: 'alleycat-publish',
  subscribeTopicPrefix: 'alleycat-subscribe/',
  raceSeconds: 300,
  windowSeconds: 300,
  topK: 100,
});
const identityId = 'eu-west-1:5a0c7e3e-8d2b-4a55-9d4c-0123456789ab';
const guestCredentials: GuestCredentials = {
  identityId,
  accessKeyId: 'ASIAGUESTKEY',
  secretAccessKey: 'guest/secret+key',
  sessionToken: 'IQoJb3JpZ2luX2VjEguest//token==',
  expiration: new Date('2024-05-03T13:34:56Z'),
};
const now = new Date('2024-05-03T12:34:56.789Z');

describe('claimRacer on AWS', () => {
  it('signs the POST with SigV4 (execute-api, the Cognito credentials, the region)', async () => {
    const guest = new CognitoGuest(awsConfig, () => now, async () => guestCredentials);
    const rider = await cognitoRider(guest, awsConfig.region, () => now);
    const base = 'https://k3x9abc123.execute-api.eu-west-1.amazonaws.com';
    const { client, calls } = api(base, () => granted(42, identityId));
    const outcome = await claimRacer(client, rider, 42);
    expect(outcome.kind).toBe('claimed');
    expect(calls).toHaveLength(1);
    const { method, url, headers } = calls[0]!;
    expect(method).toBe('POST');
    expect(url).toBe(`${base}/racers/42/claim`);
    expect(Object.keys(headers).sort()).toEqual([
      'accept',
      'authorization',
      'x-amz-content-sha256',
      'x-amz-date',
      'x-amz-security-token',
    ]);
    expect(headers['x-amz-date']).toBe('20240503T123456Z');
    expect(headers['x-amz-security-token']).toBe(guestCredentials.sessionToken);
    expect(headers['x-amz-content-sha256']).toBe(createHash('sha256').update('').digest('hex'));
    const auth = authorizationParts(headers.authorization!);
    expect(auth.credential).toBe('ASIAGUESTKEY/20240503/eu-west-1/execute-api/aws4_request');
    expect(auth.signedHeaders).toEqual(['host', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-security-token']);
    expect(auth.signature).toBe(
      expectedHeaderSignature({
        method: 'POST',
        url,
        headers: { ...headers, host: 'k3x9abc123.execute-api.eu-west-1.amazonaws.com' },
        signedHeaders: auth.signedHeaders,
        secret: guestCredentials.secretAccessKey,
        region: 'eu-west-1',
        service: 'execute-api',
        amzDate: '20240503T123456Z',
      }),
    );
  });

  it('connects MQTT with client id = the Cognito identity id, and nothing else', async () => {
    const guest = new CognitoGuest(awsConfig, () => now, async () => guestCredentials);
    const rider = await cognitoRider(guest, awsConfig.region, () => now);
    expect(rider.identityId).toBe(identityId);
    expect(rider.mqtt).toEqual({ clientId: identityId });
    expect(guest.identityId).toBe(identityId);
  });

  it('renews the credentials shortly before they expire, not on every request', async () => {
    let clock = now;
    let calls = 0;
    const guest = new CognitoGuest(awsConfig, () => clock, async () => {
      calls++;
      return { ...guestCredentials, expiration: new Date(clock.getTime() + 60 * 60_000) };
    });
    await Promise.all([guest.current(), guest.current()]);
    expect(calls).toBe(1);
    clock = new Date(now.getTime() + 50 * 60_000);
    await guest.current();
    expect(calls).toBe(1);
    clock = new Date(now.getTime() + 56 * 60_000);
    await guest.current();
    expect(calls).toBe(2);
  });

  it('refuses credentials without an identity id', async () => {
    const guest = new CognitoGuest(awsConfig, () => now, async () => ({ ...guestCredentials, identityId: '' }));
    await expect(cognitoRider(guest, awsConfig.region)).rejects.toThrow(/without an identity id/);
  });
});
