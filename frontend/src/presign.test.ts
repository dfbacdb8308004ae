import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { endpointHost, presignIotUrl, refreshDelay, rfc3986 } from './presign';

const credentials = {
  accessKeyId: 'ASIAEXAMPLEKEY',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  sessionToken: 'IQoJb3JpZ2luX2VjE+/token==with spaces',
};
const now = new Date('2024-05-03T12:34:56.789Z');
const endpoint = 'a1b2c3d4e5-ats.iot.eu-west-1.amazonaws.com';

/** SigV4 query signing written out independently of @smithy/signature-v4. */
function expectedSignature(params: [string, string][], secret: string, host: string): string {
  const canonicalQuery = params
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const emptyHash = createHash('sha256').update('').digest('hex');
  const canonicalRequest = ['GET', '/mqtt', canonicalQuery, `host:${host}`, '', 'host', emptyHash].join('\n');
  const scope = '20240503/eu-west-1/iotdevicegateway/aws4_request';
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    '20240503T123456Z',
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
  let key = hmac(`AWS4${secret}`, '20240503');
  key = hmac(key, 'eu-west-1');
  key = hmac(key, 'iotdevicegateway');
  key = hmac(key, 'aws4_request');
  return createHmac('sha256', key).update(stringToSign).digest('hex');
}

describe('presignIotUrl', () => {
  it('builds wss://<endpoint>/mqtt with the SigV4 query parameters', async () => {
    const { url } = await presignIotUrl({ endpoint, region: 'eu-west-1', credentials, now });
    const parsed = new URL(url);
    expect(parsed.protocol).toBe('wss:');
    expect(parsed.host).toBe(endpoint);
    expect(parsed.pathname).toBe('/mqtt');
    const q = parsed.searchParams;
    expect(q.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(q.get('X-Amz-Credential')).toBe('ASIAEXAMPLEKEY/20240503/eu-west-1/iotdevicegateway/aws4_request');
    expect(q.get('X-Amz-Date')).toBe('20240503T123456Z');
    expect(q.get('X-Amz-Expires')).toBe('900');
    expect(q.get('X-Amz-SignedHeaders')).toBe('host');
    expect(q.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('signs the query without the session token, and appends the token last', async () => {
    const { url } = await presignIotUrl({ endpoint, region: 'eu-west-1', credentials, now });
    const raw = url.slice(url.indexOf('?') + 1).split('&');
    expect(raw.at(-1)).toBe(`X-Amz-Security-Token=${rfc3986(credentials.sessionToken)}`);
    expect(raw.filter((p) => p.startsWith('X-Amz-Security-Token='))).toHaveLength(1);
    const q = new URL(url).searchParams;
    expect(q.get('X-Amz-Security-Token')).toBe(credentials.sessionToken);

    const signed: [string, string][] = [...q.entries()].filter(
      ([k]) => k !== 'X-Amz-Signature' && k !== 'X-Amz-Security-Token',
    );
    expect(signed.map(([k]) => k).sort()).toEqual([
      'X-Amz-Algorithm',
      'X-Amz-Credential',
      'X-Amz-Date',
      'X-Amz-Expires',
      'X-Amz-SignedHeaders',
    ]);
    expect(q.get('X-Amz-Signature')).toBe(expectedSignature(signed, credentials.secretAccessKey, endpoint));

    // the same URL, less the token, is what signing without a token gives
    const { sessionToken: _ignored, ...noToken } = credentials;
    const bare = await presignIotUrl({ endpoint, region: 'eu-west-1', credentials: noToken, now });
    expect(bare.url).not.toContain('X-Amz-Security-Token');
    expect(url.startsWith(`${bare.url}&X-Amz-Security-Token=`)).toBe(true);
  });

  it('changes the signature with the clock and the secret', async () => {
    const a = await presignIotUrl({ endpoint, region: 'eu-west-1', credentials, now });
    const b = await presignIotUrl({ endpoint, region: 'eu-west-1', credentials, now: new Date(now.getTime() + 1000) });
    const c = await presignIotUrl({
      endpoint,
      region: 'eu-west-1',
      credentials: { ...credentials, secretAccessKey: 'other' },
      now,
    });
    const sig = (u: string) => new URL(u).searchParams.get('X-Amz-Signature');
    expect(sig(a.url)).not.toBe(sig(b.url));
    expect(sig(a.url)).not.toBe(sig(c.url));
  });

  it('expires with the signature, or with the credentials if sooner', async () => {
    const a = await presignIotUrl({ endpoint, region: 'eu-west-1', credentials, now, expiresIn: 600 });
    expect(new URL(a.url).searchParams.get('X-Amz-Expires')).toBe('600');
    expect(a.expiresAt.getTime()).toBe(now.getTime() + 600_000);
    const soon = new Date(now.getTime() + 120_000);
    const b = await presignIotUrl({
      endpoint,
      region: 'eu-west-1',
      credentials: { ...credentials, expiration: soon },
      now,
    });
    expect(b.expiresAt).toEqual(soon);
  });

  it('refreshes at 80 % of the life, or a minute before expiry if sooner', () => {
    const at = (ms: number) => ({ url: 'wss://x/mqtt', expiresAt: new Date(now.getTime() + ms) });
    expect(refreshDelay(at(900_000), now)).toBe(720_000);
    expect(refreshDelay(at(200_000), now)).toBe(140_000);
    expect(refreshDelay(at(100_000), now)).toBe(40_000);
    expect(refreshDelay(at(10_000), now)).toBe(0);
    expect(refreshDelay(at(-5_000), now)).toBe(0);
  });

  it('accepts the endpoint as a host or a URL', async () => {
    expect(endpointHost('wss://abc-ats.iot.us-east-1.amazonaws.com/mqtt')).toBe('abc-ats.iot.us-east-1.amazonaws.com');
    expect(endpointHost('abc-ats.iot.us-east-1.amazonaws.com')).toBe('abc-ats.iot.us-east-1.amazonaws.com');
    const { url } = await presignIotUrl({ endpoint: `https://${endpoint}`, region: 'eu-west-1', credentials, now });
    expect(new URL(url).host).toBe(endpoint);
  });

  it('encodes as RFC 3986', () => {
    expect(rfc3986("a/b+c= d!'()*")).toBe('a%2Fb%2Bc%3D%20d%21%27%28%29%2A');
  });
});
