//! Compiles `adapters/proto/orders/v1/orders.proto` (API.md keeps the proto files there) into Rust (messages with `prost`, the
//! service and client with `tonic`) without a system `protoc`: `protox` parses the
//! file into a descriptor set in pure Rust, and `tonic-prost-build` generates from it;
//! the set is also written, encoded, for server reflection.
//!
//! Messages travel through [`crate::codec`]'s codec rather than tonic's default,
//! so that an undecodable request answers INVALID_ARGUMENT (see that module).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../proto/orders/v1/orders.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["../proto"])?;
    // The encoded descriptor set, served by server reflection (`crate::FILE_DESCRIPTOR_SET`).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("orders_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .codec_path("crate::codec::Codec")
        .compile_fds(descriptors)?;
    Ok(())
}
