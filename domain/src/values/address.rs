use super::{AddressLine, City, CountryCode, PostalCode};

/// A postal address. `line2` and `postal_code` are optional.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    line1: AddressLine,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line2: Option<AddressLine>,
    city: City,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    postal_code: Option<PostalCode>,
    country: CountryCode,
}

impl Address {
    /// Assembles an address from validated parts.
    pub fn new(
        line1: AddressLine,
        line2: Option<AddressLine>,
        city: City,
        postal_code: Option<PostalCode>,
        country: CountryCode,
    ) -> Self {
        Self {
            line1,
            line2,
            city,
            postal_code,
            country,
        }
    }

    pub fn line1(&self) -> &AddressLine {
        &self.line1
    }
    pub fn line2(&self) -> Option<&AddressLine> {
        self.line2.as_ref()
    }
    pub fn city(&self) -> &City {
        &self.city
    }
    pub fn postal_code(&self) -> Option<&PostalCode> {
        self.postal_code.as_ref()
    }
    pub fn country(&self) -> CountryCode {
        self.country
    }
}
