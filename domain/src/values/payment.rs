use super::{Amount, CancellationReason, Carrier, PaymentId, TrackingNumber, ValueError};

/// How an order was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Card,
    BankTransfer,
    CashOnDelivery,
}

impl PaymentMethod {
    /// Accepts `card`, `bank_transfer` or `cash_on_delivery`.
    ///
    /// # Errors
    /// [`ValueError::NotOneOf`] for anything else.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        match text {
            "card" => Ok(Self::Card),
            "bank_transfer" => Ok(Self::BankTransfer),
            "cash_on_delivery" => Ok(Self::CashOnDelivery),
            _ => Err(ValueError::NotOneOf {
                expected: "card, bank_transfer, cash_on_delivery",
            }),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::BankTransfer => "bank_transfer",
            Self::CashOnDelivery => "cash_on_delivery",
        }
    }
}

/// A payment recorded against an order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Payment {
    pub payment_id: PaymentId,
    pub amount: Amount,
    pub method: PaymentMethod,
}

/// A shipment recorded against an order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shipment {
    pub tracking_number: TrackingNumber,
    pub carrier: Carrier,
}

/// Why and with what refund an order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cancellation {
    pub reason: CancellationReason,
    pub refund_amount: Amount,
}
