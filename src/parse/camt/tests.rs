//! Tests of the camt parser: one per quirk handled, a round-trip property and a no-panic property.

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::parse;
use crate::domain::{Currency, IdSource, Statement};
use crate::parse::{Format, ParseError, ParseErrorKind, ParseOptions, Parsed, Source};

const NS053: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02";
const NS052: &str = "urn:iso:std:iso:20022:tech:xsd:camt.052.001.02";

fn run_with(xml: &[u8], options: &ParseOptions, format: Format) -> Result<Parsed, ParseError> {
    let source = Source { name: "test.xml", bytes: xml, options, progress: None };
    parse(&source, format)
}

fn run(xml: &str) -> Result<Parsed, ParseError> {
    run_with(xml.as_bytes(), &ParseOptions::default(), Format::Camt053)
}

fn ok(xml: &str) -> Parsed {
    match run(xml) {
        Ok(p) => p,
        Err(e) => panic!("parse failed: {e}"),
    }
}

/// A camt.053 document holding one statement with `body` after its account.
fn stmt(acct: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NS053}"><BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId></GrpHdr>
<Stmt><Id>S-1</Id><Acct>{acct}</Acct>
{body}
</Stmt></BkToCstmrStmt></Document>"#
    )
}

const ACCT: &str = "<Id><IBAN>DE02100100109307118603</IBAN></Id><Ccy>EUR</Ccy>";

fn bal(code: &str, amount: &str, ccy: &str, ind: &str) -> String {
    format!(
        "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"{ccy}\">{amount}</Amt>\
         <CdtDbtInd>{ind}</CdtDbtInd><Dt><Dt>2024-03-01</Dt></Dt></Bal>"
    )
}

fn ntry(amount: &str, ind: &str, extra: &str) -> String {
    format!(
        "<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>{ind}</CdtDbtInd><Sts>BOOK</Sts>\
         <BookgDt><Dt>2024-03-04</Dt></BookgDt><ValDt><Dt>2024-03-05</Dt></ValDt>{extra}</Ntry>"
    )
}

