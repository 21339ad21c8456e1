use super::{Address, CustomerId, CustomerName, PhoneNumber};

/// Who placed the order, and where they live.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerInfo {
    customer_id: CustomerId,
    name: CustomerName,
    phone: PhoneNumber,
    address: Address,
}

impl CustomerInfo {
    /// Assembles customer information from validated parts.
    pub fn new(
        customer_id: CustomerId,
        name: CustomerName,
        phone: PhoneNumber,
        address: Address,
    ) -> Self {
        Self {
            customer_id,
            name,
            phone,
            address,
        }
    }

    pub fn customer_id(&self) -> &CustomerId {
        &self.customer_id
    }
    pub fn name(&self) -> &CustomerName {
        &self.name
    }
    pub fn phone(&self) -> &PhoneNumber {
        &self.phone
    }
    pub fn address(&self) -> &Address {
        &self.address
    }
}
