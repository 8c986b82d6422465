//! Store conformance: the same tests run unchanged against every adapter. A behaviour one adapter
//! lacks is a bug in that adapter.

use std::sync::Arc;

use bankrec::domain::{read_records, Currency, Money};
use bankrec::matching::EngineConfig;
use bankrec::matching::Method;
use bankrec::parse::ParseOptions;
use bankrec::store::{
    Account, Blobs, Discrepancy, DiscrepancyKind, FsBlobs, ItemStatus, MatchAction, MatchState, RecordQuery, ReportJob,
    ReportStatus, ReportStore, Resolution, ResolutionAction, Run, RunOutcome, RunStatus, SqliteStore, Store,
    StoreError, StoredMatch, TenantId, TransactionQuery,
};
use bankrec::workflows::import::{import_statement, ImportError};
use bankrec::workflows::matches::{
    act_on_match, complete, manual_match, resolve_discrepancy as resolve, ManualMatch, MatchError, ResolveRequest,
};
use bankrec::workflows::reconcile::{reconcile, tenant_memory, ReconcileRequest};
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;

/// One adapter pair under test, with whatever keeps it alive.
pub struct Harness {
    pub store: Arc<dyn Store>,
    /// The same store seen as the report jobs' port.
    pub reports: Arc<dyn ReportStore>,
    pub blobs: Arc<dyn Blobs>,
    _dir: tempfile::TempDir,
    #[cfg(feature = "aws")]
    _s3: Option<crate::aws::S3Server>,
}

/// The embedded adapters: a SQLite file and a folder in a fresh temporary directory.
pub async fn embedded() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_dir(&dir.path().join("data")).unwrap());
    let blobs = FsBlobs::new(dir.path().join("blobs"));
    Harness {
        store: store.clone(),
        reports: store,
        blobs: Arc::new(blobs),
        _dir: dir,
        #[cfg(feature = "aws")]
        _s3: None,
    }
}

/// The AWS adapters: a fresh table in DynamoDB Local and a fresh bucket on an in-process S3
/// server. `None` (the test is skipped) when no DynamoDB endpoint is configured.
#[cfg(feature = "aws")]
pub async fn aws_adapters() -> Option<Harness> {
    let store = Arc::new(crate::aws::fresh_store().await?);
    let dir = tempfile::tempdir().unwrap();
    let s3 = crate::aws::S3Server::start(dir.path()).await;
    let blobs = s3.fresh_bucket().await;
    Some(Harness { store: store.clone(), reports: store, blobs: Arc::new(blobs), _dir: dir, _s3: Some(s3) })
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn account(id: &str, currency: &str) -> Account {
    Account {
        id: id.into(),
        name: format!("Operating {id}"),
        currency: Currency::new(currency).unwrap(),
        account_number: None,
        iban: None,
        opening_balance: None,
        created_at: Utc::now(),
    }
}

/// An OFX statement with one line per `(day, amount, fitid)`.
fn ofx(currency: &str, lines: &[(u32, &str, &str)], closing: &str) -> Vec<u8> {
    let mut s = format!(
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>\
         <STMTRS><CURDEF>{currency}<BANKACCTFROM><BANKID>1<ACCTID>555<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>\n"
    );
    for (day, amount, fitid) in lines {
        s.push_str(&format!(
            "<STMTTRN><TRNTYPE>OTHER<DTPOSTED>202603{day:02}<TRNAMT>{amount}<FITID>{fitid}<NAME>Payee {fitid}</STMTTRN>\n"
        ));
    }
    s.push_str(&format!(
        "</BANKTRANLIST><LEDGERBAL><BALAMT>{closing}<DTASOF>20260331</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n"
    ));
    s.into_bytes()
}

async fn all_transactions(store: &dyn Store, t: &TenantId, account: &str) -> Vec<bankrec::store::StoredTransaction> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_transactions(t, account, &TransactionQuery { cursor: cursor.clone(), limit: 2, ..Default::default() })
            .await
            .unwrap();
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

pub async fn accounts_are_created_read_and_listed_page_by_page(h: Harness) {
    let t = tenant("t1");
    for i in 0..5 {
        h.store.create_account(&t, &account(&format!("acc_{i}"), "EUR")).await.unwrap();
    }
    let first = h.store.list_accounts(&t, None, 2).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let second = h.store.list_accounts(&t, first.cursor.as_deref(), 2).await.unwrap();
    let third = h.store.list_accounts(&t, second.cursor.as_deref(), 2).await.unwrap();
    assert_eq!(third.items.len(), 1);
    assert_eq!(third.cursor, None);
    let ids: Vec<_> = first.items.iter().chain(&second.items).chain(&third.items).map(|a| a.id.clone()).collect();
    assert_eq!(ids, ["acc_0", "acc_1", "acc_2", "acc_3", "acc_4"]);
    assert_eq!(h.store.get_account(&t, "acc_3").await.unwrap().currency, Currency::EUR);
    let again = h.store.create_account(&t, &account("acc_3", "EUR")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

pub async fn another_tenant_sees_none_of_the_first_tenants_data(h: Harness) {
    let (a, b) = (tenant("alpha"), tenant("beta"));
    h.store.create_account(&a, &account("acc_1", "USD")).await.unwrap();
    let file = ofx("USD", &[(2, "10.00", "F1")], "10.00");
    import_statement(&*h.store, &*h.blobs, &a, "acc_1", "s.ofx", &file, &ParseOptions::default()).await.unwrap();
    let records = read_records("r.csv", b"id,kind,date,amount,currency\nR1,invoice,2026-03-01,10.00,USD\n").unwrap();
    h.store.upsert_records(&a, &records).await.unwrap();

    assert!(matches!(h.store.get_account(&b, "acc_1").await, Err(StoreError::NotFound { .. })));
    assert!(h.store.list_accounts(&b, None, 10).await.unwrap().items.is_empty());
    assert!(h.store.list_imports(&b, "acc_1").await.unwrap().is_empty());
    assert!(all_transactions(&*h.store, &b, "acc_1").await.is_empty());
    let txn = &all_transactions(&*h.store, &a, "acc_1").await[0];
    assert!(matches!(h.store.get_transaction(&b, &txn.id).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(h.store.get_record(&b, "R1").await, Err(StoreError::NotFound { .. })));
    assert!(h.store.list_records(&b, &RecordQuery::default()).await.unwrap().items.is_empty());
    // Importing into another tenant's account is refused as not found.
    let err = import_statement(&*h.store, &*h.blobs, &b, "acc_1", "s.ofx", &file, &ParseOptions::default()).await;
    assert!(matches!(err, Err(ImportError::Store(StoreError::NotFound { .. }))), "{err:?}");
}

pub async fn importing_the_same_statement_twice_adds_nothing_the_second_time(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "USD")).await.unwrap();
    let file = ofx("USD", &[(2, "10.00", "F1"), (3, "-4.50", "F2"), (3, "-4.50", "F3")], "1.00");
    let first =
        import_statement(&*h.store, &*h.blobs, &t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await.unwrap();
    assert!(first.created);
    assert_eq!(first.import.transactions_imported, 3);
    let second =
        import_statement(&*h.store, &*h.blobs, &t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.import.transactions_imported, 0);
    assert_eq!(second.import.id, first.import.id);
    assert_eq!(all_transactions(&*h.store, &t, "acc_1").await.len(), 3);
    assert_eq!(h.store.list_imports(&t, "acc_1").await.unwrap().len(), 1);
    let key = bankrec::store::BlobKey::new(first.import.blob_key.clone()).unwrap();
    assert_eq!(h.blobs.get(&key).await.unwrap(), file, "the raw file is kept as uploaded");
}

pub async fn an_overlapping_export_adds_only_the_lines_not_seen_before(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "USD")).await.unwrap();
    let march = ofx("USD", &[(2, "10.00", "F1"), (3, "-4.50", "F2")], "5.50");
    let overlap = ofx("USD", &[(3, "-4.50", "F2"), (4, "7.25", "F3")], "12.75");
    import_statement(&*h.store, &*h.blobs, &t, "acc_1", "a.ofx", &march, &ParseOptions::default()).await.unwrap();
    let second =
        import_statement(&*h.store, &*h.blobs, &t, "acc_1", "b.ofx", &overlap, &ParseOptions::default()).await.unwrap();
    assert_eq!((second.import.transactions_imported, second.import.duplicates_skipped), (1, 1));
    let txns = all_transactions(&*h.store, &t, "acc_1").await;
    let ids: Vec<_> = txns.iter().map(|t| t.transaction.id.as_ref()).collect();
    assert_eq!(ids, ["F1", "F2", "F3"]);
    assert!(txns.iter().all(|t| t.status == ItemStatus::Pending));
}

pub async fn a_file_that_does_not_parse_leaves_nothing_behind(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "USD")).await.unwrap();
    let mut broken = ofx("USD", &[(2, "10.00", "F1")], "10.00");
    let text = String::from_utf8(broken.clone()).unwrap().replace("<TRNAMT>10.00", "<TRNAMT>ten dollars");
    broken = text.into_bytes();
    let err = import_statement(&*h.store, &*h.blobs, &t, "acc_1", "bad.ofx", &broken, &ParseOptions::default()).await;
    match err {
        Err(ImportError::Parse(e)) => assert!(e.to_string().contains("bad.ofx"), "{e}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert!(h.store.list_imports(&t, "acc_1").await.unwrap().is_empty());
    assert!(all_transactions(&*h.store, &t, "acc_1").await.is_empty());
}

pub async fn a_statement_in_another_currency_is_refused(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "EUR")).await.unwrap();
    let file = ofx("USD", &[(2, "10.00", "F1")], "10.00");
    let err = import_statement(&*h.store, &*h.blobs, &t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await;
    assert!(matches!(err, Err(ImportError::CurrencyMismatch { .. })), "{err:?}");
    assert!(all_transactions(&*h.store, &t, "acc_1").await.is_empty());
}

