//! Raw TCP: what no HTTP client library sends, such as a request whose body
//! never comes.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Opens a connection to `addr` (`host:port`), sends `prefix`, then waits
/// (sending nothing more) until the server answers and closes, or `patience`
/// runs out; what it got and after how long. Blocking: from an async test,
/// call it in `tokio::task::spawn_blocking`.
pub fn stall(addr: &str, prefix: &[u8], patience: Duration) -> (String, Duration) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.write_all(prefix).expect("send the prefix");
    stream.set_read_timeout(Some(patience)).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}
