import { describe, expect, it, vi } from 'vitest';
import {
  CADENCE_RANGE,
  NUDGE_LIMIT,
  RESISTANCE_RANGE,
  RaceRun,
  RideGenerator,
  buildMessage,
  computeOutput,
  raceIdAt,
  seededRandom,
  tickInterval,
  uuid,
  type RaceTick,
} from './ride';

describe('computeOutput', () => {
  it('is ((cadence + 35) x (resistance + 65)) / 100', () => {
    expect(computeOutput(74.2, 74)).toBe(151.788);
    expect(computeOutput(0, 0)).toBe(22.75);
    expect(computeOutput(250, 100)).toBe(470.25);
    expect(computeOutput(71.3, 44.9)).toBe(116.8237);
  });

  it('rounds to 4 decimals as the backend does', () => {
    // raw 132.91641088 -> down; raw 132.92448293 -> up; raw 133.27958025 -> up
    expect(computeOutput(80.123, 50.456)).toBe(132.9164);
    expect(computeOutput(80.127, 50.459)).toBe(132.9245);
    expect(computeOutput(75.555, 55.555)).toBe(133.2796);
    for (const [c, r] of [
      [88.8, 61.7],
      [90.01, 45.03],
    ]) {
      // never more than 4 decimals in the number's text (what JSON and the page show)
      const decimals = String(computeOutput(c, r)).split('.')[1] ?? '';
      expect(decimals.length).toBeLessThanOrEqual(4);
    }
  });
});

describe('raceIdAt', () => {
  it('is floor(startMs / window)', () => {
    expect(raceIdAt(1_620_051_628_707, 300)).toBe(5_400_172);
    expect(raceIdAt(300_000 * 7, 300)).toBe(7);
    expect(raceIdAt(300_000 * 7 - 1, 300)).toBe(6);
    expect(raceIdAt(65_000, 30)).toBe(2);
  });
});

describe('buildMessage', () => {
  const base = {
    uuid: 'u-1',
    raceId: 5_400_172,
    startMs: 1_620_051_616_707,
    raceSeconds: 300,
    name: 'Adell Okafor',
    racerId: 8,
    classId: 3,
    cadence: 74.2,
    resistance: 74,
  };

  it('follows the device message schema of DESIGN section 2', () => {
    const message = buildMessage({ ...base, second: 13 });
    expect(Object.keys(message)).toEqual([
      'uuid',
      'event',
      'deviceTimestamp',
      'second',
      'raceId',
      'name',
      'racerId',
      'classId',
      'cadence',
      'resistance',
    ]);
    expect(message).toEqual({
      uuid: 'u-1',
      event: 'update',
      deviceTimestamp: 1_620_051_628_707,
      second: 13,
      raceId: 5_400_172,
      name: 'Adell Okafor',
      racerId: 8,
      classId: 3,
      cadence: 74.2,
      resistance: 74,
    });
    expect(JSON.parse(JSON.stringify(message))).toEqual(message);
  });

  it('is final on the last second only', () => {
    expect(buildMessage({ ...base, second: 1 }).event).toBe('update');
    expect(buildMessage({ ...base, second: 299 }).event).toBe('update');
    expect(buildMessage({ ...base, second: 300 }).event).toBe('final');
    expect(buildMessage({ ...base, raceSeconds: 5, second: 5 }).event).toBe('final');
  });

  it('stamps simulated time: the start plus one second per second', () => {
    expect(buildMessage({ ...base, second: 1 }).deviceTimestamp).toBe(base.startMs);
    expect(buildMessage({ ...base, second: 300 }).deviceTimestamp).toBe(base.startMs + 299_000);
  });

  it('refuses seconds outside the race and long names', () => {
    expect(() => buildMessage({ ...base, second: 0 })).toThrow(RangeError);
    expect(() => buildMessage({ ...base, second: 301 })).toThrow(RangeError);
    expect(() => buildMessage({ ...base, second: 2.5 })).toThrow(RangeError);
    expect(buildMessage({ ...base, second: 1, name: 'x'.repeat(100) }).name).toHaveLength(64);
  });
});

describe('uuid', () => {
  it('is a v4 UUID, with or without crypto.randomUUID', () => {
    const shape = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    expect(uuid()).toMatch(shape);
    const original = crypto.randomUUID;
    try {
      Object.defineProperty(crypto, 'randomUUID', { value: undefined, configurable: true });
      const a = uuid();
      expect(a).toMatch(shape);
      expect(uuid()).not.toBe(a);
    } finally {
      Object.defineProperty(crypto, 'randomUUID', { value: original, configurable: true });
    }
  });
});

