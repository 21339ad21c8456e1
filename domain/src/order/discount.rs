use std::collections::BTreeMap;

use thiserror::Error;

use crate::values::{DiscountCode, DiscountPercent};

/// A domain service: what percent a discount code is worth. The factory asks it once,
/// when the order is placed; the percent is then recorded in `OrderCreated`, so a later
/// change of policy never reprices an existing order and replay never consults it.
pub trait DiscountPolicy: Send + Sync + std::fmt::Debug {
    /// The percent of `code`, or `None` when the code is unknown.
    fn percent_for(&self, code: &DiscountCode) -> Option<DiscountPercent>;
}

/// The default policy: a fixed table of codes, read from text such as
/// `WELCOME10=10,VIP20=20` (the `DISCOUNT_CODES` setting).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscountTable(BTreeMap<DiscountCode, DiscountPercent>);

/// Why a discount table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiscountTableError {
    #[error("entry {0:?} is not CODE=PERCENT")]
    Malformed(String),
    #[error("entry {0:?} has a percent outside 0 to 100")]
    BadPercent(String),
    #[error("code {0:?} is listed twice")]
    Duplicate(String),
}

impl DiscountTable {
    /// Reads `CODE=PERCENT` entries separated by commas; blank text is an empty table.
    ///
    /// # Errors
    /// [`DiscountTableError`] naming the first bad entry.
    pub fn parse(text: &str) -> Result<Self, DiscountTableError> {
        let mut table = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (code, percent) = entry
                .split_once('=')
                .ok_or_else(|| DiscountTableError::Malformed(entry.to_owned()))?;
            let code = DiscountCode::parse(code.trim())
                .map_err(|_| DiscountTableError::Malformed(entry.to_owned()))?;
            let percent = percent
                .trim()
                .parse::<u64>()
                .ok()
                .and_then(|p| DiscountPercent::new(p).ok())
                .ok_or_else(|| DiscountTableError::BadPercent(entry.to_owned()))?;
            if table.insert(code, percent).is_some() {
                return Err(DiscountTableError::Duplicate(entry.to_owned()));
            }
        }
        Ok(Self(table))
    }
}

impl DiscountPolicy for DiscountTable {
    fn percent_for(&self, code: &DiscountCode) -> Option<DiscountPercent> {
        self.0.get(code).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_setting_reads_as_two_codes() {
        let table = DiscountTable::parse("WELCOME10=10,VIP20=20").unwrap();
        let welcome = DiscountCode::parse("WELCOME10").unwrap();
        assert_eq!(
            table.percent_for(&welcome).map(DiscountPercent::value),
            Some(10)
        );
        assert_eq!(
            table.percent_for(&DiscountCode::parse("NOPE").unwrap()),
            None
        );
    }

    #[test]
    fn malformed_tables_are_refused() {
        assert!(matches!(
            DiscountTable::parse("A"),
            Err(DiscountTableError::Malformed(_))
        ));
        assert!(matches!(
            DiscountTable::parse("A=101"),
            Err(DiscountTableError::BadPercent(_))
        ));
        assert!(matches!(
            DiscountTable::parse("A=1,A=2"),
            Err(DiscountTableError::Duplicate(_))
        ));
        assert_eq!(DiscountTable::parse(""), Ok(DiscountTable::default()));
    }
}
