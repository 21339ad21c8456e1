use super::ValueError;

/// How many units of a product a line holds: 1 to 1,000,000.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u64", into = "u64")]
pub struct Quantity(u32);

impl Quantity {
    /// The largest quantity of one line.
    pub const MAX: u64 = 1_000_000;

    /// # Errors
    /// [`ValueError::OutOfRange`] outside 1 to [`Quantity::MAX`].
    pub fn new(units: u64) -> Result<Self, ValueError> {
        match u32::try_from(units) {
            Ok(units) if (1..=Self::MAX).contains(&u64::from(units)) => Ok(Self(units)),
            _ => Err(ValueError::OutOfRange {
                min: 1,
                max: Self::MAX,
            }),
        }
    }

    /// The number of units.
    pub fn units(self) -> u64 {
        u64::from(self.0)
    }

    /// `self + other`, or `None` above [`Quantity::MAX`].
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        Quantity::new(self.units() + other.units()).ok()
    }
}

impl TryFrom<u64> for Quantity {
    type Error = ValueError;
    fn try_from(value: u64) -> Result<Self, ValueError> {
        Self::new(value)
    }
}

impl From<Quantity> for u64 {
    fn from(value: Quantity) -> u64 {
        value.units()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_is_between_one_and_a_million() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(1).is_ok());
        assert!(Quantity::new(1_000_000).is_ok());
        assert!(Quantity::new(1_000_001).is_err());
        assert!(Quantity::new(u64::MAX).is_err());
    }

    #[test]
    fn merging_quantities_past_the_limit_fails() {
        let big = Quantity::new(999_999).unwrap();
        assert!(big.checked_add(Quantity::new(1).unwrap()).is_some());
        assert!(big.checked_add(Quantity::new(2).unwrap()).is_none());
    }
}
