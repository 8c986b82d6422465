//! Tests of the OFX parser: one per quirk handled, a round trip through a small writer, and
//! arbitrary bytes.

use std::str::FromStr;

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::domain::IdSource;
use crate::parse::ParseOptions;

fn parse_with(text: &[u8], options: &ParseOptions) -> Result<Parsed, ParseError> {
    let source = Source { name: "test.ofx", bytes: text, options, progress: None };
    parse(&source)
}

fn parse_str(text: &str) -> Result<Parsed, ParseError> {
    parse_with(text.as_bytes(), &ParseOptions::default())
}

fn ok(text: &str) -> Parsed {
    match parse_str(text) {
        Ok(p) => p,
        Err(e) => panic!("expected the file to parse, got {e}"),
    }
}

fn err(text: &str) -> ParseError {
    match parse_str(text) {
        Ok(p) => panic!("expected an error, got {} statement(s)", p.statements.len()),
        Err(e) => e,
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const SGML_HEADER: &str = "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n";

/// A bank statement in OFX 1.x style around `lines` (STMTTRN aggregates).
fn sgml_bank(lines: &str) -> String {
    format!(
        "{SGML_HEADER}<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><DTSERVER>20240301120000\n\
         <LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>\n\
         <STMTRS><CURDEF>EUR<BANKACCTFROM><BANKID>30004<BRANCHID>01<ACCTID>55501234<ACCTTYPE>CHECKING</BANKACCTFROM>\n\
         <BANKTRANLIST><DTSTART>20240201<DTEND>20240229235959\n{lines}</BANKTRANLIST>\n\
         <LEDGERBAL><BALAMT>1520.75<DTASOF>20240229</LEDGERBAL><AVAILBAL><BALAMT>1400.00<DTASOF>20240229</AVAILBAL>\n\
         </STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n"
    )
}

const LINE: &str = "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240205<TRNAMT>-42.10<FITID>T1<NAME>Corner Bakery</STMTTRN>\n";

#[test]
fn an_sgml_statement_with_open_leaf_tags_is_read() {
    let parsed = ok(&sgml_bank(LINE));
    assert_eq!(parsed.statements.len(), 1);
    let s = &parsed.statements[0];
    assert_eq!(s.account.id, "55501234");
    assert_eq!(s.account.bank_id.as_deref(), Some("30004"));
    assert_eq!(s.account.kind.as_deref(), Some("CHECKING"));
    assert_eq!(s.currency, Currency::EUR);
    assert_eq!(s.start_date, Some(date(2024, 2, 1)));
    assert_eq!(s.end_date, Some(date(2024, 2, 29)));
    assert_eq!(s.opening_balance, None);
    assert_eq!(s.closing_balance, Some(Money::new(dec("1520.75"), Currency::EUR)));
    assert_eq!(s.available_balance, Some(Money::new(dec("1400.00"), Currency::EUR)));
    let t = &s.transactions[0];
    assert_eq!(t.booking_date, date(2024, 2, 5));
    assert_eq!(t.amount, Money::new(dec("-42.10"), Currency::EUR));
    assert_eq!((t.id.as_ref(), t.id_source), ("T1", IdSource::Bank));
    assert_eq!(t.payee.as_deref(), Some("Corner Bakery"));
    assert_eq!(&*t.description, "Corner Bakery");
    assert_eq!(t.bank_code.as_deref(), Some("DEBIT"));
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn memo_is_the_description_and_name_the_payee_with_check_reference_and_counterparty() {
    let line = "<STMTTRN><TRNTYPE>check<DTPOSTED>20240207<DTUSER>20240203<TRNAMT>-300.00<FITID>T2\n\
                <CHECKNUM>000512<REFNUM>INV-2024-77<NAME>Lakeside Rentals<MEMO>February rent\n\
                <BANKACCTTO><BANKID>10020<ACCTID>DE44500105175407324931<ACCTTYPE>CHECKING</BANKACCTTO></STMTTRN>\n";
    let parsed = ok(&sgml_bank(line));
    let t = &parsed.statements[0].transactions[0];
    assert_eq!(&*t.description, "February rent");
    assert_eq!(t.payee.as_deref(), Some("Lakeside Rentals"));
    assert_eq!(t.check_number.as_deref(), Some("000512"));
    assert_eq!(t.reference.as_deref(), Some("INV-2024-77"));
    assert_eq!(t.bank_code.as_deref(), Some("CHECK"));
    assert_eq!(t.counterparty_account.as_deref(), Some("DE44500105175407324931"));
    assert_eq!(t.value_date, Some(date(2024, 2, 3)));
}

#[test]
fn an_empty_leaf_left_open_does_not_hide_the_fields_after_it() {
    let text = sgml_bank(LINE).replace("<BRANCHID>01", "<BRANCHID><XBANKCODE><INTU.BID>");
    let parsed = ok(&text);
    assert_eq!(parsed.statements[0].account.id, "55501234");
    assert_eq!(parsed.statements[0].account.kind.as_deref(), Some("CHECKING"));
}

#[test]
fn corrections_replace_or_delete_the_line_they_name() {
    let lines = "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240205<TRNAMT>-10<FITID>A</STMTTRN>\n\
                 <STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240206<TRNAMT>-20<FITID>B</STMTTRN>\n\
                 <STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240205<TRNAMT>-12<FITID>A2<CORRECTFITID>A<CORRECTACTION>REPLACE</STMTTRN>\n\
                 <STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240206<TRNAMT>-20<FITID>B2<CORRECTFITID>B<CORRECTACTION>DELETE</STMTTRN>\n\
                 <STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240207<TRNAMT>-5<FITID>Z<CORRECTFITID>OLD<CORRECTACTION>DELETE</STMTTRN>\n";
    let parsed = ok(&sgml_bank(lines));
    let t = &parsed.statements[0].transactions;
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].id.as_ref(), t[0].amount.amount()), ("A2", dec("-12")));
    assert_eq!(parsed.warnings.len(), 3, "{:?}", parsed.warnings);
    assert!(parsed.warnings.iter().any(|w| w.message.contains("\"OLD\"")), "{:?}", parsed.warnings);
}

