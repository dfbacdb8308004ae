//! How AWS rounds the quantities it bills. Sizes are in bytes, "KB" is 1,024 bytes, as the pricing
//! pages' examples work out.

use serde_dynamo::{AttributeValue, Item};

/// Kinesis bills PUT payload units of 25 KB: a record takes at least one.
pub const KINESIS_PUT_UNIT: u64 = 25 * 1024;
/// Firehose rounds every ingested record up to the next 5 KB.
pub const FIREHOSE_RECORD_ROUNDING: u64 = 5 * 1024;
/// IoT Core meters messages in 5 KB steps.
pub const IOT_MESSAGE_UNIT: u64 = 5 * 1024;
/// DynamoDB write request units cover 1 KB of item each.
pub const DYNAMODB_WRITE_UNIT: u64 = 1024;
/// DynamoDB read request units cover 4 KB of item each (strongly consistent).
pub const DYNAMODB_READ_UNIT: u64 = 4 * 1024;

fn units(bytes: u64, unit: u64) -> u64 {
    bytes.div_ceil(unit).max(1)
}

/// PUT payload units of a Kinesis record of `bytes`.
pub fn kinesis_put_units(bytes: u64) -> u64 {
    units(bytes, KINESIS_PUT_UNIT)
}

/// Bytes Firehose bills for a record of `bytes`.
pub fn firehose_billed_bytes(bytes: u64) -> u64 {
    units(bytes, FIREHOSE_RECORD_ROUNDING) * FIREHOSE_RECORD_ROUNDING
}

/// IoT Core messages a publish of `bytes` counts as.
pub fn iot_messages(bytes: u64) -> u64 {
    units(bytes, IOT_MESSAGE_UNIT)
}

/// Write request units of writing an item of `bytes` (the larger of the old and the new item, for
/// a replacing put).
pub fn dynamodb_write_units(bytes: u64) -> u64 {
    units(bytes, DYNAMODB_WRITE_UNIT)
}

/// Read request units, in halves (an eventually consistent read of 4 KB takes half a unit), of
/// reading `bytes` of items in one request.
pub fn dynamodb_read_half_units(bytes: u64, consistent: bool) -> u64 {
    let units = units(bytes, DYNAMODB_READ_UNIT);
    if consistent { 2 * units } else { units }
}

/// An item's size as DynamoDB counts it: per attribute, the name's UTF-8 length plus the
/// value's size ([`value_size`]).
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

/// A value's size as DynamoDB counts it: strings and binaries their length; numbers one byte per
/// two significant digits, plus one; booleans and nulls one byte; lists and maps 3 bytes plus
/// one byte and the size of each element (and, in maps, each key); sets the sum of their
/// members.
pub fn value_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() as u64 + value_size(v))
                .sum::<u64>()
        }
        AttributeValue::Ss(set) => set.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.len() as u64).sum(),
    }
}

/// A number's size: its significant digits (leading and trailing zeros trimmed) two to a byte,
/// plus one byte.
fn number_size(number: &str) -> u64 {
    let mantissa = number
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .trim_start_matches(['-', '+']);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    significant.len().div_ceil(2) as u64 + 1
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn records_round_up_to_their_service_units() {
        assert_eq!(kinesis_put_units(0), 1);
        assert_eq!(kinesis_put_units(170), 1);
        assert_eq!(kinesis_put_units(25 * 1024), 1);
        assert_eq!(kinesis_put_units(25 * 1024 + 1), 2);
        assert_eq!(firehose_billed_bytes(170), 5120);
        assert_eq!(firehose_billed_bytes(5121), 10_240);
        assert_eq!(iot_messages(12_000), 3);
        assert_eq!(dynamodb_write_units(1024), 1);
        assert_eq!(dynamodb_write_units(1025), 2);
        assert_eq!(dynamodb_read_half_units(4096, true), 2);
        assert_eq!(dynamodb_read_half_units(4097, false), 2);
    }

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        assert_eq!(number_size("151.788"), 4); // 151788: 6 digits -> 3 bytes + 1
        assert_eq!(number_size("100"), 2); // 1 -> 1 + 1
        assert_eq!(number_size("0.5"), 2);
        assert_eq!(number_size("-12345"), 4);
        let item: Item = HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S("race#3#5400172".to_owned()),
            ), // 2 + 14
            ("version".to_owned(), AttributeValue::N("12".to_owned())), // 7 + 2
            (
                "results".to_owned(),
                AttributeValue::M(HashMap::from([(
                    "8".to_owned(),
                    AttributeValue::N("151.788".to_owned()),
                )])),
            ), // 7 + 3 + (1 + 1 + 4)
            (
                "seconds".to_owned(),
                AttributeValue::L(vec![AttributeValue::Null(true)]),
            ), // 7 + 3 + 2
        ])
        .into();
        assert_eq!(item_size(&item), 16 + 9 + 16 + 12);
    }
}
