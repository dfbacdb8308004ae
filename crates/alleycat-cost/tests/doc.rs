//! `docs/cost.md` is one bill: its counted column is the bill the main job printed for the
//! 1,000-racer, 5-minute race (`docs/cost-race.json`, written by `scripts/cost-race`), its
//! per-race formula ([`RaceEstimate`]) agrees with that bill within 5%, and the doc shows the
//! totals as they are.

use alleycat_cost::{Bill, PriceTable, RaceEstimate};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const DOC: &str = include_str!("../../../docs/cost.md");
const COUNTED: &str = include_str!("../../../docs/cost-race.json");
const ORIGINAL: &str = include_str!("../../../docs/cost-original.json");

fn formula_total(racers: u64, seconds: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let usage = RaceEstimate::new(racers, seconds).usage();
    Ok(Bill::new(&usage, PriceTable::builtin(), "us-east-1")?.total)
}

#[test]
fn the_docs_formula_agrees_with_the_counted_bill_of_the_main_job() -> TestResult {
    let counted: Value = serde_json::from_str(COUNTED)?;
    let counted_total = counted["total"].as_f64().ok_or("a total")?;
    assert_eq!(
        counted["usage"]["kinesisRecords"], 300_000,
        "the doc's race"
    );
    let formula = formula_total(1000, 300)?;
    let gap = (formula - counted_total).abs() / counted_total;
    eprintln!("formula ${formula:.4}, counted ${counted_total:.4}");
    assert!(
        gap <= 0.05,
        "formula ${formula:.4} vs counted ${counted_total:.4}: {:.1}% apart",
        gap * 100.0
    );
    Ok(())
}

#[test]
fn the_doc_shows_the_counted_bills_and_the_formula() -> TestResult {
    let counted: Value = serde_json::from_str(COUNTED)?;
    let original: Value = serde_json::from_str(ORIGINAL)?;
    for (what, total) in [
        ("this design, counted", counted["total"].as_f64()),
        ("the original, replayed", original["total"].as_f64()),
        ("this design, formula", Some(formula_total(1000, 300)?)),
    ] {
        let shown = format!("${:.3}", total.ok_or(what)?);
        assert!(DOC.contains(&shown), "docs/cost.md shows {what} as {shown}");
    }
    Ok(())
}
