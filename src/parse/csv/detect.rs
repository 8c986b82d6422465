//! Detection: the delimiter, the header row below any metadata lines, what each column holds,
//! the decimal separator and the sign convention, all from the first rows of the file.

use rust_decimal::Decimal;

use super::cells::{normalise_header, read_date, roles_for, Role, CREDIT_WORDS, DEBIT_WORDS};
use super::read_money as parse_amount;
use super::{ColumnRef, CsvColumns, CsvProfile, SignConvention};
use crate::domain::Currency;
use crate::parse::text::DecimalSeparator;
use crate::parse::{Format, ParseError, ParseErrorKind, Source, Warning};

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
/// Rows read for detection; the rest of the file only follows the profile.
const SAMPLE_ROWS: usize = 300;
/// How far down a header may sit below metadata lines.
const HEADER_SEARCH: usize = 60;

/// Per-record delimiter counts outside quotes over the start of the text.
fn delimiter_counts(text: &str, max_records: usize) -> Vec<[u32; 4]> {
    let bytes = text.as_bytes();
    let bytes = &bytes[..bytes.len().min(64 * 1024)];
    let mut out = Vec::new();
    let mut cur = [0u32; 4];
    let mut in_quotes = false;
    let mut nonblank = false;
    for &b in bytes {
        match b {
            b'"' => {
                in_quotes = !in_quotes;
                nonblank = true;
            }
            b'\n' if !in_quotes => {
                if nonblank {
                    out.push(cur);
                    if out.len() >= max_records {
                        return out;
                    }
                }
                cur = [0; 4];
                nonblank = false;
            }
            _ if !in_quotes => {
                if let Some(i) = CANDIDATES.iter().position(|c| *c == b) {
                    cur[i] += 1;
                }
                if !b.is_ascii_whitespace() {
                    nonblank = true;
                }
            }
            _ => {}
        }
    }
    if nonblank {
        out.push(cur);
    }
    out
}

/// The delimiter whose count per row is the most consistent, weighing rows that agree by how many
/// fields they make (a decimal comma in every row must not beat the semicolons around it).
pub(crate) fn sniff_delimiter(text: &str) -> Option<u8> {
    let counts = delimiter_counts(text, 60);
    let mut best: Option<(u64, u8)> = None;
    for (k, &delim) in CANDIDATES.iter().enumerate() {
        let mut freq: Vec<(u32, u64)> = Vec::new();
        for row in &counts {
            let n = row[k];
            if n == 0 {
                continue;
            }
            match freq.iter_mut().find(|(c, _)| *c == n) {
                Some(f) => f.1 += 1,
                None => freq.push((n, 1)),
            }
        }
        let Some(&(mode, agree)) = freq.iter().max_by_key(|(c, f)| (*f, *c)) else { continue };
        let score = agree * (1 + u64::from(mode.min(8)));
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, delim));
        }
    }
    best.map(|(_, d)| d)
}

/// Whether the start of a file looks like delimited text: printable, and one delimiter splits
/// most of the first non-empty lines into the same number of fields (or, turned on its side,
/// blank-line separated `label: value` records).
pub fn looks_like_csv(head: &str) -> bool {
    let sample: &str = match head.char_indices().nth(16 * 1024) {
        Some((i, _)) => &head[..i],
        None => head,
    };
    if sample.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{feff}')) {
        return false;
    }
    if super::blocks::looks_like_blocks(sample) {
        return true;
    }
    let counts = delimiter_counts(sample, 40);
    if counts.is_empty() {
        return false;
    }
    CANDIDATES.iter().enumerate().any(|(k, _)| {
        let mut freq: Vec<(u32, usize)> = Vec::new();
        for row in &counts {
            if row[k] > 0 {
                match freq.iter_mut().find(|(c, _)| *c == row[k]) {
                    Some(f) => f.1 += 1,
                    None => freq.push((row[k], 1)),
                }
            }
        }
        let agree = freq.iter().map(|f| f.1).max().unwrap_or(0);
        agree >= 1 && agree * 2 >= counts.len()
    })
}

struct Sample {
    rows: Vec<(usize, Vec<String>)>,
}

