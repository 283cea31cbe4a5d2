//! CometD and connection abuse (issue 9, items 10 and 11): a cheap request must not make the
//! server keep state or descriptors it cannot afford.
//!
//! Item 10: a POST full of handshakes, many clients for one `gms_user`, more clients than the
//! server holds. Item 11: connections that send nothing, send headers one byte at a time, sit
//! idle between requests, or outnumber `[http] max_connections`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{eventually, json, spawn_app_with, TestApp};

/// POSTs `body` to `/genesys/cometd` as `gms_user`; returns the reply array.
async fn cometd(app: &TestApp, gms_user: &str, body: &Value) -> Value {
    let response = app
        .request(Method::POST, "/genesys/cometd")
        .header("Content-Type", "application/json;charset=UTF-8")
        .header("gms_user", gms_user)
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "POST /genesys/cometd {body}");
    json(response).await
}

/// One handshake as `gms_user`; returns its reply.
async fn handshake(app: &TestApp, gms_user: &str) -> Value {
    let reply = cometd(
        app,
        gms_user,
        &json!([{"version":"1.0","channel":"/meta/handshake",
                 "supportedConnectionTypes":["long-polling"],"id":"1"}]),
    )
    .await;
    reply[0].clone()
}

/// The Bayeux error code of a reply's `error` (`"403:args:message"` -> 403).
fn error_code(reply: &Value) -> Option<u16> {
    reply["error"].as_str()?.split(':').next()?.parse().ok()
}

#[tokio::test]
async fn a_post_with_1400_handshakes_creates_at_most_one_client() {
    let app = spawn_app_with(|config| config.cometd.max_clients_per_user = 10_000).await;
    let batch: Vec<Value> = (0..1400)
        .map(|i| json!({"channel":"/meta/handshake","id":i.to_string()}))
        .collect();

    let replies = cometd(&app, "mallory", &Value::Array(batch)).await;

    let replies = replies.as_array().expect("an array");
    assert_eq!(replies.len(), 1400, "one reply per message");
    let served: Vec<&Value> = replies
        .iter()
        .filter(|r| r["successful"] == json!(true))
        .collect();
    assert_eq!(served.len(), 1, "exactly one handshake is served");
    assert_eq!(replies[0]["successful"], json!(true), "the first one");
    assert!(replies[0]["clientId"].is_string());
    for reply in &replies[1..] {
        assert_eq!(reply["successful"], json!(false), "{reply}");
        assert_eq!(error_code(reply), Some(400), "{reply}");
        assert!(reply["clientId"].is_null(), "{reply}");
    }
}

