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

proptest! {
    #[test]
    fn writes_any_output_as_serde_json_does(units in any::<u32>()) {
        let output = Output::from_ten_thousandths(units);
        prop_assert_eq!(written(output), serde(output));
    }
}