#[test]
fn a_check_number_of_zero_is_no_check_number() {
    let line = "<STMTTRN><TRNTYPE>POS<DTPOSTED>20240207<TRNAMT>-3<FITID>T3<CHECKNUM>0<NAME>Kiosk</STMTTRN>";
    assert_eq!(ok(&sgml_bank(line)).statements[0].transactions[0].check_number, None);
}

#[test]
fn an_xml_statement_with_cdata_entities_and_comments_is_read() {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
        <?OFX OFXHEADER=\"200\" VERSION=\"211\" SECURITY=\"NONE\" OLDFILEUID=\"NONE\" NEWFILEUID=\"NONE\"?>\n\
        <OFX><!-- response --><BANKMSGSRSV1><STMTTRNRS><TRNUID>9</TRNUID>\n\
        <STMTRS><CURDEF>USD</CURDEF><BANKACCTFROM><BANKID>021000021</BANKID><ACCTID>7788</ACCTID>\n\
        <ACCTTYPE>SAVINGS</ACCTTYPE></BANKACCTFROM><BANKTRANLIST><DTSTART>20240101</DTSTART><DTEND>20240131</DTEND>\n\
        <STMTTRN><TRNTYPE>CREDIT</TRNTYPE><DTPOSTED>20240115</DTPOSTED><TRNAMT>250.00</TRNAMT><FITID>X1</FITID>\n\
        <NAME><![CDATA[Smith & Jones <Ltd>  ]]></NAME><MEMO>Fees &amp; costs</MEMO></STMTTRN>\n\
        </BANKTRANLIST><LEDGERBAL><BALAMT>900.00</BALAMT><DTASOF>20240131</DTASOF></LEDGERBAL></STMTRS>\n\
        </STMTTRNRS></BANKMSGSRSV1></OFX>";
    let parsed = ok(xml);
    let s = &parsed.statements[0];
    assert_eq!((s.account.id.as_str(), s.currency), ("7788", Currency::USD));
    let t = &s.transactions[0];
    assert_eq!(t.payee.as_deref(), Some("Smith & Jones <Ltd>"));
    assert_eq!(&*t.description, "Fees & costs");
    assert_eq!(t.amount.amount(), dec("250.00"));
}

