//! Pages of the read model: their size bounds and the opaque cursor, the same over
//! HTTP (`limit`, `cursor`, `nextCursor`) and gRPC.

use chrono::{DateTime, Utc};
use domain::OrderId;

/// The largest page.
pub const MAX_PAGE: u32 = 100;
/// The page when none is asked for.
pub const DEFAULT_PAGE: u32 = 20;

/// The page size asked for, when it is from 1 to [`MAX_PAGE`]; [`DEFAULT_PAGE`] when
/// none is; `None` when it is out of range.
pub fn page_limit(asked: Option<u32>) -> Option<u32> {
    match asked {
        None => Some(DEFAULT_PAGE),
        Some(limit) => (1..=MAX_PAGE).contains(&limit).then_some(limit),
    }
}

/// The cursor after the item created at `at` with id `id`: the hex of
/// `<createdAt µs>:<orderId>`.
pub fn encode_cursor(at: DateTime<Utc>, id: OrderId) -> String {
    format!("{}:{id}", at.timestamp_micros())
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The position a cursor stands for; `None` when it is malformed.
pub fn decode_cursor(text: &str) -> Option<(DateTime<Utc>, OrderId)> {
    if !text.len().is_multiple_of(2) || text.len() > 200 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    let plain = String::from_utf8(bytes?).ok()?;
    let (micros, id) = plain.split_once(':')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        OrderId::parse(id).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_what_it_encodes_and_garbage_to_nothing() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = OrderId::parse("0190a6b2-7c1e-7000-8000-000000000001").unwrap();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor("abc"), None);
    }

    #[test]
    fn a_page_is_1_to_100_and_20_by_default() {
        assert_eq!(page_limit(None), Some(20));
        assert_eq!(page_limit(Some(100)), Some(100));
        assert_eq!(page_limit(Some(0)), None);
        assert_eq!(page_limit(Some(101)), None);
    }
}
