//! Items as the SDK hands them over, converted to and from the table's schema
//! ([`alleycat_ports::schema`]) with `serde_dynamo`, so outputs travel as exact decimals.

use std::collections::HashMap;
use std::fmt::Display;

use alleycat_domain::Output;
use alleycat_ports::PortError;
use alleycat_ports::schema::{ItemKey, TableItem};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_dynamo::aws_sdk_dynamodb_1 as convert;

/// One item, as the SDK hands it over.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string value, for a key or a condition.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number value, for a condition: DynamoDB numbers travel as decimal strings, so any `Display`
/// number (an integer, an [`Output`]'s exact decimal) compares exactly with the stored one.
pub(crate) fn n(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The key attributes of an item: what GetItem, DeleteItem and BatchGetItem name.
pub(crate) fn key_item(key: ItemKey) -> Item {
    HashMap::from([
        (alleycat_ports::keys::PK.to_owned(), s(key.pk)),
        (alleycat_ports::keys::SK.to_owned(), s(key.sk)),
    ])
}

/// `item` at `key`, key attributes included: what PutItem writes.
pub(crate) fn to_item<T: TableItem>(key: &T::Key, item: &T) -> Result<Item, PortError> {
    let keyed = item.keyed(key);
    convert::to_item(&keyed)
        .map_err(|e| PortError::Permanent(format!("{} item {}: {e}", T::KIND, keyed.key())))
}

/// Reads an item of kind `T` back; a malformed one is a permanent error naming the item.
pub(crate) fn from_item<T: TableItem>(item: Item) -> Result<T, PortError> {
    let name = |attribute: &str| match item.get(attribute) {
        Some(AttributeValue::S(value)) => value.clone(),
        _ => "?".to_owned(),
    };
    let context = format!(
        "{}/{}",
        name(alleycat_ports::keys::PK),
        name(alleycat_ports::keys::SK)
    );
    convert::from_item(item)
        .map_err(|e| PortError::Permanent(format!("malformed {} item {context}: {e}", T::KIND)))
}

/// Reads an output from a DynamoDB number, as the schema's items do ([`Output`]'s `Deserialize`):
/// the nearest ten-thousandth of the parsed double, whatever form (`151.788`, `1.51788E+2`) the
/// store normalised the exact decimal to.
pub(crate) fn parse_output(value: &str) -> Option<Output> {
    value.trim().parse::<f64>().ok().and_then(Output::from_f64)
}

#[cfg(test)]
mod tests {
    use alleycat_domain::{Output, Standings};
    use alleycat_ports::schema::{MergedItem, StandingsItem};

    use super::*;

    #[test]
    fn items_convert_through_the_sdk_with_exact_outputs() -> Result<(), PortError> {
        let race = alleycat_domain::RaceKey {
            class_id: 3,
            race_id: 10,
        };
        let results: Standings = [(8, Output::from_ten_thousandths(3_125_025))]
            .into_iter()
            .collect();
        let item = to_item(&race, &StandingsItem::new(&race, results, 1, 2))?;
        let Some(AttributeValue::M(map)) = item.get("results") else {
            panic!("results is a map: {item:?}")
        };
        assert_eq!(map["8"], AttributeValue::N("312.5025".to_owned()));
        assert_eq!(item["gsi1sk"], AttributeValue::N("10".to_owned()));
        let back: StandingsItem = from_item(item)?;
        assert_eq!(
            back.results.best_of(8),
            Some(Output::from_ten_thousandths(3_125_025))
        );
        Ok(())
    }

    #[test]
    fn a_malformed_item_names_itself() {
        let item = Item::from([
            ("pk".to_owned(), s("race#3#10")),
            ("sk".to_owned(), s("standings")),
            ("classId".to_owned(), s("three")),
        ]);
        let error = from_item::<StandingsItem>(item).unwrap_err().to_string();
        assert!(
            error.contains("standings item race#3#10/standings"),
            "{error}"
        );
    }

    #[test]
    fn outputs_parse_from_any_number_form() {
        assert_eq!(
            parse_output("1.51788E+2"),
            Some(Output::from_ten_thousandths(1_517_880))
        );
        assert_eq!(parse_output("-1"), None);
        assert_eq!(parse_output("x"), None);
    }
}
