//! Reports end to end: generated periods imported, reconciled and resolved through the workflows;
//! the statement's arithmetic; every format read back and compared; the API's report jobs and
//! their tenant isolation.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use bankrec::api::{self, AppState, BASE_PATH};
use bankrec::domain::{Money, Record};
use bankrec::matching::EngineConfig;
use bankrec::parse::ParseOptions;
use bankrec::reports::{self, LocalDispatch, LocalLinks, Report, ReportFormat};
use bankrec::store::keys::create_key;
use bankrec::store::model::new_id;
use bankrec::store::{
    Account, AccountStore, DiscrepancyKind, DiscrepancyStore, FsBlobs, MatchAction, MatchState, RecordStore,
    ResolutionAction, SqliteKeyStore, SqliteStore, TenantId,
};
use bankrec::workflows::import::import_statement;
use bankrec::workflows::matches::{act_on_match, resolve_discrepancy, ResolveRequest};
use bankrec::workflows::reconcile::{reconcile, ReconcileRequest};
use bankrec::workload::{generate, write, Profile};
use calamine::{Data, Reader, Xlsx};
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A store holding one reconciled generated period.
struct Period {
    store: SqliteStore,
    blobs: FsBlobs,
    tenant: TenantId,
    account_id: String,
    start: NaiveDate,
    end: NaiveDate,
    dir: tempfile::TempDir,
}

/// Generates a period of a business, imports its statement and records, and reconciles it.
async fn reconciled_period(seed: u64) -> Period {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let blobs = FsBlobs::new(dir.path().join("blobs"));
    let tenant = TenantId::new("tenant-a").unwrap();
    let w = generate(&Profile::realistic().with_records(250), seed, 1);
    let currency = w.records[0].amount.currency();
    let account = Account {
        id: new_id("acc"),
        name: "Operating".into(),
        currency,
        account_number: None,
        iban: None,
        opening_balance: Some(Money::new(Decimal::new(1_000_000, 2), currency)),
        created_at: Utc::now(),
    };
    store.create_account(&tenant, &account).await.unwrap();
    let mut csv = Vec::new();
    write::statement_csv(&mut csv, &w.bank).unwrap();
    import_statement(&store, &blobs, &tenant, &account.id, "statement.csv", &csv, &ParseOptions::default())
        .await
        .unwrap();
    let records: Vec<Record> = w.records.clone();
    store.upsert_records(&tenant, &records).await.unwrap();
    let start = w.bank.iter().map(|t| t.booking_date).min().unwrap();
    let end = w.bank.iter().map(|t| t.booking_date).max().unwrap();
    let req = ReconcileRequest {
        account_id: account.id.clone(),
        start_date: start,
        end_date: end,
        dry_run: false,
        actor: "key_test".into(),
    };
    reconcile(&store, &tenant, &req, &EngineConfig::default()).await.unwrap();
    Period { store, blobs, tenant, account_id: account.id, start, end, dir }
}

impl Period {
    async fn report(&self) -> Report {
        reports::build(&self.store, &self.tenant, &self.account_id, self.start, self.end).await.unwrap()
    }

    /// Confirms every suggestion it can and resolves every open discrepancy, as a reviewer would.
    async fn explain_everything(&self) {
        let req = ReconcileRequest {
            account_id: self.account_id.clone(),
            start_date: self.start,
            end_date: self.end,
            dry_run: false,
            actor: "key_test".into(),
        };
        for round in 0..4 {
            let suggestions = self.report().await.exceptions.suggestions;
            if suggestions.is_empty() {
                break;
            }
            for s in suggestions {
                // Two suggestions may compete for an item: the first confirmed wins, and after the
                // first round the rest are rejected so that the loop ends.
                let action = if round == 0 { MatchAction::Confirm } else { MatchAction::Reject };
                let _ = act_on_match(&self.store, &self.tenant, &s.id, action, "key_reviewer", None).await;
            }
            // Lines left unclaimed are raised as discrepancies by the next run.
            reconcile(&self.store, &self.tenant, &req, &EngineConfig::default()).await.unwrap();
        }
        let open =
            self.store.list_discrepancies(&self.tenant, Some(&self.account_id), Some(true), None, 1000).await.unwrap();
        for d in open.items {
            let (action, account) = match d.kind {
                DiscrepancyKind::MissingInBooks => (ResolutionAction::CreateRecord, None),
                DiscrepancyKind::AmountMismatch => (ResolutionAction::WriteOff, Some("6800 bank fees".to_string())),
                _ => (ResolutionAction::Ignore, None),
            };
            let req = ResolveRequest { action, account, note: "reviewed".into() };
            resolve_discrepancy(&self.store, &self.tenant, &d.id, &req, "key_reviewer").await.unwrap();
        }
    }
}