fn only(parsed: &Parsed) -> &Statement {
    assert_eq!(parsed.statements.len(), 1, "expected one statement");
    &parsed.statements[0]
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn a_statement_maps_its_account_period_balances_and_entries() {
    let acct = "<Id><IBAN>DE02100100109307118603</IBAN></Id><Tp><Cd>CACC</Cd></Tp><Ccy>EUR</Ccy>\
                <Ownr><Nm>Larkspur Tools GmbH</Nm></Ownr>\
                <Svcr><FinInstnId><BICFI>MARKDEF1100</BICFI></FinInstnId></Svcr>";
    let body = format!(
        "<FrToDt><FrDtTm>2024-03-01T00:00:00+01:00</FrDtTm><ToDtTm>2024-03-31T23:59:59+02:00</ToDtTm></FrToDt>\
         {}{}{}{}",
        bal("OPBD", "100.00", "EUR", "CRDT"),
        bal("CLBD", "12.50", "EUR", "DBIT"),
        bal("CLAV", "7.25", "EUR", "DBIT"),
        ntry(
            "112.50",
            "DBIT",
            "<AcctSvcrRef>BANKREF-1</AcctSvcrRef><BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd>\
             <SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd><AddtlNtryInf>  Rent   March </AddtlNtryInf>"
        )
    );
    let parsed = ok(&stmt(acct, &body));
    let s = only(&parsed);
    assert_eq!(s.account.id, "DE02100100109307118603");
    assert_eq!(s.account.iban.as_deref(), Some("DE02100100109307118603"));
    assert_eq!(s.account.bic.as_deref(), Some("MARKDEF1100"));
    assert_eq!(s.account.name.as_deref(), Some("Larkspur Tools GmbH"));
    assert_eq!(s.account.kind.as_deref(), Some("CACC"));
    assert_eq!(s.currency, Currency::EUR);
    assert_eq!(s.statement_id.as_deref(), Some("S-1"));
    assert_eq!((s.start_date, s.end_date), (Some(date(2024, 3, 1)), Some(date(2024, 3, 31))));
    assert_eq!(s.opening_balance.map(|m| m.amount()), Some(dec("100.00")));
    assert_eq!(s.closing_balance.map(|m| m.amount()), Some(dec("-12.50")));
    assert_eq!(s.available_balance.map(|m| m.amount()), Some(dec("-7.25")));
    let t = &s.transactions[0];
    assert_eq!(t.amount.amount(), dec("-112.50"));
    assert_eq!(t.booking_date, date(2024, 3, 4));
    assert_eq!(t.value_date, Some(date(2024, 3, 5)));
    assert_eq!((t.id.as_ref(), t.id_source), ("BANKREF-1", IdSource::Bank));
    assert_eq!(t.bank_code.as_deref(), Some("PMNT-ICDT-ESCT"));
    assert_eq!(&*t.description, "Rent March");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn previous_closing_stands_in_for_a_missing_opening_balance_and_opbd_wins_over_it() {
    let prcd_only = ok(&stmt(ACCT, &bal("PRCD", "5.00", "EUR", "CRDT")));
    assert_eq!(only(&prcd_only).opening_balance.map(|m| m.amount()), Some(dec("5.00")));
    let both = format!("{}{}", bal("PRCD", "5.00", "EUR", "CRDT"), bal("OPBD", "6.00", "EUR", "CRDT"));
    assert_eq!(only(&ok(&stmt(ACCT, &both))).opening_balance.map(|m| m.amount()), Some(dec("6.00")));
}

#[test]
fn interim_balances_bracket_a_report_only_when_it_has_no_opening_or_closing_balance() {
    let report = |bals: &str| {
        format!(
            "<Document xmlns=\"{NS052}\"><BkToCstmrAcctRpt><Rpt><Id>R</Id><Acct>{ACCT}</Acct>{bals}</Rpt>\
             </BkToCstmrAcctRpt></Document>"
        )
    };
    let pair = format!("{}{}", bal("ITBD", "10.00", "EUR", "CRDT"), bal("ITBD", "4.00", "EUR", "CRDT"));
    let parsed = ok(&report(&pair));
    let s = only(&parsed);
    assert_eq!(s.opening_balance.map(|m| m.amount()), Some(dec("10.00")));
    assert_eq!(s.closing_balance.map(|m| m.amount()), Some(dec("4.00")));

    let single = ok(&report(&bal("ITBD", "10.00", "EUR", "CRDT")));
    assert_eq!(only(&single).opening_balance, None);

    // A statement never takes interim balances for opening or closing ones.
    let parsed = ok(&stmt(ACCT, &pair));
    assert_eq!((only(&parsed).opening_balance, only(&parsed).closing_balance), (None, None));
}

#[test]
fn only_booked_entries_are_imported_and_skipped_ones_are_warned() {
    let pending = ntry("1.00", "CRDT", "").replace("<Sts>BOOK</Sts>", "<Sts>PDNG</Sts>");
    let coded = ntry("2.00", "CRDT", "").replace("<Sts>BOOK</Sts>", "<Sts><Cd>BOOK</Cd></Sts>");
    let parsed = ok(&stmt(ACCT, &format!("{pending}{coded}")));
    let s = only(&parsed);
    assert_eq!(s.transactions.len(), 1);
    assert_eq!(s.transactions[0].amount.amount(), dec("2.00"));
    assert_eq!(parsed.warnings.len(), 1);
    assert!(parsed.warnings[0].message.contains("PDNG"), "{:?}", parsed.warnings);
    assert_eq!(parsed.warnings[0].line, Some(4));

    // An intraday report exists to show pending entries: they are imported, with a warning.
    let report = format!(
        "<Document xmlns=\"{NS052}\"><BkToCstmrAcctRpt><Rpt><Acct>{ACCT}</Acct>{pending}</Rpt></BkToCstmrAcctRpt></Document>"
    );
    let parsed = ok(&report);
    assert_eq!(only(&parsed).transactions.len(), 1);
    assert_eq!(parsed.warnings.len(), 1);
}

#[test]
fn a_reversal_keeps_the_direction_its_indicator_gives() {
    let parsed = ok(&stmt(ACCT, &ntry("30.00", "DBIT", "<RvslInd>true</RvslInd>")));
    assert_eq!(only(&parsed).transactions[0].amount.amount(), dec("-30.00"));
}

fn tx(inner: &str) -> String {
    format!("<TxDtls>{inner}</TxDtls>")
}

#[test]
fn a_batch_entry_is_one_transaction_with_a_detail_per_part() {
    let part = |n: &str, amt: &str| {
        tx(&format!(
            "<Refs><EndToEndId>E2E-{n}</EndToEndId></Refs><AmtDtls><TxAmt><Amt Ccy=\"EUR\">{amt}</Amt></TxAmt></AmtDtls>\
             <RltdPties><Dbtr><Nm>Payer {n}</Nm></Dbtr><DbtrAcct><Id><IBAN>NL{n}</IBAN></Id></DbtrAcct>\
             <Cdtr><Nm>Us</Nm></Cdtr></RltdPties><RmtInf><Ustrd>Invoice {n}</Ustrd></RmtInf>"
        ))
    };
    let details =
        format!("<NtryDtls><Btch><NbOfTxs>2</NbOfTxs></Btch>{}{}</NtryDtls>", part("1", "60.00"), part("2", "40.00"));
    let parsed = ok(&stmt(ACCT, &ntry("100.00", "CRDT", &details)));
    let t = &only(&parsed).transactions[0];
    assert_eq!(only(&parsed).transactions.len(), 1);
    assert_eq!(t.amount.amount(), dec("100.00"));
    assert_eq!(t.details.len(), 2);
    assert_eq!(t.details[0].amount.map(|m| m.amount()), Some(dec("60.00")));
    assert_eq!(t.details[1].reference.as_deref(), Some("E2E-2"));
    assert_eq!(t.details[1].payee.as_deref(), Some("Payer 2"));
    assert_eq!(t.details[1].counterparty_account.as_deref(), Some("NL2"));
    assert_eq!(t.details[0].description.as_deref(), Some("Invoice 1"));
    // Parts with different payers leave the batch's own payee open.
    assert_eq!(t.payee, None);
}

#[test]
fn a_batch_without_its_own_text_takes_what_all_parts_share() {
    let part = |amt: &str| {
        tx(&format!(
            "<Amt Ccy=\"EUR\">{amt}</Amt><RltdPties><Cdtr><Nm>Same Payee</Nm></Cdtr></RltdPties>\
             <RmtInf><Ustrd>Collection 7</Ustrd></RmtInf>"
        ))
    };
    let details = format!("<NtryDtls>{}{}</NtryDtls>", part("1.00"), part("2.00"));
    let parsed = ok(&stmt(ACCT, &ntry("3.00", "DBIT", &details)));
    let t = &only(&parsed).transactions[0];
    assert_eq!(&*t.description, "Collection 7");
    assert_eq!(t.payee.as_deref(), Some("Same Payee"));
    assert_eq!(t.details[1].amount.map(|m| m.amount()), Some(dec("-2.00")));
}

#[test]
fn a_single_transaction_detail_is_lifted_onto_the_entry() {
    let detail = tx("<Refs><EndToEndId>NOTPROVIDED</EndToEndId><ChqNb>004711</ChqNb></Refs>\
         <RltdPties><Dbtr><Pty><Nm>Juniper Farms</Nm></Pty></Dbtr>\
         <DbtrAcct><Id><Othr><Id>12345678</Id></Othr></Id></DbtrAcct></RltdPties>\
         <RmtInf><Ustrd>INV 2024-17</Ustrd><Ustrd>second line</Ustrd>\
         <Strd><CdtrRefInf><Ref>RF18539007547034</Ref></CdtrRefInf></Strd></RmtInf>");
    let extra = format!("<NtryDtls>{detail}</NtryDtls><AddtlNtryInf>Credit transfer</AddtlNtryInf>");
    let parsed = ok(&stmt(ACCT, &ntry("75.00", "CRDT", &extra)));
    let t = &only(&parsed).transactions[0];
    assert_eq!(t.payee.as_deref(), Some("Juniper Farms"));
    assert_eq!(t.counterparty_account.as_deref(), Some("12345678"));
    assert_eq!(t.reference.as_deref(), Some("RF18539007547034"));
    assert_eq!(t.check_number.as_deref(), Some("004711"));
    assert_eq!(&*t.description, "Credit transfer INV 2024-17 second line");
    assert!(t.details.is_empty());
}

#[test]
fn the_counterparty_of_a_debit_is_the_creditor() {
    let detail = tx("<RltdPties><Dbtr><Nm>Ourselves</Nm></Dbtr><Cdtr><Nm>Office Supplies Ltd</Nm></Cdtr>\
         <CdtrAcct><Id><IBAN>GB29NWBK60161331926819</IBAN></Id></CdtrAcct></RltdPties>");
    let parsed = ok(&stmt(ACCT, &ntry("9.99", "DBIT", &format!("<NtryDtls>{detail}</NtryDtls>"))));
    let t = &only(&parsed).transactions[0];
    assert_eq!(t.payee.as_deref(), Some("Office Supplies Ltd"));
    assert_eq!(t.counterparty_account.as_deref(), Some("GB29NWBK60161331926819"));
}

#[test]
fn the_bank_id_falls_back_to_the_entry_reference_then_the_detail_reference_and_skips_placeholders() {
    let by_ntry_ref = ntry("1.00", "CRDT", "").replace("<Ntry>", "<Ntry><NtryRef>NR-1</NtryRef>");
    let by_detail =
        ntry("2.00", "CRDT", &format!("<NtryDtls>{}</NtryDtls>", tx("<Refs><AcctSvcrRef>TX-9</AcctSvcrRef></Refs>")));
    let parsed = ok(&stmt(
        ACCT,
        &format!("{by_ntry_ref}{by_detail}{}", ntry("3.00", "CRDT", "<AcctSvcrRef>NONREF</AcctSvcrRef>")),
    ));
    let ids: Vec<_> = only(&parsed).transactions.iter().map(|t| (t.id.as_ref(), t.id_source)).collect();
    assert_eq!(ids, [("NR-1", IdSource::Bank), ("TX-9", IdSource::Bank), ("", IdSource::Fingerprint)]);
}

#[test]
fn a_repeated_bank_reference_is_dropped_with_a_warning() {
    let e = ntry("1.00", "CRDT", "<AcctSvcrRef>SAME</AcctSvcrRef>");
    let parsed = ok(&stmt(ACCT, &format!("{e}{e}")));
    let s = only(&parsed);
    assert_eq!(s.transactions[0].id_source, IdSource::Bank);
    assert_eq!(s.transactions[1].id_source, IdSource::Fingerprint);
    assert_eq!(parsed.warnings.len(), 1);
}

#[test]
fn amounts_without_a_currency_take_the_configured_one() {
    // PostFinance writes Ccy="XXX" on every amount and no account currency.
    let body = format!("{}{}", bal("OPBD", "0.00", "XXX", "CRDT"), ntry("5.00", "CRDT", "").replace("EUR", "XXX"));
    let xml = stmt("<Id><IBAN>CH2609000000924238861</IBAN></Id>", &body);
    let options = ParseOptions { currency: Some(Currency::new("CHF").unwrap()), ..ParseOptions::default() };
    let parsed = run_with(xml.as_bytes(), &options, Format::Camt053).unwrap();
    let s = only(&parsed);
    assert_eq!(s.currency.code(), "CHF");
    assert_eq!(s.transactions[0].amount.currency().code(), "CHF");
    assert_eq!(s.opening_balance.map(|m| m.currency().code().to_string()).as_deref(), Some("CHF"));

    let unconfigured = ok(&xml);
    assert_eq!(only(&unconfigured).currency, Currency::XXX);
}

#[test]
fn the_statement_currency_comes_from_its_amounts_when_the_account_names_none() {
    let body = format!("{}{}", bal("OPBD", "1.00", "CHF", "CRDT"), ntry("1.00", "CRDT", "").replace("EUR", "CHF"));
    let parsed = ok(&stmt("<Id><Othr><Id>0035-1</Id></Othr></Id>", &body));
    let s = only(&parsed);
    assert_eq!(s.currency.code(), "CHF");
    assert_eq!(s.account.id, "0035-1");
    assert_eq!(s.account.iban, None);
}

#[test]
fn a_balance_in_another_currency_is_kept_and_warned() {
    let body = format!("{}{}", bal("OPBD", "18.15", "EUR", "CRDT"), bal("CLBD", "27.00", "SEK", "DBIT"));
    let parsed = ok(&stmt("<Id><IBAN>NL26VAYB8060476890</IBAN></Id>", &body));
    let s = only(&parsed);
    assert_eq!(s.currency, Currency::EUR);
    let closing = s.closing_balance.unwrap();
    assert_eq!((closing.amount(), closing.currency().code()), (dec("-27.00"), "SEK"));
    assert_eq!(parsed.warnings.len(), 1);
    assert!(parsed.warnings[0].message.contains("SEK"));
}

#[test]
fn several_statements_in_one_document_are_kept_apart() {
    let one = |id: &str, amt: &str| format!("<Stmt><Id>{id}</Id><Acct>{ACCT}</Acct>{}</Stmt>", ntry(amt, "CRDT", ""));
    let xml = format!(
        "<Document xmlns=\"{NS053}\"><BkToCstmrStmt>{}{}</BkToCstmrStmt></Document>",
        one("A", "1.00"),
        one("B", "2.00")
    );
    let parsed = ok(&xml);
    assert_eq!(parsed.statements.len(), 2);
    assert_eq!(parsed.statements[1].statement_id.as_deref(), Some("B"));
    assert_eq!(parsed.statements[1].transactions[0].amount.amount(), dec("2.00"));
}

#[test]
fn namespace_prefixes_and_version_one_names_are_read_alike() {
    let xml = "<ns2:Document xmlns:ns2=\"urn:iso:std:iso:20022:tech:xsd:camt.052.001.01\"><ns2:BkToCstmrAcctRptV01>\
               <ns2:Rpt><ns2:Acct><ns2:Id><ns2:PrtryAcct><ns2:Id>CH28-1</ns2:Id></ns2:PrtryAcct></ns2:Id></ns2:Acct>\
               <ns2:Ntry><ns2:Amt Ccy=\"SEK\">200000</ns2:Amt><ns2:CdtDbtInd>DBIT</ns2:CdtDbtInd><ns2:Sts>BOOK</ns2:Sts>\
               <ns2:BookgDt><ns2:DtTm>2007-10-18T10:15:00+01:00</ns2:DtTm></ns2:BookgDt></ns2:Ntry>\
               </ns2:Rpt></ns2:BkToCstmrAcctRptV01></ns2:Document>";
    let parsed = ok(xml);
    let s = only(&parsed);
    assert_eq!(s.account.id, "CH28-1");
    assert_eq!(s.currency.code(), "SEK");
    assert_eq!(s.transactions[0].amount.amount(), dec("-200000"));
    assert_eq!(s.transactions[0].booking_date, date(2007, 10, 18));
}

#[test]
fn a_document_without_statements_is_refused_as_empty() {
    let xml = format!(
        "<Document xmlns=\"{NS053}\"><BkToCstmrStmt><GrpHdr><MsgId>1</MsgId></GrpHdr></BkToCstmrStmt></Document>"
    );
    let err = run(&xml).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::Empty);
    assert!(err.to_string().starts_with("test.xml"), "{err}");
}

#[test]
fn xml_that_is_not_camt_is_refused_as_unsupported() {
    let foreign_ns = "<Document xmlns=\"urn:weird\"><BkToCstmrStmt></BkToCstmrStmt></Document>";
    assert_eq!(run(foreign_ns).unwrap_err().kind, ParseErrorKind::Unsupported);
    let payment = "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.001.001.03\"><CstmrCdtTrfInitn/></Document>";
    let err = run(payment).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::Unsupported);
    assert!(err.message.contains("CstmrCdtTrfInitn"), "{err}");
    assert_eq!(run("<OFX><BANKMSGSRSV1/></OFX>").unwrap_err().kind, ParseErrorKind::Unsupported);
    assert_eq!(run("date,amount\n2024-01-01,5\n").unwrap_err().kind, ParseErrorKind::Unsupported);
}

