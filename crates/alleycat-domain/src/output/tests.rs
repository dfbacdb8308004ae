use proptest::prelude::*;

use super::{Decimal, Output};

fn written(output: Output) -> String {
    let mut out = b"x".to_vec();
    output.write_json(&mut out);
    String::from_utf8(out[1..].to_vec()).unwrap()
}

fn serde(output: Output) -> String {
    serde_json::to_string(&output.as_f64()).unwrap()
}

#[test]
fn writes_outputs_as_serde_json_does() {
    for (units, text) in [
        (0, "0.0"),
        (1, "0.0001"),
        (10, "0.001"),
        (1_000, "0.1"),
        (10_000, "1.0"),
        (1_517_880, "151.788"),
        (1_517_881, "151.7881"),
        (4_702_500, "470.25"),
        (u32::MAX, "429496.7295"),
    ] {
        let output = Output::from_ten_thousandths(units);
        assert_eq!(written(output), text, "{units}");
        assert_eq!(serde(output), text, "{units}");
    }
}

/// Every output a validated reading can score ((250 + 35) × (100 + 65) / 100 = 470.25 at most)
/// is written as serde_json writes it, a stride of the rest too.
#[test]
fn writes_every_reachable_output_as_serde_json_does() {
    let reachable = (0..=4_702_500).step_by(7).chain(0..=20_000);
    let beyond = (4_702_500..=u32::MAX).step_by(104_729);
    for units in reachable.chain(beyond) {
        let output = Output::from_ten_thousandths(units);
        assert_eq!(written(output), serde(output), "{units}");
    }
}

/// What `from_f64` computes by hand: `f64::round`, then the range.
fn rounded(value: f64) -> Option<Output> {
    let scaled = (value * f64::from(Output::SCALE)).round();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (scaled.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&scaled))
        .then(|| Output::from_ten_thousandths(scaled as u32))
}

#[test]
fn rounds_as_f64_round_does_at_the_edges() {
    let max = f64::from(u32::MAX);
    for scaled in [
        0.0,
        -0.0,
        0.5,
        -0.5,
        -0.499_999_999_999_999_94,
        0.499_999_999_999_999_94,
        1.5,
        2.5,
        12_345.5,
        max,
        max - 0.5,
        max + 0.5,
        max - 0.49999,
        max + 0.4999,
        max + 1.0,
        -1.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        1e300,
    ] {
        let value = scaled / f64::from(Output::SCALE);
        assert_eq!(Output::from_f64(value), rounded(value), "{scaled}");
    }
}

/// `from_decimal_effort` against `from_effort` of the same decimals' doubles.
fn same_effort(cadence: Decimal, resistance: Decimal) -> bool {
    Output::from_decimal_effort(cadence, resistance)
        == Output::from_effort(cadence.to_f64(), resistance.to_f64())
}

fn decimal(mantissa: u64, decimals: usize) -> Decimal {
    Decimal { mantissa, decimals }
}

#[test]
fn scores_decimals_as_their_doubles_do() {
    // 0.001 and 0: exactly 227,506.5 ten-thousandths, a tie the doubles decide.
    assert!(same_effort(decimal(1, 3), decimal(0, 0)));
    // Every cadence of two decimals, with resistances of every precision.
    let resistances = [
        (0, 0),
        (5, 1),
        (33, 0),
        (655, 1),
        (9_999, 2),
        (100, 0),
        (12_345, 5),
    ];
    for cadence in 0..=25_000 {
        for (mantissa, decimals) in resistances {
            assert!(
                same_effort(decimal(cadence, 2), decimal(mantissa, decimals)),
                "{cadence} {mantissa}/{decimals}"
            );
        }
    }
}

proptest! {
    /// Any valid cadence and resistance of up to five decimals.
    #[test]
    fn scores_any_valid_decimals_as_their_doubles_do(
        (c_decimals, r_decimals) in (0..=5usize, 0..=5usize),
        c_fraction in 0.0..=1.0f64,
        r_fraction in 0.0..=1.0f64,
    ) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let scaled = |fraction: f64, max: u64, decimals: usize| {
            let top = max * 10u64.pow(u32::try_from(decimals).unwrap());
            decimal((fraction * top as f64) as u64, decimals)
        };
        prop_assert!(same_effort(
            scaled(c_fraction, 250, c_decimals),
            scaled(r_fraction, 100, r_decimals),
        ));
    }

    #[test]
    fn rounds_as_f64_round_does(value in prop_oneof![
        any::<f64>(),
        -1.0..500_000.0f64,
        // Ties and near-ties of ten-thousandths.
        (0u32..u32::MAX, prop::sample::select(vec![0.5, 0.499_999_999_99, 0.500_000_000_01]))
            .prop_map(|(units, frac)| (f64::from(units) + frac) / 1e4),
    ]) {
        prop_assert_eq!(Output::from_f64(value), rounded(value));
    }

    /// Every effort a validated reading can have rounds as `f64::round` would.
    #[test]
    fn scores_efforts_as_f64_round_does(cadence in 0.0..=250.0f64, resistance in 0.0..=100.0f64) {
        let raw = (cadence + 35.0) * (resistance + 65.0) / 100.0;
        prop_assert_eq!(Some(Output::from_effort(cadence, resistance)), rounded(raw));
    }

    #[test]
    fn writes_any_output_as_serde_json_does(units in any::<u32>()) {
        let output = Output::from_ten_thousandths(units);
        prop_assert_eq!(written(output), serde(output));
    }
}
