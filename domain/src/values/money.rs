use super::{Amount, Currency};

/// An amount in a currency. Arithmetic refuses to mix currencies and to overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Amount,
    currency: Currency,
}

impl Money {
    /// Pairs an amount with its currency.
    pub fn new(amount: Amount, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(Amount::ZERO, currency)
    }

    /// The amount in minor units.
    pub fn amount(self) -> Amount {
        self.amount
    }

    /// The currency.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The sum, or `None` when the currencies differ or the sum overflows.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::new(
            self.amount.checked_add(other.amount)?,
            self.currency,
        ))
    }

    /// The difference, or `None` when the currencies differ or it would be negative.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::new(
            self.amount.checked_sub(other.amount)?,
            self.currency,
        ))
    }

    /// `self × factor`, or `None` on overflow.
    pub fn checked_mul(self, factor: u64) -> Option<Money> {
        Some(Money::new(self.amount.checked_mul(factor)?, self.currency))
    }

    /// `floor(self × percent / 100)`.
    pub fn percent(self, percent: u8) -> Money {
        Money::new(self.amount.percent(percent), self.currency)
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(amount: u64, currency: &str) -> Money {
        Money::new(
            Amount::new(amount).unwrap(),
            Currency::parse(currency).unwrap(),
        )
    }

    #[test]
    fn money_in_different_currencies_does_not_add() {
        assert_eq!(money(1, "VND").checked_add(money(1, "USD")), None);
        assert_eq!(
            money(1, "VND").checked_add(money(2, "VND")),
            Some(money(3, "VND"))
        );
    }

    #[test]
    fn subtraction_below_zero_fails() {
        assert_eq!(money(1, "USD").checked_sub(money(2, "USD")), None);
    }

    #[test]
    fn multiplication_that_overflows_fails() {
        assert_eq!(money(Amount::MAX, "USD").checked_mul(2), None);
    }
}
