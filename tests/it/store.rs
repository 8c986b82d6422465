//! Store conformance: the same tests run unchanged against every adapter. A behaviour one adapter
//! lacks is a bug in that adapter.

use std::sync::Arc;

use bankrec::domain::{read_records, Currency, Money};
use bankrec::parse::ParseOptions;
use bankrec::store::{
    Account, Blobs, FsBlobs, ItemStatus, RecordQuery, SqliteStore, Store, StoreError, TenantId, TransactionQuery,
};
use bankrec::workflows::import::{import_statement, ImportError};
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;

/// One adapter pair under test, with whatever keeps it alive.
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn Blobs>,
    _dir: tempfile::TempDir,
    #[cfg(feature = "aws")]
    _s3: Option<crate::aws::S3Server>,
}

/// The embedded adapters: a SQLite file and a folder in a fresh temporary directory.
pub async fn embedded() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(&dir.path().join("data")).unwrap();
    let blobs = FsBlobs::new(dir.path().join("blobs"));
    Harness {
        store: Arc::new(store),
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
    let store = crate::aws::fresh_store().await?;
    let dir = tempfile::tempdir().unwrap();
    let s3 = crate::aws::S3Server::start(dir.path()).await;
    let blobs = s3.fresh_bucket().await;
    Some(Harness { store: Arc::new(store), blobs: Arc::new(blobs), _dir: dir, _s3: Some(s3) })
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
    let ids: Vec<_> = txns.iter().map(|t| t.transaction.id.as_str()).collect();
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
        seen.extend(page.items.iter().map(|t| t.transaction.id.clone()));
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
                listings_that_end_on_a_full_page_say_so_without_an_empty_page_after,
                a_large_import_is_stored_whole_and_counted_exactly,
                records_beyond_one_transaction_are_upserted_and_counted_exactly,
                a_filtered_listing_reaches_past_long_runs_of_items_it_leaves_out,
                concurrent_imports_of_overlapping_files_store_each_line_once,
                empty_or_unknown_ids_are_simply_not_found,
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
