//! The rules the code applies to what a client sends, written as JSON Schema, so that
//! the document refuses exactly what the service refuses: the text rule of every string
//! field, the order id, `If-Match`, `asOf` and the list's `cursor`.
//!
//! Each rule is a `pattern` (ECMA-262, which JSON Schema and OpenAPI 3.1 use, written so
//! that Python's and Rust's regex engines read it alike) built here beside a test that
//! checks it against the parser the code really calls (`domain`'s value objects,
//! `order_api::paging`, the `If-Match` parser). A pattern may only be looser than its
//! parser where a regex cannot count (a version above 2^64 − 1, a 30th of February);
//! the description says so.

#![allow(dead_code, reason = "schema-only types: described, never built")]

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// The characters no text may hold: U+0000–U+001F and U+007F.
const CONTROL: &str = r"\u0000-\u001f\u007f";

/// White space as Rust's `char::is_whitespace` (Unicode `White_Space`) beyond the
/// control characters: text made only of these is blank, and blank text is refused.
const SPACE: &str = r"\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Text as `domain`'s value objects accept it: no control character, and at least one
/// character that is not white space (the length is `maxLength`'s).
pub(crate) fn text_pattern() -> String {
    format!("^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$")
}

/// A string of 1 to `max` characters under [`text_pattern`].
pub(crate) fn text(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(text_pattern()))
}

const HEX: &str = "[0-9A-Fa-f]";

/// The hyphenated form `8-4-4-4-12`.
fn hyphenated(hex: &str) -> String {
    [8, 4, 4, 4, 12].map(|n| format!("{hex}{{{n}}}")).join("-")
}

/// A UUID in every text form `uuid::Uuid::parse_str` (so `OrderId::parse`) accepts:
/// hyphenated, simple (32 digits), braced and URN, hex digits in either case.
pub(crate) fn uuid_pattern() -> String {
    let hyphenated = hyphenated(HEX);
    format!(
        "^(?:{HEX}{{32}}|{hyphenated}|\\{{{hyphenated}\\}}|[Uu][Rr][Nn]:[Uu][Uu][Ii][Dd]:{hyphenated})$"
    )
}

/// `If-Match`: `"7"`, `W/"7"`, `W/7`, `7` or `*` (the version must fit 64 bits).
pub(crate) fn if_match_pattern() -> &'static str {
    r#"^(?:\*|(?:W/)?(?:"[0-9]+"|[0-9]+))$"#
}

/// `asOf`: RFC 3339 as `chrono::DateTime::parse_from_rfc3339` reads it: a date that
/// exists (29 February in leap years only), `T`, `t` or a space, a time with a leap
/// second allowed in any minute, any number of fractional digits, and `Z`, `z` or an
/// offset up to ±23:59 (the minus also as U+2212).
pub(crate) fn date_time_pattern() -> String {
    let days = "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])\
                |(?:0[13-9]|1[0-2])-(?:29|30)\
                |(?:0[13578]|1[02])-31)";
    let leap_year = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)";
    let date = format!("(?:[0-9]{{4}}-{days}|{leap_year}-02-29)");
    let time = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\\.[0-9]+)?";
    let offset = "(?:[Zz]|[+\\-\\u2212](?:[01][0-9]|2[0-3]):[0-5][0-9])";
    format!("^{date}[Tt ]{time}{offset}$")
}

/// The hex of any one of the ASCII characters `chars` (each hex digit in either case).
fn hex_of(chars: &str) -> String {
    let alternatives: Vec<String> = chars
        .bytes()
        .map(|b| {
            let hex = format!("{b:02x}");
            hex.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c, c.to_ascii_uppercase())
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!("(?:{})", alternatives.join("|"))
}

/// The list's `cursor` as `order_api::paging::decode_cursor` reads it: the hex (either
/// case) of `<microseconds>:<order id>`, the microseconds an optionally signed integer
/// (that must fit 64 bits), the id a UUID in any form [`uuid_pattern`] names; at most
/// 200 characters (`maxLength`).
pub(crate) fn cursor_pattern() -> String {
    let digit = "3[0-9]";
    // The hex of `0`-`9`, `A`-`F` and `a`-`f`.
    let hex_digit = "(?:3[0-9]|[46][1-6])";
    let hyphen = hex_of("-");
    let uuid_hyphenated = [8, 4, 4, 4, 12]
        .map(|n| format!("{hex_digit}{{{n}}}"))
        .join(&hyphen);
    let open = hex_of("{");
    let close = hex_of("}");
    let urn: String = "urn:uuid:"
        .chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                hex_of(&format!("{}{}", c, c.to_ascii_uppercase()))
            } else {
                hex_of(&c.to_string())
            }
        })
        .collect();
    let sign = hex_of("+-");
    let colon = hex_of(":");
    format!(
        "^{sign}?(?:{digit})+{colon}(?:{hex_digit}{{32}}|{uuid_hyphenated}|{open}{uuid_hyphenated}{close}|{urn}{uuid_hyphenated})$"
    )
}

