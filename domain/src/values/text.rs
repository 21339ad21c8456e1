use super::ValueError;

/// Checks the rules every text field shares: not blank, at most `max` characters
/// (Unicode scalar values), no control characters (U+0000-U+001F, U+007F).
pub(crate) fn check_text(value: &str, max: usize) -> Result<(), ValueError> {
    if value.trim().is_empty() {
        return Err(ValueError::Empty);
    }
    if value.chars().count() > max {
        return Err(ValueError::TooLong { max });
    }
    if value.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}') {
        return Err(ValueError::ControlCharacter);
    }
    Ok(())
}

/// Declares a bounded text value object: a `String` newtype whose only way in is
/// `parse`, which applies [`check_text`] with the given maximum length.
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest accepted value, in characters.
            pub const MAX_CHARS: usize = $max;

            /// Validates and wraps `value`.
            ///
            /// # Errors
            /// [`ValueError`] when it is blank, too long or holds a control character.
            pub fn parse(value: impl Into<String>) -> Result<Self, ValueError> {
                let value = value.into();
                check_text(&value, $max)?;
                Ok(Self(value))
            }

            /// The text itself.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, ValueError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

bounded_text!(
    /// The customer's identifier in the customer system (not necessarily a UUID).
    CustomerId, 200
);
bounded_text!(
    /// The customer's name.
    CustomerName, 200
);
bounded_text!(
    /// The customer's phone number, as the customer wrote it.
    PhoneNumber, 200
);
bounded_text!(
    /// One line of a postal address.
    AddressLine, 200
);
bounded_text!(
    /// A city name.
    City, 200
);
bounded_text!(
    /// A postal code, as written in its country.
    PostalCode, 200
);
bounded_text!(
    /// Why an order was cancelled.
    CancellationReason, 200
);
bounded_text!(
    /// The catalogue's product identifier (SKU).
    ProductId, 64
);
bounded_text!(
    /// The payment provider's identifier of a payment.
    PaymentId, 64
);
bounded_text!(
    /// The carrier's tracking number of a shipment.
    TrackingNumber, 64
);
bounded_text!(
    /// The carrier that ships an order.
    Carrier, 64
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_at_the_limit_is_accepted_and_one_more_character_is_refused() {
        let at_limit = "é".repeat(64);
        assert!(ProductId::parse(at_limit.clone()).is_ok());
        assert_eq!(
            ProductId::parse(format!("{at_limit}x")),
            Err(ValueError::TooLong { max: 64 })
        );
    }

    #[test]
    fn blank_text_is_refused() {
        assert_eq!(CustomerName::parse(""), Err(ValueError::Empty));
        assert_eq!(CustomerName::parse("   "), Err(ValueError::Empty));
    }

    #[test]
    fn nul_and_delete_characters_are_refused() {
        assert_eq!(City::parse("Ha\u{0}noi"), Err(ValueError::ControlCharacter));
        assert_eq!(
            City::parse("Ha\u{7f}noi"),
            Err(ValueError::ControlCharacter)
        );
        assert_eq!(City::parse("Ha\nnoi"), Err(ValueError::ControlCharacter));
    }

    #[test]
    fn deserializing_goes_through_the_constructor() {
        let refused: Result<ProductId, _> = serde_json::from_str("\"a\\u0000b\"");
        assert!(refused.is_err());
        let accepted: ProductId = serde_json::from_str("\"sku-1\"").unwrap();
        assert_eq!(accepted.as_str(), "sku-1");
    }

    proptest! {
        #[test]
        fn any_accepted_text_round_trips_and_obeys_the_rules(s in "\\PC{0,80}") {
            match ProductId::parse(s.clone()) {
                Ok(id) => {
                    prop_assert_eq!(id.as_str(), s.as_str());
                    prop_assert!(s.chars().count() <= 64);
                    prop_assert!(!s.trim().is_empty());
                }
                Err(_) => prop_assert!(s.chars().count() > 64 || s.trim().is_empty() || s.chars().any(|c| c.is_control())),
            }
        }
    }
}