#[test]
fn malformed_xml_is_reported_with_its_line_and_column() {
    let xml = stmt(ACCT, "<Ntry><Amt Ccy=\"EUR\">1.00</Amount></Ntry>");
    let err = run(&xml).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::Syntax);
    assert_eq!(err.line, Some(4));
    assert!(err.column.is_some());
}

#[test]
fn a_truncated_file_is_refused() {
    let xml = stmt(ACCT, &ntry("1.00", "CRDT", ""));
    let cut = &xml[..xml.find("</Stmt>").unwrap()];
    let err = run(cut).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::Syntax);
    assert!(err.message.contains("truncated"), "{err}");
}

#[test]
fn bad_values_name_their_line_and_field() {
    let err = run(&stmt(ACCT, &ntry("1,50", "CRDT", ""))).unwrap_err();
    assert_eq!((err.kind, err.field.as_deref(), err.line), (ParseErrorKind::InvalidAmount, Some("Amt"), Some(4)));
    let err = run(&stmt(ACCT, &ntry("1.50", "PLUS", ""))).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("CdtDbtInd"));
    let err = run(&stmt(ACCT, &ntry("1.50", "CRDT", "").replace("2024-03-04", "04.03.2024"))).unwrap_err();
    assert_eq!((err.kind, err.field.as_deref()), (ParseErrorKind::InvalidDate, Some("BookgDt")));
    let err = run(&stmt(ACCT, &ntry("1.50", "CRDT", "").replace("EUR", "EURO"))).unwrap_err();
    assert_eq!((err.kind, err.field.as_deref()), (ParseErrorKind::InvalidCurrency, Some("Ccy")));
    let missing = "<Ntry><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2024-03-04</Dt></BookgDt></Ntry>";
    assert_eq!(run(&stmt(ACCT, missing)).unwrap_err().kind, ParseErrorKind::MissingField);
}

