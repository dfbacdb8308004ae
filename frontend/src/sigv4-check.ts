// For tests only: SigV4 header signing computed independently of @smithy/signature-v4 (from the
// published algorithm, with Node's crypto), to check the page's signed requests against.

import { createHash, createHmac } from 'node:crypto';

/** RFC 3986 percent-encoding (unreserved characters kept), as SigV4 specifies it. */
function rfc3986(text: string): string {
  return [...new TextEncoder().encode(text)]
    .map((byte) => {
      const c = String.fromCharCode(byte);
      return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

/**
 * SigV4 header signing of a body-less request, written out independently of
 * @smithy/signature-v4: the canonical request, the string to sign and the derived key.
 */
export function expectedHeaderSignature(input: {
  method: string;
  url: string;
  headers: Record<string, string>;
  signedHeaders: string[];
  secret: string;
  region: string;
  service: string;
  amzDate: string;
}): string {
  const url = new URL(input.url);
  // Non-S3 services: every path segment URI-encoded twice (here: once more, as URL already did once).
  const canonicalPath = url.pathname
    .split('/')
    .map((segment) => rfc3986(segment))
    .join('/');
  const canonicalQuery = [...url.searchParams.entries()]
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = input.signedHeaders.map((name) => `${name}:${input.headers[name]!.trim()}\n`).join('');
  const payloadHash = createHash('sha256').update('').digest('hex');
  const canonicalRequest = [
    input.method,
    canonicalPath,
    canonicalQuery,
    canonicalHeaders,
    input.signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const day = input.amzDate.slice(0, 8);
  const scope = `${day}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    input.amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
  let key = hmac(`AWS4${input.secret}`, day);
  key = hmac(key, input.region);
  key = hmac(key, input.service);
  key = hmac(key, 'aws4_request');
  return createHmac('sha256', key).update(stringToSign).digest('hex');
}

export function authorizationParts(header: string) {
  const match = /^AWS4-HMAC-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(header);
  if (match === null) throw new Error(`not a SigV4 Authorization header: ${header}`);
  return { credential: match[1]!, signedHeaders: match[2]!.split(';'), signature: match[3]! };
}
