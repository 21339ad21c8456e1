//! Compiles `adapters/proto/orders/v1/orders.proto` (API.md keeps the proto files there) into Rust (messages with `prost`, the
//! service and client with `tonic`) without a system `protoc`: `protox` parses the
//! file into a descriptor set in pure Rust, and `tonic-prost-build` generates from it.
//!
//! Messages travel through [`crate::codec`]'s codec rather than tonic's default,
//! so that an undecodable request answers INVALID_ARGUMENT (see that module).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../proto/orders/v1/orders.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["../proto"])?;
    tonic_prost_build::configure()
        .codec_path("crate::codec::Codec")
        .compile_fds(descriptors)?;
    Ok(())
}
