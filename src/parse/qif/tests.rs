//! Behaviour of the QIF parser on the quirks real exports have, plus property tests: statements
//! written as QIF read back unchanged, and no input makes the parser panic.

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::parse;
use crate::domain::{BankTransaction, Currency, IdSource, Statement};
use crate::parse::{DateOrder, ParseError, ParseErrorKind, ParseOptions, Parsed, Source};

fn run(text: &str, options: &ParseOptions) -> Result<Parsed, ParseError> {
    parse(&Source { name: "test.qif", bytes: text.as_bytes(), options, progress: None })
}

fn ok(text: &str) -> Parsed {
    run(text, &ParseOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> ParseError {
    run(text, &ParseOptions::default()).expect_err("the file should be refused")
}

fn only(parsed: &Parsed) -> &Statement {
    assert_eq!(parsed.statements.len(), 1, "{:#?}", parsed.statements);
    &parsed.statements[0]
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn amounts(s: &Statement) -> Vec<String> {
    s.transactions.iter().map(|t| t.amount.to_fixed()).collect()
}

fn dates(s: &Statement) -> Vec<NaiveDate> {
    s.transactions.iter().map(|t| t.booking_date).collect()
}

fn warned(parsed: &Parsed, needle: &str) -> bool {
    parsed.warnings.iter().any(|w| w.message.contains(needle))
}

const GROCER_MDY: &str = "!Type:Bank\nD9/14/21\nT-1,250.00\nPHarbor Rent\n^\nD9/20/21\nT-42.17\nPCorner Grocer\n^\n\
                          D4/2/21\nT300.00\nPPayroll\n^\nD4/5/21\nT-8.99\nPStreamCo\n^\n";

#[test]
fn a_bank_section_gives_one_statement_in_the_fallback_currency() {
    let options = ParseOptions { currency: Some(Currency::USD), ..ParseOptions::default() };
    let parsed = run(GROCER_MDY, &options).unwrap();
    let s = only(&parsed);
    assert_eq!(s.currency, Currency::USD);
    assert_eq!(s.account.id, "");
    assert_eq!(s.account.kind.as_deref(), Some("Bank"));
    assert_eq!(amounts(s), ["-1250.00", "-42.17", "300.00", "-8.99"]);
    assert_eq!(s.opening_balance, None);
    assert_eq!(s.closing_balance, None);
    assert!(s.transactions.iter().all(|t| t.id.is_empty() && t.id_source == IdSource::Fingerprint));
}

#[test]
fn month_day_and_year_first_files_of_the_same_data_give_the_same_dates() {
    let mdy = GROCER_MDY;
    let dmy = mdy.replace("D9/14/21", "D14/9/21").replace("D9/20/21", "D20/9/21").replace("D4/2/21", "D2/4/21");
    let dmy = dmy.replace("D4/5/21", "D5/4/21");
    let ymd = mdy.replace("D9/14/21", "D21/09/14").replace("D9/20/21", "D21/09/20").replace("D4/2/21", "D21/4/2");
    let ymd = ymd.replace("D4/5/21", "D21/4/5");
    let want = [date(2021, 9, 14), date(2021, 9, 20), date(2021, 4, 2), date(2021, 4, 5)];
    for text in [mdy.to_string(), dmy, ymd] {
        assert_eq!(dates(only(&ok(&text))), want, "{text}");
    }
}

#[test]
fn ambiguous_dates_are_read_month_first_with_a_warning() {
    let parsed = ok("!Type:Bank\nD3/4/22\nT1\n^\nD3/5/22\nT2\n^\n");
    assert_eq!(dates(only(&parsed)), [date(2022, 3, 4), date(2022, 3, 5)]);
    assert!(warned(&parsed, "month/day/year"));
}

#[test]
fn the_callers_date_order_is_obeyed() {
    let options = ParseOptions { date_order: Some(DateOrder::Dmy), ..ParseOptions::default() };
    let parsed = run("!Type:Bank\nD3/4/22\nT1\n^\n", &options).unwrap();
    assert_eq!(dates(only(&parsed)), [date(2022, 4, 3)]);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn quicken_apostrophe_and_padded_dates_are_read() {
    let parsed = ok("!Type:Bank\nD1/ 1'00\nT1\n^\nD2/10'2020\nT2\n^\nD8/ 1/97\nT3\n^\n");
    assert_eq!(dates(only(&parsed)), [date(2000, 1, 1), date(2020, 2, 10), date(1997, 8, 1)]);
}

#[test]
fn y2k_three_digit_years_with_glued_text_are_read_and_the_text_reported() {
    let parsed = ok("!Type:Bank\nD03/25/099Card Purchase\nT-9.50\nPCard Purchase\n^\n");
    let s = only(&parsed);
    assert_eq!(dates(s), [date(1999, 3, 25)]);
    assert_eq!(parsed.warnings.len(), 1);
    assert_eq!(parsed.warnings[0].line, Some(2));
}

#[test]
fn a_decimal_comma_file_reads_dotted_thousands() {
    let parsed = ok("!Type:Bank\nD01/02/2023\nT-12,50\n^\nD01/03/2023\nT1.250\n^\nD01/04/2023\nT-1.234,56\n^\n");
    assert_eq!(amounts(only(&parsed)), ["-12.50", "1250.00", "-1234.56"]);
}

#[test]
fn payee_memo_number_and_transfer_map_to_their_fields() {
    let text = "!Type:Bank\nD5/1/24\nT-64.00\nN1042\nPCity Water\nMMay  bill\nLUtilities:Water\n^\n\
                D5/2/24\nT-500.00\nNTXFR\nPMove to savings\nL[Rainy Day Savings]\n^\n";
    let s = only(&ok(text)).clone();
    let (water, transfer) = (&s.transactions[0], &s.transactions[1]);
    assert_eq!(water.payee.as_deref(), Some("City Water"));
    assert_eq!(&*water.description, "May bill");
    assert_eq!(water.check_number.as_deref(), Some("1042"));
    assert_eq!(water.reference, None);
    assert_eq!(water.counterparty_account, None, "a plain category is not a counterparty");
    assert_eq!(&*transfer.description, "Move to savings", "the payee stands in for a missing memo");
    assert_eq!(transfer.reference.as_deref(), Some("TXFR"));
    assert_eq!(transfer.check_number, None);
    assert_eq!(transfer.counterparty_account.as_deref(), Some("Rainy Day Savings"));
}

#[test]
fn the_opening_balance_record_stays_a_line_without_a_counterparty() {
    let s = only(&ok("!Type:Bank\nD2/1'24\nT250.00\nCX\nPOpening Balance\nL[Household]\n^\n")).clone();
    assert_eq!(amounts(&s), ["250.00"]);
    assert_eq!(s.opening_balance, None);
    assert_eq!(s.transactions[0].counterparty_account, None);
}

#[test]
fn splits_become_details_and_the_line_keeps_its_total() {
    let text = "!Type:Bank\nD6/13/24\nT-80.00\nPHardware Barn\nL--Split--\nSHome:Repairs\nEpaint\n$-55.00\n\
                S[Petty Cash]\n$-25.00\n^\n";
    let parsed = ok(text);
    let t: &BankTransaction = &only(&parsed).transactions[0];
    assert_eq!(t.amount.to_fixed(), "-80.00");
    assert_eq!(t.details.len(), 2);
    assert_eq!(t.details[0].description.as_deref(), Some("paint"));
    assert_eq!(t.details[0].amount.map(|m| m.to_fixed()).as_deref(), Some("-55.00"));
    assert_eq!(t.details[1].counterparty_account.as_deref(), Some("Petty Cash"));
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn splits_that_do_not_add_up_are_reported() {
    let parsed = ok("!Type:Bank\nD6/3/24\nT-80.00\nSA\n$-50.00\nSB\n$-20.00\n^\n");
    assert_eq!(amounts(only(&parsed)), ["-80.00"]);
    assert!(warned(&parsed, "splits add up to -70.00"));
}

#[test]
fn u_stands_in_for_a_missing_t() {
    assert_eq!(amounts(only(&ok("!Type:Bank\nD1/2/24\nU-10.00\n^\n"))), ["-10.00"]);
}

#[test]
fn account_lists_do_not_become_statements_but_the_selected_account_does() {
    let text = "!Option:AutoSwitch\n!Account\nNEveryday\nTBank\n^\nNHoliday Fund\nTBank\n^\nNBroker\nTInvst\n^\n\
                !Clear:AutoSwitch\n!Account\nNEveryday\nTBank\nDMain street branch\n^\n!Type:Bank\nD1/5/24\nT-3.00\n^\n";
    let parsed = ok(text);
    let s = only(&parsed);
    assert_eq!(s.account.id, "Everyday");
    assert_eq!(s.account.kind.as_deref(), Some("Bank"));
    assert_eq!(s.account.name.as_deref(), Some("Main street branch"));
    assert_eq!(s.transactions.len(), 1);
}

#[test]
fn a_file_that_only_lists_accounts_gives_each_an_empty_statement() {
    let parsed = ok("!Option:AutoSwitch\n!Account\nNEveryday\nTBank\n^\nNEveryday\nTBank\n^\n!Clear:AutoSwitch\n");
    let s = only(&parsed);
    assert_eq!((s.account.id.as_str(), s.transactions.len()), ("Everyday", 0));
}

#[test]
fn a_selected_account_without_transactions_still_gives_its_statement() {
    let parsed = ok("!Clear:AutoSwitch\n!Account\nNSpare Account\nTBank\n^\n");
    assert_eq!(only(&parsed).account.id, "Spare Account");
}

#[test]
fn each_selected_account_gets_its_own_statement_and_repeats_continue_it() {
    let text = "!Account\nNFirst\nTBank\n^\n!Type:Bank\nD1/2/24\nT1\n^\n!Account\nNSecond\nTCCard\n^\n!Type:CCard\n\
                D1/3/24\nT-2\n^\n!Account\nNFirst\nTBank\n^\n!Type:Bank\nD1/4/24\nT3\n^\n";
    let parsed = ok(text);
    let ids: Vec<_> = parsed.statements.iter().map(|s| (s.account.id.as_str(), s.transactions.len())).collect();
    assert_eq!(ids, [("First", 2), ("Second", 1)]);
    assert_eq!(parsed.statements[1].account.kind.as_deref(), Some("CCard"));
}

#[test]
fn transactions_before_any_account_go_to_the_callers_account() {
    let options = ParseOptions { account_id: Some("NL91ABNA0417164300".into()), ..ParseOptions::default() };
    let parsed = run("!Type:Bank\n^\nD2022-09-23\nT-184.8\n^\nD2022-09-08\nT-13.16\n^", &options).unwrap();
    let s = only(&parsed);
    assert_eq!(s.account.id, "NL91ABNA0417164300");
    assert_eq!(amounts(s), ["-184.80", "-13.16"]);
}

#[test]
fn lists_and_memorised_transactions_are_skipped_with_warnings() {
    let text = "!Type:Cat\nNGroceries\nDFood\nE\n^\n!Type:Class\nNHome\n^\n!Type:Memorized\nT-9.00\nKC\nPGym\n^\n\
                !Type:Security\nNAcme\nSACM\n^\n!Type:Bank\nD1/2/24\nT1\n^\n";
    let parsed = ok(text);
    assert_eq!(only(&parsed).transactions.len(), 1);
    for what in ["category list", "class list", "memorised transactions", "security list"] {
        assert!(warned(&parsed, what), "{what}: {:?}", parsed.warnings);
    }
}

#[test]
fn a_file_of_lists_only_parses_to_no_statement_with_a_warning() {
    let parsed = ok("^\n!Type:Security\nNAcme\nTStock\n^\n");
    assert!(parsed.statements.is_empty());
    assert!(warned(&parsed, "no transactions"));
}

#[test]
fn investment_sections_keep_the_money_each_action_moves() {
    let text = "!Type:Bank\nD1/2/24\nT-1,000.00\nL[Broker]\n^\n!Account\nNBroker\nTInvst\n^\n!Type:Invst\n\
                D1/3/24\nNXIn\nT1,000.00\nL[Checking]\n^\nD1/4/24\nNBuy\nYACME\nI10\nQ50\nT500.00\n^\n\
                D1/5/24\nNReinvDiv\nYACME\nT5.00\n^\nD1/6/24\nNDiv\nYACME\nT7.25\n^\n";
    let parsed = ok(text);
    assert_eq!(parsed.statements.len(), 2);
    let broker = &parsed.statements[1];
    assert_eq!(broker.account.id, "Broker");
    assert_eq!(amounts(broker), ["1000.00", "-500.00", "7.25"]);
    assert_eq!(broker.transactions[1].bank_code.as_deref(), Some("Buy"));
    assert_eq!(&*broker.transactions[1].description, "Buy ACME");
    assert!(warned(&parsed, "moves shares, not money"));
    assert!(warned(&parsed, "investment section"));
}

#[test]
fn an_investment_record_without_an_amount_is_booked_as_zero_with_a_warning() {
    let parsed = ok("!Type:Invst\nD1/ 1'01\nNCash\nL[Portfolio]\n^\n");
    assert_eq!(amounts(only(&parsed)), ["0.00"]);
    assert!(warned(&parsed, "booked as 0"));
}

#[test]
fn record_ends_written_twice_and_a_missing_last_end_are_accepted() {
    let parsed = ok("!Type:Bank \nD1/2/24\nT1\n^^\nD1/3/24\nT2\n");
    assert_eq!(amounts(only(&parsed)), ["1.00", "2.00"]);
    assert!(warned(&parsed, "not closed by ^"));
}

#[test]
fn crlf_and_lone_cr_line_ends_are_read() {
    for text in ["!Type:Bank\r\nD1/2/24\r\nT1\r\n^\r\n", "!Type:Bank\rD1/2/24\rT1\r^\r"] {
        assert_eq!(amounts(only(&ok(text))), ["1.00"]);
    }
}

#[test]
fn latin1_text_is_decoded() {
    let bytes = b"!Type:Bank\nD01/13/95\nT-1\nPCaf\xe9 du Ch\xe2teau\n^\n";
    let parsed = parse(&Source { name: "x.qif", bytes, options: &ParseOptions::default(), progress: None }).unwrap();
    assert_eq!(only(&parsed).transactions[0].payee.as_deref(), Some("Café du Château"));
}

#[test]
fn comments_and_unknown_fields_are_passed_over_and_unknown_codes_reported_once() {
    let parsed = ok("# exported by hand\n!Type:Bank\nD1/2/24\nT1\nZzz\n^\nD1/3/24\nT2\nZyy\n^\n");
    assert_eq!(amounts(only(&parsed)), ["1.00", "2.00"]);
    assert_eq!(parsed.warnings.iter().filter(|w| w.message.contains("unknown field code")).count(), 1);
}

#[test]
fn warnings_of_one_kind_are_capped_and_counted() {
    let mut text = String::from("!Type:Bank\n");
    for _ in 0..50 {
        text.push_str("D03/25/099glued\nT1\n^\n");
    }
    let parsed = ok(&text);
    assert_eq!(parsed.warnings.len(), super::WARNINGS_PER_KIND + 1);
    assert!(warned(&parsed, "30 more dates followed by text"));
}

#[test]
fn an_empty_file_is_refused_as_empty() {
    assert_eq!(err("").kind, ParseErrorKind::Empty);
    assert_eq!(err(" \n\n").kind, ParseErrorKind::Empty);
    assert_eq!(err("!Type:Bank\n^\n").kind, ParseErrorKind::Empty);
}

#[test]
fn text_that_is_not_qif_is_refused_as_a_syntax_error() {
    let e = err("This is not a statement.\nJust prose.\n");
    assert_eq!(e.kind, ParseErrorKind::Syntax);
    assert_eq!(e.line, Some(1));
    assert!(e.to_string().starts_with("test.qif:1"), "{e}");
}

#[test]
fn a_bad_date_names_its_line_column_and_field() {
    let e = err("!Type:Bank\nD1/2/24\nT1\n^\nDsoon\nT2\n^\n");
    assert_eq!(
        (e.kind, e.line, e.column, e.field.as_deref()),
        (ParseErrorKind::InvalidDate, Some(5), Some(2), Some("D"))
    );
    assert!(e.message.contains("\"soon\""), "{}", e.message);
}

#[test]
fn a_bad_amount_names_its_line_and_field() {
    let e = err("!Type:Bank\nD1/2/24\nTtwelve\n^\n");
    assert_eq!((e.kind, e.line, e.field.as_deref()), (ParseErrorKind::InvalidAmount, Some(3), Some("T")));
    let e = err("!Type:Bank\nD1/2/24\nT-5\nSA\n$five\n^\n");
    assert_eq!((e.kind, e.line, e.field.as_deref()), (ParseErrorKind::InvalidAmount, Some(5), Some("$")));
}

#[test]
fn a_record_without_date_or_amount_is_refused() {
    let e = err("!Type:Bank\nT1\nPNobody\n^\n");
    assert_eq!((e.kind, e.line, e.field.as_deref()), (ParseErrorKind::MissingField, Some(2), Some("D")));
    let e = err("!Type:Bank\nD1/2/24\nPNobody\n^\n");
    assert_eq!((e.kind, e.field.as_deref()), (ParseErrorKind::MissingField, Some("T")));
}

#[test]
fn progress_is_reported_on_large_files() {
    let mut text = String::from("!Type:Bank\n");
    for i in 0..(super::PROGRESS_EVERY * 2) {
        text.push_str(&format!("D1/{}/24\nT-{i}.00\n^\n", i % 28 + 1));
    }
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: u64| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let options = ParseOptions::default();
    let parsed =
        parse(&Source { name: "big.qif", bytes: text.as_bytes(), options: &options, progress: Some(&progress) })
            .unwrap();
    assert_eq!(only(&parsed).transactions.len(), super::PROGRESS_EVERY * 2);
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
}

/// A generated line: what the writer puts in the file and the parser must give back.
#[derive(Debug, Clone)]
struct Line {
    date: NaiveDate,
    cents: i64,
    payee: Option<String>,
    memo: Option<String>,
    check: Option<u32>,
    splits: Vec<i64>,
}

fn words() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z0-9&.,'/-]{1,8}", 1..4).prop_map(|w| w.join(" "))
}

fn line(base: NaiveDate) -> impl Strategy<Value = Line> {
    (
        0..180u64,
        -10_000_000_000i64..10_000_000_000,
        prop::option::of(words()),
        prop::option::of(words()),
        prop::option::of(1..99_999u32),
        prop::collection::vec(-1_000_000i64..1_000_000, 0..3),
    )
        .prop_map(move |(days, cents, payee, memo, check, splits)| Line {
            date: base + chrono::Days::new(days),
            cents,
            payee,
            memo,
            check,
            splits,
        })
}

fn statement() -> impl Strategy<Value = (Vec<Line>, u8, bool)> {
    (1990i32..2060, 1u32..=12, 1u32..=28).prop_flat_map(|(y, m, d)| {
        let base = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        (prop::collection::vec(line(base), 1..12), 0u8..3, any::<bool>())
    })
}

fn money(cents: i64, grouped: bool) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let (units, rest) = (cents.unsigned_abs() / 100, cents.unsigned_abs() % 100);
    let mut int = units.to_string();
    if grouped {
        let digits: Vec<char> = int.chars().collect();
        int = digits
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = i > 0 && (digits.len() - i) % 3 == 0;
                sep.then_some(',').into_iter().chain(std::iter::once(*c))
            })
            .collect();
    }
    format!("{sign}{int}.{rest:02}")
}

/// Writes lines as Quicken would: month first, in one of its date forms.
fn write_qif(lines: &[Line], date_form: u8, grouped: bool) -> String {
    use chrono::Datelike;
    let mut out = String::from("!Type:Bank\n");
    for l in lines {
        let (y, m, d) = (l.date.year(), l.date.month(), l.date.day());
        let date = match date_form {
            0 => format!("{m}/{d}/{y}"),
            1 if y >= 2000 => format!("{m}/{d:>2}'{:02}", y % 100),
            _ => format!("{m:02}/{d:02}/{y}"),
        };
        out.push_str(&format!("D{date}\nT{}\nC*\n", money(l.cents, grouped)));
        if let Some(check) = l.check {
            out.push_str(&format!("N{check}\n"));
        }
        if let Some(p) = &l.payee {
            out.push_str(&format!("P{p}\n"));
        }
        if let Some(m) = &l.memo {
            out.push_str(&format!("M{m}\n"));
        }
        for s in &l.splits {
            out.push_str(&format!("SMisc\nEpart\n${}\n", money(*s, grouped)));
        }
        out.push_str("^\n");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn statements_written_as_qif_read_back_unchanged((lines, form, grouped) in statement()) {
        let text = write_qif(&lines, form, grouped);
        let parsed = run(&text, &ParseOptions::default()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed.statements.len(), 1);
        let got = &parsed.statements[0].transactions;
        prop_assert_eq!(got.len(), lines.len());
        for (want, got) in lines.iter().zip(got) {
            prop_assert_eq!(got.booking_date, want.date, "{}", text);
            prop_assert_eq!(got.amount.amount(), Decimal::new(want.cents, 2));
            prop_assert_eq!(got.payee.as_deref(), want.payee.as_deref());
            let description = want.memo.clone().or(want.payee.clone()).unwrap_or_default();
            prop_assert_eq!(&*got.description, &*description);
            prop_assert_eq!(got.check_number.as_deref().map(String::from), want.check.map(|c| c.to_string()));
            let splits: Vec<Decimal> = got.details.iter().filter_map(|d| d.amount.map(|m| m.amount())).collect();
            let want_splits: Vec<Decimal> = want.splits.iter().map(|c| Decimal::new(*c, 2)).collect();
            prop_assert_eq!(splits, want_splits);
        }
    }

    #[test]
    fn arbitrary_bytes_never_make_the_parser_panic(bytes in any::<Vec<u8>>()) {
        let _ = parse(&Source { name: "fuzz.qif", bytes: &bytes, options: &ParseOptions::default(), progress: None });
    }

    #[test]
    fn arbitrary_qif_like_lines_never_make_the_parser_panic(
        lines in prop::collection::vec(
            (prop::sample::select(vec![
                "!Type:Bank", "!Type:Invst", "!Type:Cat", "!Account", "!Option:AutoSwitch", "!Clear:AutoSwitch",
                "^", "^^", "D", "T", "U", "N", "P", "M", "L", "S", "E", "$", "Y", "#", " ", "",
            ]), "[0-9/' .,$()+-]{0,12}|\\PC{0,6}"),
            0..40,
        )
    ) {
        let text: String = lines.iter().map(|(code, rest)| format!("{code}{rest}\n")).collect();
        let _ = run(&text, &ParseOptions::default());
    }
}
