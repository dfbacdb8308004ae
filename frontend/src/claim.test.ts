import { Readable } from 'node:stream';
import { CognitoIdentityClient, GetOpenIdTokenCommand } from '@aws-sdk/client-cognito-identity';
import { describe, expect, it } from 'vitest';
import { Api, ApiError } from './api';
import { CognitoGuest, cognitoRider, type GuestCredentials, type OpenIdTokenClient } from './aws';
import { claimRacer, takenMessage } from './claim';
import { localRider } from './identity';
import { parseClientConfig } from './config';

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

/** A fake Cognito Identity client: answers GetOpenIdToken with `answer`, records the requests. */
function cognito(answer: (identityId: string, n: number) => { IdentityId?: string; Token?: string } | Promise<never>) {
  const requests: { IdentityId?: string }[] = [];
  const client: OpenIdTokenClient = {
    send: async (command: GetOpenIdTokenCommand) => {
      expect(command).toBeInstanceOf(GetOpenIdTokenCommand);
      requests.push({ ...command.input });
      return answer(command.input.IdentityId ?? '', requests.length);
    },
  };
  return { client, requests };
}

const tokenOf = (identityId: string, n: number) => ({ IdentityId: identityId, Token: `eyJraWQiOiJldS13ZXN0LTEx.${n}.sig` });

async function awsRider(answer: Parameters<typeof cognito>[0] = tokenOf) {
  const fake = cognito(answer);
  const guest = new CognitoGuest(awsConfig, () => now, async () => guestCredentials, fake.client);
  return { rider: await cognitoRider(guest), guest, requests: fake.requests };
}

const awsBase = 'https://k3x9abc123.execute-api.eu-west-1.amazonaws.com';

describe('claimRacer on AWS', () => {
  it("sends the identity's OpenID token (GetOpenIdToken for the page's identity id) as a bearer token, unsigned", async () => {
    const { rider, requests } = await awsRider();
    expect(requests).toEqual([]); // no token before a claim needs one
    const { client, calls } = api(awsBase, () => granted(42, identityId));
    const outcome = await claimRacer(client, rider, 42);
    expect(outcome).toEqual({
      kind: 'claimed',
      claim: { racerId: 42, identityId, expiresAt: 1_714_800_000_000 },
    });
    expect(requests).toEqual([{ IdentityId: identityId }]);
    expect(calls).toEqual([
      {
        method: 'POST',
        url: `${awsBase}/racers/42/claim`,
        headers: { accept: 'application/json', authorization: 'Bearer eyJraWQiOiJldS13ZXN0LTEx.1.sig' },
        body: undefined,
      },
    ]);
  });

  it('gets a new token for each claim (a token lives 10 minutes)', async () => {
    const { rider, requests } = await awsRider();
    const { client, calls } = api(awsBase, () => granted(42, identityId));
    await claimRacer(client, rider, 42);
    await claimRacer(client, rider, 42);
    expect(requests).toEqual([{ IdentityId: identityId }, { IdentityId: identityId }]);
    expect(calls.map((c) => c.headers.authorization)).toEqual([
      'Bearer eyJraWQiOiJldS13ZXN0LTEx.1.sig',
      'Bearer eyJraWQiOiJldS13ZXN0LTEx.2.sig',
    ]);
  });

  it('on 409 says plainly that the racer is taken', async () => {
    const { rider } = await awsRider();
    const { client } = api(awsBase, () => Response.json({ error: 'racer 42 is held by another rider' }, { status: 409 }));
    expect(await claimRacer(client, rider, 42)).toEqual({ kind: 'taken', message: takenMessage(42) });
  });

  it('says what failed: no token from Cognito (and then no claim sent), or the API refusing the token', async () => {
    const refused = Object.assign(new Error('Access to Identity is forbidden.'), { name: 'NotAuthorizedException' });
    const cases: [Parameters<typeof cognito>[0], (() => Response) | null, string][] = [
      [
        () => Promise.reject(refused),
        null,
        `Claiming racer 7 (POST /racers/7/claim) failed: could not authorize the request: Cognito refused an OpenID token for identity ${identityId} (NotAuthorizedException: Access to Identity is forbidden.)`,
      ],
      [
        () => Promise.reject(new TypeError('Failed to fetch')),
        null,
        `Claiming racer 7 (POST /racers/7/claim) failed: could not authorize the request: Cognito refused an OpenID token for identity ${identityId} (TypeError: Failed to fetch)`,
      ],
      [
        () => ({ IdentityId: identityId }),
        null,
        `Claiming racer 7 (POST /racers/7/claim) failed: could not authorize the request: Cognito gave no OpenID token for identity ${identityId}`,
      ],
      [
        () => ({ IdentityId: 'eu-west-1:someone-else', Token: 'x.y.z' }),
        null,
        `Claiming racer 7 (POST /racers/7/claim) failed: could not authorize the request: Cognito gave an OpenID token for identity eu-west-1:someone-else, not for ${identityId}`,
      ],
      [
        tokenOf,
        () => Response.json({ message: 'Unauthorized' }, { status: 401 }),
        'Claiming racer 7 (POST /racers/7/claim) failed: HTTP 401, Unauthorized — the backend did not accept this page’s identity; reload the page to get a new one',
      ],
    ];
    for (const [answer, response, message] of cases) {
      const { rider } = await awsRider(answer);
      const { client, calls } = api(awsBase, response ?? (() => granted(7, identityId)));
      const error = (await claimRacer(client, rider, 7).catch((e: unknown) => e)) as ApiError;
      expect(error).toBeInstanceOf(ApiError);
      expect(error.message).toBe(message);
      expect(calls).toHaveLength(response === null ? 0 : 1);
    }
  });

  it('asks Cognito with the SDK as the public GetOpenIdToken call: the identity id, no signature', async () => {
    type Sent = { method: string; hostname: string; path: string; headers: Record<string, string>; body: string | Uint8Array };
    const sent: Sent[] = [];
    const sdk = new CognitoIdentityClient({
      region: 'eu-west-1',
      requestHandler: {
        handle: async (request: Sent) => {
          sent.push({ ...request, headers: { ...request.headers } });
          return {
            response: {
              statusCode: 200,
              headers: { 'content-type': 'application/x-amz-json-1.1' },
              body: Readable.from([Buffer.from(JSON.stringify({ IdentityId: identityId, Token: 'header.payload.sig' }))]),
            },
          };
        },
      } as never,
    });
    const guest = new CognitoGuest(awsConfig, () => now, async () => guestCredentials, sdk);
    const rider = await cognitoRider(guest);
    expect(await rider.authorize('POST', `${awsBase}/racers/7/claim`)).toEqual({ authorization: 'Bearer header.payload.sig' });
    expect(sent).toHaveLength(1);
    const request = sent[0]!;
    expect(request.method).toBe('POST');
    expect(request.hostname).toBe('cognito-identity.eu-west-1.amazonaws.com');
    expect(request.path).toBe('/');
    expect(request.headers['x-amz-target']).toBe('AWSCognitoIdentityService.GetOpenIdToken');
    const body = typeof request.body === 'string' ? request.body : new TextDecoder().decode(request.body);
    expect(JSON.parse(body)).toEqual({ IdentityId: identityId });
    expect(Object.keys(request.headers).map((h) => h.toLowerCase())).not.toContain('authorization');
  });

  it('connects MQTT with client id = the Cognito identity id, and nothing else', async () => {
    const { rider, guest } = await awsRider();
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
    await expect(cognitoRider(guest)).rejects.toThrow(/without an identity id/);
  });
});