#[test]
fn a_file_without_any_line_break_is_read() {
    let one_line = sgml_bank(LINE).replace('\n', "");
    let parsed = ok(&one_line);
    assert_eq!(parsed.statements[0].transactions.len(), 1);
    assert_eq!(parsed.statements[0].closing_balance.map(|m| m.amount()), Some(dec("1520.75")));
}

#[test]
fn tags_and_values_on_separate_lines_are_read() {
    let line =
        "<STMTTRN>\n<TRNTYPE>\nXFER</TRNTYPE>\n<DTPOSTED>\n20240210120000</DTPOSTED>\n<TRNAMT>\n-55.00</TRNAMT>\n\
                <FITID>\nT9</FITID>\n<NAME>\nTransfer to savings</NAME>\n</STMTTRN>\n";
    let t = &ok(&sgml_bank(line)).statements[0].transactions[0];
    assert_eq!((t.booking_date, t.amount.amount()), (date(2024, 2, 10), dec("-55.00")));
    assert_eq!(t.payee.as_deref(), Some("Transfer to savings"));
}

#[test]
fn dates_keep_the_day_as_written_whatever_the_time_zone() {
    let line = "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240229233000.000[-5:EST]<TRNAMT>-1<FITID>a</STMTTRN>\
                <STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240201003000[+1]<TRNAMT>-1<FITID>b</STMTTRN>";
    let s = &ok(&sgml_bank(line)).statements[0];
    assert_eq!(s.transactions[0].booking_date, date(2024, 2, 29));
    assert_eq!(s.transactions[1].booking_date, date(2024, 2, 1));
}

#[test]
fn decimal_comma_amounts_are_valid() {
    let line = "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240205<TRNAMT>-200,00<FITID>c1</STMTTRN>";
    let text = sgml_bank(line).replace("<BALAMT>1520.75", "<BALAMT>1520,75");
    let s = &ok(&text).statements[0];
    assert_eq!(s.transactions[0].amount.amount(), dec("-200.00"));
    assert_eq!(s.closing_balance.map(|m| m.amount()), Some(dec("1520.75")));
}

#[test]
fn amounts_with_leading_zeros_and_plus_signs_are_read() {
    assert_eq!(ofx_amount("+00000000000115.8331"), Some(dec("115.8331")));
    assert_eq!(ofx_amount("-00000000001500.0000"), Some(dec("-1500.0000")));
    assert_eq!(ofx_amount(" 12 "), Some(dec("12")));
    assert_eq!(ofx_amount("-.5"), Some(dec("-0.5")));
}

#[test]
fn an_amount_with_a_currency_symbol_is_refused_with_its_position() {
    let line = "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240205<TRNAMT>$120<FITID>d1</STMTTRN>";
    let e = err(&sgml_bank(line));
    assert_eq!(e.kind, ParseErrorKind::InvalidAmount);
    assert_eq!(e.field.as_deref(), Some("TRNAMT"));
    assert_eq!(e.line, Some(15));
    assert!(e.column.is_some());
    assert!(e.message.contains("$120"), "{}", e.message);
}

#[test]
fn amounts_outside_the_ofx_grammar_are_read_only_when_unambiguous_digits() {
    assert_eq!(ofx_amount("1,234.56"), Some(dec("1234.56")));
    assert_eq!(ofx_amount("12a"), None);
    assert_eq!(ofx_amount("EUR 5"), None);
    assert_eq!(ofx_amount(""), None);
    assert_eq!(ofx_amount("-"), None);
}

#[test]
fn the_declared_encoding_comes_from_the_header_or_the_xml_declaration() {
    let latin = declared_encoding(b"OFXHEADER:100\nENCODING:USASCII\nCHARSET:1252\n<OFX>");
    assert_eq!(latin, Some(encoding_rs::WINDOWS_1252));
    let utf8 = declared_encoding(b"OFXHEADER:100\nENCODING:UTF-8\nCHARSET:NONE\n<OFX>");
    assert_eq!(utf8, Some(encoding_rs::UTF_8));
    let xml = declared_encoding(b"<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?><OFX>");
    assert_eq!(xml.map(|e| e.name()), Some("ISO-8859-15"));
    assert_eq!(declared_encoding(b"<OFX>"), None);
}