pub async fn concurrent_imports_of_the_same_statement_store_it_once(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "USD")).await.unwrap();
    let lines: Vec<(u32, String, String)> = (0..50).map(|i| (1 + i % 28, format!("{i}.00"), format!("F{i}"))).collect();
    let refs: Vec<(u32, &str, &str)> = lines.iter().map(|(d, a, f)| (*d, a.as_str(), f.as_str())).collect();
    let file = Arc::new(ofx("USD", &refs, "0.00"));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, blobs, t, file) = (h.store.clone(), h.blobs.clone(), t.clone(), file.clone());
        tasks.push(tokio::spawn(async move {
            import_statement(&*store, &*blobs, &t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await.unwrap()
        }));
    }
    let mut imported = 0;
    for task in tasks {
        imported += task.await.unwrap().import.transactions_imported;
    }
    assert_eq!(imported, 50, "exactly one of the concurrent imports stored the lines");
    assert_eq!(all_transactions(&*h.store, &t, "acc_1").await.len(), 50);
    assert_eq!(h.store.list_imports(&t, "acc_1").await.unwrap().len(), 1);
}

pub async fn transactions_are_filtered_by_date_and_paginated_without_gaps(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "USD")).await.unwrap();
    let file = ofx(
        "USD",
        &[(1, "1.00", "A"), (5, "2.00", "B"), (5, "3.00", "C"), (9, "4.00", "D"), (20, "5.00", "E")],
        "15.00",
    );
    import_statement(&*h.store, &*h.blobs, &t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = TransactionQuery {
            from: NaiveDate::from_ymd_opt(2026, 3, 5),
            to: NaiveDate::from_ymd_opt(2026, 3, 9),
            cursor: cursor.clone(),
            limit: 1,
            ..Default::default()
        };
        let page = h.store.list_transactions(&t, "acc_1", &q).await.unwrap();
        seen.extend(page.items.iter().map(|t| t.transaction.id.to_string()));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["B", "C", "D"]);
    let pending = TransactionQuery { status: Some(ItemStatus::Matched), ..Default::default() };
    assert!(h.store.list_transactions(&t, "acc_1", &pending).await.unwrap().items.is_empty());
    let bad = TransactionQuery { cursor: Some("garbage".into()), ..Default::default() };
    assert!(matches!(h.store.list_transactions(&t, "acc_1", &bad).await, Err(StoreError::Invalid(_))));
}

pub async fn records_are_imported_updated_and_skipped_idempotently(h: Harness) {
    let t = tenant("t1");
    let v1 = read_records(
        "r.csv",
        b"id,kind,date,amount,currency,counterparty\nR1,invoice,2026-03-01,10.00,USD,Acme\nR2,bill,2026-03-02,-5.00,USD,Paper\n",
    )
    .unwrap();
    let first = h.store.upsert_records(&t, &v1).await.unwrap();
    assert_eq!((first.imported, first.updated, first.duplicates_skipped), (2, 0, 0));
    let again = h.store.upsert_records(&t, &v1).await.unwrap();
    assert_eq!((again.imported, again.updated, again.duplicates_skipped), (0, 0, 2));
    let mut v2 = v1.clone();
    v2[1].amount = Money::new(Decimal::new(-550, 2), Currency::USD);
    let changed = h.store.upsert_records(&t, &v2).await.unwrap();
    assert_eq!((changed.imported, changed.updated, changed.duplicates_skipped), (0, 1, 1));
    let stored = h.store.get_record(&t, "R2").await.unwrap();
    assert_eq!(stored.record.amount.to_fixed(), "-5.50");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.status, ItemStatus::Pending);
}

pub async fn a_broken_balance_chain_is_reported(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "EUR")).await.unwrap();
    let feb = b"id,date,amount,balance\nA,2026-02-10,5.00,105.00\nB,2026-02-20,-2.00,103.00\n".to_vec();
    let mar = b"id,date,amount,balance\nC,2026-03-10,1.00,111.00\n".to_vec();
    let opts = ParseOptions { format: Some(bankrec::parse::Format::Csv), ..Default::default() };
    let first = import_statement(&*h.store, &*h.blobs, &t, "acc_1", "feb.csv", &feb, &opts).await;
    let Ok(first) = first else {
        // CSV balance columns are how this chain is expressed; without CSV balances there is nothing to check.
        panic!("{first:?}")
    };
    assert!(first.warnings.iter().all(|w| !w.message.contains("balance chain")));
    let second = import_statement(&*h.store, &*h.blobs, &t, "acc_1", "mar.csv", &mar, &opts).await.unwrap();
    assert!(second.warnings.iter().any(|w| w.message.contains("balance chain broken")), "{:?}", second.warnings);
    // Carried forward as an open `balance` discrepancy of the gap (111.00 - 1.00 opens at 110.00,
    // 7.00 above February's closing 103.00), once only.
    let open = h.store.list_discrepancies(&t, Some("acc_1"), Some(true), None, 10).await.unwrap().items;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!((open[0].kind, open[0].amount), (DiscrepancyKind::Balance, Decimal::new(700, 2)));
    import_statement(&*h.store, &*h.blobs, &t, "acc_1", "mar.csv", &mar, &opts).await.unwrap();
    assert_eq!(h.store.list_discrepancies(&t, Some("acc_1"), Some(true), None, 10).await.unwrap().items.len(), 1);
}

