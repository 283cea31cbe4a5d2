//! Item 14: what a client sends wrong is not the server's fault, so it is never logged at
//! ERROR (any client could flood the log); ERROR is kept for the server's own faults.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::{ServerProcess, ADMIN_TOKEN, GMS_USER};

/// Writes `bytes` on a fresh connection and reads until the server answers or closes.
fn send_raw(address: &str, bytes: &[u8]) {
    let mut stream = TcpStream::connect(address.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
}

#[tokio::test]
async fn malformed_requests_are_not_logged_at_error() {
    // Arrange
    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(data.path(), &[("RUST_LOG", "debug")]);
    let address = server.address.clone();

    // Act: broken HTTP, broken headers, broken bodies, unknown places.
    let raw: [&[u8]; 5] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
        b"POST /genesys/1/service/callback/chat-delay HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for bytes in raw {
        send_raw(&address, bytes);
    }
    let client = reqwest::Client::new();
    let malformed = [
        client
            .post(format!("{address}/genesys/1/service/callback/chat-delay"))
            .header("gms_user", GMS_USER)
            .header("content-type", "multipart/form-data; boundary=x")
            .body("not multipart"),
        client
            .put(format!("{address}/genesys/1/admin/services/x"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body("{"),
        client
            .post(format!("{address}/genesys/cometd"))
            .header("content-type", "application/json")
            .body("[{\"channel\":"),
        client.get(format!("{address}/genesys/cometd")),
        client.get(format!("{address}/no/such/place")),
    ];
    for request in malformed {
        let response = request.send().await.unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    // A request whose log line tells us the server has handled everything before it.
    let created = client
        .post(format!("{address}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    server.wait_for_log("service created", Duration::from_secs(10));

    // Assert
    let errors: Vec<String> = server
        .logs()
        .into_iter()
        .filter(|line| line.contains(" ERROR "))
        .collect();
    assert!(
        errors.is_empty(),
        "client errors logged at ERROR:\n{}",
        errors.join("\n")
    );
}
