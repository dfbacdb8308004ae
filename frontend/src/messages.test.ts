import { describe, expect, it } from 'vitest';
import { MESSAGE_TEXT_LIMIT, MessageLog } from './messages';

describe('MessageLog', () => {
  it('keeps the newest first, at most `limit`', () => {
    const log = new MessageLog(3);
    for (let i = 1; i <= 5; i++) log.add(i % 2 ? 'sent' : 'received', 't', `m${i}`, i);
    expect(log.list.map((m) => m.text)).toEqual(['m5', 'm4', 'm3']);
    expect(log.list.map((m) => m.direction)).toEqual(['sent', 'received', 'sent']);
    expect(new Set(log.list.map((m) => m.id)).size).toBe(3);
  });

  it('defaults to 200 and shortens long payloads', () => {
    const log = new MessageLog();
    for (let i = 0; i < 250; i++) log.add('sent', 't', String(i), i);
    expect(log.list).toHaveLength(200);
    expect(log.list[0].text).toBe('249');
    const long = 'x'.repeat(MESSAGE_TEXT_LIMIT + 50);
    const [m] = log.add('received', 't', long, 0);
    expect(m.size).toBe(long.length);
    expect(m.text.length).toBe(MESSAGE_TEXT_LIMIT + 1);
    expect(m.text.endsWith('…')).toBe(true);
  });
});