/// Account `acc_1` with three imported lines (+10.00, -4.50, +7.25) and three records.
async fn reconcilable(h: &Harness, t: &TenantId) -> (Vec<String>, Vec<String>) {
    h.store.create_account(t, &account("acc_1", "USD")).await.unwrap();
    let file = ofx("USD", &[(2, "10.00", "F1"), (3, "-4.50", "F2"), (4, "7.25", "F3")], "12.75");
    import_statement(&*h.store, &*h.blobs, t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await.unwrap();
    let records = read_records(
        "r.csv",
        b"id,kind,date,amount,currency\nR1,invoice,2026-03-01,10.00,USD\nR2,bill,2026-03-02,-4.50,USD\nR3,invoice,2026-03-03,7.00,USD\n",
    )
    .unwrap();
    h.store.upsert_records(t, &records).await.unwrap();
    let txns = all_transactions(&*h.store, t, "acc_1").await.into_iter().map(|t| t.id).collect();
    (txns, vec!["R1".into(), "R2".into(), "R3".into()])
}

fn new_run(id: &str) -> Run {
    Run {
        id: id.into(),
        account_id: "acc_1".into(),
        start_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
        status: RunStatus::Running,
        summary: Default::default(),
        created_by: "key_test".into(),
        created_at: Utc::now(),
        finished_at: None,
        error: None,
        version: 1,
    }
}

fn a_match(id: &str, run: Option<&str>, state: MatchState, bank: &[&String], records: &[&str]) -> StoredMatch {
    StoredMatch {
        id: id.into(),
        run_id: run.map(str::to_string),
        account_id: "acc_1".into(),
        state,
        bank_transaction_ids: bank.iter().map(|s| s.to_string()).collect(),
        record_ids: records.iter().map(|s| s.to_string()).collect(),
        confidence: 0.9,
        method: Method::Score,
        rule: None,
        difference: Decimal::ZERO,
        explanation: Default::default(),
        note: None,
        created_by: "key_test".into(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
        version: 1,
    }
}

pub async fn a_finished_run_claims_its_items_and_marks_the_rest_unmatched(h: Harness) {
    let t = tenant("t1");
    let (txns, _) = reconcilable(&h, &t).await;
    let run = new_run("rec_1");
    h.store.create_run(&t, &run).await.unwrap();
    let matched = a_match("mat_1", Some("rec_1"), MatchState::Matched, &[&txns[0]], &["R1"]);
    let suggested = a_match("mat_2", Some("rec_1"), MatchState::Suggested, &[&txns[2]], &["R3"]);
    let mut done = run.clone();
    done.status = RunStatus::Completed;
    let stored = h
        .store
        .finish_run(
            &t,
            &done,
            &RunOutcome {
                matches: vec![matched, suggested],
                unmatched_transactions: vec![txns[1].clone(), txns[2].clone()],
                unmatched_records: vec!["R2".into(), "R3".into()],
                discrepancies: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!((stored.status, stored.version), (RunStatus::Completed, 2));
    let t0 = h.store.get_transaction(&t, &txns[0]).await.unwrap();
    assert_eq!((t0.status, t0.match_id.as_deref()), (ItemStatus::Matched, Some("mat_1")));
    assert_eq!(h.store.get_record(&t, "R1").await.unwrap().status, ItemStatus::Matched);
    // A suggestion claims nothing.
    let t2 = h.store.get_transaction(&t, &txns[2]).await.unwrap();
    assert_eq!((t2.status, t2.match_id), (ItemStatus::Unmatched, None));
    let page = h.store.list_matches(&t, "rec_1", Some(MatchState::Suggested), None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].bank_transaction_ids, vec![txns[2].clone()]);
    assert_eq!(page.items[0].record_ids, vec!["R3".to_string()]);
}

pub async fn a_run_whose_match_conflicts_writes_nothing(h: Harness) {
    let t = tenant("t1");
    let (txns, _) = reconcilable(&h, &t).await;
    h.store.insert_match(&t, &a_match("mat_manual", None, MatchState::Manual, &[&txns[0]], &["R1"])).await.unwrap();
    let run = new_run("rec_1");
    h.store.create_run(&t, &run).await.unwrap();
    let ok = a_match("mat_ok", Some("rec_1"), MatchState::Matched, &[&txns[1]], &["R2"]);
    let clash = a_match("mat_clash", Some("rec_1"), MatchState::Matched, &[&txns[0]], &["R3"]);
    let err = h.store.finish_run(&t, &run, &RunOutcome { matches: vec![ok, clash], ..Default::default() }).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert!(matches!(h.store.get_match(&t, "mat_ok").await, Err(StoreError::NotFound { .. })));
    assert_eq!(h.store.get_transaction(&t, &txns[1]).await.unwrap().status, ItemStatus::Pending);
    assert_eq!(h.store.get_run(&t, "rec_1").await.unwrap().version, 1);
}

pub async fn a_manual_match_on_a_matched_item_is_a_conflict(h: Harness) {
    let t = tenant("t1");
    let (txns, _) = reconcilable(&h, &t).await;
    h.store
        .insert_match(&t, &a_match("mat_a", None, MatchState::Manual, &[&txns[0], &txns[1]], &["R1"]))
        .await
        .unwrap();
    let err = h.store.insert_match(&t, &a_match("mat_b", None, MatchState::Manual, &[&txns[1]], &["R2"])).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(h.store.get_record(&t, "R2").await.unwrap().match_id, None, "nothing of the refused match was written");
    let missing = h.store.insert_match(&t, &a_match("mat_c", None, MatchState::Manual, &[&txns[2]], &["NOPE"])).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
    assert_eq!(h.store.get_transaction(&t, &txns[2]).await.unwrap().match_id, None);
}

pub async fn confirming_rejecting_and_unmatching_move_the_claims(h: Harness) {
    let t = tenant("t1");
    let (txns, _) = reconcilable(&h, &t).await;
    let run = new_run("rec_1");
    h.store.create_run(&t, &run).await.unwrap();
    let s1 = a_match("mat_s1", Some("rec_1"), MatchState::Suggested, &[&txns[0]], &["R1"]);
    let s2 = a_match("mat_s2", Some("rec_1"), MatchState::Suggested, &[&txns[1]], &["R2"]);
    h.store.finish_run(&t, &run, &RunOutcome { matches: vec![s1, s2], ..Default::default() }).await.unwrap();

    let confirmed = h.store.apply_match_action(&t, "mat_s1", MatchAction::Confirm, "key_a", Some("ok")).await.unwrap();
    assert_eq!(confirmed.state, MatchState::Confirmed);
    assert_eq!(h.store.get_transaction(&t, &txns[0]).await.unwrap().match_id.as_deref(), Some("mat_s1"));
    let again = h.store.apply_match_action(&t, "mat_s1", MatchAction::Confirm, "key_a", None).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "confirming twice is refused");

    h.store.apply_match_action(&t, "mat_s2", MatchAction::Reject, "key_a", Some("wrong payee")).await.unwrap();
    assert_eq!(
        h.store.rejected_pairs(&t, "acc_1").await.unwrap(),
        vec![(vec![txns[1].clone()], vec!["R2".to_string()])]
    );

    h.store.apply_match_action(&t, "mat_s1", MatchAction::Unmatch, "key_b", None).await.unwrap();
    let t0 = h.store.get_transaction(&t, &txns[0]).await.unwrap();
    assert_eq!((t0.status, t0.match_id), (ItemStatus::Unmatched, None));
    assert_eq!(h.store.get_record(&t, "R1").await.unwrap().match_id, None);

    let trail = h.store.list_audit(&t, Some("mat_s1"), 0, 100).await.unwrap();
    let actions: Vec<_> = trail.iter().map(|e| (e.action.as_str(), e.actor.as_str())).collect();
    assert_eq!(actions, [("match.created", "key_test"), ("match.confirmed", "key_a"), ("match.unmatched", "key_b")]);
    assert_eq!(trail[1].before["state"], "suggested");
    assert_eq!(trail[1].after["state"], "confirmed");
    assert!(h.store.list_audit(&tenant("other"), None, 0, 100).await.unwrap().is_empty());
}

pub async fn a_stale_run_update_is_refused(h: Harness) {
    let t = tenant("t1");
    reconcilable(&h, &t).await;
    let run = new_run("rec_1");
    h.store.create_run(&t, &run).await.unwrap();
    let mut first = run.clone();
    first.status = RunStatus::Failed;
    h.store.update_run(&t, &first).await.unwrap();
    let stale = h.store.update_run(&t, &run).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(h.store.get_run(&t, "rec_1").await.unwrap().status, RunStatus::Failed);
}

pub async fn an_accounts_runs_are_listed_newest_first_page_by_page(h: Harness) {
    let t = tenant("t1");
    reconcilable(&h, &t).await;
    h.store.create_account(&t, &account("acc_2", "USD")).await.unwrap();
    let start = Utc::now() - chrono::Duration::minutes(10);
    for i in 0..5 {
        let run = Run { created_at: start + chrono::Duration::seconds(i), ..new_run(&format!("rec_{i}")) };
        h.store.create_run(&t, &run).await.unwrap();
    }
    let failed = Run {
        status: RunStatus::Failed,
        error: Some(bankrec::store::import_failure_reason("bad.csv", "line 2: no amount")),
        created_at: start + chrono::Duration::seconds(30),
        ..new_run("rec_failed")
    };
    h.store.create_run(&t, &failed).await.unwrap();
    h.store.create_run(&t, &Run { account_id: "acc_2".into(), ..new_run("rec_other_account") }).await.unwrap();
    h.store.create_account(&tenant("t2"), &account("acc_1", "USD")).await.unwrap();
    h.store.create_run(&tenant("t2"), &new_run("rec_other_tenant")).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = h.store.list_runs(&t, "acc_1", cursor.as_deref(), 4).await.unwrap();
        assert!(page.items.len() <= 4);
        seen.extend(page.items.iter().map(|r| r.id.clone()));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["rec_failed", "rec_4", "rec_3", "rec_2", "rec_1", "rec_0"]);
    let newest = h.store.list_runs(&t, "acc_1", None, 1).await.unwrap();
    assert_eq!(newest.items[0].error.as_deref(), Some("statement bad.csv could not be imported: line 2: no amount"));
    assert!(bankrec::store::is_import_failure(newest.items[0].error.as_deref().unwrap()));
    let other: Vec<_> = h.store.list_runs(&tenant("t2"), "acc_1", None, 10).await.unwrap().items;
    assert_eq!(other.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["rec_other_tenant"]);
    assert!(h.store.list_runs(&tenant("t3"), "acc_1", None, 10).await.unwrap().items.is_empty());
}

pub async fn concurrent_runs_never_claim_an_item_twice(h: Harness) {
    let t = tenant("t1");
    let (txns, _) = reconcilable(&h, &t).await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (store, t, txns) = (h.store.clone(), t.clone(), txns.clone());
        tasks.push(tokio::spawn(async move {
            let run = new_run(&format!("rec_{i}"));
            store.create_run(&t, &run).await.unwrap();
            let m = a_match(&format!("mat_{i}"), Some(&run.id), MatchState::Matched, &[&txns[0]], &["R1"]);
            store.finish_run(&t, &run, &RunOutcome { matches: vec![m], ..Default::default() }).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one run claims the line");
    let holder = h.store.get_transaction(&t, &txns[0]).await.unwrap().match_id.unwrap();
    assert_eq!(h.store.get_record(&t, "R1").await.unwrap().match_id, Some(holder));
}

fn a_discrepancy(id: &str, kind: DiscrepancyKind, day: u32) -> Discrepancy {
    Discrepancy {
        id: id.into(),
        account_id: "acc_1".into(),
        run_id: Some("rec_1".into()),
        kind,
        amount: Decimal::new(-250, 2),
        transaction_ids: vec![],
        record_ids: vec![],
        match_id: None,
        date: NaiveDate::from_ymd_opt(2026, 3, day).unwrap(),
        description: "bank fee".into(),
        proposal: Some("write off 2.50 to bank fees".into()),
        resolution: None,
        created_at: Utc::now(),
        version: 1,
    }
}

fn resolution(action: ResolutionAction) -> Resolution {
    Resolution {
        action,
        account: Some("6810 Bank fees".into()),
        note: "monthly fee".into(),
        record_id: None,
        resolved_by: "key_a".into(),
        resolved_at: Utc::now(),
    }
}

pub async fn completing_needs_every_discrepancy_resolved_then_locks_the_period(h: Harness) {
    let t = tenant("t1");
    let (txns, _) = reconcilable(&h, &t).await;
    let run = new_run("rec_1");
    h.store.create_run(&t, &run).await.unwrap();
    let mut done = run.clone();
    done.status = RunStatus::Completed;
    let outcome = RunOutcome {
        matches: vec![a_match("mat_1", Some("rec_1"), MatchState::Matched, &[&txns[0]], &["R1"])],
        discrepancies: vec![a_discrepancy("dis_1", DiscrepancyKind::MissingInBooks, 20)],
        ..Default::default()
    };
    h.store.finish_run(&t, &done, &outcome).await.unwrap();

    let open = h.store.list_discrepancies(&t, Some("acc_1"), Some(true), None, 10).await.unwrap();
    assert_eq!(open.items.len(), 1);
    let refused = h.store.complete_run(&t, "rec_1", None, "key_a").await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");

    let resolved = h.store.resolve_discrepancy(&t, "dis_1", &resolution(ResolutionAction::WriteOff)).await.unwrap();
    assert_eq!(resolved.resolution.as_ref().unwrap().account.as_deref(), Some("6810 Bank fees"));
    let twice = h.store.resolve_discrepancy(&t, "dis_1", &resolution(ResolutionAction::Ignore)).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))));

    let reconciled = h.store.complete_run(&t, "rec_1", None, "key_a").await.unwrap();
    assert_eq!(reconciled.status, RunStatus::Reconciled);
    assert_eq!(h.store.get_transaction(&t, &txns[0]).await.unwrap().status, ItemStatus::Reconciled);
    assert_eq!(h.store.get_match(&t, "mat_1").await.unwrap().state, MatchState::Reconciled);
    // Locked: the match cannot be undone and its record cannot change.
    let undo = h.store.apply_match_action(&t, "mat_1", MatchAction::Unmatch, "key_a", None).await;
    assert!(matches!(undo, Err(StoreError::Conflict(_))), "{undo:?}");
    let mut changed = h.store.get_record(&t, "R1").await.unwrap().record;
    changed.description = Some("edited".into());
    assert!(matches!(h.store.upsert_records(&t, &[changed.clone()]).await, Err(StoreError::Conflict(_))));

    // Unlocking is explicit and audited; afterwards the match can be undone again.
    h.store.unlock_run(&t, "rec_1", "late correction from the bank", "key_b").await.unwrap();
    assert_eq!(h.store.get_transaction(&t, &txns[0]).await.unwrap().status, ItemStatus::Matched);
    h.store.apply_match_action(&t, "mat_1", MatchAction::Unmatch, "key_b", None).await.unwrap();
    let trail = h.store.list_audit(&t, Some("rec_1"), 0, 100).await.unwrap();
    let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["reconciliation.started", "reconciliation.finished", "reconciliation.completed", "reconciliation.unlocked"]
    );
    assert_eq!(trail[3].after["unlock_reason"], "late correction from the bank");
}

