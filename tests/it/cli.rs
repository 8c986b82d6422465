//! The `bankrec` binary as users run it: exit codes, stdout contracts, stderr messages.

use std::path::Path;
use std::process::Command;

fn bankrec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bankrec"))
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

#[test]
fn parse_json_prints_exactly_the_documented_shape() {
    let out = bankrec().args(["parse", &repo("samples/statement-2026-03.ofx"), "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&v), ["format", "statements"]);
    assert_eq!(v["format"], "ofx");
    let s = &v["statements"][0];
    assert_eq!(
        keys(s),
        ["account_id", "closing_balance", "currency", "end_date", "opening_balance", "start_date", "transactions"]
    );
    assert_eq!(s["currency"], "USD");
    assert_eq!(s["closing_balance"], "39161.20");
    assert_eq!(s["opening_balance"], serde_json::Value::Null);
    let t = &s["transactions"][0];
    assert_eq!(keys(t), ["amount", "date", "description", "id", "payee", "reference"]);
    assert_eq!(t["amount"], "4250.00");
    assert_eq!(t["date"], "2026-03-02");
    assert_eq!(s["transactions"].as_array().unwrap().len(), 20);
}

#[test]
fn a_broken_statement_exits_non_zero_and_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.sta");
    std::fs::write(
        &file,
        ":20:STMT\n:25:123/456\n:28C:1\n:60F:C240101EUR10,00\n:61:2401020102DXX,00NTRFNONREF\n:62F:C240102EUR5,00\n",
    )
    .unwrap();
    let out = bankrec().args(["parse", file.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.sta:5"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = bankrec().args(["parse", "/nonexistent/statement.ofx"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/statement.ofx"));
}

#[test]
fn a_detected_csv_mapping_can_be_saved_and_reused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    let file = dir.path().join("export.csv");
    std::fs::write(
        &file,
        "Buchungstag;Verwendungszweck;Betrag\n01.03.2026;Miete;-1.200,00\n02.03.2026;Gehalt;3.400,50\n",
    )
    .unwrap();
    let save = bankrec()
        .args(["parse", file.to_str().unwrap(), "--currency", "EUR", "--save-profile", "hausbank"])
        .arg("--profiles")
        .arg(&profiles)
        .output()
        .unwrap();
    assert!(save.status.success(), "{}", String::from_utf8_lossy(&save.stderr));
    let saved = std::fs::read_to_string(profiles.join("hausbank.toml")).unwrap();
    assert!(saved.contains("delimiter = \";\""), "{saved}");
    let reuse = bankrec()
        .args(["parse", file.to_str().unwrap(), "--json", "--currency", "EUR", "--profile", "hausbank"])
        .arg("--profiles")
        .arg(&profiles)
        .output()
        .unwrap();
    assert!(reuse.status.success(), "{}", String::from_utf8_lossy(&reuse.stderr));
    let v: serde_json::Value = serde_json::from_slice(&reuse.stdout).unwrap();
    assert_eq!(v["statements"][0]["transactions"][0]["amount"], "-1200.00");
    assert_eq!(v["statements"][0]["transactions"][1]["amount"], "3400.50");
}

#[test]
fn reconcile_logs_its_phases_to_stderr_when_asked_and_keeps_stdout_one_json_object() {
    let args = [
        "reconcile",
        "--statement",
        &repo("samples/statement-2026-03.ofx"),
        "--records",
        &repo("samples/records-2026-03.csv"),
        "--json",
    ];
    let quiet = bankrec().args(args).env_remove("RUST_LOG").output().unwrap();
    assert!(quiet.status.success(), "{}", String::from_utf8_lossy(&quiet.stderr));
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("matching phase"));
    let out = bankrec().args(args).env("RUST_LOG", "bankrec::matching=debug").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("matching phase") && stderr.contains("judge_pairs"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"], serde_json::from_slice::<serde_json::Value>(&quiet.stdout).unwrap()["summary"]);
}