#[test]
fn a_line_without_a_posting_date_or_with_an_impossible_one_is_refused() {
    let missing = "<STMTTRN><TRNTYPE>DEBIT<TRNAMT>-1<FITID>e1</STMTTRN>";
    let e = err(&sgml_bank(missing));
    assert_eq!((e.kind, e.field.as_deref()), (ParseErrorKind::MissingField, Some("DTPOSTED")));
    let empty = "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED></DTPOSTED><TRNAMT>-1<FITID>e1</STMTTRN>";
    assert_eq!(err(&sgml_bank(empty)).kind, ParseErrorKind::MissingField);
    let impossible = "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20230229<TRNAMT>-1<FITID>e1</STMTTRN>";
    let e = err(&sgml_bank(impossible));
    assert_eq!((e.kind, e.field.as_deref()), (ParseErrorKind::InvalidDate, Some("DTPOSTED")));
}

#[test]
fn a_line_without_an_amount_is_refused() {
    let e = err(&sgml_bank("<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240205<FITID>f1</STMTTRN>"));
    assert_eq!((e.kind, e.field.as_deref()), (ParseErrorKind::MissingField, Some("TRNAMT")));
}

#[test]
fn several_transaction_lists_in_one_statement_are_merged() {
    let text = sgml_bank(LINE).replace(
        "</BANKTRANLIST>",
        "</BANKTRANLIST><BANKTRANLIST><DTSTART>20240115<DTEND>20240310\n\
         <STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20240301<TRNAMT>10<FITID>T8</STMTTRN></BANKTRANLIST>",
    );
    let s = &ok(&text).statements[0];
    assert_eq!(s.transactions.len(), 2);
    assert_eq!((s.start_date, s.end_date), (Some(date(2024, 1, 15)), Some(date(2024, 3, 10))));
}

#[test]
fn a_line_after_the_end_of_its_list_still_belongs_to_the_statement() {
    let text = sgml_bank(LINE).replace(
        "</BANKTRANLIST>",
        "</BANKTRANLIST>\n<STMTTRN><TRNTYPE>XFER<DTPOSTED>20240211<TRNAMT>-1000<FITID>T7</STMTTRN></BANKTRANLIST>",
    );
    assert_eq!(ok(&text).statements[0].transactions.len(), 2);
}

#[test]
fn bank_and_credit_card_statements_of_one_file_are_all_read() {
    let card = "<CREDITCARDMSGSRSV1><CCSTMTTRNRS><TRNUID>2<STATUS><CODE>0<SEVERITY>INFO</STATUS><CCSTMTRS><CURDEF>GBP\n\
                <CCACCTFROM><ACCTID>4000123412341234</CCACCTFROM><BANKTRANLIST><DTSTART>20240201<DTEND>20240229\n\
                <STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240220<TRNAMT>-9.99<FITID>C1<MEMO>Streaming</STMTTRN></BANKTRANLIST>\n\
                <LEDGERBAL><BALAMT>-250.40<DTASOF>20240229</LEDGERBAL></CCSTMTRS></CCSTMTTRNRS></CREDITCARDMSGSRSV1></OFX>";
    let text = sgml_bank(LINE).replace("</OFX>", card);
    let parsed = ok(&text);
    assert_eq!(parsed.statements.len(), 2);
    let c = &parsed.statements[1];
    assert_eq!(c.account.id, "4000123412341234");
    assert_eq!(c.account.kind.as_deref(), Some("CREDITCARD"));
    assert_eq!(c.currency.code(), "GBP");
    assert_eq!(c.closing_balance.map(|m| m.amount()), Some(dec("-250.40")));
    assert_eq!(&*c.transactions[0].description, "Streaming");
}

#[test]
fn the_header_charset_decodes_eight_bit_text() {
    let mut bytes =
        sgml_bank("<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240205<TRNAMT>-5<FITID>g1<NAME>Caf\u{e9} Ren\u{e9}</STMTTRN>")
            .replace('\u{e9}', "\u{1}")
            .into_bytes();
    for b in bytes.iter_mut().filter(|b| **b == 1) {
        *b = 0xE9;
    }
    let parsed = parse_with(&bytes, &ParseOptions::default()).unwrap();
    assert_eq!(parsed.statements[0].transactions[0].payee.as_deref(), Some("Café René"));
}

