use super::text::check_text;
use super::ValueError;

/// A discount code as the customer typed it (matched exactly by the policy).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct DiscountCode(String);

impl DiscountCode {
    /// # Errors
    /// [`ValueError`] when blank, over 64 characters or holding control characters.
    pub fn parse(code: impl Into<String>) -> Result<Self, ValueError> {
        let code = code.into();
        check_text(&code, 64)?;
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DiscountCode {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        Self::parse(value)
    }
}

impl From<DiscountCode> for String {
    fn from(value: DiscountCode) -> String {
        value.0
    }
}

impl std::fmt::Display for DiscountCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A discount in percent, 0 to 100.
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
pub struct DiscountPercent(u8);

impl DiscountPercent {
    /// # Errors
    /// [`ValueError::OutOfRange`] above 100.
    pub fn new(percent: u64) -> Result<Self, ValueError> {
        match u8::try_from(percent) {
            Ok(p) if p <= 100 => Ok(Self(p)),
            _ => Err(ValueError::OutOfRange { min: 0, max: 100 }),
        }
    }

    /// The sum of two discounts, capped at 100%.
    pub fn saturating_add(self, other: DiscountPercent) -> Self {
        Self(self.0.saturating_add(other.0).min(100))
    }

    pub fn value(self) -> u8 {
        self.0
    }
}

impl TryFrom<u64> for DiscountPercent {
    type Error = ValueError;
    fn try_from(value: u64) -> Result<Self, ValueError> {
        Self::new(value)
    }
}

impl From<DiscountPercent> for u64 {
    fn from(value: DiscountPercent) -> u64 {
        u64::from(value.0)
    }
}
