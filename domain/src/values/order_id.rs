use super::ValueError;
use uuid::Uuid;

/// The identity of an order: a UUID (v7 when the service makes it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct OrderId(Uuid);

impl OrderId {
    /// Wraps an existing UUID.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// Parses the hyphenated (or any RFC 9562) text form.
    ///
    /// # Errors
    /// [`ValueError::InvalidUuid`] when `text` is not a UUID.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        Uuid::parse_str(text)
            .map(Self)
            .map_err(|_| ValueError::InvalidUuid)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}