#[test]
fn a_bad_currency_on_an_amount_that_is_not_read_is_ignored() {
    let charges = "<NtryDtls><TxDtls><Chrgs><Rcrd><Amt Ccy=\"??\">1.00</Amt></Rcrd></Chrgs></TxDtls></NtryDtls>";
    let parsed = ok(&stmt(ACCT, &ntry("1.00", "CRDT", charges)));
    assert_eq!(only(&parsed).transactions[0].amount.amount(), dec("1.00"));
}

#[test]
fn a_booked_entry_without_booking_date_takes_its_value_date_with_a_warning() {
    let e = ntry("1.00", "CRDT", "").replace("<BookgDt><Dt>2024-03-04</Dt></BookgDt>", "");
    let parsed = ok(&stmt(ACCT, &e));
    assert_eq!(only(&parsed).transactions[0].booking_date, date(2024, 3, 5));
    assert_eq!(only(&parsed).transactions[0].value_date, None);
    assert_eq!(parsed.warnings.len(), 1);
}

#[test]
fn a_latin1_file_is_decoded_by_its_declared_encoding() {
    let xml = stmt(ACCT, &ntry("1.00", "CRDT", "<AddtlNtryInf>Caf\u{e9} M\u{fc}ller</AddtlNtryInf>"))
        .replace("UTF-8", "ISO-8859-1");
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&xml);
    let parsed = run_with(&bytes, &ParseOptions::default(), Format::Camt053).unwrap();
    assert_eq!(&*only(&parsed).transactions[0].description, "Café Müller");
}

