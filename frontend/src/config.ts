// Where the API is, and what `GET /config` says: the one URL the page is configured by.

import type { ClientConfig } from './types';

/**
 * The API base URL, without a trailing slash: the `?api=<url>` query parameter if given, else
 * `VITE_API_URL` (set at build time) if set, else `<origin>/api` (the embedded stack's layout).
 */
export function apiBaseUrl(search: string, envUrl: string | undefined, origin: string): string {
  const param = new URLSearchParams(search).get('api');
  const chosen = param?.trim() || envUrl?.trim() || `${origin}/api`;
  return chosen.replace(/\/+$/, '');
}

/** `?speed=N`: race time runs N times faster (a message every 1000/N ms). 1 when absent or invalid. */
export function speedFactor(search: string): number {
  const text = new URLSearchParams(search).get('speed');
  if (text === null) return 1;
  const speed = Number(text);
  if (!Number.isFinite(speed) || speed <= 0) return 1;
  return Math.min(speed, 1000);
}

/** Checks the shape of `GET /config`, naming the first bad field. */
export function parseClientConfig(value: unknown): ClientConfig {
  if (typeof value !== 'object' || value === null) {
    throw new Error('config is not a JSON object');
  }
  const v = value as Record<string, unknown>;
  const str = (name: string): string => {
    if (typeof v[name] !== 'string') throw new Error(`config field ${name} is not a string`);
    return v[name] as string;
  };
  const int = (name: string, min: number): number => {
    const n = v[name];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min) {
      throw new Error(`config field ${name} is not an integer of at least ${min}`);
    }
    return n;
  };
  const platform = str('platform');
  if (platform !== 'aws' && platform !== 'local') {
    throw new Error(`config platform ${JSON.stringify(platform)} is neither "aws" nor "local"`);
  }
  const config: ClientConfig = {
    platform,
    region: str('region'),
    identityPoolId: str('identityPoolId'),
    mqttEndpoint: str('mqttEndpoint'),
    publishTopic: str('publishTopic'),
    subscribeTopicPrefix: str('subscribeTopicPrefix'),
    raceSeconds: int('raceSeconds', 1),
    windowSeconds: int('windowSeconds', 1),
    topK: int('topK', 0),
  };
  if (config.mqttEndpoint === '') throw new Error('config field mqttEndpoint is empty');
  if (platform === 'aws' && (config.region === '' || config.identityPoolId === '')) {
    throw new Error('config on AWS needs region and identityPoolId');
  }
  return config;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * The embedded stack's WebSocket URL as this page can reach it. The stack announces a loopback
 * URL (`ws://127.0.0.1:9001/mqtt`); a page that reached the API under another host name (a phone
 * on the LAN, a port-forward) reaches the broker under that name too.
 */
export function localMqttUrl(endpoint: string, apiBase: string): string {
  let url: URL;
  let api: URL;
  try {
    url = new URL(endpoint);
    api = new URL(apiBase);
  } catch {
    return endpoint;
  }
  if (LOOPBACK.has(url.hostname) && !LOOPBACK.has(api.hostname)) {
    url.hostname = api.hostname;
    if (api.protocol === 'https:' && url.protocol === 'ws:') url.protocol = 'wss:';
    return url.toString();
  }
  return endpoint;
}

/** The topic a class's live standings arrive on. */
export function classTopic(config: ClientConfig, classId: number): string {
  return `${config.subscribeTopicPrefix}class-${classId}`;
}
