//! The racer sample's percentiles against brute force on a 40,000-racer class, within the
//! accuracy docs/architecture.md states.

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use alleycat_domain::{ClassHistory, DEFAULT_SAMPLE_SIZE, Output};

const RACERS: u32 = 40_000;
const SECONDS: u16 = 300;

/// SplitMix64 of a counter: the same class on every run.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A racer's all-time best at a second, in ten-thousandths, or `None` where they never rode it:
/// an ability from 80 to 180 plus ±10 of noise, and one racer in ten stopping early.
fn best(racer: u32, second: u16) -> Option<u32> {
    let seed = mix(u64::from(racer));
    let ability = 800_000 + u32::try_from(seed % 1_000_001).unwrap();
    let last = if seed.is_multiple_of(10) {
        1 + u16::try_from((seed >> 20) % u64::from(SECONDS)).unwrap()
    } else {
        SECONDS
    };
    let noise = u32::try_from(mix(seed ^ u64::from(second) << 40) % 200_001).unwrap();
    (second <= last).then(|| ability + noise - 100_000)
}

#[test]
fn percentiles_at_every_second_match_brute_force_within_the_stated_accuracy() {
    let mut history = ClassHistory::new(3, 100);
    for racer in 0..RACERS {
        for second in 1..=SECONDS {
            if let Some(units) = best(racer, second) {
                history.record(second, racer, Output::from_ten_thousandths(units));
            }
        }
    }
    let sample = history.sample();
    let s = f64::from(DEFAULT_SAMPLE_SIZE);
    assert_eq!(sample.len(), DEFAULT_SAMPLE_SIZE as usize);

    // The class size (KMV): relative standard error about 1/sqrt(S − 2); 4σ.
    let estimate = sample.estimated_racers() as f64;
    let error = (estimate / f64::from(RACERS) - 1.0).abs();
    assert!(
        error <= 4.0 / (s - 2.0).sqrt(),
        "{estimate} racers estimated"
    );

    let mut worst = 0.0f64;
    for second in 1..=SECONDS {
        let mut values: Vec<u32> = (0..RACERS).filter_map(|r| best(r, second)).collect();
        values.sort_unstable();
        let n = values.len() as f64;
        // Live outputs at the class's own quantiles, from the top 1% to the bottom 10%.
        for q in [0.99, 0.97, 0.9, 0.75, 0.5, 0.25, 0.1] {
            let live = values[((n * q) as usize).min(values.len() - 1)] + 1_234;
            let output = Output::from_ten_thousandths(live);
            let above = values.iter().filter(|&&v| v > live).count() as f64;
            let p = above / n;
            // The floor to whole units: bests above `live` in its own unit count as not above.
            let unit = live / Output::SCALE;
            let rounding = values
                .iter()
                .filter(|&&v| v > live && v / Output::SCALE == unit)
                .count() as f64
                / n;
            let estimate = sample.fraction_above(second, output).expect("sampled");
            let sigma = (p * (1.0 - p) / s).sqrt();
            let deviation = (estimate - p).abs();
            assert!(
                deviation <= 4.0 * sigma + rounding + 1e-9,
                "second {second}, quantile {q}: estimated {estimate:.4}, exact {p:.4} \
                 (4σ = {:.4}, rounding {rounding:.4})",
                4.0 * sigma
            );
            worst = worst.max(deviation / (sigma + rounding).max(1e-9));
        }
    }
    eprintln!("worst deviation: {worst:.2} × (σ + rounding)");
}