fn assert_arithmetic(report: &Report) {
    let s = &report.statement;
    for line in s.adjustments.iter().chain(std::iter::once(&s.open_items)) {
        assert_eq!(line.total, line.items.iter().map(|i| i.effect).sum::<Decimal>(), "{} adds up its items", line.key);
    }
    assert_eq!(s.adjusted_bank_balance, s.bank_balance + s.adjustments.iter().map(|l| l.total).sum::<Decimal>());
    assert_eq!(s.book_balance, s.opening_balance + s.records_total);
    assert_eq!(s.difference, s.adjusted_bank_balance - s.book_balance);
    assert_eq!(s.difference, s.open_items.total, "the open items explain the difference");
}

#[tokio::test]
async fn an_unreviewed_period_shows_a_difference_its_open_items_explain() {
    let period = reconciled_period(3).await;
    let report = period.report().await;
    assert_arithmetic(&report);
    assert!(!report.statement.open_items.items.is_empty(), "a fresh run leaves items to review");
    assert!(!report.statement.complete);
    assert!(!report.exceptions.open_discrepancies.is_empty());
    assert!(report.summary.auto_match_rate > Decimal::ZERO);
    assert!(!report.detail.audit.is_empty(), "the run's audit events are in the report");
}

#[tokio::test]
async fn adjusted_bank_equals_book_once_every_item_is_explained() {
    for seed in [5, 8] {
        let period = reconciled_period(seed).await;
        period.explain_everything().await;
        let report = period.report().await;
        assert_arithmetic(&report);
        let s = &report.statement;
        assert_eq!(s.difference, Decimal::ZERO, "seed {seed}: open items {:?}", s.open_items.items);
        assert_eq!(s.adjusted_bank_balance, s.book_balance);
        assert!(report.exceptions.open_discrepancies.is_empty());
        assert!(!report.detail.resolved_discrepancies.is_empty());
        let unnoted: Vec<_> =
            report.detail.resolved_discrepancies.iter().filter(|d| d.note.as_deref() != Some("reviewed")).collect();
        assert!(unnoted.is_empty(), "{unnoted:?}");
        assert!(report.summary.manual_matches > 0, "created records are matched by hand");
        assert!(report.detail.matches.iter().any(|m| m.confirmed_by.is_some() || m.state == MatchState::Manual));
    }
}

/// The figures of the statement as printed by every renderer, top to bottom.
fn printed(report: &Report) -> Vec<String> {
    let c = report.currency.minor_units();
    let s = &report.statement;
    let mut v = vec![s.bank_balance];
    v.extend(s.adjustments.iter().map(|l| l.total));
    v.extend([s.adjusted_bank_balance, s.opening_balance, s.records_total, s.book_balance, s.difference]);
    v.into_iter().map(|d| bankrec::domain::money::fixed(d, c)).collect()
}

#[tokio::test]
async fn every_format_carries_the_same_numbers() {
    let period = reconciled_period(3).await;
    let report = period.report().await;
    let figures = printed(&report);
    assert!(report.statement.difference != Decimal::ZERO, "the difference must show in each format");
    // To look at the formats as a person would: BANKREC_REPORT_SAMPLES=DIR keeps them there.
    if let Ok(dir) = std::env::var("BANKREC_REPORT_SAMPLES") {
        for format in ReportFormat::ALL {
            let path = std::path::Path::new(&dir).join(format!("sample.{}", format.extension()));
            std::fs::write(path, reports::render(&report, format).unwrap()).unwrap();
        }
    }

    let json: Value = serde_json::from_slice(&reports::render(&report, ReportFormat::Json).unwrap()).unwrap();
    let back: Report = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, report, "the JSON is the data");
    assert_eq!(json["statement"]["difference"], Value::String(report.statement.difference.to_string()));

    let zip = reports::render(&report, ReportFormat::Csv).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let names: Vec<String> = archive.file_names().map(String::from).collect();
    for section in [
        "statement.csv",
        "unmatched_bank.csv",
        "open_discrepancies.csv",
        "matches.csv",
        "audit_events.csv",
        "summary.csv",
    ] {
        assert!(names.iter().any(|n| n == section), "{section} in {names:?}");
    }
    let mut statement = String::new();
    archive.by_name("statement.csv").unwrap().read_to_string(&mut statement).unwrap();
    let csv_figures: Vec<String> =
        statement.lines().skip(1).map(|l| l.split(',').rev().nth(1).unwrap_or("").to_string()).collect();
    assert_eq!(csv_figures[..figures.len()], figures[..], "{statement}");

    let html = String::from_utf8(reports::render(&report, ReportFormat::Html).unwrap()).unwrap();
    for (i, f) in figures.iter().enumerate() {
        assert!(html.contains(&format!("data-figure=\"{i}\">{f}<")), "HTML figure {i} = {f}");
    }
    assert!(html.contains("class=\"red\""), "a difference is shown in red");
    assert!(html.contains("<svg") && !html.contains("src=\"http"), "inline chart, no external assets");

    let pdf = reports::render(&report, ReportFormat::Pdf).unwrap();
    let text = String::from_utf8_lossy(&pdf);
    for f in &figures {
        assert!(text.contains(&format!("({f})")), "PDF shows {f}");
    }
    assert!(text.contains("(Page 1 of "), "page numbers");

    let (sheet, _) = statement_sheet(&reports::render(&report, ReportFormat::Xlsx).unwrap());
    let xlsx_figures: Vec<String> = sheet
        .iter()
        .filter_map(|row| match row.get(1) {
            Some(Data::Float(f)) => Some(Decimal::try_from(*f).unwrap().round_dp(report.currency.minor_units())),
            _ => None,
        })
        .map(|d| bankrec::domain::money::fixed(d, report.currency.minor_units()))
        .collect();
    assert_eq!(xlsx_figures[..figures.len()], figures[..]);
}

