//! Messages no generated client would send: undecodable bytes and a fuzzer.

use std::collections::BTreeMap;

use order_api::auth::now_seconds;
use order_grpc::proto;
use prost::bytes::{Buf, BufMut};
use prost::Message;
use sqlx::PgPool;
use tonic::codec::{DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::{
    cancel, counts, jwt_settings, list, order, order_for, prepare, send, token, token_for, Answer,
    Call, Prep, Rpc, Server, RPC_NAMES,
};

/// A codec that sends and receives raw bytes, to send what no generated client would.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

/// Sends `bytes` as the message of `rpc`, with `call`'s metadata.
async fn send_raw(channel: &Channel, rpc: &str, bytes: Vec<u8>, call: &Call) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("not ready: {e}")))?;
    let path = format!("/orders.v1.OrderService/{rpc}")
        .parse()
        .expect("a path");
    grpc.unary(call.request(bytes), path, RawCodec)
        .await
        .map(drop)
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn undecodable_bytes_are_invalid_argument_and_an_oversized_message_out_of_range(
    pool: PgPool,
) {
    let server = Server::start(pool).await;
    let valid = order().encode_to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a bad tag", vec![0xff, 0xff, 0xff, 0xff]),
        ("a length past the end", vec![0x0a, 0x05, b'a']),
        // Field 1 is a string in every request message here.
        ("a string that is not UTF-8", vec![0x0a, 0x02, 0xff, 0xfe]),
        ("a varint for a string", vec![0x08, 0x01]),
        ("a truncated message", valid[..valid.len() - 3].to_vec()),
    ];
    for (name, bytes) in cases {
        for rpc in ["CreateOrder", "Pay", "GetOrder", "ListOrders"] {
            let before = counts(&server.pool).await;
            let status = send_raw(&server.channel, rpc, bytes.clone(), &Call::from(list(None)))
                .await
                .expect_err(name);
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{name} to {rpc}: {status:?}"
            );
            assert!(
                status.message().contains("not valid protobuf"),
                "{status:?}"
            );
            assert_eq!(counts(&server.pool).await, before, "{name} wrote");
        }
    }
    // The valid encoding goes through.
    send_raw(
        &server.channel,
        "CreateOrder",
        valid,
        &Call::from(list(None)),
    )
    .await
    .expect("a valid message is accepted");

    // A message over the limit (64 KiB by default, HTTP's body limit): OUT_OF_RANGE.
    let mut huge = order();
    huge.customer.as_mut().unwrap().name = Some("x".repeat(70_000));
    server
        .assert_rejected_without_writes(Rpc::Create(huge), Code::OutOfRange)
        .await;
}

// ---------------------------------------------------------------------------------------
// Fuzzing
// ---------------------------------------------------------------------------------------

mod fuzz {
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::{proto, Call, Rpc, RPC_NAMES};

    /// A string field: mostly `valid`, else missing, empty, any Unicode, control
    /// characters, around the 64- and 200-character limits, or rarely past the
    /// message size limit.
    pub(super) fn text(valid: &'static str) -> BoxedStrategy<Option<String>> {
        prop_oneof![
            50 => Just(Some(valid.to_owned())),
            2 => Just(None),
            1 => Just(Some(String::new())),
            2 => any::<String>().prop_map(Some),
            1 => "[\\x00-\\x1f\\x7f]{1,4}".prop_map(Some),
            1 => "\\PC{195,205}".prop_map(Some),
            1 => "[a-z]{62,66}".prop_map(Some),
            1 => "[ \\t]{1,3}".prop_map(Some),
        ]
        .boxed()
    }

    /// A number field: mostly `valid`, else missing or extreme.
    pub(super) fn number(valid: u64) -> BoxedStrategy<Option<u64>> {
        prop_oneof![
            40 => Just(Some(valid)),
            2 => Just(None),
            3 => select(vec![
                0,
                1,
                1_000_000,
                1_000_001,
                1_000_000_000_000_000,
                1_000_000_000_000_001,
                u64::MAX / 2,
                u64::MAX,
            ])
            .prop_map(Some),
            2 => any::<u64>().prop_map(Some),
        ]
        .boxed()
    }