pub async fn an_override_reason_completes_despite_open_discrepancies(h: Harness) {
    let t = tenant("t1");
    reconcilable(&h, &t).await;
    let run = new_run("rec_1");
    h.store.create_run(&t, &run).await.unwrap();
    let mut done = run.clone();
    done.status = RunStatus::Completed;
    let outcome =
        RunOutcome { discrepancies: vec![a_discrepancy("dis_1", DiscrepancyKind::Balance, 31)], ..Default::default() };
    h.store.finish_run(&t, &done, &outcome).await.unwrap();
    let blank = h.store.complete_run(&t, "rec_1", Some("  "), "key_a").await;
    assert!(matches!(blank, Err(StoreError::Conflict(_))), "a blank reason is no reason");
    let done = h.store.complete_run(&t, "rec_1", Some("bank confirmed the balance by phone"), "key_a").await.unwrap();
    assert_eq!(done.status, RunStatus::Reconciled);
    let trail = h.store.list_audit(&t, Some("rec_1"), 0, 100).await.unwrap();
    assert_eq!(trail.last().unwrap().after["override_reason"], "bank confirmed the balance by phone");
    assert!(h.store.list_discrepancies(&tenant("other"), None, None, None, 10).await.unwrap().items.is_empty());
    assert!(matches!(h.store.get_discrepancy(&tenant("other"), "dis_1").await, Err(StoreError::NotFound { .. })));
}

