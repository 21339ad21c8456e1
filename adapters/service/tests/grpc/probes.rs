//! Health (`grpc.health.v1.Health`) and server reflection (`grpc.reflection.v1`), asked
//! by clients that know neither `orders.proto` nor any credential, as a Kubernetes
//! gRPC probe and `grpcurl` do.

use std::time::{Duration, Instant};

use prost::Message;
use sqlx::PgPool;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use order_api::auth::Authenticator;
use order_service::ServiceSettings;

use crate::support::{jwt_settings, order, Call, Rpc, Server, RPC_NAMES};

const SERVICE: &str = "orders.v1.OrderService";

async fn status(server: &Server, service: &str) -> Result<ServingStatus, tonic::Status> {
    let answer = HealthClient::new(server.channel.clone())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(answer.into_inner().status())
}

/// Asks until `service` reports `wanted`, for at most five seconds (the probe asks
/// the database every second).
async fn wait_for_status(server: &Server, service: &str, wanted: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = status(server, service).await.expect("Check answers");
        if now == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{service:?} still {now:?}, not {wanted:?}, after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn health_is_serving_with_the_database_and_open_while_rpcs_need_a_token(pool: PgPool) {
    let server = Server::with_settings(pool, &jwt_settings()).await;
    wait_for_status(&server, "", ServingStatus::Serving).await;
    wait_for_status(&server, SERVICE, ServingStatus::Serving).await;
    let unknown = status(&server, "orders.v1.NoSuchService")
        .await
        .expect_err("an unknown service is not found");
    assert_eq!(unknown.code(), Code::NotFound);
    let refused = server
        .send(Rpc::Create(order()))
        .await
        .expect_err("the same server still refuses an rpc without a token");
    assert_eq!(refused.code(), Code::Unauthenticated);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn health_is_not_serving_and_rpcs_unavailable_until_the_identity_providers_keys_are_fetched(
    pool: PgPool,
) {
    // A key set that cannot be fetched: nothing listens on the port.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/keys", closed.local_addr().unwrap());
    drop(closed);
    let settings = ServiceSettings {
        auth: Authenticator::jwks(&url).expect("an http URL"),
        ..ServiceSettings::default()
    };
    let server = Server::with_settings(pool, &settings).await;
    // The probe asks every second; give it two rounds to have answered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        status(&server, "").await.unwrap(),
        ServingStatus::NotServing
    );
    assert_eq!(
        status(&server, SERVICE).await.unwrap(),
        ServingStatus::NotServing
    );
    // A well-formed RS256 token naming a key: nothing to check it against yet.
    let b64 = |json: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    };
    let token = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256","kid":"k-1"}"#),
        b64(r#"{"sub":"olga","exp":4102444800,"roles":["operator"]}"#)
    );
    let refused = server
        .send(Call::from(Rpc::Create(order())).bearer(&token))
        .await
        .expect_err("no keys yet");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn health_turns_not_serving_when_the_database_cannot_be_reached(pool: PgPool) {
    let server = Server::start(pool.clone()).await;
    wait_for_status(&server, SERVICE, ServingStatus::Serving).await;
    pool.close().await;
    wait_for_status(&server, "", ServingStatus::NotServing).await;
    wait_for_status(&server, SERVICE, ServingStatus::NotServing).await;
}

#[tokio::test]
async fn a_server_whose_database_is_down_never_reports_serving() {
    let unreachable = order_postgres::connect_lazy(
        "postgres://postgres@127.0.0.1:1/orders",
        2,
        Duration::from_millis(200),
    )
    .expect("a lazy pool");
    let server = Server::start(unreachable).await;
    for _ in 0..15 {
        assert_eq!(
            status(&server, SERVICE).await.expect("Check answers"),
            ServingStatus::NotServing
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reflect(server: &Server, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(server.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection answers without a token")
        .into_inner();
    answers
        .message()
        .await
        .expect("a reflection answer")
        .expect("one answer per request")
        .message_response
        .expect("a message response")
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn reflection_lists_the_services_and_describes_every_rpc(pool: PgPool) {
    let server = Server::with_settings(pool, &jwt_settings()).await;
    let MessageResponse::ListServicesResponse(listed) =
        reflect(&server, MessageRequest::ListServices(String::new())).await
    else {
        panic!("ListServices answers a list");
    };
    let mut names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            SERVICE
        ]
    );

    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &server,
        MessageRequest::FileContainingSymbol(SERVICE.to_owned()),
    )
    .await
    else {
        panic!("FileContainingSymbol answers file descriptors");
    };
    let file = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| {
            prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a descriptor")
        })
        .find(|file| file.package() == "orders.v1")
        .expect("the orders.v1 file");
    let service = file
        .service
        .iter()
        .find(|s| s.name() == "OrderService")
        .expect("OrderService is described");
    let rpcs: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    assert_eq!(rpcs, RPC_NAMES);
    let create = service
        .method
        .iter()
        .find(|m| m.name() == "CreateOrder")
        .expect("CreateOrder");
    assert_eq!(create.input_type(), ".orders.v1.CreateOrderRequest");
    assert!(
        file.message_type
            .iter()
            .any(|m| m.name() == "CreateOrderRequest"),
        "the request messages are described too"
    );
}

/// Older clients (grpcio's reflection client, Postman, grpcurl before 1.9) ask
/// `grpc.reflection.v1alpha`.
#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn reflection_answers_the_older_v1alpha_clients_too(pool: PgPool) {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;

    let server = Server::start(pool).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let answer = ServerReflectionClient::new(server.channel.clone())
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("v1alpha reflection answers")
        .into_inner()
        .message()
        .await
        .expect("an answer")
        .and_then(|answer| answer.message_response);
    let Some(MessageResponse::ListServicesResponse(listed)) = answer else {
        panic!("ListServices answers a list: {answer:?}");
    };
    let names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == SERVICE), "{names:?}");
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
}