#[test]
fn escaped_text_and_empty_elements_are_read() {
    let e = ntry("1.00", "CRDT", "<AddtlNtryInf>Smith &amp; Sons <![CDATA[<ok>]]></AddtlNtryInf><NtryRef/>");
    let parsed = ok(&stmt(ACCT, &e));
    assert_eq!(&*only(&parsed).transactions[0].description, "Smith & Sons <ok>");
}

#[test]
fn a_summary_that_disagrees_with_the_entries_is_warned() {
    let body =
        format!("<TxsSummry><TtlNtries><NbOfNtries>3</NbOfNtries></TtlNtries></TxsSummry>{}", ntry("1.00", "CRDT", ""));
    let parsed = ok(&stmt(ACCT, &body));
    assert!(parsed.warnings.iter().any(|w| w.message.contains("states 3 entries")), "{:?}", parsed.warnings);
}

#[test]
fn progress_is_reported_while_many_entries_are_read() {
    let entries: String = (0..5000).map(|_| ntry("1.00", "CRDT", "")).collect();
    let xml = stmt(ACCT, &entries);
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: u64| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let options = ParseOptions::default();
    let source = Source { name: "big.xml", bytes: xml.as_bytes(), options: &options, progress: Some(&progress) };
    let parsed = parse(&source, Format::Camt053).unwrap();
    assert_eq!(only(&parsed).transactions.len(), 5000);
    assert!(calls.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

/// One generated line: what the writer puts in and the parser must give back.
#[derive(Debug, Clone)]
struct Line {
    booking: NaiveDate,
    value: NaiveDate,
    cents: i64,
    text: String,
    id: Option<String>,
}

fn line_strategy() -> impl Strategy<Value = Line> {
    (
        0i64..20_000,
        0i64..5,
        -10_000_000i64..10_000_000,
        "[A-Za-z0-9 .,/&<>'-]{0,40}",
        proptest::option::of("[A-Z0-9]{1,20}"),
    )
        .prop_map(|(day, lag, cents, text, id)| {
            let booking = date(1990, 1, 1) + chrono::Days::new(day as u64);
            Line { booking, value: booking + chrono::Days::new(lag as u64), cents, text, id }
        })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;")
}

/// A small camt.053 writer: one statement with an opening balance, the lines and the closing one.
fn write(lines: &[Line], opening_cents: i64) -> String {
    let money = |cents: i64| (Decimal::new(cents.abs(), 2).to_string(), if cents < 0 { "DBIT" } else { "CRDT" });
    let mut out = format!("<?xml version=\"1.0\"?>\n<Document xmlns=\"{NS053}\">\n<BkToCstmrStmt>\n<Stmt>\n<Id>P</Id>\n<Acct>{ACCT}</Acct>\n");
    let closing = opening_cents + lines.iter().map(|l| l.cents).sum::<i64>();
    for (code, cents) in [("OPBD", opening_cents), ("CLBD", closing)] {
        let (amt, ind) = money(cents);
        out.push_str(&bal(code, &amt, "EUR", ind));
        out.push('\n');
    }
    for l in lines {
        let (amt, ind) = money(l.cents);
        out.push_str(&format!(
            "<Ntry>\n<Amt Ccy=\"EUR\">{amt}</Amt>\n<CdtDbtInd>{ind}</CdtDbtInd>\n<Sts>BOOK</Sts>\n\
             <BookgDt><Dt>{}</Dt></BookgDt>\n<ValDt><DtTm>{}T10:00:00+01:00</DtTm></ValDt>\n",
            l.booking, l.value
        ));
        if let Some(id) = &l.id {
            out.push_str(&format!("<AcctSvcrRef>{id}</AcctSvcrRef>\n"));
        }
        out.push_str(&format!("<AddtlNtryInf>{}</AddtlNtryInf>\n</Ntry>\n", escape(&l.text)));
    }
    out.push_str("</Stmt>\n</BkToCstmrStmt>\n</Document>\n");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn written_statements_parse_back_to_the_same_transactions(
        lines in proptest::collection::vec(line_strategy(), 0..20),
        opening in -1_000_000i64..1_000_000,
    ) {
        // Bank ids must be unique within a statement; later duplicates are written without one.
        let mut seen = std::collections::HashSet::new();
        let lines: Vec<Line> = lines
            .into_iter()
            .map(|mut l| {
                if l.id.as_ref().is_some_and(|id| !seen.insert(id.clone())) {
                    l.id = None;
                }
                l
            })
            .collect();
        let parsed = run(&write(&lines, opening)).unwrap();
        let s = only(&parsed);
        prop_assert_eq!(s.opening_balance.map(|m| m.amount()), Some(Decimal::new(opening, 2)));
        prop_assert_eq!(s.balance_check(), crate::domain::BalanceCheck::Balanced);
        prop_assert_eq!(s.transactions.len(), lines.len());
        for (t, l) in s.transactions.iter().zip(&lines) {
            prop_assert_eq!(t.booking_date, l.booking);
            prop_assert_eq!(t.value_date, (l.value != l.booking).then_some(l.value));
            prop_assert_eq!(t.amount.amount(), Decimal::new(l.cents, 2));
            prop_assert_eq!(t.amount.currency(), Currency::EUR);
            prop_assert_eq!(&*t.description, &*crate::parse::text::squash_ws(&l.text));
            prop_assert_eq!(t.id.as_ref(), l.id.as_deref().unwrap_or(""));
        }
        prop_assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in any::<Vec<u8>>()) {
        let _ = run_with(&bytes, &ParseOptions::default(), Format::Camt053);
    }

    #[test]
    fn damaged_statements_never_panic(
        lines in proptest::collection::vec(line_strategy(), 1..5),
        cut in any::<proptest::sample::Index>(),
        flip in any::<proptest::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut xml = write(&lines, 0).into_bytes();
        let at = flip.index(xml.len());
        xml[at] = byte;
        xml.truncate(cut.index(xml.len() + 1));
        let _ = run_with(&xml, &ParseOptions::default(), Format::Camt053);
    }
}