pub async fn rule_versions_are_kept_and_rolled_back_per_tenant(h: Harness) {
    let t = tenant("t1");
    let v1 = h.store.save_rule(&t, "fees", "fn rule(p) { () }", "key_a").await.unwrap();
    let v2 = h.store.save_rule(&t, "fees", "fn rule(p) { #{ veto: true } }", "key_b").await.unwrap();
    h.store.save_rule(&t, "checks", "fn rule(p) { () }", "key_a").await.unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    let active = h.store.active_rules(&t).await.unwrap();
    assert_eq!(active.iter().map(|r| (r.name.as_str(), r.version)).collect::<Vec<_>>(), [("checks", 1), ("fees", 2)]);
    let back = h.store.activate_rule(&t, "fees", 1, "key_c").await.unwrap();
    assert_eq!((back.version, back.active), (1, true));
    let versions = h.store.rule_versions(&t, "fees").await.unwrap();
    assert_eq!(versions.iter().map(|v| (v.version, v.active)).collect::<Vec<_>>(), [(2, false), (1, true)]);
    assert!(matches!(h.store.activate_rule(&t, "fees", 9, "key_c").await, Err(StoreError::NotFound { .. })));
    assert!(h.store.active_rules(&tenant("other")).await.unwrap().is_empty());
    assert!(matches!(h.store.rule_versions(&tenant("other"), "fees").await, Err(StoreError::NotFound { .. })));
    let trail = h.store.list_audit(&t, Some("fees"), 0, 10).await.unwrap();
    assert_eq!(
        trail.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["rule.saved", "rule.saved", "rule.rolled_back"]
    );
}

pub async fn the_learned_memory_is_saved_with_optimistic_versions(h: Harness) {
    let t = tenant("t1");
    assert_eq!(h.store.load_memory(&t).await.unwrap(), None);
    assert_eq!(h.store.save_memory(&t, b"{\"v\":1}", 0).await.unwrap(), 1);
    assert!(matches!(h.store.save_memory(&t, b"{}", 0).await, Err(StoreError::Conflict(_))));
    assert_eq!(h.store.save_memory(&t, b"{\"v\":2}", 1).await.unwrap(), 2);
    assert!(matches!(h.store.save_memory(&t, b"{}", 1).await, Err(StoreError::Conflict(_))), "a stale writer loses");
    assert_eq!(h.store.load_memory(&t).await.unwrap(), Some((b"{\"v\":2}".to_vec(), 2)));
    assert_eq!(h.store.load_memory(&tenant("other")).await.unwrap(), None);
}

/// The shipped sample: a March statement and the books around it, in account `acc_1`.
async fn sample_account(h: &Harness, t: &TenantId) {
    h.store.create_account(t, &account("acc_1", "USD")).await.unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let statement = std::fs::read(root.join("statement-2026-03.ofx")).unwrap();
    import_statement(&*h.store, &*h.blobs, t, "acc_1", "statement-2026-03.ofx", &statement, &ParseOptions::default())
        .await
        .unwrap();
    let records = read_records("records.csv", &std::fs::read(root.join("records-2026-03.csv")).unwrap()).unwrap();
    h.store.upsert_records(t, &records).await.unwrap();
}

fn march(dry_run: bool) -> ReconcileRequest {
    ReconcileRequest {
        account_id: "acc_1".into(),
        start_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
        dry_run,
        actor: "key_test".into(),
    }
}

pub async fn reconciling_the_sample_stores_one_consistent_run(h: Harness) {
    let t = tenant("t1");
    sample_account(&h, &t).await;
    let out = reconcile(&*h.store, &t, &march(false), &EngineConfig::default()).await.unwrap();
    assert_eq!(out.run.status, RunStatus::Completed);
    let s = &out.run.summary;
    assert_eq!(s.bank_transactions, 20);
    assert!(s.matched >= 10, "{s:?}");
    // Every bank line is claimed by a live match, proposed, or reported as missing in the books.
    let txns = all_transactions(&*h.store, &t, "acc_1").await;
    let proposed: std::collections::HashSet<_> =
        out.matches.iter().flat_map(|m| m.bank_transaction_ids.iter().cloned()).collect();
    let missing: std::collections::HashSet<_> = out
        .discrepancies
        .iter()
        .filter(|d| d.kind == DiscrepancyKind::MissingInBooks)
        .flat_map(|d| d.transaction_ids.iter().cloned())
        .collect();
    for txn in &txns {
        assert!(proposed.contains(&txn.id) || missing.contains(&txn.id), "{} is unaccounted for", txn.transaction.id);
        match &txn.match_id {
            Some(m) => assert!(h.store.get_match(&t, m).await.unwrap().state.is_live()),
            None => assert_ne!(txn.status, ItemStatus::Matched),
        }
    }
    // The bank's service charge and interest are bank-only lines.
    let charge = txns.iter().find(|x| &*x.transaction.id == "202603200001").unwrap();
    assert!(missing.contains(&charge.id), "the service charge is missing in the books");
    let listed = h.store.list_matches(&t, &out.run.id, None, None, 1000).await.unwrap();
    assert_eq!(listed.items.len(), out.matches.len());

    // A second run over the same period proposes nothing already claimed.
    let again = reconcile(&*h.store, &t, &march(false), &EngineConfig::default()).await.unwrap();
    for m in again.matches.iter().filter(|m| m.state.is_live()) {
        for id in &m.bank_transaction_ids {
            assert!(!out.matches.iter().any(|o| o.state.is_live() && o.bank_transaction_ids.contains(id)));
        }
    }
}

pub async fn a_dry_run_stores_nothing(h: Harness) {
    let t = tenant("t1");
    sample_account(&h, &t).await;
    let out = reconcile(&*h.store, &t, &march(true), &EngineConfig::default()).await.unwrap();
    assert!(!out.matches.is_empty());
    assert!(matches!(h.store.get_run(&t, &out.run.id).await, Err(StoreError::NotFound { .. })));
    assert!(all_transactions(&*h.store, &t, "acc_1").await.iter().all(|x| x.status == ItemStatus::Pending));
    assert!(h.store.list_discrepancies(&t, None, None, None, 10).await.unwrap().items.is_empty());
}

pub async fn a_rejected_proposal_is_never_proposed_again_and_confirmations_are_learned(h: Harness) {
    let t = tenant("t1");
    sample_account(&h, &t).await;
    let first = reconcile(&*h.store, &t, &march(false), &EngineConfig::default()).await.unwrap();
    let target = first.matches.iter().find(|m| m.state == MatchState::Matched).unwrap().clone();
    act_on_match(&*h.store, &t, &target.id, MatchAction::Reject, "key_a", Some("not this one")).await.unwrap();
    let (_, version) = tenant_memory(&*h.store, &t).await.unwrap();
    assert_eq!(version, 1, "the rejection was learned");
    let second = reconcile(&*h.store, &t, &march(false), &EngineConfig::default()).await.unwrap();
    assert!(
        !second
            .matches
            .iter()
            .any(|m| m.bank_transaction_ids == target.bank_transaction_ids && m.record_ids == target.record_ids),
        "the rejected pair came back"
    );
    if let Some(s) = second.matches.iter().find(|m| m.state == MatchState::Suggested) {
        act_on_match(&*h.store, &t, &s.id, MatchAction::Confirm, "key_a", None).await.unwrap();
        assert_eq!(tenant_memory(&*h.store, &t).await.unwrap().1, 2, "the confirmation was learned");
    }
}