#[test]
fn a_header_inside_a_leading_comment_and_headers_with_spaces_are_accepted() {
    let text = sgml_bank(LINE).replacen("OFXHEADER:100", "<!--\nOFXHEADER : 100", 1).replacen(
        "NEWFILEUID:NONE\n",
        "NEWFILEUID:NONE\n-->\n",
        1,
    );
    assert_eq!(ok(&text).statements[0].transactions.len(), 1);
}

#[test]
fn a_statement_status_error_is_a_bank_error_with_code_and_message() {
    let text = "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS></SONRS>\n\
                </SIGNONMSGSRSV1><BANKMSGSRSV1><STMTTRNRS><TRNUID>1</TRNUID><STATUS><CODE>2000</CODE>\n\
                <SEVERITY>ERROR</SEVERITY><MESSAGE>Service unavailable</MESSAGE></STATUS></STMTTRNRS></BANKMSGSRSV1></OFX>";
    let e = err(text);
    assert_eq!(e.kind, ParseErrorKind::BankError);
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("2000") && e.message.contains("Service unavailable"), "{}", e.message);
}

#[test]
fn a_sign_on_failure_is_a_bank_error() {
    let text = format!(
        "{SGML_HEADER}<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>15500<SEVERITY>ERROR<MESSAGE>Wrong password</STATUS>\
         <DTSERVER>20240301</SONRS></SIGNONMSGSRSV1></OFX>"
    );
    let e = err(&text);
    assert_eq!(e.kind, ParseErrorKind::BankError);
    assert!(e.message.contains("15500") && e.message.contains("Wrong password"), "{}", e.message);
}

#[test]
fn a_failed_response_beside_a_good_statement_is_a_warning() {
    let failed =
        "<BANKMSGSRSV1><STMTTRNRS><TRNUID>2<STATUS><CODE>2003<SEVERITY>ERROR<MESSAGE>Account not found</STATUS>\n\
                  </STMTTRNRS></BANKMSGSRSV1></OFX>";
    let parsed = ok(&sgml_bank(LINE).replace("</OFX>", failed));
    assert_eq!(parsed.statements.len(), 1);
    assert!(parsed.warnings.iter().any(|w| w.message.contains("2003")), "{:?}", parsed.warnings);
}

const INVESTMENT: &str = "<OFX><INVSTMTMSGSRSV1><INVSTMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>\n\
    <INVSTMTRS><DTASOF>20240301<CURDEF>USD<INVACCTFROM><BROKERID>broker.example<ACCTID>Z123</INVACCTFROM>\n\
    <INVTRANLIST><DTSTART>20240201<DTEND>20240229\n\
    <BUYMF><INVBUY><INVTRAN><FITID>B1<DTTRADE>20240210<MEMO>Fund purchase</INVTRAN><UNITS>3<UNITPRICE>10<TOTAL>-30\n\
    </INVBUY><BUYTYPE>BUY</BUYMF>\n{cash}</INVTRANLIST></INVSTMTRS></INVSTMTTRNRS></INVSTMTMSGSRSV1></OFX>";

#[test]
fn an_investment_statement_without_cash_lines_is_unsupported() {
    let e = err(&INVESTMENT.replace("{cash}", ""));
    assert_eq!(e.kind, ParseErrorKind::Unsupported);
    assert!(e.message.contains("investment statements are not imported"), "{}", e.message);
}

#[test]
fn the_cash_lines_of_an_investment_statement_are_imported_and_its_trades_reported() {
    let cash = "<INVBANKTRAN><STMTTRN><TRNTYPE>CHECK<DTPOSTED>20240215<TRNAMT>-75.00<FITID>K1<CHECKNUM>1001\n\
                <NAME>Check 1001</STMTTRN><SUBACCTFUND>CASH</INVBANKTRAN>\n";
    let parsed = ok(&INVESTMENT.replace("{cash}", cash));
    let s = &parsed.statements[0];
    assert_eq!((s.account.id.as_str(), s.account.bank_id.as_deref()), ("Z123", Some("broker.example")));
    assert_eq!(s.transactions.len(), 1);
    assert_eq!(s.transactions[0].check_number.as_deref(), Some("1001"));
    assert!(parsed.warnings.iter().any(|w| w.message.contains("1 investment transaction")), "{:?}", parsed.warnings);
}

