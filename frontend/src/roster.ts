// Racer names, ported from the simulator (simulator/src/names.rs and simulator/src/rng.rs) so that
// racer N has the same name in the page as in the simulator's races. The port is guarded twice by
// roster.fixture.json, generated from the Rust function: roster.test.ts checks this file against
// it, and simulator/tests/roster.rs checks the Rust function against it.
//
// SplitMix64 needs wrapping u64 arithmetic, which JavaScript numbers cannot do exactly: BigInt
// with an explicit mask stands in for Rust's `wrapping_add` / `wrapping_mul`.

const MASK = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;
/** Key of the name stream (`NAME_KEY` in names.rs). */
const NAME_KEY = 0x6e616d6573210001n;

/** SplitMix64's finaliser (`rng::mix`). */
export function mix(value: bigint): bigint {
  let z = value & MASK;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

/** Hashes a key and a value into a new key (`rng::derive`). */
export function derive(key: bigint, value: bigint): bigint {
  return mix(key ^ mix((value + GAMMA) & MASK));
}

/** A SplitMix64 stream (`rng::Rng`), just the parts names use. */
export class SplitMix64 {
  private state: bigint;

  constructor(seed: bigint) {
    this.state = seed & MASK;
  }

  nextU64(): bigint {
    this.state = (this.state + GAMMA) & MASK;
    return mix(this.state);
  }

  /** Uniform integer in `0..n` by Lemire's multiply-shift (`Rng::below`). */
  below(n: number): number {
    return Number((this.nextU64() * BigInt(n)) >> 64n);
  }
}

// The lists of names.rs, in the same order (the order is part of the function).
// prettier-ignore
const FIRST: readonly string[] = [
  'Adell', 'Aiko', 'Alba', 'Alejandro', 'Amara', 'Amir', 'Ana', 'Anders', 'Anika', 'Arjun',
  'Astrid', 'Aurelio', 'Ayesha', 'Bea', 'Benedikt', 'Bilal', 'Bjorn', 'Bo', 'Camille', 'Carmen',
  'Chen', 'Chiara', 'Cyrus', 'Dalia', 'Dara', 'Dario', 'Deepa', 'Diego', 'Dimitri', 'Ebba', 'Efe',
  'Elif', 'Eliza', 'Emeka', 'Emil', 'Esme', 'Fatima', 'Felix', 'Femi', 'Finn', 'Freya', 'Gabriel',
  'Greta', 'Hana', 'Hassan', 'Helga', 'Hiro', 'Ida', 'Ines', 'Ingrid', 'Isaac', 'Ivan', 'Jamal',
  'Jana', 'Javier', 'Jin', 'Joao', 'Jonas', 'Kai', 'Kamala', 'Kenji', 'Kofi', 'Lara', 'Leila',
  'Leon', 'Lina', 'Luca', 'Lucia', 'Magnus', 'Maja', 'Malik', 'Mara', 'Mateo', 'Mei', 'Mila',
  'Milan', 'Nadia', 'Naveen', 'Nia', 'Nico', 'Nils', 'Noor', 'Olga', 'Omar', 'Oskar', 'Paloma',
  'Pavel', 'Priya', 'Quinn', 'Rafael', 'Rania', 'Ravi', 'Rosa', 'Rui', 'Sade', 'Saoirse', 'Sami',
  'Sanna', 'Selin', 'Sergei', 'Shira', 'Sofia', 'Sven', 'Tamar', 'Tariq', 'Tess', 'Theo', 'Tomas',
  'Uma', 'Valentina', 'Vera', 'Viktor', 'Wanjiru', 'Wen', 'Xavier', 'Yara', 'Yusuf', 'Yuki',
  'Zainab', 'Zara', 'Zoltan', 'Zoe',
];

// prettier-ignore
const LAST: readonly string[] = [
  'Abara', 'Achterberg', 'Adeyemi', 'Almeida', 'Andersen', 'Bauer', 'Becker', 'Bianchi', 'Brandt',
  'Castillo', 'Chandra', 'Chen', 'Costa', 'Dahl', 'Dubois', 'Duarte', 'Eriksen', 'Esposito',
  'Farah', 'Fischer', 'Fontaine', 'Gallo', 'Garcia', 'Ghosh', 'Haddad', 'Hansen', 'Horvath',
  'Ibrahim', 'Ivanova', 'Jansen', 'Kaya', 'Keller', 'Kim', 'Kowalski', 'Kruger', 'Laine', 'Larsen',
  'Lehmann', 'Lindqvist', 'Lopez', 'Mahlangu', 'Marino', 'Meyer', 'Moreau', 'Murphy', 'Nakamura',
  'Navarro', 'Nguyen', 'Novak', 'Nowak', 'Okafor', 'Okonkwo', 'Oliveira', 'Ortega', 'Papadopoulos',
  'Park', 'Patel', 'Petrov', 'Quispe', 'Ramos', 'Rao', 'Reyes', 'Ricci', 'Rossi', 'Sato',
  'Schmidt', 'Silva', 'Sokolov', 'Suzuki', 'Svensson', 'Takahashi', 'Tanaka', 'Torres', 'Triana',
  'Umarov', 'Varga', 'Vasquez', 'Virtanen', 'Vogel', 'Wagner', 'Walsh', 'Weber', 'Wojcik', 'Xu',
  'Yamamoto', 'Yilmaz', 'Young', 'Zhang', 'Zielinski', 'Zimmermann',
];

/** The stable display name of racer `racerId` ("Adell Okafor"), as the simulator names it. */
export function racerName(racerId: number): string {
  if (!Number.isInteger(racerId) || racerId < 0 || racerId > 0xffffffff) {
    throw new RangeError(`racer id ${racerId} is not a u32`);
  }
  const rng = new SplitMix64(derive(NAME_KEY, BigInt(racerId)));
  const first = FIRST[rng.below(FIRST.length)];
  const last = LAST[rng.below(LAST.length)];
  return `${first} ${last}`;
}

/** Avatar initials of a name: the first letter of the first and the last word ("AO"). */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter((w) => w.length > 0);
  if (words.length === 0) return '?';
  const first = words[0][0];
  const last = words.length > 1 ? words[words.length - 1][0] : '';
  return (first + last).toUpperCase();
}

/** A hue (0–359) for a racer's avatar, stable per racer. */
export function avatarHue(racerId: number): number {
  return Number(mix(BigInt(racerId)) % 360n);
}

export interface RosterEntry {
  id: number;
  name: string;
  initials: string;
}

/** Racers offered in the picker. */
export const ROSTER_SIZE = 100;

/** Racers 1–100 with their names and initials. */
export function roster(size: number = ROSTER_SIZE): RosterEntry[] {
  const entries: RosterEntry[] = [];
  for (let id = 1; id <= size; id++) {
    const name = racerName(id);
    entries.push({ id, name, initials: initials(name) });
  }
  return entries;
}
