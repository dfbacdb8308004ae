import { describe, expect, it } from 'vitest';
import fixture from './roster.fixture.json';
import { SplitMix64, avatarHue, derive, initials, mix, racerName, roster } from './roster';

describe('roster: the TypeScript port of simulator::names::racer_name', () => {
  it('covers racers 0..=100 and large ids in the fixture', () => {
    const ids = fixture.map((e) => e.id);
    for (let id = 0; id <= 100; id++) expect(ids).toContain(id);
    expect(ids).toContain(1_000_000);
    expect(ids).toContain(4_294_967_295);
  });

  it('names every fixture racer exactly as the Rust function does', () => {
    const mismatches = fixture
      .map((e) => ({ id: e.id, expected: e.name, actual: racerName(e.id) }))
      .filter((m) => m.actual !== m.expected);
    expect(mismatches).toEqual([]);
  });

  it('keeps SplitMix64 pinned like rng.rs does', () => {
    expect(new SplitMix64(0n).nextU64()).toBe(0xe220a8397b1dcdafn);
    // wrapping arithmetic: the state and the hashes stay within 64 bits
    const top = (1n << 64n) - 1n;
    expect(mix(top) <= top).toBe(true);
    expect(derive(top, top) <= top).toBe(true);
    const rng = new SplitMix64(top);
    for (let i = 0; i < 100; i++) expect(rng.below(7)).toBeLessThan(7);
  });

  it('rejects ids that are not u32', () => {
    expect(() => racerName(-1)).toThrow(RangeError);
    expect(() => racerName(2 ** 32)).toThrow(RangeError);
    expect(() => racerName(1.5)).toThrow(RangeError);
  });

  it('offers racers 1..100 with initials', () => {
    const list = roster();
    expect(list).toHaveLength(100);
    expect(list[0].id).toBe(1);
    expect(list[99].id).toBe(100);
    for (const r of list) {
      expect(r.name).toBe(racerName(r.id));
      const [first, last] = r.name.split(' ');
      expect(r.initials).toBe(`${first[0]}${last[0]}`.toUpperCase());
    }
  });

  it('makes initials and hues', () => {
    expect(initials('Adell Okafor')).toBe('AO');
    expect(initials('  zoe  ')).toBe('Z');
    expect(initials('Ana Maria de la Cruz')).toBe('AC');
    expect(initials('')).toBe('?');
    expect(avatarHue(8)).toBe(avatarHue(8));
    expect(avatarHue(8)).toBeGreaterThanOrEqual(0);
    expect(avatarHue(8)).toBeLessThan(360);
  });
});