/// The statement sheet's rows (values, with formulas' stored results) and its formulas.
fn statement_sheet(bytes: &[u8]) -> (Vec<Vec<Data>>, Vec<String>) {
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let values = book.worksheet_range("Statement").unwrap();
    let formulas = book.worksheet_formula("Statement").unwrap();
    (
        values.rows().map(|r| r.to_vec()).collect(),
        formulas.rows().flat_map(|r| r.iter().filter(|f| !f.is_empty()).cloned().collect::<Vec<_>>()).collect(),
    )
}

#[tokio::test]
async fn the_workbook_has_a_sheet_per_section_with_typed_cells_and_formula_totals() {
    let period = reconciled_period(3).await;
    let report = period.report().await;
    let bytes = reports::render(&report, ReportFormat::Xlsx).unwrap();
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let names = book.sheet_names();
    for sheet in [
        "Statement",
        "Statement items",
        "Unmatched bank lines",
        "Unmatched records",
        "Open discrepancies",
        "Suggestions",
        "Matches",
        "Resolved discrepancies",
        "Audit events",
        "Summary",
    ] {
        assert!(names.iter().any(|n| n == sheet), "{sheet} in {names:?}");
    }
    let bank = book.worksheet_range("Unmatched bank lines").unwrap();
    let first = bank.rows().nth(1).expect("an unmatched bank line");
    assert!(matches!(first[1], Data::DateTime(_)), "dates are date cells: {:?}", first[1]);
    assert!(matches!(first[2], Data::Float(_)), "amounts are numbers: {:?}", first[2]);
    let last = bank.rows().next_back().unwrap();
    assert_eq!(last[0], Data::String("Total".into()));
    let expected: Decimal = report.exceptions.unmatched_bank.iter().map(|t| t.amount).sum();
    assert!(matches!(last[2], Data::Float(f) if (Decimal::try_from(f).unwrap() - expected).abs() < Decimal::new(1, 6)));
    let formulas = book.worksheet_formula("Unmatched bank lines").unwrap();
    assert!(formulas.rows().flatten().any(|f| f.starts_with("SUM(C2:C")), "totals are formulas");
    let (_, statement_formulas) = statement_sheet(&bytes);
    assert!(statement_formulas.iter().any(|f| f.contains("SUMIF('Statement items'")), "{statement_formulas:?}");
    assert!(statement_formulas.iter().any(|f| f.starts_with("B4+SUM(")), "{statement_formulas:?}");
}

#[tokio::test]
async fn the_pdf_renders_to_pages_that_poppler_can_rasterise() {
    let period = reconciled_period(3).await;
    let report = period.report().await;
    let pdf = reports::render(&report, ReportFormat::Pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "40", "-f", "1", "-l", "1"])
        .arg(&path)
        .arg(dir.path().join("page"))
        .output();
    match out {
        Ok(out) => {
            assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
            let png = std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .find(|e| e.path().extension().is_some_and(|x| x == "png"));
            let png = std::fs::read(png.expect("a page image").path()).unwrap();
            assert!(png.starts_with(b"\x89PNG") && png.len() > 1000);
        }
        // Without poppler the document is still checked as text: every total is on a page.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = String::from_utf8_lossy(&pdf);
            let difference = bankrec::domain::money::fixed(report.statement.difference, 2);
            assert!(text.contains(&format!("({difference})")));
        }
        Err(e) => panic!("pdftoppm: {e}"),
    }
}