#[tokio::test]
async fn the_17th_client_of_one_gms_user_gets_a_bayeux_error_while_others_still_handshake() {
    let app = spawn_app_with(|_| {}).await;
    let mut alice = Vec::new();
    for n in 1..=16 {
        let reply = handshake(&app, "alice").await;
        assert_eq!(reply["successful"], json!(true), "client {n}: {reply}");
        alice.push(reply["clientId"].as_str().unwrap().to_string());
    }

    let refused = handshake(&app, "alice").await;
    assert_eq!(refused["successful"], json!(false), "{refused}");
    assert_eq!(error_code(&refused), Some(403), "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("max_clients_per_user"), "{error}");
    assert!(refused["clientId"].is_null(), "{refused}");
    assert_eq!(
        refused["advice"]["reconnect"],
        json!("handshake"),
        "the official client retries the handshake after the advised interval"
    );
    assert!(refused["advice"]["interval"].as_u64().unwrap() > 0);

    let bob = handshake(&app, "bob").await;
    assert_eq!(bob["successful"], json!(true), "another user: {bob}");

    // One of alice's clients leaves: there is room for a new one again.
    let bye = cometd(
        &app,
        "alice",
        &json!([{"channel":"/meta/disconnect","clientId":alice[0],"id":"9"}]),
    )
    .await;
    assert_eq!(bye[0]["successful"], json!(true), "{bye}");
    let again = handshake(&app, "alice").await;
    assert_eq!(
        again["successful"],
        json!(true),
        "after a disconnect: {again}"
    );
}

#[tokio::test]
async fn max_clients_is_honoured_across_users() {
    let app = spawn_app_with(|config| config.cometd.max_clients = 5).await;
    for n in 0..5 {
        let reply = handshake(&app, &format!("user-{n}")).await;
        assert_eq!(reply["successful"], json!(true), "client {n}: {reply}");
    }

    let refused = handshake(&app, "user-5").await;

    assert_eq!(refused["successful"], json!(false), "{refused}");
    assert_eq!(error_code(&refused), Some(503), "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("max_clients"),
        "{refused}"
    );
    assert_eq!(refused["advice"]["reconnect"], json!("handshake"));
}

/// Whether the server closed `stream` (EOF or reset) within `deadline`, reading and
/// discarding anything it sends first.
async fn closed_within(stream: &mut TcpStream, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` body; returns its status line.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "the server closed before answering");
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return text.lines().next().unwrap_or_default().to_string();
            }
        }
    }
}

/// A request for a cheap page on a keep-alive connection (an unknown service: 404).
fn get_request(host: &str) -> String {
    format!("GET {CHEAP_PATH} HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

/// Answered at once without touching the database.
const CHEAP_PATH: &str = "/genesys/1/no-such-page";

/// Whether a status line is an HTTP/1.1 answer.
fn answered(status_line: &str) -> bool {
    status_line.starts_with("HTTP/1.1 ")
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_within_the_header_read_timeout() {
    let app = spawn_app_with(|config| config.http.header_read_timeout_ms = 300).await;
    let mut silent = TcpStream::connect(&app.host).await.expect("connect");

    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "a silent connection is still open 5 s after a 300 ms header-read timeout"
    );
}

#[tokio::test]
async fn a_connection_sending_headers_one_byte_per_200ms_is_closed() {
    let app = spawn_app_with(|config| config.http.header_read_timeout_ms = 1_000).await;
    let mut slow = TcpStream::connect(&app.host).await.expect("connect");
    let request = format!(
        "GET {CHEAP_PATH} HTTP/1.1\r\nHost: {}\r\nUser-Agent: slowloris\r\nX-Padding: {}\r\n\r\n",
        app.host,
        "x".repeat(40)
    );
    let started = Instant::now();

    let mut closed = false;
    for byte in request.as_bytes() {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut slow, Duration::from_millis(200)).await {
            closed = true;
            break;
        }
    }

    assert!(
        closed,
        "the whole request went through one byte per 200 ms ({} s)",
        started.elapsed().as_secs()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|config| config.http.idle_timeout_ms = 500).await;
    let mut conn = TcpStream::connect(&app.host).await.expect("connect");
    conn.write_all(get_request(&app.host).as_bytes())
        .await
        .unwrap();
    assert!(answered(&read_response(&mut conn).await), "served");

    assert!(
        closed_within(&mut conn, Duration::from_secs(5)).await,
        "an idle keep-alive connection is still open 5 s after a 500 ms idle timeout"
    );
}

#[tokio::test]
async fn a_held_connect_longer_than_the_idle_timeout_is_still_answered() {
    let app = spawn_app_with(|config| {
        config.http.idle_timeout_ms = 300;
        config.http.header_read_timeout_ms = 300;
        config.cometd.timeout_ms = 1_500;
    })
    .await;
    let client_id = handshake(&app, "alice").await["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    let first = cometd(
        &app,
        "alice",
        &json!([{"channel":"/meta/connect","connectionType":"long-polling","id":"2","clientId":client_id}]),
    )
    .await;
    assert_eq!(first[0]["successful"], json!(true), "{first}");
    let started = Instant::now();

    let held = cometd(
        &app,
        "alice",
        &json!([{"channel":"/meta/connect","connectionType":"long-polling","id":"3","clientId":client_id}]),
    )
    .await;

    assert_eq!(held[0]["successful"], json!(true), "{held}");
    assert!(
        started.elapsed() >= Duration::from_millis(1_400),
        "it was held for its own timeout, not cut at the idle timeout ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn connections_over_max_connections_wait_while_existing_ones_work() {
    let app = spawn_app_with(|config| config.http.max_connections = Some(20)).await;
    let mut open = Vec::new();
    for _ in 0..20 {
        let mut conn = TcpStream::connect(&app.host).await.expect("connect");
        conn.write_all(get_request(&app.host).as_bytes())
            .await
            .unwrap();
        assert!(answered(&read_response(&mut conn).await));
        open.push(conn);
    }

    // The 21st is accepted by the kernel but not served while 20 are open.
    let mut extra = TcpStream::connect(&app.host).await.expect("connect");
    extra
        .write_all(get_request(&app.host).as_bytes())
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(500), read_response(&mut extra)).await;
    assert!(
        early.is_err(),
        "a 21st connection was served with max_connections = 20"
    );
    // The open ones still work.
    open[3]
        .write_all(get_request(&app.host).as_bytes())
        .await
        .unwrap();
    assert!(answered(&read_response(&mut open[3]).await));

    // One goes away: the waiting one is served, and so are new ones once all are gone.
    open.pop();
    let status = tokio::time::timeout(Duration::from_secs(5), read_response(&mut extra))
        .await
        .expect("served once a connection closed");
    assert!(answered(&status), "{status}");
    open.clear();
    drop(extra);
    eventually(
        Duration::from_secs(5),
        "a new client to be served",
        || async {
            let response = app.get(CHEAP_PATH, None).await;
            (response.status() == 404).then_some(())
        },
    )
    .await;
}
