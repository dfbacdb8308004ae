// SigV4 for the browser: the presigned WebSocket URL of AWS IoT Core (`wss://<endpoint>/mqtt?X-Amz-…`,
// service `iotdevicegateway`, query-string signing). IoT Core wants the session token appended
// after signing, outside the signed query, so the signer never sees it. (API requests are not
// signed: the claim routes take the identity's OpenID token, see aws.ts.)

import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** When the credentials stop working. */
  expiration?: Date;
}

export interface PresignInput {
  /** IoT data endpoint host, e.g. `abc123-ats.iot.eu-west-1.amazonaws.com` (a URL is accepted). */
  endpoint: string;
  region: string;
  credentials: AwsCredentials;
  /** The signing time. */
  now: Date;
  /** Lifetime of the URL's signature, seconds. */
  expiresIn?: number;
}

export interface PresignedUrl {
  url: string;
  /** When the URL must have been used by: the signature's expiry, or the credentials' if sooner. */
  expiresAt: Date;
}

export const DEFAULT_URL_TTL_SECONDS = 900;

/** RFC 3986 percent-encoding, as SigV4 canonical queries use. */
export function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The host of an endpoint given as a host name or as a URL. */
export function endpointHost(endpoint: string): string {
  const trimmed = endpoint.trim();
  if (/^[a-z]+:\/\//i.test(trimmed)) return new URL(trimmed).host;
  return trimmed.replace(/\/.*$/, '');
}

export async function presignIotUrl(input: PresignInput): Promise<PresignedUrl> {
  const host = endpointHost(input.endpoint);
  const expiresIn = input.expiresIn ?? DEFAULT_URL_TTL_SECONDS;
  const signer = new SignatureV4({
    service: 'iotdevicegateway',
    region: input.region,
    sha256: Sha256,
    // Without the token: IoT Core checks the signature of the query without it.
    credentials: {
      accessKeyId: input.credentials.accessKeyId,
      secretAccessKey: input.credentials.secretAccessKey,
    },
  });
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: 'wss:',
      hostname: host,
      path: '/mqtt',
      headers: { host },
      query: {},
    },
    { expiresIn, signingDate: input.now },
  );
  const query = Object.entries(signed.query ?? {})
    .flatMap(([key, value]) => (Array.isArray(value) ? value.map((v) => [key, v]) : [[key, value ?? '']]))
    .map(([key, value]) => `${rfc3986(key)}=${rfc3986(String(value))}`)
    .join('&');
  const token = input.credentials.sessionToken
    ? `&X-Amz-Security-Token=${rfc3986(input.credentials.sessionToken)}`
    : '';
  let expiresAt = new Date(input.now.getTime() + expiresIn * 1000);
  const credentialsExpire = input.credentials.expiration;
  if (credentialsExpire && credentialsExpire.getTime() < expiresAt.getTime()) expiresAt = credentialsExpire;
  return { url: `wss://${host}/mqtt?${query}${token}`, expiresAt };
}

/** When to sign a new URL: a minute before `expiresAt`, or at 80 % of its life if that is sooner. */
export function refreshDelay(url: PresignedUrl, now: Date): number {
  const left = url.expiresAt.getTime() - now.getTime();
  return Math.max(0, Math.min(left - 60_000, left * 0.8));
}
