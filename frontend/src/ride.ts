// The ride: the device message a bike sends each second, its output as the backend computes it,
// a plausible generated ride, and the pacing of a race.

import type { DeviceMessage } from './types';

/**
 * The output of one second: `((cadence + 35) × (resistance + 65)) / 100` rounded to 4 decimals,
 * exactly as the backend's `Output::from_effort` (round half away from zero on ten-thousandths;
 * outputs are never negative, where that equals Math.round).
 */
export function computeOutput(cadence: number, resistance: number): number {
  const raw = ((cadence + 35) * (resistance + 65)) / 100;
  return Math.round(raw * 10_000) / 10_000;
}

/** The race a racer starting at `startMs` joins: `floor(startMs / window)`. */
export function raceIdAt(startMs: number, windowSeconds: number): number {
  return Math.floor(startMs / (windowSeconds * 1000));
}

export interface MessageInput {
  uuid: string;
  raceId: number;
  /** Wall-clock time the race started (second 1), epoch ms. */
  startMs: number;
  second: number;
  raceSeconds: number;
  name: string;
  racerId: number;
  classId: number;
  cadence: number;
  resistance: number;
}

/**
 * The device message of one second (DESIGN section 2). `event` is `final` on the last second;
 * `deviceTimestamp` is the race start plus one second per second ridden, so a race compressed
 * with `?speed=` still carries consistent simulated time.
 */
export function buildMessage(input: MessageInput): DeviceMessage {
  if (!Number.isInteger(input.second) || input.second < 1 || input.second > input.raceSeconds) {
    throw new RangeError(`second ${input.second} is outside 1..${input.raceSeconds}`);
  }
  return {
    uuid: input.uuid,
    event: input.second === input.raceSeconds ? 'final' : 'update',
    deviceTimestamp: input.startMs + (input.second - 1) * 1000,
    second: input.second,
    raceId: input.raceId,
    name: input.name.slice(0, 64),
    racerId: input.racerId,
    classId: input.classId,
    cadence: input.cadence,
    resistance: input.resistance,
  };
}

/** A random UUID, also where `crypto.randomUUID` is missing (pages served over plain http). */
export function uuid(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** mulberry32: a small seeded generator for the ride's noise. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const round1 = (x: number) => Math.round(x * 10) / 10;

export const CADENCE_RANGE = [70, 95] as const;
export const RESISTANCE_RANGE = [40, 70] as const;
/** How far the +/- buttons can move a ride away from its natural range. */
export const NUDGE_LIMIT = 30;
export const NUDGE_STEP = 5;

/**
 * A plausible ride: cadence 70–95 rpm and resistance 40–70 drifting smoothly (a mean-reverting
 * random walk), shifted by the rider's +/- nudges. Values carry one decimal.
 */
export class RideGenerator {
  private cadence: number;
  private resistance: number;
  private cadenceNudge = 0;
  private resistanceNudge = 0;

  constructor(private readonly random: () => number = Math.random) {
    this.cadence = CADENCE_RANGE[0] + (CADENCE_RANGE[1] - CADENCE_RANGE[0]) * (0.3 + 0.4 * random());
    this.resistance = RESISTANCE_RANGE[0] + (RESISTANCE_RANGE[1] - RESISTANCE_RANGE[0]) * (0.3 + 0.4 * random());
  }

  nudgeCadence(direction: 1 | -1): number {
    this.cadenceNudge = clamp(this.cadenceNudge + direction * NUDGE_STEP, -NUDGE_LIMIT, NUDGE_LIMIT);
    return this.cadenceNudge;
  }

  nudgeResistance(direction: 1 | -1): number {
    this.resistanceNudge = clamp(this.resistanceNudge + direction * NUDGE_STEP, -NUDGE_LIMIT, NUDGE_LIMIT);
    return this.resistanceNudge;
  }

  get nudges(): { cadence: number; resistance: number } {
    return { cadence: this.cadenceNudge, resistance: this.resistanceNudge };
  }

  /** The next second's cadence and resistance. */
  next(): { cadence: number; resistance: number } {
    const step = (value: number, [lo, hi]: readonly [number, number], spread: number) => {
      const mid = (lo + hi) / 2;
      const noise = (this.random() + this.random() + this.random() - 1.5) * spread;
      return clamp(value + 0.15 * (mid - value) + noise, lo, hi);
    };
    this.cadence = step(this.cadence, CADENCE_RANGE, 3);
    this.resistance = step(this.resistance, RESISTANCE_RANGE, 2.5);
    return {
      cadence: round1(clamp(this.cadence + this.cadenceNudge, 0, 250)),
      resistance: round1(clamp(this.resistance + this.resistanceNudge, 0, 100)),
    };
  }
}

/** Milliseconds between two messages at `speed` (1 = real time). */
export function tickInterval(speed: number): number {
  return 1000 / speed;
}

export interface Clock {
  /** Monotonic milliseconds (performance.now in the page). */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RaceTick {
  second: number;
  message: DeviceMessage;
  output: number;
}

export interface RaceRunOptions {
  racerId: number;
  name: string;
  classId: number;
  raceSeconds: number;
  windowSeconds: number;
  speed: number;
  /** Wall-clock start, epoch ms: decides the race id and the device timestamps. */
  startMs: number;
  ride: RideGenerator;
  uuid?: () => string;
}

/**
 * One racer's race: second 1 at once, then one message every `1000 / speed` ms, scheduled from
 * the start (no drift), `final` on the last second. `onTick` publishes; `done` resolves once the
 * final second's `onTick` (and the promise it returned) has finished.
 */
export class RaceRun {
  readonly raceId: number;
  readonly done: Promise<'finished' | 'stopped'>;
  private handle: unknown = null;
  private stopped = false;
  private resolve!: (outcome: 'finished' | 'stopped') => void;
  private t0 = 0;

  constructor(
    private readonly options: RaceRunOptions,
    private readonly clock: Clock,
    private readonly onTick: (tick: RaceTick) => void | Promise<unknown>,
  ) {
    this.raceId = raceIdAt(options.startMs, options.windowSeconds);
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  start(): void {
    this.t0 = this.clock.now();
    this.schedule(1);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.handle !== null) this.clock.clearTimeout(this.handle);
    this.resolve('stopped');
  }

  private schedule(second: number): void {
    const due = this.t0 + (second - 1) * tickInterval(this.options.speed);
    const delay = Math.max(0, due - this.clock.now());
    this.handle = this.clock.setTimeout(() => this.tick(second), delay);
  }

  private tick(second: number): void {
    if (this.stopped) return;
    const o = this.options;
    const { cadence, resistance } = o.ride.next();
    const message = buildMessage({
      uuid: (o.uuid ?? uuid)(),
      raceId: this.raceId,
      startMs: o.startMs,
      second,
      raceSeconds: o.raceSeconds,
      name: o.name,
      racerId: o.racerId,
      classId: o.classId,
      cadence,
      resistance,
    });
    const sent = this.onTick({ second, message, output: computeOutput(cadence, resistance) });
    if (second < o.raceSeconds) {
      this.schedule(second + 1);
      return;
    }
    this.handle = null;
    Promise.resolve(sent)
      .catch(() => undefined)
      .then(() => {
        if (!this.stopped) {
          this.stopped = true;
          this.resolve('finished');
        }
      });
  }
}
