use super::ValueError;

/// Active ISO 4217 alphabetic codes (funds and precious metals excluded).
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB \
BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD \
FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR \
KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR \
MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK \
SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED \
VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// An ISO 4217 currency code, such as `VND` or `USD`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Accepts an active ISO 4217 code, upper case.
    ///
    /// # Errors
    /// [`ValueError::UnknownCurrency`] for anything else.
    pub fn parse(code: &str) -> Result<Self, ValueError> {
        let bytes: [u8; 3] = code
            .as_bytes()
            .try_into()
            .map_err(|_| ValueError::UnknownCurrency)?;
        if !bytes.iter().all(u8::is_ascii_uppercase)
            || !ISO_4217.split(' ').any(|known| known == code)
        {
            return Err(ValueError::UnknownCurrency);
        }
        Ok(Self(bytes))
    }

    /// Every accepted code, in alphabetical order (what the OpenAPI document lists).
    pub fn codes() -> impl Iterator<Item = &'static str> {
        ISO_4217.split(' ')
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> String {
        value.code().to_owned()
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_are_accepted() {
        assert_eq!(Currency::parse("VND").unwrap().code(), "VND");
        assert_eq!(Currency::parse("USD").unwrap().to_string(), "USD");
    }

    #[test]
    fn unknown_or_lower_case_codes_are_refused() {
        for code in ["", "usd", "XXX", "USDT", "US", "ÜSD"] {
            assert_eq!(
                Currency::parse(code),
                Err(ValueError::UnknownCurrency),
                "{code}"
            );
        }
    }
}