    /// An enum field: a known value or any number.
    fn enumeration(valid: i32) -> BoxedStrategy<i32> {
        prop_oneof![6 => Just(valid), 3 => 0..5i32, 1 => any::<i32>()].boxed()
    }

    /// An order id: one of `existing` (orders in every state), an unknown UUID, or not
    /// a UUID at all.
    fn order_id(existing: Vec<String>) -> BoxedStrategy<String> {
        prop_oneof![
            8 => select(existing),
            1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
            1 => any::<String>(),
        ]
        .boxed()
    }

    fn expected_version() -> BoxedStrategy<Option<u64>> {
        prop_oneof![6 => Just(None), 3 => (0..8u64).prop_map(Some), 1 => any::<u64>().prop_map(Some)]
    .boxed()
    }

    fn address() -> BoxedStrategy<proto::Address> {
        (
            text("1 Lê Lợi"),
            option::weighted(0.2, text("Floor 3").prop_map(|t| t.unwrap_or_default())),
            text("Hồ Chí Minh"),
            text("700000"),
            text("VN"),
        )
            .prop_map(
                |(line1, line2, city, postal_code, country)| proto::Address {
                    line1,
                    line2,
                    city,
                    postal_code,
                    country,
                },
            )
            .boxed()
    }

    fn item() -> BoxedStrategy<proto::Item> {
        (
            prop_oneof![3 => text("sku-1"), 3 => text("sku-2"), 2 => text("sku-7")],
            number(1),
            prop_oneof![1 => number(100_000), 1 => number(50_000), 1 => number(7)],
        )
            .prop_map(|(product_id, quantity, unit_price)| proto::Item {
                product_id,
                quantity,
                unit_price,
            })
            .boxed()
    }

    fn create(existing: Vec<String>) -> BoxedStrategy<Rpc> {
        let customer = (
            prop_oneof![4 => text("cust-1"), 1 => text("cust-2")],
            text("Nguyễn Văn A"),
            text("+84 90 123 4567"),
            option::weighted(0.9, address()),
        )
            .prop_map(|(customer_id, name, phone, address)| proto::Customer {
                customer_id,
                name,
                phone,
                address,
            });
        (
            option::weighted(0.2, order_id(existing)),
            option::weighted(0.9, customer),
            text("VND"),
            prop_oneof![10 => vec(item(), 0..4), 1 => vec(item(), 99..102)],
            vec(
                prop_oneof![
                    Just("WELCOME10".to_owned()),
                    Just("VIP20".to_owned()),
                    any::<String>()
                ],
                0..5,
            ),
        )
            .prop_map(|(order_id, customer, currency, items, discount_codes)| {
                Rpc::Create(proto::CreateOrderRequest {
                    order_id,
                    customer,
                    currency,
                    items,
                    discount_codes,
                })
            })
            .boxed()
    }

