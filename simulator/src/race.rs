//! One race for N racers, generated one simulated second (a *tick*) at a time as NDJSON.
//!
//! Generation is pure: the messages depend only on the [`RacePlan`], so the same plan gives
//! byte-identical output. Wall-clock time enters only through the plan's `start_ms`.

use std::ops::Range;

use alleycat_domain::RaceClock;

use crate::racer::{Course, Identity, Ride};
use crate::rng::{Rng, derive, mix};

/// The default `--seed`: fixed, so two default runs ride the same race.
pub const DEFAULT_SEED: u64 = 5_400_172;

/// The default `--first-racer-id`: the page (`frontend/`) offers racers 1-100, so the simulator's
/// racers start past them and a person riding in the browser is never one of them by accident
/// (as the original's simulator started at 100 for the same reason).
pub const DEFAULT_FIRST_RACER_ID: u32 = 101;

const START_KEY: u64 = 0x7374_6172_7400_0005;
const UUID_KEY: u64 = 0x7575_6964_0000_0006;

/// Everything a race's messages depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RacePlan {
    /// Seeds every ride (form, style, start offsets, noise, the course, uuids).
    pub seed: u64,
    /// Class 1-6.
    pub class_id: u8,
    /// How many racers (1-1,000).
    pub racers: u32,
    /// The first racer id; racers are `first_racer_id..first_racer_id + racers`.
    pub first_racer_id: u32,
    /// Race length in seconds: every racer sends seconds 1..=this, the last one `final`.
    pub seconds: u16,
    /// Start window of races (seconds): `raceId = floor(start_ms / window)`.
    pub window_seconds: u32,
    /// When the race starts, epoch milliseconds.
    pub start_ms: u64,
    /// Racers start at offsets spread uniformly over this many seconds (0: all within the first
    /// second), clamped to the end of the start window so every racer joins the same race.
    pub start_offset_spread: u32,
}

impl Default for RacePlan {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            class_id: 1,
            racers: 100,
            first_racer_id: DEFAULT_FIRST_RACER_ID,
            seconds: 300,
            window_seconds: 300,
            start_ms: 1_620_051_600_000,
            start_offset_spread: 0,
        }
    }
}

impl RacePlan {
    /// The race clock messages are valid under.
    pub fn clock(&self) -> RaceClock {
        RaceClock::new(self.seconds, self.window_seconds)
    }

    /// The race id: the start window of `start_ms`.
    pub fn race_id(&self) -> u64 {
        self.clock().race_id_at(self.start_ms)
    }

    /// Milliseconds over which starts are spread: the requested spread (at least one second, so
    /// bikes are not in lockstep) but never past the end of the start window.
    pub fn start_span_ms(&self) -> u64 {
        let wanted = u64::from(self.start_offset_spread.max(1)) * 1000;
        wanted.min(self.window_left_ms()).max(1)
    }

    /// Whether the requested spread had to be shortened to keep every start in the window.
    pub fn spread_clamped(&self) -> bool {
        u64::from(self.start_offset_spread) * 1000 > self.window_left_ms()
    }

    fn window_left_ms(&self) -> u64 {
        let clock = self.clock();
        clock.race_opens_at(self.race_id() + 1) - self.start_ms
    }

    /// Messages in the whole race.
    pub fn total_records(&self) -> u64 {
        u64::from(self.racers) * u64::from(self.seconds)
    }
}

/// One record of a [`Batch`]: a message and the racer that sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef {
    /// Index of the racer in the race (0..racers), also the index of its Kinesis ordering queue.
    pub racer: u32,
    /// Milliseconds into the tick at which the bike sends it (its start phase).
    pub phase_ms: u16,
    /// Byte range of the message in [`Batch::buf`] (without the newline).
    pub start: u32,
    /// Length of the message in bytes.
    pub len: u32,
}

/// The messages of one tick: NDJSON in one buffer, in send order (by phase).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Simulated second of the run, from 0.
    pub tick: u32,
    /// The messages, one per line, each `\n`-terminated.
    pub buf: Vec<u8>,
    /// Where each message is.
    pub records: Vec<RecordRef>,
}

impl Batch {
    /// Message `i` without its newline.
    pub fn message(&self, i: usize) -> &[u8] {
        let r = self.records[i];
        &self.buf[r.start as usize..(r.start + r.len) as usize]
    }

    /// The NDJSON bytes of records `range` (contiguous, newlines included).
    pub fn lines(&self, range: Range<usize>) -> &[u8] {
        if range.is_empty() {
            return &[];
        }
        let first = self.records[range.start];
        let last = self.records[range.end - 1];
        &self.buf[first.start as usize..(last.start + last.len + 1) as usize]
    }

