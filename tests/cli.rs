//! The `countersign` binary: help, and bad configuration that must stop it with one clear line.

use std::process::{Command, Output};

fn countersign(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_countersign"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run countersign")
}

fn one_line_error(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got {:?}",
        out.status
    );
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    stderr
}

#[test]
fn help_lists_every_command() {
    let out = countersign(&["--help"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "migrate", "demo"] {
        assert!(text.contains(cmd), "{text}");
    }
    for sub in ["serve", "migrate", "demo"] {
        assert!(
            countersign(&[sub, "--help"], &[]).status.success(),
            "{sub} --help"
        );
    }
}

#[test]
fn malformed_database_url_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = countersign(
        &["--data-dir", d, "migrate"],
        &[("DATABASE_URL", "mysql://db/x")],
    );
    let e = one_line_error(&out);
    assert!(
        e.contains("DATABASE_URL scheme \"mysql\" is not supported"),
        "{e}"
    );
    let out = countersign(
        &["--data-dir", d, "migrate"],
        &[("DATABASE_URL", "postgres://:5432/x")],
    );
    assert!(one_line_error(&out).contains("DATABASE_URL"));
}

#[test]
fn unreachable_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // Port 1 on loopback: nothing listens there.
    let out = countersign(
        &["--data-dir", d, "migrate"],
        &[(
            "DATABASE_URL",
            "postgres://app:secret@127.0.0.1:1/countersign",
        )],
    );
    let e = one_line_error(&out);
    assert!(
        e.contains("cannot connect to PostgreSQL at postgres://app:***@127.0.0.1:1/countersign"),
        "{e}"
    );
    assert!(!e.contains("secret"), "passwords are never printed: {e}");
}

#[test]
fn unusable_data_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let bad = file.join("data");
    let out = countersign(&["--data-dir", bad.to_str().unwrap(), "migrate"], &[]);
    let e = one_line_error(&out);
    assert!(
        e.contains("data dir") && e.contains("cannot be created"),
        "{e}"
    );
}

#[test]
fn port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = countersign(
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--bind",
            &addr,
        ],
        &[],
    );
    let e = one_line_error(&out);
    assert!(e.contains(&format!("cannot listen on {addr}")), "{e}");
}

#[test]
fn bad_bind_address_is_refused_by_the_parser() {
    let out = countersign(&["serve", "--bind", "localhost"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bind"));
}

#[test]
fn migrate_and_demo_work_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("new-dir");
    let d = d.to_str().unwrap();
    let out = countersign(&["--data-dir", d, "migrate"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = countersign(
        &["--data-dir", d, "demo", "--days", "3", "--per-day", "20"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("demo data loaded (sqlite): 60 action requests"));
    let out = countersign(&["--data-dir", d, "demo", "--days", "0"], &[]);
    assert_eq!(out.status.code(), Some(2), "days must be at least 1");
}

fn countersign_with_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn user_add_creates_an_admin_from_stdin_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = countersign_with_stdin(
        &[
            "--data-dir",
            d,
            "user",
            "add",
            "--admin",
            "root@example.com",
        ],
        "a long enough passphrase\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("created root@example.com (root) with roles admin"));

    let again = countersign_with_stdin(
        &[
            "--data-dir",
            d,
            "user",
            "add",
            "--admin",
            "root@example.com",
        ],
        "a long enough passphrase\n",
    );
    assert!(one_line_error(&again).contains("already exists"));
    let weak = countersign_with_stdin(
        &["--data-dir", d, "user", "add", "--admin", "b@example.com"],
        "short\n",
    );
    assert!(one_line_error(&weak).contains("password: use at least 12 characters"));
    let no_role = countersign_with_stdin(
        &["--data-dir", d, "user", "add", "c@example.com"],
        "a long enough passphrase\n",
    );
    assert!(one_line_error(&no_role).contains("at least one role"));
    let bad_role = countersign(
        &[
            "--data-dir",
            d,
            "user",
            "add",
            "--role",
            "god",
            "d@example.com",
        ],
        &[],
    );
    assert_eq!(bad_role.status.code(), Some(2));
}

#[test]
fn insecure_cookies_are_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = countersign(
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--bind",
            "0.0.0.0:0",
            "--insecure-cookies",
        ],
        &[],
    );
    assert!(one_line_error(&out)
        .contains("--insecure-cookies is only allowed when listening on a loopback address"));
}

#[test]
fn audit_verify_reports_the_chain_head_and_records_itself() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = countersign_with_stdin(
        &[
            "--data-dir",
            d,
            "user",
            "add",
            "--admin",
            "root@example.com",
        ],
        "a long enough passphrase\n",
    );
    assert!(out.status.success());
    let first = countersign(&["--data-dir", d, "audit", "verify"], &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout)
        .starts_with("audit trail verified: 1 events, 0 signed checkpoints, head 1 "));
    let second = countersign(&["--data-dir", d, "audit", "verify"], &[]);
    assert!(
        String::from_utf8_lossy(&second.stdout).starts_with("audit trail verified: 2 events"),
        "the first verification was recorded"
    );

    // A checkpoint signed now is checked by the next verification, with the same key.
    let signed = countersign(&["--data-dir", d, "audit", "checkpoint"], &[]);
    assert!(
        String::from_utf8_lossy(&signed.stdout).starts_with("signed checkpoint at event 3 "),
        "{}",
        String::from_utf8_lossy(&signed.stdout)
    );
    let again = countersign(&["--data-dir", d, "audit", "checkpoint"], &[]);
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("nothing to sign"));
    let third = countersign(&["--data-dir", d, "audit", "verify"], &[]);
    assert!(
        String::from_utf8_lossy(&third.stdout)
            .starts_with("audit trail verified: 3 events, 1 signed checkpoints"),
        "{}",
        String::from_utf8_lossy(&third.stdout)
    );
    let key = countersign(&["--data-dir", d, "audit", "public-key"], &[]);
    let key = String::from_utf8_lossy(&key.stdout).trim().to_owned();
    assert_eq!(key.len(), 64, "{key}");
    let file = std::fs::read_to_string(dir.path().join("audit-signing.key")).unwrap();
    assert_ne!(
        file.trim(),
        key,
        "the file holds the private seed, not the public key"
    );
}

#[test]
fn verify_bundle_explains_a_file_that_is_not_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.tar.gz");
    std::fs::write(&path, b"not an archive").unwrap();
    let out = countersign(&["audit", "verify-bundle", path.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(
        one_line_error(&out).contains("bundle"),
        "{}",
        one_line_error(&out)
    );
}

#[test]
fn a_weak_metrics_token_stops_the_server_and_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = countersign(
        &["--data-dir", d, "serve", "--bind", "127.0.0.1:0"],
        &[("COUNTERSIGN_METRICS_TOKEN", "hunter2")],
    );
    let e = one_line_error(&out);
    assert!(
        e.contains("COUNTERSIGN_METRICS_TOKEN (--metrics-token) must be at least 16 characters"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "the secret is not echoed: {e}");
}