    /// Any rpc with a random or mutated message.
    pub(super) fn rpc(existing: Vec<String>) -> BoxedStrategy<Rpc> {
        let create = create(existing.clone());
        let id = move || order_id(existing.clone());
        prop_oneof![
            create,
            (
                id(),
                expected_version(),
                text("sku-9"),
                number(1),
                number(10)
            )
                .prop_map(
                    |(order_id, expected_version, product_id, quantity, unit_price)| {
                        Rpc::AddItem(proto::AddItemRequest {
                            order_id,
                            expected_version,
                            product_id,
                            quantity,
                            unit_price,
                        })
                    }
                ),
            (id(), expected_version(), text("sku-2")).prop_map(
                |(order_id, expected_version, product_id)| {
                    Rpc::RemoveItem(proto::RemoveItemRequest {
                        order_id,
                        expected_version,
                        product_id: product_id.unwrap_or_default(),
                    })
                }
            ),
            (id(), expected_version(), option::weighted(0.9, address())).prop_map(
                |(order_id, expected_version, address)| {
                    Rpc::ChangeAddress(proto::ChangeDeliveryAddressRequest {
                        order_id,
                        expected_version,
                        address,
                    })
                }
            ),
            (
                id(),
                expected_version(),
                text("pay-1"),
                prop_oneof![number(225_000), number(224_999)],
                enumeration(proto::PaymentMethod::Card.into())
            )
                .prop_map(
                    |(order_id, expected_version, payment_id, amount, method)| {
                        Rpc::Pay(proto::PayRequest {
                            order_id,
                            expected_version,
                            payment_id,
                            amount,
                            method,
                        })
                    }
                ),
            (id(), expected_version(), text("TRK-1"), text("VNPost")).prop_map(
                |(order_id, expected_version, tracking_number, carrier)| {
                    Rpc::Ship(proto::ShipRequest {
                        order_id,
                        expected_version,
                        tracking_number,
                        carrier,
                    })
                }
            ),
            (id(), expected_version(), text("changed my mind")).prop_map(
                |(order_id, expected_version, reason)| {
                    Rpc::Cancel(proto::CancelRequest {
                        order_id,
                        expected_version,
                        reason,
                    })
                }
            ),
            (
                id(),
                option::weighted(
                    0.3,
                    prop_oneof![
                        Just("2000-01-01T00:00:00Z".to_owned()),
                        Just("2999-01-01T00:00:00+07:00".to_owned()),
                        any::<String>()
                    ]
                )
            )
                .prop_map(|(order_id, as_of)| Rpc::Get(proto::GetOrderRequest { order_id, as_of })),
            id().prop_map(|order_id| Rpc::History(proto::GetHistoryRequest { order_id })),
            (
                option::weighted(0.5, text("cust-1").prop_map(|t| t.unwrap_or_default())),
                enumeration(0),
                option::weighted(0.5, prop_oneof![0..120u32, any::<u32>()]),
                option::weighted(0.2, prop_oneof![any::<String>(), "[0-9a-f]{2,80}"]),
            )
                .prop_map(|(customer_id, status, limit, cursor)| {
                    Rpc::List(proto::ListOrdersRequest {
                        customer_id,
                        status,
                        limit,
                        cursor,
                    })
                }),
        ]
        .boxed()
    }