    /// Splits the records by send time into `slots` equal parts of the second: the ranges of
    /// records whose phase falls in each slot.
    pub fn slots(&self, slots: u16) -> Vec<Range<usize>> {
        let slots = slots.max(1);
        let width = 1000_u16.div_ceil(slots);
        let mut ranges = Vec::with_capacity(usize::from(slots));
        let mut start = 0;
        for slot in 0..slots {
            let limit = (slot + 1).saturating_mul(width);
            let end = start
                + self.records[start..]
                    .iter()
                    .take_while(|r| r.phase_ms < limit || slot == slots - 1)
                    .count();
            ranges.push(start..end);
            start = end;
        }
        ranges
    }
}

struct Rider {
    identity: Identity,
    offset_ms: u32,
    ride: Ride,
    uuid_key: u64,
    /// `,"raceId":…,"name":…,"racerId":…,"classId":…,"cadence":`, rendered once.
    tail: Vec<u8>,
    key: std::sync::Arc<str>,
}

/// A race being generated, tick by tick.
pub struct Race {
    plan: RacePlan,
    id: u64,
    course: Course,
    riders: Vec<Rider>,
    /// Rider indexes by phase within the second (then racer id): the send order of a tick.
    order: Vec<u32>,
    ticks: u32,
    next_tick: u32,
}

impl Race {
    /// Sets the race up: every racer's identity, ride and start offset.
    pub fn new(plan: &RacePlan) -> Self {
        let race_id = plan.race_id();
        let span_ms = plan.start_span_ms();
        let riders: Vec<Rider> = (0..plan.racers)
            .map(|i| {
                let racer_id = plan.first_racer_id.saturating_add(i);
                let identity = Identity::of(racer_id);
                let racer_key = derive(plan.seed, u64::from(racer_id));
                let mut starts = Rng::new(derive(racer_key, START_KEY));
                let offset_ms = u32::try_from(starts.below(span_ms)).unwrap_or(u32::MAX);
                let ride = Ride::new(plan.seed, &identity);
                let mut tail = Vec::with_capacity(96 + identity.name.len());
                tail.extend_from_slice(b",\"raceId\":");
                tail.extend_from_slice(itoa::Buffer::new().format(race_id).as_bytes());
                tail.extend_from_slice(b",\"name\":");
                tail.extend_from_slice(
                    serde_json::to_string(&identity.name)
                        .expect("a string serializes")
                        .as_bytes(),
                );
                tail.extend_from_slice(b",\"racerId\":");
                tail.extend_from_slice(itoa::Buffer::new().format(racer_id).as_bytes());
                tail.extend_from_slice(b",\"classId\":");
                tail.extend_from_slice(itoa::Buffer::new().format(plan.class_id).as_bytes());
                tail.extend_from_slice(b",\"cadence\":");
                let uuid_key = derive(
                    derive(derive(plan.seed, race_id), u64::from(plan.class_id)),
                    derive(UUID_KEY, u64::from(racer_id)),
                );
                Rider {
                    key: racer_id.to_string().into(),
                    identity,
                    offset_ms,
                    ride,
                    uuid_key,
                    tail,
                }
            })
            .collect();
        let mut order: Vec<u32> = (0..plan.racers).collect();
        order.sort_by_key(|&i| {
            let r = &riders[i as usize];
            (r.offset_ms % 1000, r.identity.racer_id)
        });
        let last_start = riders.iter().map(|r| r.offset_ms / 1000).max().unwrap_or(0);
        Self {
            course: Course::new(plan.seed, plan.class_id),
            plan: plan.clone(),
            id: race_id,
            riders,
            order,
            ticks: last_start + u32::from(plan.seconds),
            next_tick: 0,
        }
    }

    /// The plan this race follows.
    pub fn plan(&self) -> &RacePlan {
        &self.plan
    }

    /// The race id every message carries.
    pub fn race_id(&self) -> u64 {
        self.id
    }

    /// Ticks from the first racer's first second to the last racer's final one.
    pub fn ticks(&self) -> u32 {
        self.ticks
    }

    /// Racer `racer`'s identity (by index).
    pub fn identity(&self, racer: u32) -> &Identity {
        &self.riders[racer as usize].identity
    }

    /// Racer `racer`'s start, in milliseconds after the plan's `start_ms`.
    pub fn offset_ms(&self, racer: u32) -> u32 {
        self.riders[racer as usize].offset_ms
    }

    /// Racer `racer`'s Kinesis partition key: the racer id in decimal, so each racer's records
    /// stay in order on one shard.
    pub fn partition_key(&self, racer: u32) -> &std::sync::Arc<str> {
        &self.riders[racer as usize].key
    }