pub async fn a_hand_made_match_with_a_difference_raises_a_discrepancy(h: Harness) {
    let t = tenant("t1");
    sample_account(&h, &t).await;
    let txns = all_transactions(&*h.store, &t, "acc_1").await;
    let wire = txns.iter().find(|x| &*x.transaction.id == "202603050001").unwrap();
    let m = manual_match(
        &*h.store,
        &t,
        &ManualMatch {
            bank_transaction_ids: vec![wire.id.clone()],
            record_ids: vec!["INV-2026-0143".into()],
            note: Some("wire less fees".into()),
        },
        "key_a",
    )
    .await
    .unwrap();
    assert_eq!(m.difference, Decimal::new(-1550, 2));
    assert_eq!(h.store.get_transaction(&t, &wire.id).await.unwrap().status, ItemStatus::Discrepancy);
    let open = h.store.list_discrepancies(&t, Some("acc_1"), Some(true), None, 10).await.unwrap();
    assert_eq!(open.items.len(), 1);
    assert_eq!(open.items[0].kind, DiscrepancyKind::AmountMismatch);
    let req = ResolveRequest { action: ResolutionAction::WriteOff, account: None, note: "fee".into() };
    assert!(matches!(resolve(&*h.store, &t, &open.items[0].id, &req, "key_a").await, Err(MatchError::Invalid(_))));
    let req = ResolveRequest {
        action: ResolutionAction::WriteOff,
        account: Some("6810 Bank fees".into()),
        note: "wire fee".into(),
    };
    resolve(&*h.store, &t, &open.items[0].id, &req, "key_a").await.unwrap();
    let empty = manual_match(
        &*h.store,
        &t,
        &ManualMatch { bank_transaction_ids: vec![], record_ids: vec!["B-7781".into()], note: None },
        "k",
    )
    .await;
    assert!(matches!(empty, Err(MatchError::Invalid(_))));
}

pub async fn a_bank_fee_is_booked_by_resolution_and_the_period_completes(h: Harness) {
    let t = tenant("t1");
    sample_account(&h, &t).await;
    let out = reconcile(&*h.store, &t, &march(false), &EngineConfig::default()).await.unwrap();
    let open = h.store.list_discrepancies(&t, Some("acc_1"), Some(true), None, 100).await.unwrap().items;
    assert!(complete(&*h.store, &t, &out.run.id, None, "key_a").await.is_err(), "open discrepancies block completion");
    let txns = all_transactions(&*h.store, &t, "acc_1").await;
    let charge = txns.iter().find(|x| &*x.transaction.id == "202603200001").unwrap();
    for d in &open {
        let req = if d.transaction_ids == vec![charge.id.clone()] {
            ResolveRequest { action: ResolutionAction::CreateRecord, account: None, note: "monthly fee".into() }
        } else {
            ResolveRequest { action: ResolutionAction::Ignore, account: None, note: "reviewed".into() }
        };
        resolve(&*h.store, &t, &d.id, &req, "key_a").await.unwrap();
    }
    let booked = h.store.get_transaction(&t, &charge.id).await.unwrap();
    assert_eq!(booked.status, ItemStatus::Matched, "the fee is now matched to the record created for it");
    let done = complete(&*h.store, &t, &out.run.id, None, "key_a").await.unwrap();
    assert_eq!(done.status, RunStatus::Reconciled);
    assert_eq!(h.store.get_transaction(&t, &charge.id).await.unwrap().status, ItemStatus::Reconciled);
}

pub async fn listings_that_end_on_a_full_page_say_so_without_an_empty_page_after(h: Harness) {
    let t = tenant("t1");
    for i in 0..4 {
        h.store.create_account(&t, &account(&format!("acc_{i}"), "USD")).await.unwrap();
    }
    let first = h.store.list_accounts(&t, None, 2).await.unwrap();
    let second = h.store.list_accounts(&t, first.cursor.as_deref(), 2).await.unwrap();
    assert_eq!(second.items.len(), 2);
    assert_eq!(second.cursor, None, "the last full page has no cursor");

    let csv = b"id,kind,date,amount,currency\nR1,invoice,2026-03-01,1.00,USD\nR2,bill,2026-03-01,-2.00,USD\n\
R3,invoice,2026-03-02,3.00,USD\nR4,bill,2026-03-03,-4.00,USD\nR5,invoice,2026-03-03,5.00,USD\n";
    h.store.upsert_records(&t, &read_records("r.csv", csv).unwrap()).await.unwrap();
    let mut invoices = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let q = RecordQuery {
            kind: Some(bankrec::domain::RecordKind::Invoice),
            cursor: cursor.clone(),
            limit: 1,
            ..Default::default()
        };
        let page = h.store.list_records(&t, &q).await.unwrap();
        pages += 1;
        invoices.extend(page.items.iter().map(|r| r.record.id.clone()));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(invoices, ["R1", "R3", "R5"]);
    assert_eq!(pages, 3);
    let march_2 = RecordQuery {
        from: NaiveDate::from_ymd_opt(2026, 3, 2),
        to: NaiveDate::from_ymd_opt(2026, 3, 2),
        status: Some(ItemStatus::Pending),
        ..Default::default()
    };
    let ids: Vec<_> =
        h.store.list_records(&t, &march_2).await.unwrap().items.into_iter().map(|r| r.record.id).collect();
    assert_eq!(ids, ["R3"]);
    let bad = RecordQuery { cursor: Some("2026-03-01".into()), ..Default::default() };
    assert!(matches!(h.store.list_records(&t, &bad).await, Err(StoreError::Invalid(_))));
}

pub async fn a_large_import_is_stored_whole_and_counted_exactly(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "USD")).await.unwrap();
    let lines: Vec<(u32, String, String)> =
        (0..230).map(|i| (1 + i % 28, format!("{i}.01"), format!("L{i:03}"))).collect();
    let refs: Vec<(u32, &str, &str)> = lines.iter().map(|(d, a, f)| (*d, a.as_str(), f.as_str())).collect();
    let first = ofx("USD", &refs[..120], "0.00");
    import_statement(&*h.store, &*h.blobs, &t, "acc_1", "a.ofx", &first, &ParseOptions::default()).await.unwrap();
    let all = ofx("USD", &refs, "0.00");
    let second =
        import_statement(&*h.store, &*h.blobs, &t, "acc_1", "b.ofx", &all, &ParseOptions::default()).await.unwrap();
    assert_eq!((second.import.transactions_imported, second.import.duplicates_skipped), (110, 120));
    let stored = all_transactions(&*h.store, &t, "acc_1").await;
    assert_eq!(stored.len(), 230);
    let first_line = &stored[0];
    assert_eq!(h.store.get_transaction(&t, &first_line.id).await.unwrap(), *first_line);
    let imports = h.store.list_imports(&t, "acc_1").await.unwrap();
    assert_eq!(imports.iter().map(|i| i.transactions_imported).sum::<usize>(), 230);
}

