//! The protobuf codec of `orders.v1`: tonic's prost codec, except that a message that
//! cannot be decoded answers INVALID_ARGUMENT.
//!
//! tonic's own codec answers INTERNAL there, following gRPC's status code guide, but
//! here INTERNAL means a bug of this service (API.md's 500): bytes a client sends that
//! are not a valid message are that client's invalid input, as a body that is not JSON
//! is a 400 over HTTP. The generated server and client both use this codec
//! (`codec_path` in `build.rs`); to the client, an undecodable answer would equally be
//! INVALID_ARGUMENT, which only a broken server can cause.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstEncoder};

/// Encodes `T` and decodes `U` with `prost`.
#[derive(Debug, Clone, Copy)]
pub struct Codec<T, U>(PhantomData<fn() -> (T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder(PhantomData)
    }
}

/// Decodes one `U`; undecodable bytes are INVALID_ARGUMENT.
#[derive(Debug, Clone, Copy)]
pub struct MessageDecoder<U>(PhantomData<fn() -> U>);

impl<U: Message + Default> Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|error| {
            Status::invalid_argument(format!("the message is not valid protobuf: {error}"))
        })
    }
}
