// SigV4 for the browser: the presigned WebSocket URL of AWS IoT Core (`wss://<endpoint>/mqtt?X-Amz-…`,
// service `iotdevicegateway`, query-string signing) and signed headers of API requests (service
// `execute-api`). For the URL, IoT Core wants the session token appended after signing, outside
// the signed query, so the signer never sees it; API Gateway wants it signed, as a header.

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

export interface SignRequestInput {
  method: string;
  /** The full URL of the request (its host, path and query are signed). */
  url: string;
  /** The signing name of the service, e.g. `execute-api` for API Gateway. */
  service: string;
  region: string;
  credentials: AwsCredentials;
  /** The signing time. */
  now: Date;
}

/** SHA-256 of the empty body, hex: the `X-Amz-Content-Sha256` of a request without a body. */
export const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * SigV4 header signing of a request without a body (API Gateway's AWS_IAM authorization):
 * the headers to send with it, `Authorization`, `X-Amz-Date`, `X-Amz-Content-Sha256` (of the
 * empty body) and, with session credentials, `X-Amz-Security-Token`, all but `Authorization`
 * signed along with `host`. `host` itself is not returned: the browser sends it (and may not be
 * told to), and it is the URL's host, which is what was signed.
 */
export async function signRequestHeaders(input: SignRequestInput): Promise<Record<string, string>> {
  const url = new URL(input.url);
  const query: Record<string, string | string[]> = {};
  for (const [key, value] of url.searchParams) {
    const seen = query[key];
    query[key] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
  }
  const signer = new SignatureV4({
    service: input.service,
    region: input.region,
    sha256: Sha256,
    credentials: {
      accessKeyId: input.credentials.accessKeyId,
      secretAccessKey: input.credentials.secretAccessKey,
      sessionToken: input.credentials.sessionToken,
    },
  });
  const signed = await signer.sign(
    {
      method: input.method.toUpperCase(),
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port === '' ? undefined : Number(url.port),
      path: url.pathname,
      headers: { host: url.host, 'x-amz-content-sha256': EMPTY_BODY_SHA256 },
      query,
    },
    { signingDate: input.now },
  );
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) {
    if (name.toLowerCase() !== 'host') headers[name.toLowerCase()] = value;
  }
  return headers;
}
