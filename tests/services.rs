//! The harness's own Redis and NATS servers (tests/common/services.rs) start on a free port,
//! answer their protocol, stop (nothing listens any more) and start again on the same port —
//! what the tests that kill a dependency rely on. PostgreSQL's is exercised by
//! tests/store_faults.rs.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::services::{Nats, Redis, Service};

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// Sends `request` (if any) and returns the first line the server answers.
fn first_line(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

fn check(service: &mut dyn Service, request: &[u8], expect: &str) {
    let port = port_of(&service.url());
    assert!(
        first_line(port, request).starts_with(expect),
        "{}",
        service.url()
    );
    service.stop();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "{} still accepts connections after stop",
        service.url()
    );
    service.start_again();
    assert!(
        first_line(port, request).starts_with(expect),
        "{}",
        service.url()
    );
}

#[test]
fn redis_and_nats_stop_and_start_again() {
    check(&mut Redis::start(), b"PING\r\n", "+PONG");
    check(&mut Nats::start(), b"", "INFO ");
}
