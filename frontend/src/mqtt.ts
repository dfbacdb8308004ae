// The MQTT connection: MQTT 3.1.1 over WebSocket (MQTT.js), with a visible state, reconnects with
// exponential backoff, resubscription after every (re)connect, and a URL that can change between
// attempts (a freshly presigned one on AWS).

import mqtt from 'mqtt';
import type { IClientOptions, IClientPublishOptions, MqttClient } from 'mqtt';

export type ConnectionState = 'connected' | 'reconnecting' | 'offline';

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 30_000;

/**
 * Delay before reconnect attempt `attempt` (1 for the first after a loss): 1 s, 2 s, 4 s … capped
 * at 30 s, with ±20 % jitter so a fleet of bikes does not reconnect in step.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const plain = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** exponent);
  return Math.round(plain * (0.8 + 0.4 * random()));
}

/** Where to connect. `current` is synchronous because MQTT.js asks for it in `transformWsUrl`. */
export interface UrlSource {
  /** The URL for the attempt starting now. */
  current(): string;
  /** Makes sure `current` will be usable for the next attempt (AWS: signs a new URL if needed). */
  prepare(): Promise<void>;
  dispose(): void;
}

/** The embedded stack's plain WebSocket URL. */
export class StaticUrl implements UrlSource {
  constructor(private readonly url: string) {}
  current(): string {
    return this.url;
  }
  async prepare(): Promise<void> {}
  dispose(): void {}
}

/** The part of MqttClient this module uses (a fake in tests). */
export type ClientLike = Pick<MqttClient, 'on' | 'subscribe' | 'unsubscribe' | 'publishAsync' | 'reconnect' | 'end'> & {
  connected: boolean;
  incomingStore: MqttClient['incomingStore'];
  outgoingStore: MqttClient['outgoingStore'];
};

export type ConnectFn = (url: string, options: IClientOptions) => ClientLike;

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ConnectionHandlers {
  onState(state: ConnectionState): void;
  onMessage(topic: string, payload: string): void;
  /** Connection problems worth telling (not every failed attempt). */
  onError?(message: string): void;
}

export interface ConnectionOptions {
  /** The client id; on AWS exactly the Cognito identity id, locally the local identity id. */
  clientId: string;
  /** The embedded stack's identity: username = identity id, password = token. None on AWS. */
  username?: string;
  password?: string;
  connect?: ConnectFn;
  timers?: Timers;
  random?: () => number;
  /** Whether the browser thinks it is online. */
  online?: () => boolean;
}

const defaultConnect: ConnectFn = (url, options) => mqtt.connect(url, options) as unknown as ClientLike;

const defaultTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};

export class MqttConnection {
  private client: ClientLike | null = null;
  private topic: string | null = null;
  private attempts = 0;
  private retryTimer: unknown = null;
  private ended = false;
  private stateValue: ConnectionState = 'offline';
  private readonly connectFn: ConnectFn;
  private readonly timers: Timers;
  private readonly online: () => boolean;

  constructor(
    private readonly source: UrlSource,
    private readonly handlers: ConnectionHandlers,
    private readonly options: ConnectionOptions,
  ) {
    this.connectFn = options.connect ?? defaultConnect;
    this.timers = options.timers ?? defaultTimers;
    this.online = options.online ?? (() => typeof navigator === 'undefined' || navigator.onLine !== false);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** The number of reconnect attempts since the last successful connection. */
  get reconnectAttempts(): number {
    return this.attempts;
  }

  async start(): Promise<void> {
    this.setState(this.online() ? 'reconnecting' : 'offline');
    await this.source.prepare();
    if (this.ended) return;
    const client = this.connectFn(this.source.current(), {
      clientId: this.options.clientId,
      ...(this.options.username === undefined ? {} : { username: this.options.username }),
      ...(this.options.password === undefined ? {} : { password: this.options.password }),
      protocolVersion: 4,
      clean: true,
      keepalive: 30,
      connectTimeout: 10_000,
      // Reconnects are ours (backoff, a fresh URL each time), and so is resubscribing.
      reconnectPeriod: 0,
      resubscribe: false,
      transformWsUrl: () => this.source.current(),
    });
    this.client = client;
    client.on('connect', () => {
      this.attempts = 0;
      this.setState('connected');
      if (this.topic !== null) this.subscribeNow(this.topic);
    });
    client.on('close', () => this.lost());
    client.on('error', (error: Error) => this.handlers.onError?.(`MQTT: ${error.message}`));
    client.on('message', (topic: string, payload: Uint8Array) => {
      this.handlers.onMessage(topic, new TextDecoder().decode(payload));
    });
  }

  /** Listens to `topic` only (null: nothing), now and after every reconnect. */
  setTopic(topic: string | null): void {
    if (topic === this.topic) return;
    const previous = this.topic;
    this.topic = topic;
    if (this.client?.connected) {
      if (previous !== null) this.client.unsubscribe(previous);
      if (topic !== null) this.subscribeNow(topic);
    }
  }

  get subscribedTopic(): string | null {
    return this.topic;
  }

  /** Publishes with QoS 1; resolves on the broker's acknowledgement. Queued while disconnected. */
  async publish(topic: string, payload: string, options: IClientPublishOptions = { qos: 1 }): Promise<void> {
    if (this.client === null) throw new Error('not connected');
    await this.client.publishAsync(topic, payload, options);
  }

  /** The browser went offline or online again. */
  setOnline(online: boolean): void {
    if (this.ended) return;
    if (!online) {
      if (this.stateValue !== 'connected') this.setState('offline');
      return;
    }
    if (this.stateValue !== 'connected' && this.retryTimer !== null) {
      // Back online: try at once rather than wait out the backoff.
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.setState('reconnecting');
      void this.retry();
    }
  }

  end(): void {
    this.ended = true;
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.client?.end(true);
    this.source.dispose();
    this.setState('offline');
  }

  private subscribeNow(topic: string): void {
    this.client?.subscribe(topic, { qos: 0 }, (error) => {
      if (error) this.handlers.onError?.(`MQTT: subscribing to ${topic} failed: ${error.message}`);
    });
  }

  private lost(): void {
    if (this.ended || this.retryTimer !== null) return;
    this.attempts += 1;
    this.setState(this.online() ? 'reconnecting' : 'offline');
    const delay = backoffDelay(this.attempts, this.options.random);
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      void this.retry();
    }, delay);
  }

  private async retry(): Promise<void> {
    if (this.ended || this.client === null) return;
    try {
      await this.source.prepare();
    } catch (error) {
      this.handlers.onError?.(`MQTT: preparing the connection failed: ${(error as Error).message}`);
      this.lost();
      return;
    }
    if (this.ended) return;
    if (this.online()) this.setState('reconnecting');
    // Keep the stores: QoS 1 messages published while disconnected go out on reconnect.
    this.client.reconnect({ incomingStore: this.client.incomingStore, outgoingStore: this.client.outgoingStore });
  }

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.handlers.onState(state);
  }
}