pub async fn records_beyond_one_transaction_are_upserted_and_counted_exactly(h: Harness) {
    let t = tenant("t1");
    let csv = |amount: &str| {
        let mut text = String::from("id,kind,date,amount,currency\n");
        for i in 0..250 {
            text.push_str(&format!("R{i:03},invoice,2026-03-{:02},{amount},USD\n", 1 + i % 28));
        }
        read_records("r.csv", text.as_bytes()).unwrap()
    };
    let mut v1 = csv("1.00");
    v1.push(v1[0].clone());
    let first = h.store.upsert_records(&t, &v1).await.unwrap();
    assert_eq!((first.imported, first.updated, first.duplicates_skipped), (250, 0, 1));
    let mut v2 = csv("2.00");
    v2.truncate(240);
    let second = h.store.upsert_records(&t, &v2).await.unwrap();
    assert_eq!((second.imported, second.updated, second.duplicates_skipped), (0, 240, 0));
    assert_eq!(h.store.get_record(&t, "R239").await.unwrap().version, 2);
    assert_eq!(h.store.get_record(&t, "R240").await.unwrap().record.amount.to_fixed(), "1.00");
    let all = h.store.list_records(&t, &RecordQuery { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!((all.items.len(), all.cursor), (250, None));
}

pub async fn a_filtered_listing_reaches_past_long_runs_of_items_it_leaves_out(h: Harness) {
    let t = tenant("t1");
    let mut csv = String::from("id,kind,date,amount,currency\n");
    for i in 0..40 {
        csv.push_str(&format!("B{i:02},bill,2026-03-01,-1.00,USD\n"));
    }
    csv.push_str("I1,invoice,2026-03-02,1.00,USD\nI2,invoice,2026-03-03,1.00,USD\n");
    h.store.upsert_records(&t, &read_records("r.csv", csv.as_bytes()).unwrap()).await.unwrap();
    let q = RecordQuery { kind: Some(bankrec::domain::RecordKind::Invoice), limit: 1, ..Default::default() };
    let first = h.store.list_records(&t, &q).await.unwrap();
    assert_eq!(first.items.iter().map(|r| r.record.id.as_str()).collect::<Vec<_>>(), ["I1"]);
    let next = RecordQuery { cursor: first.cursor.clone(), ..q };
    let second = h.store.list_records(&t, &next).await.unwrap();
    assert_eq!(second.items.iter().map(|r| r.record.id.as_str()).collect::<Vec<_>>(), ["I2"]);
    assert_eq!(second.cursor, None);
}

pub async fn concurrent_imports_of_overlapping_files_store_each_line_once(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "USD")).await.unwrap();
    let lines: Vec<(u32, String, String)> =
        (0..225).map(|i| (1 + i % 28, format!("{i}.25"), format!("X{i:03}"))).collect();
    let refs: Vec<(u32, &str, &str)> = lines.iter().map(|(d, a, f)| (*d, a.as_str(), f.as_str())).collect();
    let files =
        [ofx("USD", &refs[..150], "0.00"), ofx("USD", &refs[75..], "0.00"), ofx("USD", &refs[100..130], "0.00")];
    let mut tasks = Vec::new();
    for (i, file) in files.into_iter().enumerate() {
        let (store, blobs, t) = (h.store.clone(), h.blobs.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("s{i}.ofx");
            import_statement(&*store, &*blobs, &t, "acc_1", &name, &file, &ParseOptions::default()).await.unwrap()
        }));
    }
    let (mut imported, mut duplicates) = (0, 0);
    for task in tasks {
        let outcome = task.await.unwrap();
        imported += outcome.import.transactions_imported;
        duplicates += outcome.import.duplicates_skipped;
    }
    assert_eq!((imported, duplicates), (225, 75 + 30));
    assert_eq!(all_transactions(&*h.store, &t, "acc_1").await.len(), 225);
    assert_eq!(h.store.list_imports(&t, "acc_1").await.unwrap().len(), 3);
}

