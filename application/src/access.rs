//! Who is acting, and what they may do: the authorization rules of API.md, enforced
//! here so that every way in (HTTP, gRPC) shares them.
//!
//! - A **customer** places orders only for its own `customerId`, sees and changes only
//!   its own orders (another's is answered as missing), lists only its own, and may
//!   pay and cancel but not ship.
//! - An **operator** may do everything to every order.
//! - An **admin** may do what an operator may, and the administrative commands.
//! - With authentication off (`AUTH_MODE=none`, development only) the actor is
//!   [`Actor::unrestricted`]: it may do everything, as an operator.
//!
//! How an actor is authenticated (a bearer JWT, a trusted header) is the adapters'
//! business; the use cases only see the [`Actor`].

use std::fmt;

use domain::CustomerId;

/// A role a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Customer,
    Operator,
    Admin,
}

impl Role {
    /// The role's name in a token's `roles` claim; `None` for a name that is no role.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "customer" => Some(Self::Customer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an actor may do to orders.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Grant {
    /// Authentication is off: everything, on every order.
    Unrestricted,
    /// An operator or admin: everything, on every order.
    Staff,
    /// A customer: its own orders only, and no shipping.
    Customer(CustomerId),
    /// Authenticated, but with no role that allows anything.
    Nothing,
}

/// The user behind a request and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Recorded as the events' `metadata.userId`.
    user_id: Option<String>,
    grant: Grant,
    /// Whether the administration routes are open to it (the `admin` role, or
    /// authentication off).
    administers: bool,
}

/// An action on an existing order, as far as roles are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    AddItem,
    RemoveItem,
    ChangeDeliveryAddress,
    Pay,
    Ship,
    Cancel,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read orders",
            Self::AddItem => "add items",
            Self::RemoveItem => "remove items",
            Self::ChangeDeliveryAddress => "change delivery addresses",
            Self::Pay => "pay orders",
            Self::Ship => "ship orders",
            Self::Cancel => "cancel orders",
        }
    }
}

/// Why an actor may not do something: the 403 of API.md.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub String);

impl Actor {
    /// Authentication is off: anyone may do anything; `user_id` is whatever the
    /// client says (a trusted header), recorded as is.
    pub fn unrestricted(user_id: Option<String>) -> Self {
        Self {
            user_id,
            grant: Grant::Unrestricted,
            administers: true,
        }
    }

    /// An authenticated user `user_id` with `roles`; `customer_id` is the customer a
    /// `customer` role acts for. Operator or admin wins over customer.
    ///
    /// # Errors
    /// When `roles` has `customer` (and neither operator nor admin) but no
    /// `customer_id` is given: such a credential is malformed.
    pub fn authenticated(
        user_id: String,
        roles: &[Role],
        customer_id: Option<CustomerId>,
    ) -> Result<Self, MissingCustomerId> {
        let grant = if roles.contains(&Role::Operator) || roles.contains(&Role::Admin) {
            Grant::Staff
        } else if roles.contains(&Role::Customer) {
            Grant::Customer(customer_id.ok_or(MissingCustomerId)?)
        } else {
            Grant::Nothing
        };
        Ok(Self {
            user_id: Some(user_id),
            grant,
            administers: roles.contains(&Role::Admin),
        })
    }

    /// The acting user, as recorded in `metadata.userId`.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// Under which name the actor's idempotency keys are kept: per user when
    /// authenticated, one shared space when authentication is off.
    pub fn idempotency_scope(&self) -> &str {
        match self.grant {
            Grant::Unrestricted => "",
            _ => self.user_id.as_deref().unwrap_or_default(),
        }
    }

    /// The customer this actor is limited to, if it is limited to one.
    pub fn own_customer(&self) -> Option<&CustomerId> {
        match &self.grant {
            Grant::Customer(own) => Some(own),
            _ => None,
        }
    }

    /// Whether the actor may know that an order of `customer` exists. When it may not,
    /// the order is answered as missing (404), revealing nothing.
    pub fn may_see(&self, customer: &CustomerId) -> bool {
        match &self.grant {
            Grant::Unrestricted | Grant::Staff => true,
            Grant::Customer(own) => own == customer,
            Grant::Nothing => false,
        }
    }

    /// Whether the actor's role allows `action` on an order it may see.
    ///
    /// # Errors
    /// [`Forbidden`] when it does not (a customer shipping).
    pub fn check(&self, action: Action) -> Result<(), Forbidden> {
        match (&self.grant, action) {
            (Grant::Unrestricted | Grant::Staff, _) => Ok(()),
            (Grant::Customer(_), Action::Ship) => Err(Forbidden(
                "customers may not ship orders; an operator ships them".to_owned(),
            )),
            (Grant::Customer(_), _) => Ok(()),
            (Grant::Nothing, action) => Err(Forbidden(format!(
                "no role of this user may {}",
                action.name()
            ))),
        }
    }

    /// Whether the actor may use the administration (the outbox, replays, the read
    /// model's rebuild): admins, and everyone when authentication is off.
    ///
    /// # Errors
    /// [`Forbidden`] for operators, customers and users without roles.
    pub fn check_administer(&self) -> Result<(), Forbidden> {
        if self.administers {
            Ok(())
        } else {
            Err(Forbidden(
                "only the admin role may use the administration".to_owned(),
            ))
        }
    }

