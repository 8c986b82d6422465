//! LITAS-ESIS (`.acc`): the Lithuanian banks' tab-separated statement export. Each line starts
//! with its record type: `000` the account (bank, owner, IBAN, currency), `020` a balance
//! (`LikutisPR` opening, `LikutisPB` closing), `010` a booked line, `999` the end. Amounts are in
//! minor units, unsigned, with a `D`/`C` column.

use rust_decimal::Decimal;

use super::cells::read_date;
use crate::domain::{AccountIdent, BankTransaction, Currency, Money, Statement};
use crate::parse::text::DateOrder;
use crate::parse::{Format, ParseError, ParseErrorKind, Parsed, Source, Warning};

/// Whether the text is a LITAS-ESIS file (an account record first, tab-separated).
pub(crate) fn is_litas(text: &str) -> bool {
    let t = text.trim_start_matches('\u{feff}');
    t.starts_with("000\t") && t.lines().any(|l| l.starts_with("010\t") || l.starts_with("020\t"))
}

fn minor_units(raw: &str, currency: Currency) -> Option<Decimal> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = raw.parse().ok().filter(|n: &i64| *n < 100_000_000_000_000_000)?;
    Some(Decimal::new(n, currency.minor_units()))
}

/// Parses a LITAS-ESIS file.
pub(crate) fn parse(source: &Source<'_>, text: &str) -> Result<Parsed, ParseError> {
    let error = |line: usize, kind, message: String| source.error(Format::Csv, Some(line), kind, message);
    let mut statement: Option<Statement> = None;
    let mut warnings = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let raw = raw.trim_end_matches('\r').trim_start_matches('\u{feff}');
        if raw.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = raw.split('\t').map(str::trim).collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        match get(0) {
            "000" => {
                let code = get(17);
                let currency = match code {
                    "" => source.fallback_currency(),
                    c => Currency::new(c).map_err(|_| {
                        error(
                            line,
                            ParseErrorKind::InvalidCurrency,
                            format!("found currency {c:?}, expected an ISO 4217 code"),
                        )
                        .in_field("000")
                    })?,
                };
                let iban = get(16);
                let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
                let id = source.options.account_id.clone().unwrap_or_else(|| iban.to_string());
                let account = AccountIdent {
                    id,
                    iban: opt(iban),
                    bic: opt(get(3)),
                    bank_id: opt(get(5)),
                    name: opt(get(10)),
                    kind: None,
                };
                statement = Some(Statement::new(account, source.options.currency.unwrap_or(currency)));
            }
            "010" | "020" => {
                let Some(s) = statement.as_mut() else {
                    return Err(error(
                        line,
                        ParseErrorKind::Syntax,
                        format!("found record {} before the account record, expected 000 first", get(0)),
                    ));
                };
                let date = read_date(get(2)).and_then(|d| d.resolve(DateOrder::Ymd)).ok_or_else(|| {
                    error(line, ParseErrorKind::InvalidDate, format!("found date {:?}, expected YYYYMMDD", get(2)))
                        .at_column(3)
                        .in_field(get(0).to_string())
                })?;
                let amount = minor_units(get(4), s.currency).ok_or_else(|| {
                    error(
                        line,
                        ParseErrorKind::InvalidAmount,
                        format!("found amount {:?}, expected minor units", get(4)),
                    )
                    .at_column(5)
                    .in_field(get(0).to_string())
                })?;
                if get(0) == "020" {
                    let money = Some(Money::new(amount, s.currency));
                    match get(1) {
                        "LikutisPR" => {
                            s.opening_balance = money;
                            s.start_date = Some(date);
                        }
                        "LikutisPB" => {
                            s.closing_balance = money;
                            s.end_date = Some(date);
                        }
                        other => warnings.push(Warning {
                            line: Some(line),
                            statement: Some(0),
                            message: format!("balance record {other:?} skipped"),
                        }),
                    }
                    continue;
                }
                let signed = match get(6) {
                    "D" => -amount,
                    "C" => amount,
                    other => {
                        return Err(error(
                            line,
                            ParseErrorKind::InvalidAmount,
                            format!("found debit/credit mark {other:?}, expected D or C"),
                        )
                        .at_column(7)
                        .in_field("010"))
                    }
                };
                let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
                let mut t = BankTransaction::new(date, Money::new(signed, s.currency)).with_bank_id(get(10));
                t.description = get(13).into();
                t.counterparty_account = opt(get(16)).map(Into::into);
                t.payee = opt(get(17)).map(Into::into);
                t.bank_code = opt(get(1)).map(Into::into);
                t.reference = opt(get(9)).map(Into::into);
                s.transactions.push(t);
            }
            _ => {}
        }
    }
    let statement = statement.ok_or_else(|| {
        source.error(Format::Csv, None, ParseErrorKind::MissingField, "found no account record, expected 000")
    })?;
    Ok(Parsed { statements: vec![statement], warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::ParseOptions;

    #[test]
    fn litas_esis_lines_balances_and_account_are_read() {
        let text = "000\t20240304\t\tBANKLT2XXXX\tBank\t40100\t\t\t\t\tOwner\t\t\t\t\t\tLT121000011101001000\tEUR\r\n\
                    020\tLikutisPR\t20240101\t\t10000\t10000\r\n\
                    010\t8511\t20240127\t\t250\t250\tD\t\t\tR1\tU1\t\t\tFee\tBIC\tBank\tLT00\tPayee\r\n\
                    020\tLikutisPB\t20240131\t\t9750\t9750\r\n999\t1\r\n";
        assert!(is_litas(text));
        let options = ParseOptions::default();
        let source = Source { name: "x.acc", bytes: text.as_bytes(), options: &options, progress: None };
        let p = parse(&source, text).unwrap();
        let s = &p.statements[0];
        assert_eq!(s.account.id, "LT121000011101001000");
        assert_eq!(s.currency, Currency::EUR);
        assert_eq!(s.opening_balance.map(|m| m.to_fixed()).as_deref(), Some("100.00"));
        assert_eq!(s.closing_balance.map(|m| m.to_fixed()).as_deref(), Some("97.50"));
        assert_eq!(s.transactions[0].amount.to_fixed(), "-2.50");
        assert_eq!(&*s.transactions[0].id, "U1");
        assert_eq!(s.transactions[0].payee.as_deref(), Some("Payee"));
    }
}