    /// Metadata: mostly a valid operator or customer token, else none, garbage or an
    /// expired one; idempotency keys from a small pool (so replays and reuses
    /// happen) or malformed; random correlation ids, user ids and trace contexts.
    pub(super) fn metadata(
        tokens: Vec<String>,
        expired: String,
    ) -> BoxedStrategy<Vec<(&'static str, String)>> {
        let authorization = prop_oneof![
            16 => select(tokens).prop_map(|t| Some(format!("Bearer {t}"))),
            1 => Just(Some(format!("Bearer {expired}"))),
            1 => Just(None),
            1 => "[ -~]{0,40}".prop_map(Some),
            1 => "Bearer [A-Za-z0-9._-]{0,60}".prop_map(Some),
        ];
        let key = option::weighted(
            0.3,
            prop_oneof![
                4 => select(vec!["fuzz-1", "fuzz-2", "fuzz-3"]).prop_map(str::to_owned),
                1 => "[ -~]{0,260}",
                1 => Just(String::new()),
            ],
        );
        let correlation = option::weighted(0.2, "[ -~]{0,210}");
        let user = option::weighted(0.2, "[ -~]{0,30}");
        let traceparent = option::weighted(
            0.2,
            prop_oneof![
                Just("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
                "[ -~]{0,60}"
            ],
        );
        (authorization, key, correlation, user, traceparent)
            .prop_map(|(authorization, key, correlation, user, traceparent)| {
                [
                    ("authorization", authorization),
                    ("idempotency-key", key),
                    ("x-correlation-id", correlation),
                    ("x-user-id", user),
                    ("traceparent", traceparent),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect()
            })
            .boxed()
    }

    /// What one fuzz case sends: a message through the generated client, or bytes
    /// (random, or a valid message with a byte changed or cut short) as some rpc's
    /// message.
    #[derive(Debug, Clone)]
    pub(super) enum Input {
        Message(Box<Call>),
        Bytes {
            rpc: &'static str,
            bytes: Vec<u8>,
            metadata: Vec<(&'static str, String)>,
        },
    }

    pub(super) fn input(
        existing: Vec<String>,
        tokens: Vec<String>,
        expired: String,
        valid: Vec<u8>,
    ) -> BoxedStrategy<Input> {
        let len = valid.len();
        let bytes = prop_oneof![
            vec(any::<u8>(), 0..80),
            (0..len, any::<u8>()).prop_map(move |(at, byte)| {
                let mut bytes = valid.clone();
                bytes[at] = byte;
                bytes
            }),
        ];
        prop_oneof![
            9 => (rpc(existing), metadata(tokens.clone(), expired.clone()))
                .prop_map(|(rpc, metadata)| Input::Message(Box::new(Call { rpc, metadata }))),
            1 => (select(RPC_NAMES.to_vec()), bytes, metadata(tokens, expired))
                .prop_map(|(rpc, bytes, metadata)| Input::Bytes { rpc, bytes, metadata }),
        ]
        .boxed()
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
#[allow(clippy::print_stdout)]
async fn random_and_mutated_messages_never_fail_internally_and_rejections_write_nothing(
    pool: PgPool,
) {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    const CALLS: usize = 400;
    let server = Server::with_settings(pool, &jwt_settings()).await;
    let operator = token(&["operator"], None);
    let alice = token(&["customer"], Some("cust-1"));
    let as_operator = [("authorization", format!("Bearer {operator}"))];
    // Orders in every state, of two customers.
    let mut existing = Vec::new();
    for prep in [
        Prep::Created,
        Prep::Created,
        Prep::OneLine,
        Prep::Paid,
        Prep::Shipped,
    ] {
        existing.push(prepare(&server, prep, &as_operator).await);
    }
    let cancelled = prepare(&server, Prep::Created, &as_operator).await;
    server
        .ack(Call::from(cancel(&cancelled)).bearer(&operator))
        .await;
    existing.push(cancelled);
    let other = Call::from(Rpc::Create(order_for("cust-2"))).bearer(&operator);
    existing.push(server.ack(other).await.order_id);
    let expired = token_for("user-1", &["operator"], None, now_seconds() - 3600);
    let tokens = vec![operator.clone(), operator, alice];

    let strategy = fuzz::input(existing, tokens, expired, order().encode_to_vec());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let mut by_code = BTreeMap::<String, usize>::new();
    let mut written = 0;
    for case in 0..CALLS {
        let input = strategy
            .new_tree(&mut runner)
            .expect("a case is drawn")
            .current();
        let before = counts(&server.pool).await;
        let outcome = match &input {
            fuzz::Input::Message(call) => {
                // Only a command that is not a replay may write.
                send(&server.client, call)
                    .await
                    .map(|(answer, _)| match answer {
                        Answer::Ack(ack) => !ack.replayed,
                        _ => false,
                    })
            }
            fuzz::Input::Bytes {
                rpc,
                bytes,
                metadata,
            } => {
                let call = Call {
                    rpc: list(None),
                    metadata: metadata.clone(),
                };
                send_raw(&server.channel, rpc, bytes.clone(), &call)
                    .await
                    .map(|()| true)
            }
        };
        let after = counts(&server.pool).await;
        let code = match outcome {
            Ok(may_write) => {
                if !may_write {
                    assert_eq!(
                        after, before,
                        "case {case}: a query or replay wrote: {input:?}"
                    );
                } else if after != before {
                    written += 1;
                }
                Code::Ok
            }
            Err(status) => {
                assert!(
                    !matches!(
                        status.code(),
                        Code::Internal | Code::Unknown | Code::DataLoss
                    ),
                    "case {case}: {status:?} for {input:?}"
                );
                assert_eq!(after, before, "case {case}: {status:?} wrote: {input:?}");
                status.code()
            }
        };
        *by_code.entry(format!("{code:?}")).or_default() += 1;
    }
    println!("gRPC fuzz: {CALLS} calls, {written} of them wrote; by code: {by_code:?}");
    assert_eq!(by_code.values().sum::<usize>(), CALLS);
    // The drawing reaches beyond validation: some calls succeed and some are refused
    // by the order's state or existence.
    for code in ["Ok", "InvalidArgument", "NotFound", "FailedPrecondition"] {
        assert!(by_code.contains_key(code), "{code} in {by_code:?}");
    }
}
