//! Reading and writing DynamoDB attribute values, with outputs as exact decimal numbers.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use alleycat_domain::{Output, SecondSeries, Standings};
use aws_sdk_dynamodb::types::AttributeValue;

/// One item, as the SDK hands it over.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute: DynamoDB numbers travel as decimal strings, so any `Display` number (an
/// integer, an [`Output`]'s exact decimal) is stored exactly.
pub(crate) fn n(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Why an item could not be read back: names the item and the attribute.
pub(crate) fn malformed(context: &str, attribute: &str, what: &str) -> String {
    format!("malformed item {context}: attribute {attribute} {what}")
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str, context: &str) -> Result<&'a str, String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        Some(_) => Err(malformed(context, name, "is not a string")),
        None => Err(malformed(context, name, "is missing")),
    }
}

pub(crate) fn get_n<T: FromStr>(item: &Item, name: &str, context: &str) -> Result<T, String> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| malformed(context, name, &format!("= {value} is out of range"))),
        Some(_) => Err(malformed(context, name, "is not a number")),
        None => Err(malformed(context, name, "is missing")),
    }
}

/// Reads an output back from a DynamoDB number. Outputs are written as their exact decimal
/// (at most 4 decimals); the nearest ten-thousandth of the parsed double is that decimal, whatever
/// form (`151.788`, `1.51788E+2`) the store normalised it to.
pub(crate) fn parse_output(value: &str) -> Option<Output> {
    value.trim().parse::<f64>().ok().and_then(Output::from_f64)
}

pub(crate) fn get_output(item: &Item, name: &str, context: &str) -> Result<Output, String> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => parse_output(value)
            .ok_or_else(|| malformed(context, name, &format!("= {value} is not an output"))),
        Some(_) => Err(malformed(context, name, "is not a number")),
        None => Err(malformed(context, name, "is missing")),
    }
}

/// Standings as a map of racer id (a string, as map keys must be) to best output.
pub(crate) fn standings_value(standings: &Standings) -> AttributeValue {
    AttributeValue::M(
        standings
            .results()
            .iter()
            .map(|(racer, output)| (racer.to_string(), n(output)))
            .collect(),
    )
}

pub(crate) fn get_standings(item: &Item, name: &str, context: &str) -> Result<Standings, String> {
    let Some(AttributeValue::M(results)) = item.get(name) else {
        return Err(malformed(context, name, "is missing or not a map"));
    };
    results
        .iter()
        .map(|(racer, output)| {
            let racer = racer
                .parse::<u32>()
                .map_err(|_| malformed(context, name, &format!("has racer id {racer:?}")))?;
            let output = match output {
                AttributeValue::N(value) => parse_output(value),
                _ => None,
            }
            .ok_or_else(|| malformed(context, name, &format!("has a bad output for {racer}")))?;
            Ok((racer, output))
        })
        .collect()
}

/// A series as a list with second 1 first, `NULL` where the racer has no data.
pub(crate) fn series_value(series: &SecondSeries) -> AttributeValue {
    AttributeValue::L(
        series
            .as_slice()
            .iter()
            .map(|output| match output {
                Some(output) => n(output),
                None => AttributeValue::Null(true),
            })
            .collect(),
    )
}

pub(crate) fn get_series(item: &Item, name: &str, context: &str) -> Result<SecondSeries, String> {
    let Some(AttributeValue::L(seconds)) = item.get(name) else {
        return Err(malformed(context, name, "is missing or not a list"));
    };
    let mut series = SecondSeries::new();
    for (index, value) in seconds.iter().enumerate() {
        let second = u16::try_from(index + 1)
            .map_err(|_| malformed(context, name, "is longer than 65535 seconds"))?;
        match value {
            AttributeValue::Null(_) => {}
            AttributeValue::N(value) => {
                let output = parse_output(value).ok_or_else(|| {
                    malformed(
                        context,
                        name,
                        &format!("has a bad output at second {second}"),
                    )
                })?;
                series.record(second, output);
            }
            _ => {
                return Err(malformed(
                    context,
                    name,
                    &format!("has a non-number at second {second}"),
                ));
            }
        }
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_round_trip_exactly_through_numbers() {
        for units in [
            0,
            1,
            9,
            10,
            1_517_880,
            1_234_567,
            99_999,
            u32::MAX - 1,
            u32::MAX,
        ] {
            let output = Output::from_ten_thousandths(units);
            let AttributeValue::N(text) = n(output) else {
                panic!("not a number")
            };
            assert_eq!(parse_output(&text), Some(output), "{text}");
        }
        assert_eq!(
            parse_output("1.51788E+2"),
            Some(Output::from_ten_thousandths(1_517_880))
        );
        assert_eq!(parse_output("-1"), None);
        assert_eq!(parse_output("x"), None);
    }

    #[test]
    fn standings_and_series_round_trip() {
        let standings: Standings = [
            (7, Output::from_ten_thousandths(1_517_880)),
            (12, Output::from_ten_thousandths(1)),
        ]
        .into_iter()
        .collect();
        let series: SecondSeries = [
            (2, Output::from_ten_thousandths(5)),
            (4, Output::from_ten_thousandths(1_234_567)),
        ]
        .into_iter()
        .collect();
        let item: Item = [
            ("results".to_owned(), standings_value(&standings)),
            ("seconds".to_owned(), series_value(&series)),
        ]
        .into_iter()
        .collect();
        assert_eq!(get_standings(&item, "results", "t"), Ok(standings));
        assert_eq!(get_series(&item, "seconds", "t"), Ok(series));
        assert!(get_series(&item, "results", "t").is_err());
    }
}