describe('RideGenerator', () => {
  it('rides plausibly: cadence 70-95, resistance 40-70, smooth', () => {
    const ride = new RideGenerator(seededRandom(42));
    let previous = ride.next();
    for (let i = 0; i < 600; i++) {
      const now = ride.next();
      expect(now.cadence).toBeGreaterThanOrEqual(CADENCE_RANGE[0]);
      expect(now.cadence).toBeLessThanOrEqual(CADENCE_RANGE[1]);
      expect(now.resistance).toBeGreaterThanOrEqual(RESISTANCE_RANGE[0]);
      expect(now.resistance).toBeLessThanOrEqual(RESISTANCE_RANGE[1]);
      expect(Math.abs(now.cadence - previous.cadence)).toBeLessThan(12);
      expect(Number.isInteger(Math.round(now.cadence * 10))).toBe(true);
      previous = now;
    }
  });

  it('moves with the nudges, within limits', () => {
    const ride = new RideGenerator(seededRandom(1));
    for (let i = 0; i < 20; i++) ride.nudgeCadence(1);
    expect(ride.nudges.cadence).toBe(NUDGE_LIMIT);
    for (let i = 0; i < 3; i++) ride.nudgeResistance(-1);
    expect(ride.nudges.resistance).toBe(-15);
    const sample = ride.next();
    expect(sample.cadence).toBeGreaterThanOrEqual(CADENCE_RANGE[0] + NUDGE_LIMIT);
    expect(sample.resistance).toBeLessThanOrEqual(RESISTANCE_RANGE[1] - 15);
  });
});

describe('RaceRun', () => {
  function fakeClock() {
    return {
      now: () => Date.now(),
      setTimeout: (callback: () => void, ms: number) => setTimeout(callback, ms),
      clearTimeout: (handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
  }

  it('publishes every second, paced by ?speed, final last, then finishes', async () => {
    vi.useFakeTimers();
    try {
      const startMs = 1_700_000_123_456;
      const ticks: { tick: RaceTick; at: number }[] = [];
      const t0 = Date.now();
      let ack!: () => void;
      const run = new RaceRun(
        {
          racerId: 8,
          name: 'Adell Okafor',
          classId: 3,
          raceSeconds: 5,
          windowSeconds: 300,
          speed: 10,
          startMs,
          ride: new RideGenerator(seededRandom(7)),
          uuid: () => `u-${ticks.length + 1}`,
        },
        fakeClock(),
        (tick) => {
          ticks.push({ tick, at: Date.now() - t0 });
          return tick.message.event === 'final' ? new Promise<void>((resolve) => (ack = resolve)) : undefined;
        },
      );
      expect(run.raceId).toBe(Math.floor(startMs / 300_000));
      let outcome: string | null = null;
      void run.done.then((o) => (outcome = o));
      run.start();
      await vi.advanceTimersByTimeAsync(0);
      expect(ticks.map((t) => t.tick.second)).toEqual([1]);
      await vi.advanceTimersByTimeAsync(tickInterval(10) * 4);
      expect(ticks.map((t) => t.tick.second)).toEqual([1, 2, 3, 4, 5]);
      expect(ticks.map((t) => t.at)).toEqual([0, 100, 200, 300, 400]);
      expect(ticks.map((t) => t.tick.message.event)).toEqual(['update', 'update', 'update', 'update', 'final']);
      expect(ticks.map((t) => t.tick.message.deviceTimestamp)).toEqual([0, 1, 2, 3, 4].map((s) => startMs + s * 1000));
      for (const { tick } of ticks) {
        expect(tick.output).toBe(computeOutput(tick.message.cadence, tick.message.resistance));
        expect(tick.message.raceId).toBe(run.raceId);
      }
      // Not finished until the final message is acknowledged.
      await vi.advanceTimersByTimeAsync(1000);
      expect(outcome).toBeNull();
      ack();
      await vi.advanceTimersByTimeAsync(0);
      expect(outcome).toBe('finished');
      expect(ticks).toHaveLength(5);
    } finally {
      vi.useRealTimers();
    }
  });

  it('stops when asked, sending nothing more', async () => {
    vi.useFakeTimers();
    try {
      const seconds: number[] = [];
      const run = new RaceRun(
        {
          racerId: 1,
          name: 'x',
          classId: 1,
          raceSeconds: 300,
          windowSeconds: 300,
          speed: 1,
          startMs: Date.now(),
          ride: new RideGenerator(seededRandom(3)),
        },
        fakeClock(),
        (tick) => void seconds.push(tick.second),
      );
      run.start();
      await vi.advanceTimersByTimeAsync(2500);
      expect(seconds).toEqual([1, 2, 3]);
      run.stop();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(seconds).toEqual([1, 2, 3]);
      await expect(run.done).resolves.toBe('stopped');
    } finally {
      vi.useRealTimers();
    }
  });
});