    /// Whether the actor may place an order for `customer`.
    ///
    /// # Errors
    /// [`Forbidden`] for a customer placing another customer's order, or a user with
    /// no role that places orders.
    pub fn check_place(&self, customer: &CustomerId) -> Result<(), Forbidden> {
        match &self.grant {
            Grant::Unrestricted | Grant::Staff => Ok(()),
            Grant::Customer(own) if own == customer => Ok(()),
            Grant::Customer(_) => Err(Forbidden(
                "customers may place orders only for their own customerId".to_owned(),
            )),
            Grant::Nothing => Err(Forbidden(
                "no role of this user may place orders".to_owned(),
            )),
        }
    }

    /// The customer whose orders a list shows: `asked` if the actor may list that
    /// customer's orders; for a customer, its own when none is asked.
    ///
    /// # Errors
    /// [`Forbidden`] for a customer asking for another customer's orders, or a user
    /// with no role that reads orders.
    pub fn list_scope(&self, asked: Option<CustomerId>) -> Result<Option<CustomerId>, Forbidden> {
        match (&self.grant, asked) {
            (Grant::Unrestricted | Grant::Staff, asked) => Ok(asked),
            (Grant::Customer(own), None) => Ok(Some(own.clone())),
            (Grant::Customer(own), Some(asked)) if *own == asked => Ok(Some(asked)),
            (Grant::Customer(_), Some(_)) => Err(Forbidden(
                "customers may list only their own orders".to_owned(),
            )),
            (Grant::Nothing, _) => {
                Err(Forbidden("no role of this user may read orders".to_owned()))
            }
        }
    }
}

/// A `customer` credential that does not say which customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a customer's credential must name its customerId")]
pub struct MissingCustomerId;

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str) -> CustomerId {
        CustomerId::parse(id).unwrap()
    }

    fn actor(roles: &[Role], customer_id: Option<&str>) -> Actor {
        Actor::authenticated("user-1".to_owned(), roles, customer_id.map(customer)).unwrap()
    }

    #[test]
    fn a_customer_sees_only_its_own_orders() {
        let alice = actor(&[Role::Customer], Some("alice"));
        assert!(alice.may_see(&customer("alice")));
        assert!(!alice.may_see(&customer("bob")));
    }

    #[test]
    fn a_customer_may_pay_and_cancel_but_not_ship() {
        let alice = actor(&[Role::Customer], Some("alice"));
        for allowed in [
            Action::Read,
            Action::AddItem,
            Action::RemoveItem,
            Action::ChangeDeliveryAddress,
            Action::Pay,
            Action::Cancel,
        ] {
            assert_eq!(alice.check(allowed), Ok(()), "{allowed:?}");
        }
        assert!(alice.check(Action::Ship).is_err());
    }

    #[test]
    fn a_customer_places_and_lists_only_for_itself() {
        let alice = actor(&[Role::Customer], Some("alice"));
        assert!(alice.check_place(&customer("alice")).is_ok());
        assert!(alice.check_place(&customer("bob")).is_err());
        assert_eq!(alice.list_scope(None), Ok(Some(customer("alice"))));
        assert_eq!(
            alice.list_scope(Some(customer("alice"))),
            Ok(Some(customer("alice")))
        );
        assert!(alice.list_scope(Some(customer("bob"))).is_err());
    }

    #[test]
    fn operators_and_admins_may_do_everything_to_every_order() {
        for roles in [
            &[Role::Operator][..],
            &[Role::Admin],
            &[Role::Customer, Role::Operator],
        ] {
            let staff = actor(roles, None);
            assert!(staff.may_see(&customer("anyone")));
            assert_eq!(staff.check(Action::Ship), Ok(()));
            assert!(staff.check_place(&customer("anyone")).is_ok());
            assert_eq!(staff.list_scope(None), Ok(None));
        }
    }

    #[test]
    fn only_admins_administer_when_authentication_is_on() {
        assert_eq!(actor(&[Role::Admin], None).check_administer(), Ok(()));
        assert_eq!(
            actor(&[Role::Customer, Role::Admin], Some("alice")).check_administer(),
            Ok(())
        );
        for roles in [&[Role::Operator][..], &[Role::Customer], &[]] {
            assert!(
                actor(roles, Some("alice")).check_administer().is_err(),
                "{roles:?}"
            );
        }
        assert_eq!(Actor::unrestricted(None).check_administer(), Ok(()));
    }

    #[test]
    fn a_user_without_roles_may_do_nothing() {
        let nobody = actor(&[], None);
        assert!(!nobody.may_see(&customer("alice")));
        assert!(nobody.check(Action::Read).is_err());
        assert!(nobody.check_place(&customer("alice")).is_err());
        assert!(nobody.list_scope(None).is_err());
    }

    #[test]
    fn a_customer_credential_must_name_its_customer() {
        assert_eq!(
            Actor::authenticated("u".to_owned(), &[Role::Customer], None),
            Err(MissingCustomerId)
        );
    }

    #[test]
    fn without_authentication_everything_is_allowed() {
        let anyone = Actor::unrestricted(Some("dev".to_owned()));
        assert!(anyone.may_see(&customer("alice")));
        assert_eq!(anyone.check(Action::Ship), Ok(()));
        assert_eq!(anyone.user_id(), Some("dev"));
    }
}
