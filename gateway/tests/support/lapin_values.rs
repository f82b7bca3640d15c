//! A headers table holding every field-table value type lapin can write (RabbitMQ's letters:
//! `t b B s u I i l f d D S A T F x V`), shared by the lapin round-trip test and the
//! `lapin_probe` example that feeds pika. Not `ShortString`: lapin writes it with its private
//! `_` tag, which no broker reads.

use lapin::types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable};

/// Every value type, named after its lapin variant; the values are chosen so that a wrong
/// width, sign or byte order shows (pika reads `f` / `d` as integers: they are integral).
pub fn every_field_type() -> FieldTable {
    let mut nested = FieldTable::default();
    nested.insert("inner".into(), AMQPValue::LongString("deep".into()));
    nested.insert("n".into(), AMQPValue::LongInt(-7));
    let mut t = FieldTable::default();
    for (name, value) in [
        ("Boolean", AMQPValue::Boolean(true)),
        ("ShortShortInt", AMQPValue::ShortShortInt(-100)),
        ("ShortShortUInt", AMQPValue::ShortShortUInt(200)),
        ("ShortInt", AMQPValue::ShortInt(-30_000)),
        ("ShortUInt", AMQPValue::ShortUInt(60_000)),
        ("LongInt", AMQPValue::LongInt(-2_000_000_000)),
        ("LongUInt", AMQPValue::LongUInt(4_000_000_000)),
        ("LongLongInt", AMQPValue::LongLongInt(-9_000_000_000_000)),
        ("Float", AMQPValue::Float(1_048_577.0)),
        ("Double", AMQPValue::Double(1_099_511_627_779.0)),
        (
            "DecimalValue",
            AMQPValue::DecimalValue(DecimalValue {
                scale: 2,
                value: 12_345,
            }),
        ),
        ("LongString", AMQPValue::LongString("text \u{1F600}".into())),
        (
            "FieldArray",
            AMQPValue::FieldArray(FieldArray::from(vec![
                AMQPValue::LongInt(1),
                AMQPValue::LongString("two".into()),
                AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Boolean(false)])),
            ])),
        ),
        ("Timestamp", AMQPValue::Timestamp(1_700_000_000)),
        ("FieldTable", AMQPValue::FieldTable(nested)),
        (
            "ByteArray",
            AMQPValue::ByteArray(ByteArray::from(vec![0u8, 1, 0xfe, 0xff])),
        ),
        ("Void", AMQPValue::Void),
    ] {
        t.insert(name.into(), value);
    }
    t
}