#[test]
fn an_account_list_becomes_statements_without_lines() {
    let text = "<OFX><SIGNUPMSGSRSV1><ACCTINFOTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS><ACCTINFORS>\n\
                <ACCTINFO><DESC>Household checking<BANKACCTINFO><BANKACCTFROM><BANKID>111000025<ACCTID>0042\n\
                <ACCTTYPE>CHECKING</BANKACCTFROM><SUPTXDL>Y</BANKACCTINFO></ACCTINFO>\n\
                <ACCTINFO><DESC>Travel card<CCACCTINFO><CCACCTFROM><ACCTID>5500001111</CCACCTFROM></CCACCTINFO></ACCTINFO>\n\
                </ACCTINFORS></ACCTINFOTRNRS></SIGNUPMSGSRSV1></OFX>";
    let parsed = ok(text);
    let ids: Vec<_> = parsed.statements.iter().map(|s| s.account.id.as_str()).collect();
    assert_eq!(ids, ["0042", "5500001111"]);
    assert_eq!(parsed.statements[0].account.name.as_deref(), Some("Household checking"));
    assert!(parsed.statements.iter().all(|s| s.transactions.is_empty()));
    assert!(!parsed.warnings.is_empty());
}

#[test]
fn an_empty_ofx_body_is_a_clear_error() {
    let e = err(&format!("{SGML_HEADER}<OFX></OFX>\n"));
    assert_eq!(e.kind, ParseErrorKind::Empty);
}

#[test]
fn an_empty_balance_is_no_balance_and_a_warning() {
    let text = sgml_bank(LINE).replace("<BALAMT>1520.75", "<BALAMT>").replace("<BALAMT>1400.00", "<BALAMT/>");
    let parsed = ok(&text);
    assert_eq!(parsed.statements[0].closing_balance, None);
    assert_eq!(parsed.statements[0].available_balance, None);
    assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
    assert!(parsed.warnings.iter().all(|w| w.line.is_some()));
}

#[test]
fn a_repeated_fitid_gets_a_fingerprint_and_a_warning() {
    let lines = format!("{LINE}{}", LINE.replace("-42.10", "-7.00"));
    let parsed = ok(&sgml_bank(&lines));
    let t = &parsed.statements[0].transactions;
    assert_eq!((t[0].id_source, t[1].id_source), (IdSource::Bank, IdSource::Fingerprint));
    assert!(parsed.warnings.iter().any(|w| w.message.contains("FITID T1")), "{:?}", parsed.warnings);
}

#[test]
fn fitids_in_any_order_are_checked_for_repeats_and_name_the_first_line() {
    let line = |fitid: &str| LINE.replace("<FITID>T1", &format!("<FITID>{fitid}"));
    let lines: String = ["A1", "A3", "A3", "A2", "A1", "A4"].map(line).concat();
    let parsed = ok(&sgml_bank(&lines));
    let t = &parsed.statements[0].transactions;
    let ids: Vec<_> = t.iter().map(|t| (t.id_source == IdSource::Bank).then_some(&*t.id)).collect();
    assert_eq!(ids, [Some("A1"), Some("A3"), None, Some("A2"), None, Some("A4")]);
    let repeats: Vec<_> = parsed
        .warnings
        .iter()
        .filter(|w| w.message.contains("repeats"))
        .map(|w| (w.line, w.message.split(';').next().unwrap_or("")))
        .collect();
    assert_eq!(
        repeats,
        [(Some(17), "FITID A3 repeats the one on line 16"), (Some(19), "FITID A1 repeats the one on line 15")]
    );
}

