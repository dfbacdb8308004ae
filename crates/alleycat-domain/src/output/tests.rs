use proptest::prelude::*;

use super::Output;

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

proptest! {
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