async fn send(
    router: &axum::Router,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(format!("{BASE_PATH}{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
        .unwrap();
    let response = router.clone().oneshot(req).await.unwrap();
    let status = response.status();
    (status, axum::body::to_bytes(response.into_body(), 64 << 20).await.unwrap().to_vec())
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

#[tokio::test]
async fn a_report_job_becomes_ready_and_only_its_tenant_can_see_or_download_it() {
    let period = reconciled_period(3).await;
    let keys = SqliteKeyStore::open_dir(period.dir.path()).unwrap();
    let key_a = create_key(&keys, &period.tenant).await.unwrap().secret;
    let key_b = create_key(&keys, &TenantId::new("tenant-b").unwrap()).await.unwrap().secret;
    let store = Arc::new(period.store.clone());
    let blobs = Arc::new(period.blobs.clone());
    let dispatch = LocalDispatch::new(store.clone(), store.clone(), blobs.clone());
    let state = AppState::new(store.clone(), blobs, Arc::new(keys)).with_reports(
        store,
        Arc::new(LocalLinks),
        Arc::new(dispatch),
    );
    let router = api::app(state);
    let body = json!({
        "account_id": period.account_id,
        "start_date": period.start.to_string(),
        "end_date": period.end.to_string(),
        "format": "xlsx"
    });
    let (status, bytes) = send(&router, "POST", "/reports", &key_a, Some(body.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&bytes));
    let created = json_of(&bytes);
    let id = created["report_id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "pending");

    let mut ready = Value::Null;
    for _ in 0..200 {
        let (status, bytes) = send(&router, "GET", &format!("/reports/{id}"), &key_a, None).await;
        assert_eq!(status, StatusCode::OK);
        ready = json_of(&bytes);
        if ready["status"] != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready["status"], "ready", "{ready}");
    let url = ready["download_url"].as_str().unwrap();
    let path = url.strip_prefix(BASE_PATH).unwrap();
    let (status, file) = send(&router, "GET", path, &key_a, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(file.starts_with(b"PK"), "an XLSX is a zip");

    for path in [format!("/reports/{id}"), format!("/reports/{id}/download")] {
        let (status, bytes) = send(&router, "GET", &path, &key_b, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {}", String::from_utf8_lossy(&bytes));
    }
    let (status, _) = send(&router, "POST", "/reports", &key_b, Some(body)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's account");
    let bad = json!({"account_id": period.account_id, "start_date": "2026-03-31", "end_date": "2026-03-01", "format": "xlsx"});
    assert_eq!(send(&router, "POST", "/reports", &key_a, Some(bad)).await.0, StatusCode::BAD_REQUEST);
    let bad = json!({"account_id": period.account_id, "start_date": "2026-03-01", "end_date": "2026-03-31", "format": "docx"});
    assert_eq!(send(&router, "POST", "/reports", &key_a, Some(bad)).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_report_command_writes_the_stored_period_in_the_format_of_its_extension() {
    let period = reconciled_period(3).await;
    let out = period.dir.path().join("march.xlsx");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_bankrec"))
        .arg("report")
        .arg("--data")
        .arg(period.dir.path())
        .args(["--tenant", "tenant-a", "--account", &period.account_id])
        .args(["--from", &period.start.to_string(), "--to", &period.end.to_string()])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let (rows, _) = statement_sheet(&std::fs::read(&out).unwrap());
    assert!(rows.len() > 10, "the statement sheet has the statement");
    let other = std::process::Command::new(env!("CARGO_BIN_EXE_bankrec"))
        .arg("report")
        .arg("--data")
        .arg(period.dir.path())
        .args(["--tenant", "tenant-b", "--account", &period.account_id, "--from", "2024-01-01", "--to", "2024-01-31"])
        .arg("--out")
        .arg(period.dir.path().join("other.pdf"))
        .output()
        .unwrap();
    assert!(!other.status.success(), "another tenant's account is not found");
}

#[test]
fn reconcile_writes_the_one_shot_report_next_to_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let w = generate(&Profile::realistic().with_records(200), 7, 1);
    let (statement, records) = (dir.path().join("statement.csv"), dir.path().join("records.csv"));
    write::statement_csv(std::fs::File::create(&statement).unwrap(), &w.bank).unwrap();
    write::records_csv(std::fs::File::create(&records).unwrap(), &w.records).unwrap();
    for name in ["r.html", "r.pdf", "r.xlsx", "r.json", "r.csv.zip"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bankrec"))
            .arg("reconcile")
            .arg("--statement")
            .arg(&statement)
            .arg("--records")
            .arg(&records)
            .arg("--report")
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(std::fs::metadata(dir.path().join(name)).unwrap().len() > 1000, "{name}");
    }
    let json: Value = serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    let report: Report = serde_json::from_value(json).unwrap();
    assert_eq!(report.statement.difference, report.statement.open_items.total);
    assert!(!report.detail.matches.is_empty());
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_bankrec"))
        .arg("reconcile")
        .arg("--statement")
        .arg(&statement)
        .arg("--records")
        .arg(&records)
        .arg("--report")
        .arg(dir.path().join("r.docx"))
        .output()
        .unwrap();
    assert!(!refused.status.success(), "an unknown extension is refused before any work");
}
