import { EventEmitter } from 'node:events';
import type { IClientOptions } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { BACKOFF_MAX_MS, MqttConnection, StaticUrl, backoffDelay, type ClientLike, type ConnectionState } from './mqtt';

describe('backoffDelay', () => {
  it('doubles from 1 s up to 30 s', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((a) => backoffDelay(a, mid))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });

  it('jitters by at most 20 %', () => {
    expect(backoffDelay(3, () => 0)).toBe(3200);
    expect(backoffDelay(3, () => 0.999999)).toBe(4800);
    expect(backoffDelay(50, () => 0.999999)).toBeLessThanOrEqual(BACKOFF_MAX_MS * 1.2);
  });
});

class FakeClient extends EventEmitter {
  connected = false;
  incomingStore = { name: 'in' } as unknown as ClientLike['incomingStore'];
  outgoingStore = { name: 'out' } as unknown as ClientLike['outgoingStore'];
  subscribed: string[] = [];
  unsubscribed: string[] = [];
  published: [string, string][] = [];
  reconnects: unknown[] = [];
  ended = false;
  subscribe(topic: string) {
    this.subscribed.push(topic);
    return this;
  }
  unsubscribe(topic: string) {
    this.unsubscribed.push(topic);
    return this;
  }
  async publishAsync(topic: string, payload: string) {
    this.published.push([topic, payload]);
    return undefined;
  }
  reconnect(opts?: unknown) {
    this.reconnects.push(opts);
    return this;
  }
  end() {
    this.ended = true;
    return this;
  }
  up() {
    this.connected = true;
    this.emit('connect');
  }
  down() {
    this.connected = false;
    this.emit('close');
  }
}