/// `asOf` of `GET /orders/{id}`.
pub(crate) fn as_of_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(date_time_pattern()))
        .description(Some(
            "The order as it was at this instant (RFC 3339; `T`, `t` or a space between \
             date and time); 404 if it did not exist yet; anything else answers 400.",
        ))
}

/// `customerId` of `GET /orders`.
pub(crate) fn customer_id_schema() -> ObjectBuilder {
    text(200).description(Some(
        "Only this customer's orders (1 to 200 characters of text, not only white space, \
         without control characters; anything else: 400).",
    ))
}

/// `cursor` of `GET /orders`.
pub(crate) fn cursor_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(200))
        .pattern(Some(cursor_pattern()))
        .description(Some(
            "`nextCursor` of the previous page: opaque (the hex of `<microseconds>:<order \
             id>`, the microseconds within 64 bits); anything else answers 400.",
        ))
}

/// Declares a named string schema.
macro_rules! named_string {
    ($(#[$doc:meta])* $name:ident, $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema.into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

named_string!(
    /// `Text`: 1 to 200 characters, not blank, no control character.
    Text,
    text(200).description(Some(
        "UTF-8 text of 1 to 200 characters, not only white space, without control \
         characters (U+0000-U+001F, U+007F); anything else answers 422 naming the field."
    ))
);

named_string!(
    /// `ShortText`: the same with at most 64 characters.
    ShortText,
    text(64).description(Some(
        "UTF-8 text of 1 to 64 characters, not only white space, without control \
         characters (U+0000-U+001F, U+007F); anything else answers 422 naming the field."
    ))
);

named_string!(
    /// `OrderIdText`: an order id as a client may send it.
    OrderIdText,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(uuid_pattern()))
        .examples(["0190b5e3-7c1e-7000-8000-000000000001"])
        .description(Some(
            "A UUID: hyphenated (`0190b5e3-7c1e-7000-8000-000000000001`), 32 hex digits, \
             braced (`{...}`) or a URN (`urn:uuid:...`), hex digits in either case."
        ))
);

named_string!(
    /// `CurrencyCode`: the ISO 4217 codes `domain::Currency` accepts.
    CurrencyCode,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(domain::Currency::codes()))
        .examples(["VND"])
        .description(Some("An active ISO 4217 code, upper case (funds and metals excluded)."))
);

named_string!(
    /// `CountryCode`: the ISO 3166-1 alpha-2 codes `domain::CountryCode` accepts.
    CountryCode,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(domain::CountryCode::codes()))
        .examples(["VN"])
        .description(Some("An officially assigned ISO 3166-1 alpha-2 code, upper case."))
);

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CustomerId, OrderId, ProductId};
    use order_api::paging::{decode_cursor, encode_cursor};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn validator(schema: impl Into<RefOr<Schema>>) -> jsonschema::Validator {
        let schema = serde_json::to_value(schema.into()).expect("a schema serializes");
        jsonschema::draft202012::new(&schema).expect("the schema compiles")
    }

    fn string_pattern(pattern: &str) -> jsonschema::Validator {
        jsonschema::draft202012::new(&json!({"type": "string", "pattern": pattern}))
            .expect("the pattern compiles")
    }

    /// Strings worth trying against a text rule: blanks of every kind, each control
    /// character, lengths at and over the limits.
    fn text_samples() -> Vec<String> {
        let mut samples: Vec<String> = [
            "",
            " ",
            "a",
            " a ",
            "\u{a0}",
            "\u{85}",
            "\u{3000}x",
            "\u{feff}",
            "\u{200b}",
            "\u{2028}",
            "x\u{2029}",
            "é",
            "日本",
            "🦀",
        ]
        .map(str::to_owned)
        .to_vec();
        for c in (0u32..0x20).chain([0x7f, 0x80, 0x9f]) {
            let c = char::from_u32(c).expect("a char");
            samples.push(format!("a{c}b"));
            samples.push(c.to_string());
        }
        for n in [63, 64, 65, 199, 200, 201] {
            samples.push("é".repeat(n));
            samples.push(format!(" {}", "x".repeat(n - 1)));
        }
        samples
    }

    #[test]
    fn the_text_schemas_accept_exactly_what_the_value_objects_accept() {
        let (text, short) = (validator(Text::schema()), validator(ShortText::schema()));
        for sample in text_samples() {
            let value = Value::String(sample.clone());
            assert_eq!(
                text.is_valid(&value),
                CustomerId::parse(sample.clone()).is_ok(),
                "Text on {sample:?}"
            );
            assert_eq!(
                short.is_valid(&value),
                ProductId::parse(sample.clone()).is_ok(),
                "ShortText on {sample:?}"
            );
        }
    }

    #[test]
    fn the_order_id_pattern_accepts_every_form_the_uuid_parser_does() {
        let id = validator(OrderIdText::schema());
        let uuid = "0190B5E3-7c1e-7000-8000-00000000000a";
        for (sample, ok) in [
            (uuid.to_owned(), true),
            (uuid.replace('-', ""), true),
            (format!("{{{uuid}}}"), true),
            (format!("urn:uuid:{uuid}"), true),
            (format!("URN:UUID:{uuid}"), true),
            (format!("{uuid}0"), false),
            (format!("{{{uuid}"), false),
            (uuid.replace('a', "g"), false),
            ("nope".to_owned(), false),
            (String::new(), false),
        ] {
            assert_eq!(OrderId::parse(&sample).is_ok(), ok, "{sample}");
            assert_eq!(id.is_valid(&Value::String(sample.clone())), ok, "{sample}");
        }
    }

    #[test]
    fn a_cursor_the_service_made_matches_the_pattern_and_garbage_does_not() {
        let cursor = string_pattern(&cursor_pattern());
        let id = OrderId::parse("0190a6b2-7c1e-7000-8000-00000000000f").expect("an id");
        let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("a time");
        let made = encode_cursor(at, id);
        for sample in [
            made.clone(),
            made.to_uppercase(),
            "2d313a".to_owned() + &made[made.find("3a").map_or(0, |i| i + 2)..],
            "zz".to_owned(),
            "abc".to_owned(),
            hex(b"12:nope"),
            hex(b"12:{0190a6b2-7c1e-7000-8000-00000000000f}"),
            hex(b"+12:urn:uuid:0190a6b2-7c1e-7000-8000-00000000000f"),
            hex(b"12:0190a6b27c1e7000800000000000000f"),
            hex(b"12 :0190a6b27c1e7000800000000000000f"),
        ] {
            let value = Value::String(sample.clone());
            assert_eq!(
                cursor.is_valid(&value),
                decode_cursor(&sample).is_some(),
                "{sample}"
            );
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn as_of_matches_exactly_what_chrono_reads(sample: &str) -> Result<(), String> {
        let as_of = string_pattern(&date_time_pattern());
        let parsed = chrono::DateTime::parse_from_rfc3339(sample).is_ok();
        let matched = as_of.is_valid(&Value::String(sample.to_owned()));
        if parsed == matched {
            Ok(())
        } else {
            Err(format!(
                "{sample:?}: chrono reads it: {parsed}, the pattern matches: {matched}"
            ))
        }
    }

    #[test]
    fn what_chrono_reads_as_rfc_3339_is_what_the_as_of_pattern_matches() {
        for sample in [
            "2026-01-15T10:30:00Z",
            "2026-01-15t10:30:00.123456789z",
            "2026-01-15 10:30:00+07:00",
            "2026-01-15T10:30:00.1234567891234-00:30",
            "2026-01-15T10:30:00\u{2212}23:59",
            "2026-01-15T10:30:60Z",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "0000-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-15T24:00:00Z",
            "2026-01-15T10:30:00+24:00",
            "2026-01-15T10:30:00.Z",
            "2026-01-15T10:30Z",
            "2026-01-15T10:30:00",
            "2026-01-15_10:30:00Z",
            "2026-01-15T10:30:00+0700",
            "15/01/2026",
            "",
        ] {
            as_of_matches_exactly_what_chrono_reads(sample).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn the_currency_and_country_enums_are_the_value_objects_codes() {
        let currency = validator(CurrencyCode::schema());
        let country = validator(CountryCode::schema());
        for code in ["VND", "USD", "usd", "XXX", "VN", "vn", "XX", "US", ""] {
            let value = Value::String(code.to_owned());
            assert_eq!(
                currency.is_valid(&value),
                domain::Currency::parse(code).is_ok(),
                "{code}"
            );
            assert_eq!(
                country.is_valid(&value),
                domain::CountryCode::parse(code).is_ok(),
                "{code}"
            );
        }
        assert!(domain::Currency::codes().all(|c| domain::Currency::parse(c).is_ok()));
        assert!(domain::CountryCode::codes().all(|c| domain::CountryCode::parse(c).is_ok()));
    }

    proptest! {
        #[test]
        fn any_date_time_like_string_matches_exactly_when_chrono_reads_it(
            s in "[0-9]{4}-[0-2][0-9]-[0-3][0-9][Tt _][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,3})?([Zz]|[+\u{2212}-][0-2][0-9]:[0-6][0-9])?"
        ) {
            prop_assert!(as_of_matches_exactly_what_chrono_reads(&s).is_ok(), "{}", s);
        }

        #[test]
        fn any_string_is_text_exactly_when_the_value_object_says_so(s in "(\\PC|\\s|[\\x00-\\x1f\\x7f])*") {
            let text = validator(Text::schema());
            prop_assert_eq!(
                text.is_valid(&Value::String(s.clone())),
                CustomerId::parse(s).is_ok()
            );
        }
    }
}
