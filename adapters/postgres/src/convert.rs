//! Conversions between the columns' integer types and the ports' ones. A value read
//! from the database that does not fit its Rust type is corruption, reported with the
//! column and the value; a value to write that does not fit its column is refused.
//! Nothing is clamped or defaulted.

use std::fmt::Display;

use application::StoreError;

/// A value that does not fit the type it is converted to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Misfit(String);

impl From<Misfit> for StoreError {
    fn from(misfit: Misfit) -> Self {
        StoreError::Corrupt(misfit.0)
    }
}

impl From<Misfit> for sqlx::Error {
    fn from(misfit: Misfit) -> Self {
        sqlx::Error::Decode(Box::new(misfit))
    }
}

/// `value`, read from `column` (`table.column`), as a `T`.
///
/// # Errors
/// A [`Misfit`] naming the column and the value when it does not fit (corruption).
pub(crate) fn from_column<T, S>(column: &str, value: S) -> Result<T, Misfit>
where
    T: TryFrom<S>,
    S: Copy + Display,
{
    T::try_from(value).map_err(|_| {
        Misfit(format!(
            "{column} = {value} does not fit {}",
            std::any::type_name::<T>()
        ))
    })
}

/// `value`, to be written to (or compared with) `column`, in the column's type.
///
/// # Errors
/// A [`Misfit`] naming the column and the value when it does not fit.
pub(crate) fn to_column<T, S>(column: &str, value: S) -> Result<T, Misfit>
where
    T: TryFrom<S>,
    S: Copy + Display,
{
    T::try_from(value).map_err(|_| {
        Misfit(format!(
            "{value} does not fit {column} ({})",
            std::any::type_name::<T>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_stored_version_is_corruption_naming_the_column_and_the_value() {
        let error = StoreError::from(from_column::<u64, i64>("events.version", -3).unwrap_err());
        let StoreError::Corrupt(message) = error else {
            panic!("{error:?}");
        };
        assert_eq!(message, "events.version = -3 does not fit u64");
    }

    #[test]
    fn a_stored_value_that_fits_is_converted() {
        assert_eq!(from_column::<u32, i32>("snapshots.state_schema", 7), Ok(7));
    }

    #[test]
    fn a_value_too_large_for_its_column_is_refused() {
        assert!(to_column::<i64, u64>("events.version", u64::MAX).is_err());
    }
}
