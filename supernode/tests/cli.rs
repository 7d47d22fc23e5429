//! The real `supernode` binary: admin commands, `run` on a free loopback port, probes, the
//! REST API behind it, revocation and rotation from another process, graceful SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_supernode");

/// A fresh data directory, removed when the test ends.
fn data_dir(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!(
        "supernode_cli_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn admin(dir: &Path, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(BIN)
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("SUPERNODE_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.success(),
        v,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(dir: &Path, env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("SUPERNODE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    let base = first
        .strip_prefix("supernode: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first}"))
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running { child, base }
}

#[tokio::test]
async fn admin_run_probes_and_api() {
    let dir = data_dir("main");
    let (ok, p, _) = admin(&dir, &["partner", "create", "Acme Social"]);
    assert!(ok);
    assert_eq!(p["name"], "Acme Social");
    assert_eq!(p["relay"], false);
    let key = p["api_key"].as_str().unwrap().to_owned();
    let pid = p["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("snk_"));
    let mut db = std::fs::read(dir.join("supernode.db")).unwrap();
    db.extend(std::fs::read(dir.join("supernode.db-wal")).unwrap_or_default());
    assert!(db.len() > 1000, "the database was written");
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "the API key is not stored in the clear"
    );
    let (ok, trusted, _) = admin(&dir, &["partner", "create", "tools", "--relay"]);
    assert!(ok);
    assert_eq!(trusted["relay"], true);

    let server = run(&dir, &[]);
    let http = reqwest::Client::new();
    for probe in ["/healthz", "/readyz"] {
        let r = http
            .get(format!("{}{probe}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{probe}");
    }
    let r = http
        .get(format!("{}/v1/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = http
        .post(format!("{}/v1/accounts", server.base))
        .bearer_auth(&key)
        .json(&json!({"display_name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let acc: Value = r.json().await.unwrap();
    let r = http
        .post(format!(
            "{}/v1/accounts/{}/credentials",
            server.base,
            acc["id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cred: Value = r.json().await.unwrap();
    let host = server.base.strip_prefix("http://").unwrap();
    assert_eq!(cred["ws_url"], format!("ws://{host}/v1/ws"));

    // Rotation from another process while the server runs: new credentials carry the new
    // key once the server has reloaded its keyring (it does every few seconds).
    let (ok, rot, _) = admin(&dir, &["secret", "rotate"]);
    assert!(ok);
    assert_eq!(rot["verifying"].as_array().unwrap().len(), 2);

    // Revocation from another process takes effect at once.
    let (ok, _, _) = admin(&dir, &["partner", "revoke", &pid]);
    assert!(ok);
    let r = http
        .post(format!("{}/v1/accounts", server.base))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (ok, _, err) = admin(&dir, &["partner", "revoke", &pid]);
    assert!(!ok);
    assert!(err.contains("no such partner"), "{err}");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = data_dir("term");
    let mut server = run(&dir, &[("SUPERNODE_NODE_ID", "term-test")]);
    let pid = server.child.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

/// `supernode drain [--migrate]` finds the running server through its pid file and drains
/// it (alone, `--migrate` only drains); the pid file goes with the server; with no server
/// running it says so and fails.
#[test]
fn drain_signals_the_server_of_the_data_directory() {
    let dir = data_dir("drain");
    let drain = |migrate: bool| {
        let mut c = Command::new(BIN);
        c.arg("drain");
        if migrate {
            c.arg("--migrate");
        }
        c.arg("--data-dir").arg(&*dir).output().unwrap()
    };
    let out = drain(false);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a supernode running"), "{err}");
    for migrate in [false, true] {
        let mut server = run(&dir, &[("SUPERNODE_NODE_ID", "drain-test")]);
        let pid_file = dir.join("supernode.pid");
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(pid, server.child.id());
        let out = drain(migrate);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status = server.child.wait().unwrap();
        assert!(status.success(), "exit status {status}");
        assert!(!pid_file.exists(), "the pid file goes with the server");
    }
}

#[test]
fn bad_config_and_demo_fail_honestly() {
    let dir = data_dir("bad");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "unknown_key = true\n").unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration"));

    // A demo whose edge client cannot be started fails, and says why.
    let out = Command::new(BIN)
        .args(["demo", "--seconds", "2", "--edge", "/nonexistent/edge"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("starting edge answer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn config_and_data_dir_are_global_flags() {
    // `--data-dir` after the subcommand's own arguments, before the subcommand, and in
    // between: all name the same database.
    let dir = data_dir("global");
    let create = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .env_remove("SUPERNODE_DATABASE_URL")
            .env_remove("SUPERNODE_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["id"].as_str().unwrap().to_owned()
    };
    let d = dir.to_str().unwrap();
    let a = create(&["admin", "partner", "create", "acme", "--data-dir", d]);
    let b = create(&["--data-dir", d, "admin", "partner", "create", "beta"]);
    let c = create(&[
        "admin",
        "--data-dir",
        d,
        "partner",
        "create",
        "gamma",
        "--relay",
    ]);
    // All three are in the one database: revoking each by id from it succeeds, and a
    // second revoke of the same id is refused (it is no longer live there).
    for id in [&a, &b, &c] {
        let (ok, _, err) = admin(&dir, &["partner", "revoke", id]);
        assert!(ok, "{err}");
    }
    let (ok, _, _) = admin(&dir, &["partner", "revoke", &a]);
    assert!(
        !ok,
        "revoking twice succeeds: the partners were not in one database"
    );

    // `--config` is global too: a bad file after the subcommand is read (and refused).
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "unknown_key = true\n").unwrap();
    let out = Command::new(BIN)
        .args(["admin", "secret", "rotate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration"));
}
