//! Decoding straight from an `rdkafka` message (feature `rdkafka`): its value and its
//! headers, as [`crate::decode`] takes them.

use rdkafka::message::{Headers, Message};

use crate::{decode, DecodeError, Envelope};

/// Decodes `message` (a borrowed or an owned one): its value, checked against its
/// CloudEvents headers, upcast to the current shape.
///
/// # Errors
/// As [`crate::decode`].
pub fn decode_message<M: Message>(message: &M) -> Result<Envelope, DecodeError> {
    let headers: Vec<(&str, &[u8])> = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key, h.value.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    decode(message.payload().unwrap_or_default(), headers)
}
