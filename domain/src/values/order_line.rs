use super::{Amount, ProductId, Quantity, UnitPrice};

/// One line of an order: a product, how many, at what unit price.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    product_id: ProductId,
    quantity: Quantity,
    unit_price: UnitPrice,
}

impl OrderLine {
    /// Assembles a line from validated parts.
    pub fn new(product_id: ProductId, quantity: Quantity, unit_price: UnitPrice) -> Self {
        Self {
            product_id,
            quantity,
            unit_price,
        }
    }

    pub fn product_id(&self) -> &ProductId {
        &self.product_id
    }
    pub fn quantity(&self) -> Quantity {
        self.quantity
    }
    pub fn unit_price(&self) -> UnitPrice {
        self.unit_price
    }

    /// `quantity × unit price`, or `None` when it exceeds [`Amount::MAX`].
    pub fn line_total(&self) -> Option<Amount> {
        self.unit_price.amount().checked_mul(self.quantity.units())
    }

    /// The same line with `quantity` in place of its own.
    pub fn with_quantity(&self, quantity: Quantity) -> Self {
        Self {
            quantity,
            ..self.clone()
        }
    }
}