#[test]
fn a_statement_without_curdef_uses_the_configured_currency_and_says_so() {
    let text = sgml_bank(LINE).replace("<CURDEF>EUR", "<CURDEF></CURDEF>");
    let parsed = ok(&text);
    assert_eq!(parsed.statements[0].currency, Currency::XXX);
    assert!(!parsed.warnings.is_empty());
    let options = ParseOptions { currency: Some(Currency::USD), ..ParseOptions::default() };
    let parsed = parse_with(text.as_bytes(), &options).unwrap();
    assert_eq!(parsed.statements[0].transactions[0].amount.currency(), Currency::USD);
}

#[test]
fn a_curdef_after_the_lines_still_sets_their_currency() {
    let text = sgml_bank(LINE).replace("<CURDEF>EUR", "").replace("</STMTRS>", "<CURDEF>CHF</STMTRS>");
    let s = &ok(&text).statements[0];
    assert_eq!(s.transactions[0].amount.currency().code(), "CHF");
}

#[test]
fn an_unknown_currency_is_refused() {
    let e = err(&sgml_bank(LINE).replace("<CURDEF>EUR", "<CURDEF>EURO"));
    assert_eq!((e.kind, e.field.as_deref()), (ParseErrorKind::InvalidCurrency, Some("CURDEF")));
}

#[test]
fn a_statement_without_an_account_number_is_refused() {
    let e = err(&sgml_bank(LINE).replace("<ACCTID>55501234", ""));
    assert_eq!((e.kind, e.field.as_deref()), (ParseErrorKind::MissingField, Some("ACCTID")));
}

#[test]
fn a_truncated_file_is_read_with_a_warning() {
    let full = sgml_bank(LINE);
    let cut = &full[..full.find("</BANKTRANLIST>").unwrap()];
    let parsed = ok(cut);
    assert_eq!(parsed.statements[0].transactions.len(), 1);
    let truncated: Vec<_> = parsed.warnings.iter().filter(|w| w.message.contains("truncated")).collect();
    assert_eq!(truncated.len(), 1, "{:?}", parsed.warnings);
    assert!(truncated[0].message.contains("</BANKTRANLIST>, </STMTRS>"), "{:?}", truncated);
}

#[test]
fn a_file_that_starts_with_a_tag_and_has_no_header_is_read() {
    let text = sgml_bank(LINE);
    let body = &text[text.find("<OFX>").unwrap()..];
    assert_eq!(ok(body).statements.len(), 1);
}

#[test]
fn an_iban_account_number_is_recognised() {
    assert!(looks_like_iban("DE44500105175407324931"));
    assert!(!looks_like_iban("DE44500105175407324932"));
    assert!(!looks_like_iban("12345678901"));
}

/// One generated transaction: day offset, amount in cents, description, whether it has a FITID.
type GenLine = (u32, i64, String, bool);

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A small OFX writer: 1.x SGML (open leaves, optional line breaks) or 2.x XML.
fn write_ofx(account: &str, currency: &str, lines: &[GenLine], xml: bool, newlines: bool) -> String {
    let nl = if newlines { "\n" } else { "" };
    let leaf = |tag: &str, value: &str| {
        if xml {
            format!("<{tag}>{value}</{tag}>{nl}")
        } else {
            format!("<{tag}>{value}{nl}")
        }
    };
    let mut out = String::new();
    if xml {
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<?OFX OFXHEADER=\"200\" VERSION=\"220\"?>\n");
    } else {
        out.push_str(SGML_HEADER);
    }
    out.push_str(&format!("<OFX>{nl}<BANKMSGSRSV1>{nl}<STMTTRNRS>{nl}"));
    out.push_str(&leaf("TRNUID", "1"));
    out.push_str(&format!("<STMTRS>{nl}"));
    out.push_str(&leaf("CURDEF", currency));
    out.push_str(&format!("<BANKACCTFROM>{nl}"));
    out.push_str(&leaf("BANKID", "999999999"));
    out.push_str(&leaf("ACCTID", account));
    out.push_str(&leaf("ACCTTYPE", "CHECKING"));
    out.push_str(&format!("</BANKACCTFROM>{nl}<BANKTRANLIST>{nl}"));
    let base = date(2020, 1, 1);
    let mut total = 0i64;
    for (i, (day, cents, text, has_id)) in lines.iter().enumerate() {
        total += cents;
        let d = base + chrono::Days::new(u64::from(*day));
        out.push_str(&format!("<STMTTRN>{nl}"));
        out.push_str(&leaf("TRNTYPE", if *cents < 0 { "DEBIT" } else { "CREDIT" }));
        out.push_str(&leaf("DTPOSTED", &format!("{}120000.000[-5:EST]", d.format("%Y%m%d"))));
        out.push_str(&leaf("TRNAMT", &Decimal::new(*cents, 2).to_string()));
        if *has_id {
            out.push_str(&leaf("FITID", &format!("ID{i}")));
        }
        out.push_str(&leaf("NAME", &escape(text)));
        out.push_str(&format!("</STMTTRN>{nl}"));
    }
    out.push_str(&format!("</BANKTRANLIST>{nl}<LEDGERBAL>{nl}"));
    out.push_str(&leaf("BALAMT", &Decimal::new(total, 2).to_string()));
    out.push_str(&leaf("DTASOF", "20300101"));
    out.push_str(&format!("</LEDGERBAL>{nl}</STMTRS>{nl}</STMTTRNRS>{nl}</BANKMSGSRSV1>{nl}</OFX>{nl}"));
    out
}

