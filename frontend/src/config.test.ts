import { describe, expect, it } from 'vitest';
import { apiBaseUrl, classTopic, localMqttUrl, parseClientConfig, speedFactor } from './config';

const local = {
  platform: 'local',
  region: '',
  identityPoolId: '',
  mqttEndpoint: 'ws://127.0.0.1:9001/mqtt',
  publishTopic: 'alleycat-publish',
  subscribeTopicPrefix: 'alleycat-subscribe/',
  raceSeconds: 300,
  windowSeconds: 300,
  topK: 100,
};

describe('apiBaseUrl', () => {
  it('prefers ?api=, then VITE_API_URL, then <origin>/api', () => {
    expect(apiBaseUrl('?api=http://127.0.0.1:8080/api/', 'https://env/api', 'http://o')).toBe('http://127.0.0.1:8080/api');
    expect(apiBaseUrl('', 'https://x.execute-api.eu-west-1.amazonaws.com/', 'http://o')).toBe(
      'https://x.execute-api.eu-west-1.amazonaws.com',
    );
    expect(apiBaseUrl('?speed=10', undefined, 'http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080/api');
    expect(apiBaseUrl('?api=', '', 'http://o')).toBe('http://o/api');
  });
});

describe('speedFactor', () => {
  it('reads ?speed=N, 1 otherwise', () => {
    expect(speedFactor('?speed=10')).toBe(10);
    expect(speedFactor('?speed=2.5')).toBe(2.5);
    expect(speedFactor('')).toBe(1);
    expect(speedFactor('?speed=0')).toBe(1);
    expect(speedFactor('?speed=-3')).toBe(1);
    expect(speedFactor('?speed=fast')).toBe(1);
  });
});

describe('parseClientConfig', () => {
  it('accepts GET /config of the embedded stack', () => {
    expect(parseClientConfig(local)).toEqual(local);
  });

  it('names what is wrong', () => {
    expect(() => parseClientConfig(null)).toThrow(/not a JSON object/);
    expect(() => parseClientConfig({ ...local, platform: 'gcp' })).toThrow(/platform/);
    expect(() => parseClientConfig({ ...local, raceSeconds: '300' })).toThrow(/raceSeconds/);
    expect(() => parseClientConfig({ ...local, windowSeconds: 0 })).toThrow(/windowSeconds/);
    expect(() => parseClientConfig({ ...local, mqttEndpoint: '' })).toThrow(/mqttEndpoint/);
    expect(() => parseClientConfig({ ...local, platform: 'aws' })).toThrow(/identityPoolId/);
  });

  it('makes class topics', () => {
    expect(classTopic(parseClientConfig(local), 3)).toBe('alleycat-subscribe/class-3');
  });
});

describe('localMqttUrl', () => {
  it('keeps the announced URL on the same machine', () => {
    expect(localMqttUrl('ws://127.0.0.1:9001/mqtt', 'http://127.0.0.1:8080/api')).toBe('ws://127.0.0.1:9001/mqtt');
    expect(localMqttUrl('ws://127.0.0.1:9001/mqtt', 'http://localhost:5173/api')).toBe('ws://127.0.0.1:9001/mqtt');
  });

  it('uses the API host when the page reached the stack from elsewhere', () => {
    expect(localMqttUrl('ws://127.0.0.1:9001/mqtt', 'http://192.168.1.20:8080/api')).toBe('ws://192.168.1.20:9001/mqtt');
    expect(localMqttUrl('ws://10.0.0.5:9001/mqtt', 'http://192.168.1.20:8080/api')).toBe('ws://10.0.0.5:9001/mqtt');
  });
});
