// The messages panel's log: messages sent and received, newest first, bounded.

export type Direction = 'sent' | 'received';

export interface LoggedMessage {
  id: number;
  direction: Direction;
  topic: string;
  at: number;
  /** The payload, shortened for display. */
  text: string;
  /** The payload's full length in characters. */
  size: number;
}

export const MESSAGE_LOG_LIMIT = 200;
export const MESSAGE_TEXT_LIMIT = 240;

export class MessageLog {
  private nextId = 1;
  private items: LoggedMessage[] = [];

  constructor(readonly limit: number = MESSAGE_LOG_LIMIT) {}

  /** Adds a message at the front; drops the oldest beyond the limit. Returns the new list. */
  add(direction: Direction, topic: string, payload: string, at: number): LoggedMessage[] {
    const text = payload.length > MESSAGE_TEXT_LIMIT ? `${payload.slice(0, MESSAGE_TEXT_LIMIT)}…` : payload;
    this.items = [{ id: this.nextId++, direction, topic, at, text, size: payload.length }, ...this.items];
    if (this.items.length > this.limit) this.items.length = this.limit;
    return this.items;
  }

  get list(): readonly LoggedMessage[] {
    return this.items;
  }

  clear(): void {
    this.items = [];
  }
}