    /// Generates the next tick into `batch` (cleared first); `false` once the race is over.
    pub fn next_batch(&mut self, batch: &mut Batch) -> bool {
        if self.next_tick >= self.ticks {
            return false;
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        batch.tick = tick;
        batch.buf.clear();
        batch.records.clear();
        let seconds = self.plan.seconds;
        let start_ms = self.plan.start_ms;
        let mut int = itoa::Buffer::new();
        for &index in &self.order {
            let rider = &mut self.riders[index as usize];
            let first_tick = rider.offset_ms / 1000;
            if tick < first_tick || tick - first_tick >= u32::from(seconds) {
                continue;
            }
            // In range: `tick - first_tick < seconds <= u16::MAX`.
            let second = u16::try_from(tick - first_tick + 1).unwrap_or(u16::MAX);
            let effort = rider.ride.next(second, seconds, &self.course);
            let timestamp = start_ms + u64::from(rider.offset_ms) + (u64::from(second) - 1) * 1000;

            let start = batch.buf.len();
            let out = &mut batch.buf;
            out.extend_from_slice(b"{\"uuid\":\"");
            write_uuid(out, rider.uuid_key, second);
            out.extend_from_slice(if second == seconds {
                b"\",\"event\":\"final\",\"deviceTimestamp\":"
            } else {
                b"\",\"event\":\"update\",\"deviceTimestamp\":"
            });
            out.extend_from_slice(int.format(timestamp).as_bytes());
            out.extend_from_slice(b",\"second\":");
            out.extend_from_slice(int.format(second).as_bytes());
            out.extend_from_slice(&rider.tail);
            // Cadence in tenths, written as JavaScript would (74.2, 74).
            out.extend_from_slice(int.format(effort.cadence_tenths / 10).as_bytes());
            let tenths = effort.cadence_tenths % 10;
            if tenths != 0 {
                out.push(b'.');
                out.push(b'0' + u8::try_from(tenths).unwrap_or(0));
            }
            out.extend_from_slice(b",\"resistance\":");
            out.extend_from_slice(int.format(effort.resistance).as_bytes());
            out.push(b'}');
            let len = out.len() - start;
            out.push(b'\n');
            batch.records.push(RecordRef {
                racer: index,
                phase_ms: u16::try_from(rider.offset_ms % 1000).unwrap_or(999),
                start: u32::try_from(start).expect("a tick's batch is far below 4 GiB"),
                len: u32::try_from(len).expect("a message is short"),
            });
        }
        true
    }
}

/// Writes a UUID (version 4 layout, deterministic bits) for `second` of the racer keyed by `key`.
fn write_uuid(out: &mut Vec<u8>, key: u64, second: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let high = mix(key ^ u64::from(second));
    let low = mix(high ^ key.rotate_left(17));
    // Version 4 and the RFC 4122 variant, like a random UUID.
    let high = (high & !0xf000) | 0x4000;
    let low = (low & !(0b11 << 62)) | (0b10 << 62);
    let bits = (u128::from(high) << 64) | u128::from(low);
    for (i, shift) in (0..32).rev().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push(b'-');
        }
        out.push(HEX[((bits >> (shift * 4)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(plan: &RacePlan) -> Vec<u8> {
        let mut race = Race::new(plan);
        let mut batch = Batch::default();
        let mut out = Vec::new();
        while race.next_batch(&mut batch) {
            out.extend_from_slice(&batch.buf);
        }
        out
    }

    #[test]
    fn every_racer_sends_every_second_once() {
        let plan = RacePlan {
            racers: 37,
            seconds: 20,
            start_offset_spread: 9,
            ..RacePlan::default()
        };
        let out = all_lines(&plan);
        let lines: Vec<&[u8]> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 37 * 20);
        let first = String::from_utf8(lines[0].to_vec()).unwrap();
        assert!(first.starts_with("{\"uuid\":\""), "{first}");
    }

    #[test]
    fn uuids_look_like_version_4() {
        let mut out = Vec::new();
        write_uuid(&mut out, 12345, 7);
        let uuid = String::from_utf8(out).unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"), "{uuid}");
        assert_eq!(uuid.matches('-').count(), 4);
    }

    #[test]
    fn spread_is_clamped_to_the_start_window() {
        let plan = RacePlan {
            // 10 s before the window closes.
            start_ms: 5_400_173 * 300_000 - 10_000,
            start_offset_spread: 60,
            ..RacePlan::default()
        };
        assert!(plan.spread_clamped());
        assert_eq!(plan.start_span_ms(), 10_000);
        let race = Race::new(&plan);
        for racer in 0..plan.racers {
            let start = plan.start_ms + u64::from(race.offset_ms(racer));
            assert_eq!(plan.clock().race_id_at(start), race.race_id());
        }
    }

    #[test]
    fn slots_partition_a_tick_by_phase() {
        let plan = RacePlan {
            racers: 500,
            seconds: 2,
            ..RacePlan::default()
        };
        let mut race = Race::new(&plan);
        let mut batch = Batch::default();
        assert!(race.next_batch(&mut batch));
        let slots = batch.slots(10);
        assert_eq!(slots.len(), 10);
        assert_eq!(slots.last().unwrap().end, 500);
        for (k, range) in slots.iter().enumerate() {
            for r in &batch.records[range.clone()] {
                assert_eq!(usize::from(r.phase_ms / 100), k);
            }
        }
        assert_eq!(batch.lines(0..500), &batch.buf[..]);
    }
}