function harness() {
  const client = new FakeClient();
  const urls: string[] = [];
  const states: ConnectionState[] = [];
  const timers: { ms: number; run: () => void }[] = [];
  let online = true;
  let prepared = 0;
  const source = new StaticUrl('ws://127.0.0.1:9001/mqtt');
  const origPrepare = source.prepare.bind(source);
  source.prepare = async () => {
    prepared++;
    return origPrepare();
  };
  const connection = new MqttConnection(
    source,
    { onState: (s) => states.push(s), onMessage: () => undefined },
    {
      clientId: 'alleycat-test',
      connect: (url, options) => {
        urls.push(url);
        expect(options.reconnectPeriod).toBe(0);
        expect(options.protocolVersion).toBe(4);
        expect(options.clientId).toBe('alleycat-test');
        expect(options.transformWsUrl?.('ignored', options, null as never)).toBe('ws://127.0.0.1:9001/mqtt');
        return client as unknown as ClientLike;
      },
      timers: {
        setTimeout: (run, ms) => {
          const t = { ms, run };
          timers.push(t);
          return t;
        },
        clearTimeout: (t) => {
          const i = timers.indexOf(t as (typeof timers)[number]);
          if (i >= 0) timers.splice(i, 1);
        },
      },
      random: () => 0.5,
      online: () => online,
    },
  );
  return {
    client,
    connection,
    urls,
    states,
    timers,
    setOnline: (v: boolean) => (online = v),
    prepared: () => prepared,
  };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('MqttConnection', () => {
  it('connects, subscribes and shows the state', async () => {
    const h = harness();
    expect(h.connection.state).toBe('offline');
    h.connection.setTopic('alleycat-subscribe/class-3');
    await h.connection.start();
    expect(h.urls).toEqual(['ws://127.0.0.1:9001/mqtt']);
    expect(h.connection.state).toBe('reconnecting');
    h.client.up();
    expect(h.connection.state).toBe('connected');
    expect(h.client.subscribed).toEqual(['alleycat-subscribe/class-3']);
    expect(h.states).toEqual(['reconnecting', 'connected']);
  });

  it('reconnects with growing backoff, keeps the stores and resubscribes', async () => {
    const h = harness();
    h.connection.setTopic('alleycat-subscribe/class-1');
    await h.connection.start();
    h.client.up();
    h.client.down();
    expect(h.connection.state).toBe('reconnecting');
    expect(h.timers.map((t) => t.ms)).toEqual([1000]);
    h.timers.shift()!.run();
    await flush();
    expect(h.client.reconnects).toEqual([{ incomingStore: h.client.incomingStore, outgoingStore: h.client.outgoingStore }]);
    // the attempt fails: the next wait is longer
    h.client.down();
    expect(h.timers.map((t) => t.ms)).toEqual([2000]);
    h.timers.shift()!.run();
    await flush();
    h.client.down();
    expect(h.timers.map((t) => t.ms)).toEqual([4000]);
    expect(h.connection.reconnectAttempts).toBe(3);
    h.timers.shift()!.run();
    await flush();
    h.client.up();
    expect(h.connection.state).toBe('connected');
    expect(h.connection.reconnectAttempts).toBe(0);
    expect(h.client.subscribed).toEqual(['alleycat-subscribe/class-1', 'alleycat-subscribe/class-1']);
    expect(h.prepared()).toBe(4);
    // after a success the backoff starts over
    h.client.down();
    expect(h.timers.map((t) => t.ms)).toEqual([1000]);
  });

  it('follows topic changes while connected', async () => {
    const h = harness();
    h.connection.setTopic('alleycat-subscribe/class-1');
    await h.connection.start();
    h.client.up();
    h.connection.setTopic('alleycat-subscribe/class-2');
    expect(h.client.unsubscribed).toEqual(['alleycat-subscribe/class-1']);
    expect(h.client.subscribed).toEqual(['alleycat-subscribe/class-1', 'alleycat-subscribe/class-2']);
    h.client.down();
    h.timers.shift()!.run();
    await flush();
    h.client.up();
    expect(h.client.subscribed.at(-1)).toBe('alleycat-subscribe/class-2');
  });

  it('is offline when the browser is, and retries at once when it is back', async () => {
    const h = harness();
    await h.connection.start();
    h.client.up();
    h.setOnline(false);
    h.client.down();
    expect(h.connection.state).toBe('offline');
    expect(h.timers).toHaveLength(1);
    h.setOnline(true);
    h.connection.setOnline(true);
    expect(h.timers).toHaveLength(0);
    expect(h.connection.state).toBe('reconnecting');
    await flush();
    expect(h.client.reconnects).toHaveLength(1);
  });

  it('publishes and ends', async () => {
    const h = harness();
    await h.connection.start();
    h.client.up();
    await h.connection.publish('alleycat-publish', '{"a":1}');
    expect(h.client.published).toEqual([['alleycat-publish', '{"a":1}']]);
    h.connection.end();
    expect(h.client.ended).toBe(true);
    expect(h.connection.state).toBe('offline');
    h.client.down();
    expect(h.timers).toHaveLength(0);
  });
});

describe('MqttConnection identity', () => {
  async function connectWith(identity: { clientId: string; username?: string; password?: string }) {
    const seen: IClientOptions[] = [];
    const connection = new MqttConnection(
      new StaticUrl('ws://127.0.0.1:9001/mqtt'),
      { onState: () => undefined, onMessage: () => undefined },
      {
        ...identity,
        connect: (_url, options) => {
          seen.push(options);
          return new FakeClient() as unknown as ClientLike;
        },
      },
    );
    await connection.start();
    connection.end();
    expect(seen).toHaveLength(1);
    return seen[0]!;
  }

  it('connects locally with client id = username = identity id and password = token', async () => {
    const options = await connectWith({ clientId: 'local:0a1b', username: 'local:0a1b', password: 'c0ffee' });
    expect(options.clientId).toBe('local:0a1b');
    expect(options.username).toBe('local:0a1b');
    expect(options.password).toBe('c0ffee');
  });

  it('connects on AWS with client id = identity id, without username or password', async () => {
    const options = await connectWith({ clientId: 'eu-west-1:5a0c7e3e-8d2b-4a55-9d4c-0123456789ab' });
    expect(options.clientId).toBe('eu-west-1:5a0c7e3e-8d2b-4a55-9d4c-0123456789ab');
    expect(options).not.toHaveProperty('username');
    expect(options).not.toHaveProperty('password');
  });
});