fn read_sample(source: &Source<'_>, text: &str, delimiter: u8) -> Result<Sample, ParseError> {
    let mut reader =
        ::csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut record = ::csv::ByteRecord::new();
    let mut lines = super::LineCounter::default();
    while rows.len() < SAMPLE_ROWS {
        let more = reader.read_byte_record(&mut record).map_err(|e| {
            source.error(
                Format::Csv,
                e.position().map(|p| p.line() as usize),
                ParseErrorKind::Syntax,
                format!("found unreadable CSV ({e}), expected delimited rows"),
            )
        })?;
        if !more {
            break;
        }
        let line = lines.line_at(text.as_bytes(), record.position().map_or(0, |p| p.byte() as usize));
        let cells: Vec<String> = record
            .iter()
            .map(|b| String::from_utf8_lossy(b).trim().trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        rows.push((line, cells));
    }
    Ok(Sample { rows })
}

fn is_blank(cells: &[String]) -> bool {
    cells.iter().all(|c| c.is_empty())
}

/// Roles a header row's cells can stand for, before checking the cells below.
/// Candidate roles of one header cell, with the currency named in it.
type CellRoles = (Vec<(Role, u8)>, Option<Currency>);

fn header_roles(cells: &[String]) -> Vec<CellRoles> {
    cells
        .iter()
        .map(|c| {
            let (name, ccy) = normalise_header(c);
            (roles_for(&name).to_vec(), ccy)
        })
        .collect()
}

fn looks_like_header(cells: &[String]) -> bool {
    let roles = header_roles(cells);
    let has = |f: fn(Role) -> bool| roles.iter().any(|(r, _)| r.iter().any(|(role, _)| f(*role)));
    let matched = roles.iter().filter(|(r, _)| !r.is_empty()).count();
    matched >= 2
        && has(|r| r.is_date())
        && has(|r| matches!(r, Role::Amount | Role::Debit | Role::Credit))
        && cells.iter().all(|c| read_date(c).is_none())
}

/// Share of the non-empty cells of column `i` that `ok` accepts (1.0 when all are empty).
fn share(rows: &[&Vec<String>], i: usize, ok: impl Fn(&str) -> bool) -> (f64, usize) {
    let mut seen = 0usize;
    let mut good = 0usize;
    for row in rows {
        if let Some(c) = row.get(i).filter(|c| !c.is_empty()) {
            seen += 1;
            if ok(c) {
                good += 1;
            }
        }
    }
    if seen == 0 {
        (1.0, 0)
    } else {
        (good as f64 / seen as f64, seen)
    }
}

fn is_amount(s: &str) -> bool {
    parse_amount(s, DecimalSeparator::Auto).is_some() && read_date(s).is_none()
}

fn is_indicator(s: &str) -> bool {
    let u = s.to_uppercase();
    DEBIT_WORDS.contains(&u.as_str()) || CREDIT_WORDS.contains(&u.as_str())
}

/// Whether column `i`'s cells fit `role`. A name with one meaning needs only some cells to fit
/// (a bad cell is then reported with its line); a name with several meanings needs most.
fn content_fits(role: Role, rows: &[&Vec<String>], i: usize, ambiguous: bool) -> bool {
    let (s, _) = if role.is_date() {
        share(rows, i, |c| read_date(c).is_some())
    } else if role.is_amount() {
        share(rows, i, is_amount)
    } else if role == Role::Currency || role == Role::ForeignCurrency {
        share(rows, i, |c| Currency::new(c).is_ok())
    } else if role == Role::Indicator {
        share(rows, i, is_indicator)
    } else {
        (1.0, 0)
    };
    if ambiguous {
        s >= 0.8
    } else {
        s > 0.0
    }
}

/// Column roles from a header row, checked against the cells below it.
fn roles_from_header(cells: &[String], data: &[&Vec<String>]) -> (Vec<(Role, usize)>, Option<Currency>) {
    let mut best: Vec<(Role, u8, usize)> = Vec::new();
    let mut currency = None;
    for (i, (roles, ccy)) in header_roles(cells).into_iter().enumerate() {
        let ambiguous = roles.len() > 1;
        let Some((role, prio)) = roles.into_iter().find(|(r, _)| content_fits(*r, data, i, ambiguous)) else {
            continue;
        };
        if ccy.is_some() && role.is_amount() {
            currency = currency.or(ccy);
        }
        match best.iter_mut().find(|(r, _, _)| *r == role) {
            Some(b) if prio > b.1 => *b = (role, prio, i),
            Some(_) => {}
            None => best.push((role, prio, i)),
        }
    }
    (best.into_iter().map(|(r, _, i)| (r, i)).collect(), currency)
}

/// Column roles of a file without a header, from what the cells look like.
fn roles_from_content(data: &[&Vec<String>]) -> Vec<(Role, usize)> {
    let width = data.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut roles = Vec::new();
    let mut dates = Vec::new();
    let mut amounts = Vec::new();
    let mut texts: Vec<(usize, usize)> = Vec::new();
    let any_decimals =
        (0..width).any(|i| data.iter().any(|r| r.get(i).is_some_and(|c| is_amount(c) && c.contains(['.', ',']))));
    for i in 0..width {
        let (d, seen) = share(data, i, |c| read_date(c).is_some());
        if seen == 0 {
            continue;
        }
        if d >= 0.9 {
            dates.push(i);
            continue;
        }
        let (a, _) = share(data, i, is_amount);
        let decimals = data.iter().any(|r| r.get(i).is_some_and(|c| c.contains(['.', ','])));
        let short = data.iter().all(|r| r.get(i).is_none_or(|c| c.len() <= 12));
        if a >= 1.0 && (decimals || (!any_decimals && short)) {
            amounts.push(i);
            continue;
        }
        let len: usize = data.iter().map(|r| r.get(i).map_or(0, |c| c.len())).sum();
        texts.push((i, len));
    }
    if let Some(&d) = dates.first() {
        roles.push((Role::Date, d));
    }
    if let Some(&v) = dates.get(1) {
        roles.push((Role::ValueDate, v));
    }
    match amounts.as_slice() {
        [a] => roles.push((Role::Amount, *a)),
        [a, b, ..] => {
            let exclusive =
                data.iter().all(|r| r.get(*a).is_none_or(|c| c.is_empty()) || r.get(*b).is_none_or(|c| c.is_empty()));
            if exclusive {
                // Without a header, money out then money in is the common order (TD, CIBC...).
                roles.push((Role::Debit, *a));
                roles.push((Role::Credit, *b));
            } else {
                roles.push((Role::Amount, *a));
            }
        }
        [] => {}
    }
    if let Some((i, _)) = texts.iter().max_by_key(|(_, len)| *len) {
        roles.push((Role::Description, *i));
    }
    roles
}

/// Decimal separator from the amount cells: a separator followed by one or two digits, or the
/// later of two different separators, is decimal.
fn vote_separator(data: &[&Vec<String>], amount_cols: &[usize]) -> DecimalSeparator {
    let (mut dot, mut comma) = (0usize, 0usize);
    for row in data {
        for &i in amount_cols {
            let Some(c) = row.get(i) else { continue };
            let last_dot = c.rfind('.');
            let last_comma = c.rfind(',');
            let digits_after = |p: usize| c[p + 1..].bytes().take_while(u8::is_ascii_digit).count();
            match (last_dot, last_comma) {
                (Some(d), Some(k)) => {
                    if d > k {
                        dot += 1
                    } else {
                        comma += 1
                    }
                }
                (Some(d), None) if (1..=2).contains(&digits_after(d)) => dot += 1,
                (None, Some(k)) if (1..=2).contains(&digits_after(k)) => comma += 1,
                _ => {}
            }
        }
    }
    match (dot, comma) {
        (d, 0) if d > 0 => DecimalSeparator::Dot,
        (0, c) if c > 0 => DecimalSeparator::Comma,
        _ => DecimalSeparator::Auto,
    }
}

fn col_ref(i: usize, header: Option<&[String]>) -> ColumnRef {
    match header.and_then(|h| h.get(i)) {
        Some(name) if !name.is_empty() && header.is_some_and(|h| h.iter().filter(|n| *n == name).count() == 1) => {
            ColumnRef::Name(name.clone())
        }
        _ => ColumnRef::Index(i),
    }
}

/// Amount of a sample row under a sign convention (for the balance check).
fn sample_amount(
    row: &[String],
    roles: &[(Role, usize)],
    sign: &SignConvention,
    sep: DecimalSeparator,
) -> Option<Decimal> {
    let get = |role: Role| roles.iter().find(|(r, _)| *r == role).and_then(|(_, i)| row.get(*i)).map(String::as_str);
    let num = |s: Option<&str>| s.filter(|s| !s.is_empty()).and_then(|s| parse_amount(s, sep));
    match sign {
        SignConvention::AsIs => num(get(Role::Amount)),
        SignConvention::Negate => num(get(Role::Amount)).map(|a| -a),
        SignConvention::DebitCredit => {
            let d = num(get(Role::Debit));
            let c = num(get(Role::Credit));
            if d.is_none() && c.is_none() {
                return None;
            }
            Some(c.unwrap_or_default().abs() - d.unwrap_or_default().abs())
        }
        SignConvention::Indicator { debit, credit } => {
            let a = num(get(Role::Amount))?;
            let ind = get(Role::Indicator).unwrap_or("");
            if debit.iter().any(|w| w.eq_ignore_ascii_case(ind)) {
                Some(-a.abs())
            } else if credit.iter().any(|w| w.eq_ignore_ascii_case(ind)) {
                Some(a.abs())
            } else {
                Some(a)
            }
        }
    }
}

/// How many running-balance steps `sign` explains, in the better of the two row orders.
fn balance_fit(
    data: &[&Vec<String>],
    roles: &[(Role, usize)],
    sign: &SignConvention,
    sep: DecimalSeparator,
) -> (usize, usize) {
    let Some(bi) = roles.iter().find(|(r, _)| *r == Role::Balance).map(|(_, i)| *i) else { return (0, 0) };
    let pairs: Vec<(Decimal, Decimal)> = data
        .iter()
        .filter_map(|row| {
            let b = row.get(bi).filter(|s| !s.is_empty()).and_then(|s| parse_amount(s, sep))?;
            Some((sample_amount(row, roles, sign, sep)?, b))
        })
        .collect();
    let steps = pairs.len().saturating_sub(1);
    let forward = pairs.windows(2).filter(|w| w[1].1 - w[0].1 == w[1].0).count();
    let backward = pairs.windows(2).filter(|w| w[0].1 - w[1].1 == w[0].0).count();
    (forward.max(backward), steps)
}

/// Detects the profile of a decoded CSV file, with notes on doubtful choices.
pub(crate) fn detect(source: &Source<'_>, text: &str) -> Result<(CsvProfile, Vec<Warning>), ParseError> {
    let delimiter = sniff_delimiter(text).unwrap_or(b',');
    let sample = read_sample(source, text, delimiter)?;
    if sample.rows.iter().all(|(_, c)| is_blank(c)) {
        return Err(source.error(Format::Csv, None, ParseErrorKind::Empty, "found no rows, expected statement lines"));
    }
    let mut warnings = Vec::new();
    let header_at = sample.rows.iter().take(HEADER_SEARCH).position(|(_, cells)| looks_like_header(cells));
    let mut profile = CsvProfile { delimiter: Some(delimiter as char), ..CsvProfile::default() };
    type Found<'s> = (Vec<(Role, usize)>, Option<&'s [String]>, Option<Currency>, Vec<&'s Vec<String>>);
    let (roles, header_cells, header_currency, data): Found<'_> = match header_at {
        Some(h) => {
            let (line, cells) = &sample.rows[h];
            profile.skip_lines = line.saturating_sub(1);
            let data: Vec<&Vec<String>> =
                sample.rows[h + 1..].iter().map(|(_, c)| c).filter(|c| !is_blank(c)).collect();
            let (roles, ccy) = roles_from_header(cells, &data);
            (roles, Some(cells.as_slice()), ccy, data)
        }
        None => {
            profile.header = false;
            // Skip leading lines that hold no date (titles, metadata).
            let first =
                sample.rows.iter().position(|(_, c)| c.iter().any(|cell| read_date(cell).is_some())).unwrap_or(0);
            profile.skip_lines = sample.rows.get(first).map_or(0, |(l, _)| l.saturating_sub(1));
            let data: Vec<&Vec<String>> =
                sample.rows[first..].iter().map(|(_, c)| c).filter(|c| !is_blank(c)).collect();
            warnings.push(Warning {
                line: None,
                statement: None,
                message: "no header row found: columns chosen by their content".into(),
            });
            (roles_from_content(&data), None, None, data)
        }
    };
    let mut roles = roles;
    let has = |roles: &[(Role, usize)], r: Role| roles.iter().any(|(x, _)| *x == r);
    // `Currency` beside an `Amount Currency` column is that foreign amount's currency.
    if has(&roles, Role::ForeignAmount) && !has(&roles, Role::ForeignCurrency) {
        roles.retain(|(r, _)| *r != Role::Currency);
    }
    // With a fee column the gross is the line and the fee a line of its own (PayPal); the net is
    // their sum and what the balance follows.
    let gross = roles.iter().find(|(r, _)| *r == Role::Gross).map(|(_, i)| *i);
    if let Some(g) = gross {
        if has(&roles, Role::Fee) || !has(&roles, Role::Amount) {
            roles.retain(|(r, _)| *r != Role::Amount);
            roles.push((Role::Amount, g));
        }
        roles.retain(|(r, _)| *r != Role::Gross);
    }
    if !has(&roles, Role::Amount) {
        roles.retain(|(r, _)| *r != Role::Fee);
    }
    if has(&roles, Role::Amount) {
        roles.retain(|(r, _)| !matches!(r, Role::Debit | Role::Credit));
    }
    if !has(&roles, Role::Description) {
        if let Some(m) = roles.iter_mut().find(|(r, _)| *r == Role::Memo) {
            m.0 = Role::Description;
        }
    }
    let col =
        |roles: &[(Role, usize)], r: Role| roles.iter().find(|(x, _)| *x == r).map(|(_, i)| col_ref(*i, header_cells));
    let amount_cols: Vec<usize> = roles.iter().filter(|(r, _)| r.is_amount()).map(|(_, i)| *i).collect();
    let sep = vote_separator(&data, &amount_cols);
    profile.decimal_separator = sep;

    // An indicator column found by its content is used only for unsigned amounts.
    if !has(&roles, Role::Indicator) && has(&roles, Role::Amount) {
        let ai = roles.iter().find(|(r, _)| *r == Role::Amount).map(|(_, i)| *i).unwrap_or(0);
        let unsigned = data.iter().all(|r| r.get(ai).is_none_or(|c| !c.contains('-') && !c.contains('(')));
        if unsigned {
            let taken: Vec<usize> = roles.iter().map(|(_, i)| *i).collect();
            let width = data.iter().map(|r| r.len()).max().unwrap_or(0);
            if let Some(i) = (0..width).filter(|i| !taken.contains(i)).find(|&i| {
                let (s, seen) = share(&data, i, is_indicator);
                s >= 1.0 && seen * 10 >= data.len() * 9
            }) {
                roles.push((Role::Indicator, i));
            }
        }
    }
    let sign = if has(&roles, Role::Indicator) && has(&roles, Role::Amount) {
        let ii = roles.iter().find(|(r, _)| *r == Role::Indicator).map(|(_, i)| *i).unwrap_or(0);
        let (mut debit, mut credit): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        for row in &data {
            let Some(v) = row.get(ii).filter(|v| !v.is_empty()) else { continue };
            let u = v.to_uppercase();
            let list = if DEBIT_WORDS.contains(&u.as_str()) {
                &mut debit
            } else if CREDIT_WORDS.contains(&u.as_str()) {
                &mut credit
            } else {
                continue;
            };
            if !list.contains(v) {
                list.push(v.clone());
            }
        }
        if debit.is_empty() {
            debit = DEBIT_WORDS.iter().map(|w| w.to_string()).collect();
        }
        if credit.is_empty() {
            credit = CREDIT_WORDS.iter().map(|w| w.to_string()).collect();
        }
        SignConvention::Indicator { debit, credit }
    } else if has(&roles, Role::Debit) || has(&roles, Role::Credit) {
        SignConvention::DebitCredit
    } else {
        SignConvention::AsIs
    };

    // The bank's own running balance says which way money moved: when every step of it follows
    // the opposite reading of the columns, and the literal one does not, take the opposite.
    let inverted = match &sign {
        SignConvention::AsIs => SignConvention::Negate,
        SignConvention::DebitCredit => SignConvention::DebitCredit,
        SignConvention::Indicator { debit, credit } => {
            SignConvention::Indicator { debit: credit.clone(), credit: debit.clone() }
        }
        SignConvention::Negate => SignConvention::AsIs,
    };
    let mut swapped_roles = roles.clone();
    for (r, _) in swapped_roles.iter_mut() {
        *r = match *r {
            Role::Debit => Role::Credit,
            Role::Credit => Role::Debit,
            other => other,
        };
    }
    let inverted_roles = if sign == SignConvention::DebitCredit { &swapped_roles } else { &roles };
    let (literal_fit, steps) = balance_fit(&data, &roles, &sign, sep);
    let (inverted_fit, _) = balance_fit(&data, inverted_roles, &inverted, sep);
    let invert = steps >= 2 && inverted_fit == steps && literal_fit < steps;
    if invert {
        warnings.push(Warning {
            line: None,
            statement: None,
            message: "amounts read with the opposite sign: only that reading follows the running balance column".into(),
        });
    }
    let (roles, sign) = if invert { (inverted_roles.clone(), inverted) } else { (roles, sign) };

    profile.sign = sign;
    profile.currency = header_currency.or_else(|| symbol_currency(&data, &amount_cols));
    let r = &roles;
    profile.columns = CsvColumns {
        date: col(r, Role::Date).or_else(|| col(r, Role::ValueDate)),
        value_date: col(r, Role::ValueDate).filter(|_| has(r, Role::Date)),
        amount: col(r, Role::Amount),
        debit: col(r, Role::Debit),
        credit: col(r, Role::Credit),
        indicator: col(r, Role::Indicator),
        description: col(r, Role::Description),
        memo: col(r, Role::Memo),
        payee: col(r, Role::Payee),
        counterparty_account: col(r, Role::CounterpartyAccount),
        reference: col(r, Role::Reference),
        id: col(r, Role::Id),
        check_number: col(r, Role::CheckNumber),
        bank_code: col(r, Role::BankCode),
        balance: col(r, Role::Balance),
        currency: col(r, Role::Currency),
        account: col(r, Role::Account),
        opening_balance: col(r, Role::OpeningBalance),
        closing_balance: col(r, Role::ClosingBalance),
        fee: col(r, Role::Fee),
    };
    if profile.columns.date.is_none() {
        return Err(source
            .error(
                Format::Csv,
                header_at.map(|h| sample.rows[h].0),
                ParseErrorKind::MissingField,
                "found no date column, expected a column of dates (date, booking date, Buchungstag...)",
            )
            .in_field("date"));
    }
    Ok((profile, warnings))
}

/// A currency from symbols in the amounts: `€` EUR, `£` GBP, `₹` INR, `₩` KRW, and a bare `$` as
/// USD (the most common dollar; other dollars need their code or a currency setting).
fn symbol_currency(data: &[&Vec<String>], amount_cols: &[usize]) -> Option<Currency> {
    for row in data.iter().take(50) {
        for &i in amount_cols {
            let Some(c) = row.get(i) else { continue };
            let code = if c.contains('€') {
                "EUR"
            } else if c.contains('£') {
                "GBP"
            } else if c.contains('₹') {
                "INR"
            } else if c.contains('₩') {
                "KRW"
            } else if c.contains('$') && !c.contains(['A', 'C', 'N', 'H', 'S', 'M']) {
                "USD"
            } else if let Some(code) = c.split_whitespace().find(|w| w.len() == 3 && Currency::new(w).is_ok()) {
                code
            } else {
                continue;
            };
            return Currency::new(code).ok();
        }
    }
    None
}
