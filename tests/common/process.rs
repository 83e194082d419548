//! The `portcullis` binary as an operator runs it: started in a directory of
//! its own with a clean environment, its JSON log read line by line, and
//! stopped with a signal.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// `portcullis` in `dir`, with only `PATH` and `LOG_FORMAT=json` set.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .stdin(Stdio::null());
    cmd
}

/// Starts `serve` on a free port; returns the child and the bound address
/// read from the ready line.
pub fn start(dir: &Path, envs: &[(&str, &str)]) -> (Child, String) {
    let (child, addr, _log) = start_logged(dir, envs);
    (child, addr)
}

/// Like [`start`], also returning the server's later log lines.
pub fn start_logged(dir: &Path, envs: &[(&str, &str)]) -> (Child, String, Receiver<String>) {
    let mut child = command(dir)
        .arg("serve")
        .env("PORT", "0")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portcullis");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Some(rest) = line.split("listening on ").nth(1)
        {
            let addr = rest.split('"').next().unwrap_or_default().to_string();
            return (child, addr, rx);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("portcullis did not log its ready line");
}

/// Reads `log` until a line containing `needle` (within `patience`);
/// returns every line read, that one last. Panics, showing them, if none
/// came.
#[track_caller]
pub fn wait_for_log(log: &Receiver<String>, needle: &str, patience: Duration) -> Vec<String> {
    let deadline = Instant::now() + patience;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match log.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!(
        "no log line with {needle:?} within {patience:?}; the log:\n{}",
        seen.join("\n")
    );
}

/// Sends SIGTERM to `child` (and returns at once).
pub fn sigterm(child: &Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
}

/// Waits (up to 15 s) for `child` to exit.
pub fn wait_exit(mut child: Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM and waits for the exit.
pub fn terminate(child: Child) -> ExitStatus {
    sigterm(&child);
    wait_exit(child)
}

/// Registers `email` with curl; the answer's JSON.
pub fn register(addr: &str, email: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            &format!("http://{addr}/api/auth/register"),
            "-H",
            "content-type: application/json",
            "-d",
            &format!(r#"{{"email":"{email}","password":"tangerine-otter-42"}}"#),
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).expect("register answered JSON")
}

/// The status of `GET /api/auth/me` with `token`.
pub fn me_status(addr: &str, token: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{addr}/api/auth/me"),
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}
