use super::ValueError;

/// A non-negative amount of money in the currency's minor unit (VND has none, USD has
/// cents). Bounded by `i64::MAX` so that every amount fits a PostgreSQL `BIGINT` and a
/// signed 64-bit integer in any consumer; arithmetic is checked and an overflow is an
/// error, never a wrap.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(try_from = "u64", into = "u64")]
pub struct Amount(u64);

impl Amount {
    /// The largest amount: `i64::MAX` minor units.
    pub const MAX: u64 = i64::MAX as u64;
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// # Errors
    /// [`ValueError::OutOfRange`] above [`Amount::MAX`].
    pub fn new(minor_units: u64) -> Result<Self, ValueError> {
        if minor_units > Self::MAX {
            return Err(ValueError::OutOfRange {
                min: 0,
                max: Self::MAX,
            });
        }
        Ok(Self(minor_units))
    }

    /// The amount in minor units.
    pub fn minor_units(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` when the sum exceeds [`Amount::MAX`].
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0
            .checked_add(other.0)
            .and_then(|sum| Amount::new(sum).ok())
    }

    /// `self - other`, or `None` when it would be negative.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// `self × factor`, or `None` when the product exceeds [`Amount::MAX`].
    pub fn checked_mul(self, factor: u64) -> Option<Amount> {
        self.0
            .checked_mul(factor)
            .and_then(|product| Amount::new(product).ok())
    }

    /// `floor(self × percent / 100)`; never overflows (computed in 128 bits, and the
    /// result is at most `self` for `percent <= 100`).
    pub fn percent(self, percent: u8) -> Amount {
        let share = u128::from(self.0) * u128::from(percent.min(100)) / 100;
        Amount(u64::try_from(share).unwrap_or(self.0))
    }
}

impl TryFrom<u64> for Amount {
    type Error = ValueError;
    fn try_from(value: u64) -> Result<Self, ValueError> {
        Self::new(value)
    }
}

impl From<Amount> for u64 {
    fn from(value: Amount) -> u64 {
        value.0
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The price of one unit of a product: 0 to 10^15 minor units.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u64", into = "u64")]
pub struct UnitPrice(Amount);

impl UnitPrice {
    /// The highest accepted unit price, 10^15 minor units.
    pub const MAX: u64 = 1_000_000_000_000_000;

    /// # Errors
    /// [`ValueError::OutOfRange`] above [`UnitPrice::MAX`].
    pub fn new(minor_units: u64) -> Result<Self, ValueError> {
        if minor_units > Self::MAX {
            return Err(ValueError::OutOfRange {
                min: 0,
                max: Self::MAX,
            });
        }
        Ok(Self(Amount(minor_units)))
    }

    /// The price as an amount.
    pub fn amount(self) -> Amount {
        self.0
    }
}

impl TryFrom<u64> for UnitPrice {
    type Error = ValueError;
    fn try_from(value: u64) -> Result<Self, ValueError> {
        Self::new(value)
    }
}

impl From<UnitPrice> for u64 {
    fn from(value: UnitPrice) -> u64 {
        value.0 .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts_above_i64_max_are_refused() {
        assert!(Amount::new(Amount::MAX).is_ok());
        assert!(Amount::new(Amount::MAX + 1).is_err());
    }

    #[test]
    fn unit_prices_above_ten_to_the_fifteen_are_refused() {
        assert!(UnitPrice::new(UnitPrice::MAX).is_ok());
        assert!(UnitPrice::new(UnitPrice::MAX + 1).is_err());
    }

    #[test]
    fn discount_is_rounded_down() {
        assert_eq!(Amount::new(999).unwrap().percent(10).minor_units(), 99);
        assert_eq!(
            Amount::new(Amount::MAX).unwrap().percent(100).minor_units(),
            Amount::MAX
        );
    }

    proptest! {
        #[test]
        fn checked_arithmetic_agrees_with_wide_arithmetic(a in 0..=Amount::MAX, b in 0..=Amount::MAX, k in 0u64..=2_000_000) {
            let (x, y) = (Amount::new(a).unwrap(), Amount::new(b).unwrap());
            let sum = u128::from(a) + u128::from(b);
            prop_assert_eq!(x.checked_add(y).map(u64::from).map(u128::from), (sum <= u128::from(Amount::MAX)).then_some(sum));
            let product = u128::from(a) * u128::from(k);
            prop_assert_eq!(x.checked_mul(k).map(u64::from).map(u128::from), (product <= u128::from(Amount::MAX)).then_some(product));
            for p in [0u8, 10, 33, 100] {
                prop_assert!(x.percent(p) <= x);
            }
        }
    }
}