fn gen_line() -> impl Strategy<Value = GenLine> {
    (0u32..3000, -10_000_000i64..10_000_000, "[A-Za-z0-9][A-Za-z0-9 &<>'.,/-]{0,30}[A-Za-z0-9]", any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn written_statements_parse_back_to_the_same_transactions(
        account in "[0-9]{4,12}",
        currency in prop::sample::select(vec!["USD", "EUR", "CAD", "JPY"]),
        lines in prop::collection::vec(gen_line(), 0..20),
        xml in any::<bool>(),
        newlines in any::<bool>(),
    ) {
        let text = write_ofx(&account, currency, &lines, xml, newlines);
        let parsed = parse_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.statements.len(), 1);
        let s = &parsed.statements[0];
        prop_assert_eq!(&s.account.id, &account);
        prop_assert_eq!(s.currency.code(), currency);
        prop_assert_eq!(s.transactions.len(), lines.len());
        let total: i64 = lines.iter().map(|l| l.1).sum();
        prop_assert_eq!(s.closing_balance.map(|m| m.amount()), Some(Decimal::new(total, 2)));
        for (i, (t, (day, cents, text, has_id))) in s.transactions.iter().zip(&lines).enumerate() {
            prop_assert_eq!(t.booking_date, date(2020, 1, 1) + chrono::Days::new(u64::from(*day)));
            prop_assert_eq!(t.amount.amount(), Decimal::new(*cents, 2));
            prop_assert_eq!(&*t.description, &**text);
            prop_assert_eq!(t.payee.as_deref(), Some(text.as_str()));
            if *has_id {
                prop_assert_eq!(&*t.id, &*format!("ID{i}"));
            } else {
                prop_assert_eq!(t.id_source, IdSource::Fingerprint);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in any::<Vec<u8>>()) {
        let _ = parse_with(&bytes, &ParseOptions::default());
    }

    #[test]
    fn arbitrary_tag_soup_never_panics(
        parts in prop::collection::vec(prop::sample::select(vec![
            "<OFX>", "</OFX>", "<STMTRS>", "</STMTRS>", "<CCSTMTRS>", "<INVSTMTRS>", "<STMTTRN>", "</STMTTRN>",
            "<BANKACCTFROM>", "<ACCTID>", "1", "<CURDEF>", "EUR", "<TRNAMT>", "-1,5", "<DTPOSTED>", "20240101",
            "<FITID>", "<STATUS>", "<CODE>", "<SEVERITY>", "ERROR", "</STATUS>", "<![CDATA[", "]]>", "<!--", "-->",
            "<", ">", "&amp;", "&#", "é", "\n", "<LEDGERBAL>", "<BALAMT>", "<ACCTINFO>", "</ACCTINFO>", "<INVBANKTRAN>",
            "<?xml encoding=\"", "\"?>", "CHARSET:", "<BANKTRANLIST>", "</BANKTRANLIST>", "<NAME/>",
        ]), 0..60),
    ) {
        let text: String = parts.concat();
        let _ = parse_str(&text);
    }
}