pub async fn empty_or_unknown_ids_are_simply_not_found(h: Harness) {
    let t = tenant("t1");
    assert!(matches!(h.store.get_account(&t, "").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(h.store.get_transaction(&t, "").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(h.store.get_record(&t, "").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(h.store.get_record(&t, "no such record").await, Err(StoreError::NotFound { .. })));
    assert!(h.store.find_import(&t, "acc_1", "").await.unwrap().is_none());
    assert!(h.store.list_imports(&t, "").await.unwrap().is_empty());
    h.store.create_account(&t, &account("acc_1", "USD")).await.unwrap();
    assert_eq!(h.store.list_accounts(&t, Some(""), 10).await.unwrap().items.len(), 1);
}

/// Account `acc_1` with `n` imported lines and `n` records, for runs larger than one DynamoDB
/// transaction.
async fn many_items(h: &Harness, t: &TenantId, n: usize) -> (Vec<String>, Vec<String>) {
    h.store.create_account(t, &account("acc_1", "USD")).await.unwrap();
    let lines: Vec<(u32, String, String)> =
        (0..n).map(|i| (1 + (i % 28) as u32, format!("{i}.01"), format!("L{i:03}"))).collect();
    let refs: Vec<(u32, &str, &str)> = lines.iter().map(|(d, a, f)| (*d, a.as_str(), f.as_str())).collect();
    let file = ofx("USD", &refs, "0.00");
    import_statement(&*h.store, &*h.blobs, t, "acc_1", "big.ofx", &file, &ParseOptions::default()).await.unwrap();
    let mut csv = String::from("id,kind,date,amount,currency\n");
    for i in 0..n {
        csv.push_str(&format!("R{i:03},invoice,2026-03-{:02},{i}.01,USD\n", 1 + i % 28));
    }
    h.store.upsert_records(t, &read_records("r.csv", csv.as_bytes()).unwrap()).await.unwrap();
    let txns = all_transactions(&*h.store, t, "acc_1").await.into_iter().map(|t| t.id).collect();
    (txns, (0..n).map(|i| format!("R{i:03}")).collect())
}

pub async fn a_run_beyond_one_transaction_whose_last_match_conflicts_leaves_nothing_behind(h: Harness) {
    let t = tenant("t1");
    let (txns, records) = many_items(&h, &t, 120).await;
    let last = txns.len() - 1;
    h.store
        .insert_match(&t, &a_match("mat_manual", None, MatchState::Manual, &[&txns[last]], &[records[0].as_str()]))
        .await
        .unwrap();
    let run = new_run("rec_big");
    h.store.create_run(&t, &run).await.unwrap();
    // Match i pairs line i with record i + 1, so the last match needs the line the manual match holds.
    let matches: Vec<StoredMatch> = (0..txns.len())
        .map(|i| {
            let record = records.get(i + 1).map(String::as_str).unwrap_or("R000");
            a_match(&format!("mat_{i:03}"), Some("rec_big"), MatchState::Matched, &[&txns[i]], &[record])
        })
        .collect();
    let mut done = run.clone();
    done.status = RunStatus::Completed;
    let outcome = RunOutcome {
        matches: matches.clone(),
        discrepancies: vec![a_discrepancy("dis_big", DiscrepancyKind::MissingInBank, 9)],
        ..Default::default()
    };
    let err = h.store.finish_run(&t, &done, &outcome).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert!(matches!(h.store.get_match(&t, "mat_000").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(h.store.get_discrepancy(&t, "dis_big").await, Err(StoreError::NotFound { .. })));
    assert!(h.store.list_matches(&t, "rec_big", None, None, 10).await.unwrap().items.is_empty());
    let line = h.store.get_transaction(&t, &txns[0]).await.unwrap();
    assert_eq!((line.status, line.match_id), (ItemStatus::Pending, None));
    assert_eq!(h.store.get_record(&t, "R001").await.unwrap().match_id, None);
    assert_eq!(h.store.get_run(&t, "rec_big").await.unwrap().version, 1);
    let trail = h.store.list_audit(&t, Some("mat_000"), 0, 10).await.unwrap();
    assert!(trail.is_empty(), "no audit event of a refused run stays: {trail:?}");

    // Without the clash the same run commits whole, and can be finished only once.
    h.store.apply_match_action(&t, "mat_manual", MatchAction::Unmatch, "key_a", None).await.unwrap();
    let stored = h.store.finish_run(&t, &done, &outcome).await.unwrap();
    assert_eq!(stored.version, 2);
    let mut cursor = None;
    let mut listed = 0;
    loop {
        let page = h.store.list_matches(&t, "rec_big", Some(MatchState::Matched), cursor.as_deref(), 50).await.unwrap();
        listed += page.items.len();
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(listed, txns.len());
    let line = h.store.get_transaction(&t, &txns[last]).await.unwrap();
    assert_eq!((line.status, line.match_id.as_deref()), (ItemStatus::Matched, Some(format!("mat_{last:03}").as_str())));
    let again = h.store.finish_run(&t, &done, &outcome).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a stale run version is refused: {again:?}");
}

pub async fn the_audit_trail_is_paged_by_sequence_and_filtered_by_entity(h: Harness) {
    let t = tenant("t1");
    for i in 0..5 {
        h.store.save_rule(&t, &format!("rule_{}", i % 2), "fn rule(p) { () }", "key_a").await.unwrap();
    }
    let all = h.store.list_audit(&t, None, 0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "sequence numbers increase");
    let page = h.store.list_audit(&t, None, all[1].seq, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [all[2].seq, all[3].seq]);
    let one = h.store.list_audit(&t, Some("rule_1"), 0, 100).await.unwrap();
    assert_eq!(one.len(), 2);
    assert!(one.iter().all(|e| e.entity == "rule" && e.entity_id == "rule_1"));
    let after = h.store.list_audit(&t, Some("rule_1"), one[0].seq, 100).await.unwrap();
    assert_eq!(after, one[1..]);
}

pub async fn a_statement_whose_lines_do_not_add_up_raises_a_balance_discrepancy(h: Harness) {
    let t = tenant("t1");
    h.store.create_account(&t, &account("acc_1", "EUR")).await.unwrap();
    let sta = b":20:STMT\n:25:DE44500105175407324931\n:28C:1\n:60F:C260301EUR10,00\n:61:2603020302C5,00NTRFNONREF//B1\n:86:Payment\n:62F:C260302EUR20,00\n-\n";
    let out =
        import_statement(&*h.store, &*h.blobs, &t, "acc_1", "x.sta", sta, &ParseOptions::default()).await.unwrap();
    assert_eq!(out.import.transactions_imported, 1);
    let open = h.store.list_discrepancies(&t, Some("acc_1"), Some(true), None, 10).await.unwrap().items;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!((open[0].kind, open[0].amount), (DiscrepancyKind::Balance, Decimal::new(500, 2)));
}

fn report_job(id: &str) -> ReportJob {
    ReportJob {
        id: id.into(),
        account_id: "acc_1".into(),
        start_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
        format: "xlsx".into(),
        status: ReportStatus::Pending,
        blob_key: None,
        error: None,
        created_by: "key_1".into(),
        created_at: Utc::now(),
        finished_at: None,
    }
}

pub async fn a_report_job_is_created_read_back_and_finished(h: Harness) {
    let t = tenant("t1");
    let job = report_job("rpt_1");
    h.reports.create_report_job(&t, &job).await.unwrap();
    let back = h.reports.get_report_job(&t, "rpt_1").await.unwrap();
    assert_eq!((back.status, back.format.as_str(), back.start_date), (ReportStatus::Pending, "xlsx", job.start_date));
    assert_eq!((back.blob_key, back.error, back.finished_at), (None, None, None));

    let ready = ReportJob {
        status: ReportStatus::Ready,
        blob_key: Some("reports/t1/rpt_1.xlsx".into()),
        finished_at: Some(Utc::now()),
        ..job.clone()
    };
    h.reports.update_report_job(&t, &ready).await.unwrap();
    let back = h.reports.get_report_job(&t, "rpt_1").await.unwrap();
    assert_eq!((back.status, back.blob_key.as_deref()), (ReportStatus::Ready, Some("reports/t1/rpt_1.xlsx")));
    assert_eq!(back.finished_at.map(|f| f.timestamp()), ready.finished_at.map(|f| f.timestamp()));
    assert_eq!((back.account_id, back.created_by), (job.account_id, job.created_by));

    // A later failure replaces what the job said; a blob key it no longer has is gone.
    let failed =
        ReportJob { status: ReportStatus::Failed, blob_key: None, error: Some("no such account".into()), ..ready };
    h.reports.update_report_job(&t, &failed).await.unwrap();
    let back = h.reports.get_report_job(&t, "rpt_1").await.unwrap();
    assert_eq!(
        (back.status, back.blob_key, back.error.as_deref()),
        (ReportStatus::Failed, None, Some("no such account"))
    );
}

pub async fn a_report_job_created_twice_is_a_conflict_and_the_first_stays(h: Harness) {
    let t = tenant("t1");
    h.reports.create_report_job(&t, &report_job("rpt_1")).await.unwrap();
    let again = h.reports.create_report_job(&t, &ReportJob { format: "pdf".into(), ..report_job("rpt_1") }).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(h.reports.get_report_job(&t, "rpt_1").await.unwrap().format, "xlsx");
}

pub async fn a_missing_report_job_is_not_found_and_is_not_created_by_an_update(h: Harness) {
    let t = tenant("t1");
    assert!(matches!(h.reports.get_report_job(&t, "rpt_none").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(h.reports.get_report_job(&t, "").await, Err(StoreError::NotFound { .. })));
    let update = h.reports.update_report_job(&t, &report_job("rpt_none")).await;
    assert!(matches!(update, Err(StoreError::NotFound { .. })), "{update:?}");
    assert!(matches!(h.reports.get_report_job(&t, "rpt_none").await, Err(StoreError::NotFound { .. })));
}

pub async fn another_tenant_can_neither_read_nor_finish_a_report_job(h: Harness) {
    let (a, b) = (tenant("alpha"), tenant("beta"));
    h.reports.create_report_job(&a, &report_job("rpt_1")).await.unwrap();
    assert!(matches!(h.reports.get_report_job(&b, "rpt_1").await, Err(StoreError::NotFound { .. })));
    let ready = ReportJob { status: ReportStatus::Ready, ..report_job("rpt_1") };
    assert!(matches!(h.reports.update_report_job(&b, &ready).await, Err(StoreError::NotFound { .. })));
    assert_eq!(h.reports.get_report_job(&a, "rpt_1").await.unwrap().status, ReportStatus::Pending);
    // The same id in another tenant is another job.
    h.reports.create_report_job(&b, &ReportJob { format: "csv".into(), ..report_job("rpt_1") }).await.unwrap();
    assert_eq!(h.reports.get_report_job(&b, "rpt_1").await.unwrap().format, "csv");
    assert_eq!(h.reports.get_report_job(&a, "rpt_1").await.unwrap().format, "xlsx");
}

macro_rules! conformance {
    ($adapter:ident, $make:path) => {
        mod $adapter {
            use super::*;
            conformance!(@tests $make;
                accounts_are_created_read_and_listed_page_by_page,
                another_tenant_sees_none_of_the_first_tenants_data,
                importing_the_same_statement_twice_adds_nothing_the_second_time,
                an_overlapping_export_adds_only_the_lines_not_seen_before,
                a_file_that_does_not_parse_leaves_nothing_behind,
                a_statement_in_another_currency_is_refused,
                concurrent_imports_of_the_same_statement_store_it_once,
                transactions_are_filtered_by_date_and_paginated_without_gaps,
                records_are_imported_updated_and_skipped_idempotently,
                a_broken_balance_chain_is_reported,
                a_statement_whose_lines_do_not_add_up_raises_a_balance_discrepancy,
                a_finished_run_claims_its_items_and_marks_the_rest_unmatched,
                a_run_whose_match_conflicts_writes_nothing,
                a_manual_match_on_a_matched_item_is_a_conflict,
                confirming_rejecting_and_unmatching_move_the_claims,
                a_stale_run_update_is_refused,
                an_accounts_runs_are_listed_newest_first_page_by_page,
                concurrent_runs_never_claim_an_item_twice,
                completing_needs_every_discrepancy_resolved_then_locks_the_period,
                an_override_reason_completes_despite_open_discrepancies,
                rule_versions_are_kept_and_rolled_back_per_tenant,
                the_learned_memory_is_saved_with_optimistic_versions,
                reconciling_the_sample_stores_one_consistent_run,
                a_dry_run_stores_nothing,
                a_rejected_proposal_is_never_proposed_again_and_confirmations_are_learned,
                a_hand_made_match_with_a_difference_raises_a_discrepancy,
                a_bank_fee_is_booked_by_resolution_and_the_period_completes,
                listings_that_end_on_a_full_page_say_so_without_an_empty_page_after,
                a_large_import_is_stored_whole_and_counted_exactly,
                records_beyond_one_transaction_are_upserted_and_counted_exactly,
                a_filtered_listing_reaches_past_long_runs_of_items_it_leaves_out,
                concurrent_imports_of_overlapping_files_store_each_line_once,
                empty_or_unknown_ids_are_simply_not_found,
                a_run_beyond_one_transaction_whose_last_match_conflicts_leaves_nothing_behind,
                the_audit_trail_is_paged_by_sequence_and_filtered_by_entity,
                a_report_job_is_created_read_back_and_finished,
                a_report_job_created_twice_is_a_conflict_and_the_first_stays,
                a_missing_report_job_is_not_found_and_is_not_created_by_an_update,
                another_tenant_can_neither_read_nor_finish_a_report_job,
            );
        }
    };
    (@tests $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(harness) = Into::<Option<Harness>>::into($make().await) {
                    super::$name(harness).await;
                }
            }
        )*
    };
}

conformance!(sqlite, embedded);
#[cfg(feature = "aws")]
conformance!(aws, aws_adapters);
