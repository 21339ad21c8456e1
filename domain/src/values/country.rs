use super::ValueError;

/// ISO 3166-1 alpha-2 officially assigned codes.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI \
BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ \
DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU \
GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA \
LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA \
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB \
SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW \
TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// An ISO 3166-1 alpha-2 country code, such as `VN`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Accepts an assigned alpha-2 code, upper case.
    ///
    /// # Errors
    /// [`ValueError::UnknownCountry`] for anything else.
    pub fn parse(code: &str) -> Result<Self, ValueError> {
        let bytes: [u8; 2] = code
            .as_bytes()
            .try_into()
            .map_err(|_| ValueError::UnknownCountry)?;
        if !bytes.iter().all(u8::is_ascii_uppercase)
            || !ISO_3166_ALPHA2.split(' ').any(|known| known == code)
        {
            return Err(ValueError::UnknownCountry);
        }
        Ok(Self(bytes))
    }

    /// Every accepted code, in alphabetical order (what the OpenAPI document lists).
    pub fn codes() -> impl Iterator<Item = &'static str> {
        ISO_3166_ALPHA2.split(' ')
    }

    /// The two-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<String> for CountryCode {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        Self::parse(&value)
    }
}

impl From<CountryCode> for String {
    fn from(value: CountryCode) -> String {
        value.code().to_owned()
    }
}

impl std::fmt::Display for CountryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigned_codes_are_accepted_and_others_refused() {
        assert_eq!(CountryCode::parse("VN").unwrap().code(), "VN");
        for code in ["vn", "XX", "VNM", "", "V"] {
            assert_eq!(
                CountryCode::parse(code),
                Err(ValueError::UnknownCountry),
                "{code}"
            );
        }
    }
}
