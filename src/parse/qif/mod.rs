//! QIF (Quicken Interchange Format) statement parser.
//!
//! A QIF file is a run of sections, each opened by a `!` header (`!Type:Bank`, `!Account`,
//! `!Option:AutoSwitch`...) and holding records of one-letter fields (`D` date, `T` amount, `P`
//! payee...) that each end with a `^` line. It states no currency, no balances, no line ids and no
//! date order. How its parts become statements:
//!
//! * **Statements.** Transactions belong to the account selected by the last `!Account` record
//!   outside an AutoSwitch list, else to the default account (`ParseOptions::account_id`, else
//!   empty). There is one statement per account and kind of section (cash-like or investment), in
//!   order of first appearance; a repeated header for the same account continues its statement. A
//!   selected account without transactions still gives an empty statement (the file says the
//!   account exists). Accounts only listed under `!Option:AutoSwitch` become statements only when
//!   the file holds nothing else.
//! * **Money.** The currency is the caller's fallback; no balance is set. Quicken's `Opening
//!   Balance` record stays an ordinary line: it is booked in the file, and also making it the
//!   opening balance would count it twice.
//! * **Fields.** `P` is the payee; `M` the description (the payee when there is no memo); `N` the
//!   check number when all digits, else the reference; a transfer category `L[Savings]` the
//!   counterparty account. Plain categories and classes are the user's bookkeeping rather than bank
//!   text and are not kept, so that a re-export after recategorising gives the same lines and
//!   fingerprints. Nor are `C` (cleared), `A` (address), `%`, `F` and `X`.
//! * **Splits** (`S`/`E`/`$`) become the line's details; the line's amount is `T` (or `U`), and
//!   splits that do not add up to it are reported.
//! * **Investment sections** (`!Type:Invst`) become statements of their own holding the money each
//!   action moves, signed by the action (a purchase takes money out, a dividend brings it in);
//!   share-only actions are skipped with a warning. Lists (categories, classes, securities, prices,
//!   memorised transactions) are skipped with a warning.
//! * **Dates and amounts** are read in one day/month/year order and with one decimal separator for
//!   the whole file, decided by a first pass over all of its dates and amounts.
//! * **Text** is UTF-8 when valid, else Windows-1252 (QIF declares no character set).

mod amounts;
mod dates;
mod invest;
mod lines;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::text::{self, DateOrder, DecimalSeparator};
use super::{Format, ParseError, ParseErrorKind, Parsed, Source, Warning};
use crate::domain::{AccountIdent, BankTransaction, Currency, Money, Statement, TransactionDetail};
use invest::CashFlow;
use lines::{Header, Line, Lines};

/// Progress is reported after this many transactions.
const PROGRESS_EVERY: usize = 4096;

/// Warnings of one kind kept in full; the rest are counted in one closing warning, so that a
/// million odd lines cost a number, not a million messages.
const WARNINGS_PER_KIND: usize = 20;

/// Parses a QIF file.
pub fn parse(source: &Source<'_>) -> Result<Parsed, ParseError> {
    let text = text::decode(source.bytes, None);
    if text.trim().is_empty() {
        return Err(source.error(
            Format::Qif,
            None,
            ParseErrorKind::Empty,
            "found an empty file, expected QIF records (a header such as !Type:Bank, then D, T and ^ lines)",
        ));
    }
    let (tally, vote) = prescan(&text);
    let dates = tally.decide(source.options.date_order);
    let amounts = vote.decide();
    let mut parser = Parser::new(source, dates.order, amounts.separator);
    if dates.ambiguous {
        parser.warn(Kind::Reading, None, || {
            format!(
                "the dates fit more than one day/month/year order; read as {} (set the date order to override)",
                order_name(dates.order)
            )
        });
    }
    if amounts.conflicting {
        parser.warn(Kind::Reading, None, || {
            "some amounts use a decimal point and others a decimal comma; each amount was read on its own".into()
        });
    }
    for line in Lines::new(&text) {
        parser.line(line)?;
    }
    parser.finish()
}

/// First pass: tallies every transaction date and amount, so that one date order and one decimal
/// separator serve the whole file.
fn prescan(text: &str) -> (dates::OrderTally, amounts::SeparatorVote) {
    let mut tally = dates::OrderTally::default();
    let mut vote = amounts::SeparatorVote::default();
    // Records before any header are bank transactions.
    let mut in_transactions = true;
    for line in Lines::new(text) {
        let value = || line.text.get(1..).unwrap_or_default();
        match line.text.as_bytes().first() {
            Some(b'!') => match lines::classify(line.text) {
                Header::Transactions { .. } | Header::Investments { .. } => in_transactions = true,
                Header::AutoSwitchOn | Header::AutoSwitchOff | Header::HarmlessOption => {}
                _ => in_transactions = false,
            },
            Some(b'D') if in_transactions => {
                if let Some((raw, _)) = dates::split_date(value()) {
                    tally.observe(raw);
                }
            }
            Some(b'T' | b'U' | b'$') if in_transactions => vote.observe(value()),
            _ => {}
        }
    }
    (tally, vote)
}

fn order_name(order: DateOrder) -> &'static str {
    match order {
        DateOrder::Mdy => "month/day/year",
        DateOrder::Dmy => "day/month/year",
        DateOrder::Ymd => "year/month/day",
    }
}

/// At most 40 characters of file text, for messages.
fn excerpt(s: &str) -> Cow<'_, str> {
    let s = s.trim();
    match s.char_indices().nth(40) {
        Some((cut, _)) => Cow::Owned(format!("{}...", s.get(..cut).unwrap_or_default())),
        None => Cow::Borrowed(s),
    }
}

/// The account a bracketed category names: `[Savings]` and `[Savings]/Class` give `Savings`.
fn transfer_account(category: &str) -> Option<String> {
    let inner = category.trim().strip_prefix('[')?;
    let name = inner.split(']').next().unwrap_or_default().trim();
    (!name.is_empty()).then(|| name.to_string())
}

fn is_investment_kind(kind: &str) -> bool {
    let kind = kind.trim();
    ["invst", "port", "mutual"].iter().any(|k| kind.eq_ignore_ascii_case(k)) || kind.starts_with("401")
}

/// Stores `value` unless the slot is taken; false when it was.
fn keep_first<T>(slot: &mut Option<T>, value: T) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(value);
    true
}

/// Collapses blanks; `None` when nothing is left.
fn clean(s: &str) -> Option<String> {
    let s = text::squash_ws(s);
    (!s.is_empty()).then_some(s)
}

/// What the current section's records are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section<'t> {
    /// Transactions; `label` is the `!Type:` as written (none before any header).
    Transactions { label: Option<&'t str>, investments: bool },
    /// `!Account` records.
    Accounts,
    /// A list or unknown section: its records are passed over.
    Skipped,
}

/// A field's value and the line it came from.
#[derive(Debug, Clone, Copy)]
struct Field<'t> {
    value: &'t str,
    line: usize,
}

/// One `S`/`E`/`$` split of a transaction.
#[derive(Debug, Default)]
struct Split<'t> {
    category: Option<&'t str>,
    memo: Option<&'t str>,
    amount: Option<Field<'t>>,
}

/// The fields of the transaction being read, borrowed from the text until the record ends.
#[derive(Debug, Default)]
struct Record<'t> {
    /// First line of the record; 0 while no field has been read.
    first_line: usize,
    offset: usize,
    date: Option<Field<'t>>,
    amount: Option<Field<'t>>,
    amount_u: Option<Field<'t>>,
    number: Option<&'t str>,
    payee: Option<&'t str>,
    memo: Option<Cow<'t, str>>,
    category: Option<&'t str>,
    security: Option<&'t str>,
    splits: Vec<Split<'t>>,
    split_date_seen: bool,
}

/// The fields of the `!Account` record being read.
#[derive(Debug, Default)]
struct AccountRecord<'t> {
    first_line: usize,
    name: Option<&'t str>,
    kind: Option<&'t str>,
    description: Option<&'t str>,
}

/// An account as an `!Account` record describes it.
#[derive(Debug, Clone)]
struct AccountInfo {
    id: String,
    kind: Option<String>,
    description: Option<String>,
}

/// Kinds of warnings, each capped at [`WARNINGS_PER_KIND`] messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reading,
    Section,
    DateText,
    NoCash,
    UnknownAction,
    UnknownField,
    Unclosed,
    StrayLine,
    Duplicate,
    SplitTotal,
    SplitDate,
    NoAmount,
    NoDate,
}

impl Kind {
    const ALL: [Kind; 13] = [
        Kind::Reading,
        Kind::Section,
        Kind::DateText,
        Kind::NoCash,
        Kind::UnknownAction,
        Kind::UnknownField,
        Kind::Unclosed,
        Kind::StrayLine,
        Kind::Duplicate,
        Kind::SplitTotal,
        Kind::SplitDate,
        Kind::NoAmount,
        Kind::NoDate,
    ];

    fn summary(self) -> &'static str {
        match self {
            Kind::Reading => "notes on how the file was read",
            Kind::Section => "sections skipped",
            Kind::DateText => "dates followed by text that was ignored",
            Kind::NoCash => "investment records that move no money, skipped",
            Kind::UnknownAction => "investment records with an unknown action, amount taken as written",
            Kind::UnknownField => "lines with an unknown field code, ignored",
            Kind::Unclosed => "records not closed by ^, taken as complete",
            Kind::StrayLine => "lines that are not fields, ignored",
            Kind::Duplicate => "repeated fields, ignored",
            Kind::SplitTotal => "transactions whose splits do not add up to their amount",
            Kind::SplitDate => "split dates, ignored",
            Kind::NoAmount => "transactions without an amount line",
            Kind::NoDate => "investment records without a date, skipped",
        }
    }
}

/// Warnings, capped per kind.
#[derive(Debug, Default)]
struct Warnings {
    list: Vec<Warning>,
    counts: [usize; Kind::ALL.len()],
}

impl Warnings {
    fn push(&mut self, kind: Kind, line: Option<usize>, statement: Option<usize>, message: impl FnOnce() -> String) {
        let count = &mut self.counts[kind as usize];
        *count += 1;
        if *count <= WARNINGS_PER_KIND {
            self.list.push(Warning { line, statement, message: message() });
        }
    }

    fn finish(mut self) -> Vec<Warning> {
        for kind in Kind::ALL {
            let extra = self.counts[kind as usize].saturating_sub(WARNINGS_PER_KIND);
            if extra > 0 {
                self.list.push(Warning {
                    line: None,
                    statement: None,
                    message: format!("{extra} more {} (not listed one by one)", kind.summary()),
                });
            }
        }
        self.list
    }
}

/// The second pass: reads lines into records and records into statements.
struct Parser<'t, 's> {
    source: &'s Source<'s>,
    order: DateOrder,
    separator: DecimalSeparator,
    currency: Currency,
    default_id: String,
    section: Section<'t>,
    autoswitch: bool,
    record: Record<'t>,
    account: AccountRecord<'t>,
    selected: Option<AccountInfo>,
    listed: Vec<AccountInfo>,
    statements: Vec<Statement>,
    /// Parallel to `statements`: whether each holds investment records.
    investments: Vec<bool>,
    /// The statement the current section's transactions go to, once known.
    current: Option<usize>,
    warnings: Warnings,
    unknown_codes: Vec<char>,
    /// The last clean date read and its value: consecutive lines often share a date.
    last_date: Option<(&'t str, NaiveDate)>,
    transactions: usize,
    saw_header: bool,
    saw_end: bool,
    saw_fields: bool,
    first_content: Option<(usize, &'t str)>,
}

impl<'t, 's> Parser<'t, 's> {
    fn new(source: &'s Source<'s>, order: DateOrder, separator: DecimalSeparator) -> Self {
        Parser {
            source,
            order,
            separator,
            currency: source.fallback_currency(),
            default_id: source.options.account_id.clone().unwrap_or_default(),
            section: Section::Transactions { label: None, investments: false },
            autoswitch: false,
            record: Record::default(),
            account: AccountRecord::default(),
            selected: None,
            listed: Vec::new(),
            statements: Vec::new(),
            investments: Vec::new(),
            current: None,
            warnings: Warnings::default(),
            unknown_codes: Vec::new(),
            last_date: None,
            transactions: 0,
            saw_header: false,
            saw_end: false,
            saw_fields: false,
            first_content: None,
        }
    }

    fn error(&self, line: Option<usize>, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        self.source.error(Format::Qif, line, kind, message)
    }

    fn warn(&mut self, kind: Kind, line: Option<usize>, message: impl FnOnce() -> String) {
        self.warnings.push(kind, line, self.current, message);
    }

    fn line(&mut self, line: Line<'t>) -> Result<(), ParseError> {
        let text = line.text;
        let Some(code) = text.chars().next() else { return Ok(()) };
        if self.first_content.is_none() && !text.trim().is_empty() {
            self.first_content = Some((line.number, text));
        }
        match code {
            '!' => {
                self.close_record(Some(line.number), false)?;
                self.header(line);
            }
            '^' => {
                self.saw_end = true;
                self.close_record(Some(line.number), true)?;
                // `^^` is a common way to end a record; anything else after `^` is not.
                if !text.trim_start_matches('^').trim().is_empty() {
                    self.warn(Kind::StrayLine, Some(line.number), || "ignored the text after ^".into());
                }
            }
            _ if self.section == Section::Skipped => self.saw_fields |= !text.trim().is_empty(),
            c if c.is_whitespace() => {
                if !text.trim().is_empty() {
                    self.warn(Kind::StrayLine, Some(line.number), || {
                        "ignored a line that starts with a blank instead of a field code".into()
                    });
                }
            }
            // Comments between records, as some exporters and hand-written files have them.
            '#' if self.record.first_line == 0 && self.account.first_line == 0 => {}
            _ => {
                let value = text.get(code.len_utf8()..).unwrap_or_default();
                match self.section {
                    Section::Transactions { investments, .. } => self.transaction_field(code, value, line, investments),
                    Section::Accounts => self.account_field(code, value, line.number),
                    Section::Skipped => {}
                }
            }
        }
        Ok(())
    }

    fn header(&mut self, line: Line<'t>) {
        self.saw_header = true;
        self.current = None;
        let at = Some(line.number);
        match lines::classify(line.text) {
            Header::Transactions { label } => {
                self.section = Section::Transactions { label: Some(label), investments: false };
            }
            Header::Investments { label } => {
                self.section = Section::Transactions { label: Some(label), investments: true };
                self.warn(Kind::Section, at, || {
                    "investment section: only the money each action moves is imported (securities, prices \
                     and share quantities are not)"
                        .into()
                });
            }
            Header::List { what } => {
                self.section = Section::Skipped;
                self.warn(Kind::Section, at, || format!("skipped the {what}: it holds no booked lines"));
            }
            Header::UnknownType { label } => {
                self.section = Section::Skipped;
                self.warn(Kind::Section, at, || {
                    format!("skipped the section !Type:{}: not an account type bankrec imports", excerpt(label))
                });
            }
            Header::Account => self.section = Section::Accounts,
            Header::AutoSwitchOn => self.autoswitch = true,
            Header::AutoSwitchOff => self.autoswitch = false,
            Header::HarmlessOption => {}
            Header::Unknown => {
                self.section = Section::Skipped;
                self.warn(Kind::Section, at, || {
                    format!("skipped the section under the unknown header {:?}", excerpt(line.text))
                });
            }
        }
    }

    /// Ends the pending record: at `^` (`closed`), or at the header on line `at` or, for `None`,
    /// the end of the file.
    fn close_record(&mut self, at: Option<usize>, closed: bool) -> Result<(), ParseError> {
        let pending = match self.section {
            Section::Transactions { .. } => self.record.first_line,
            Section::Accounts => self.account.first_line,
            Section::Skipped => 0,
        };
        if pending == 0 {
            return Ok(());
        }
        if !closed {
            self.warn(Kind::Unclosed, Some(pending), || match at {
                Some(line) => {
                    format!("the record starting here is not closed by ^ before line {line}; taken as complete")
                }
                None => "the record starting here is not closed by ^ at the end of the file; taken as complete".into(),
            });
        }
        match self.section {
            Section::Transactions { .. } => self.finish_transaction(),
            Section::Accounts => {
                self.finish_account();
                Ok(())
            }
            Section::Skipped => Ok(()),
        }
    }

    fn transaction_field(&mut self, code: char, value: &'t str, line: Line<'t>, investments: bool) {
        let field = Field { value, line: line.number };
        let rec = &mut self.record;
        let mut duplicate = false;
        let mut known = true;
        match code {
            'D' if !rec.splits.is_empty() => {
                if !rec.split_date_seen {
                    rec.split_date_seen = true;
                    self.warnings.push(Kind::SplitDate, Some(line.number), self.current, || {
                        "ignored a date inside the splits: a line has one booking date".into()
                    });
                }
            }
            'D' => duplicate = !keep_first(&mut rec.date, field),
            'T' => duplicate = !keep_first(&mut rec.amount, field),
            'U' => duplicate = !keep_first(&mut rec.amount_u, field),
            'N' => duplicate = !keep_first(&mut rec.number, value),
            'P' => duplicate = !keep_first(&mut rec.payee, value),
            'L' => duplicate = !keep_first(&mut rec.category, value),
            'M' => {
                // Some exporters continue a long memo on further M lines.
                rec.memo = Some(match rec.memo.take() {
                    Some(first) => Cow::Owned(format!("{first} {value}")),
                    None => Cow::Borrowed(value),
                });
            }
            'C' | 'A' | '%' | 'F' | 'X' => {}
            'S' if !investments => rec.splits.push(Split { category: Some(value), ..Split::default() }),
            'E' if !investments => match rec.splits.last_mut() {
                Some(split) if split.memo.is_none() && split.amount.is_none() => split.memo = Some(value),
                _ => rec.splits.push(Split { memo: Some(value), ..Split::default() }),
            },
            '$' if !investments => match rec.splits.last_mut() {
                Some(split) if split.amount.is_none() => split.amount = Some(field),
                _ => rec.splits.push(Split { amount: Some(field), ..Split::default() }),
            },
            'Y' if investments => duplicate = !keep_first(&mut rec.security, value),
            '$' | 'I' | 'Q' | 'O' if investments => {}
            _ => known = false,
        }
        if !known {
            if !self.unknown_codes.contains(&code) {
                self.unknown_codes.push(code);
                self.warn(Kind::UnknownField, Some(line.number), || {
                    format!("ignored the unknown field code {code:?} (and any later lines with it)")
                });
            }
            return;
        }
        self.saw_fields = true;
        if self.record.first_line == 0 {
            self.record.first_line = line.number;
            self.record.offset = line.offset;
        }
        if duplicate {
            self.warn(Kind::Duplicate, Some(line.number), || {
                format!("a second {code} line in one record; the first one is kept")
            });
        }
    }

    fn account_field(&mut self, code: char, value: &'t str, line: usize) {
        self.saw_fields = true;
        let acc = &mut self.account;
        if acc.first_line == 0 {
            acc.first_line = line;
        }
        // `L` (credit limit), `$` and `/` (a statement balance and its date, as of some earlier
        // reconciliation) are not this file's balances and are not kept.
        match code {
            'N' => acc.name = Some(value),
            'T' => acc.kind = Some(value),
            'D' => acc.description = Some(value),
            _ => {}
        }
    }

    fn finish_account(&mut self) {
        let acc = std::mem::take(&mut self.account);
        let info = AccountInfo {
            id: acc.name.and_then(clean).unwrap_or_else(|| self.default_id.clone()),
            kind: acc.kind.and_then(clean),
            description: acc.description.and_then(clean),
        };
        if self.autoswitch {
            if !self.listed.iter().any(|a| a.id == info.id) {
                self.listed.push(info);
            }
        } else {
            let investments = info.kind.as_deref().is_some_and(is_investment_kind);
            self.find_or_create(&info.id, investments, info.kind.as_deref(), info.description.as_deref());
            self.selected = Some(info);
            self.current = None;
        }
    }

    fn find_or_create(&mut self, id: &str, investments: bool, kind: Option<&str>, name: Option<&str>) -> usize {
        let found = self
            .statements
            .iter()
            .zip(&self.investments)
            .position(|(s, inv)| s.account.id == id && *inv == investments);
        if let Some(i) = found {
            return i;
        }
        let account = AccountIdent {
            id: id.to_string(),
            name: name.map(str::to_string),
            kind: kind.map(str::to_string),
            ..AccountIdent::default()
        };
        self.statements.push(Statement::new(account, self.currency));
        self.investments.push(investments);
        self.statements.len() - 1
    }

    /// The statement the current section's transactions go to.
    fn statement_index(&mut self, label: Option<&'t str>, investments: bool) -> usize {
        if let Some(i) = self.current {
            return i;
        }
        let (id, kind, name) = match &self.selected {
            Some(a) => (a.id.clone(), a.kind.clone().or_else(|| label.map(str::to_string)), a.description.clone()),
            None => (self.default_id.clone(), label.map(str::to_string), None),
        };
        let i = self.find_or_create(&id, investments, kind.as_deref(), name.as_deref());
        if self.statements[i].account.kind.is_none() {
            self.statements[i].account.kind = kind;
        }
        self.current = Some(i);
        i
    }

    fn amount(&self, field: Field<'t>, tag: &str) -> Result<Decimal, ParseError> {
        amounts::parse(field.value, self.separator).ok_or_else(|| {
            self.error(
                Some(field.line),
                ParseErrorKind::InvalidAmount,
                format!("found {:?}, expected an amount such as -1,234.56", excerpt(field.value)),
            )
            .at_column(2)
            .in_field(tag)
        })
    }

    fn finish_transaction(&mut self) -> Result<(), ParseError> {
        let mut rec = std::mem::take(&mut self.record);
        let built = self.build(&rec);
        // Keep the splits' buffer for the next record.
        rec.splits.clear();
        self.record.splits = rec.splits;
        if let Some((label, investments, txn)) = built? {
            let index = self.statement_index(label, investments);
            if let Some(statement) = self.statements.get_mut(index) {
                statement.transactions.push(txn);
            }
            self.transactions += 1;
            if self.transactions % PROGRESS_EVERY == 0 {
                self.source.report_progress(rec.offset);
            }
        }
        Ok(())
    }

    /// Turns a complete record into a transaction, or `None` when it is skipped (with a warning).
    #[allow(clippy::type_complexity)]
    fn build(&mut self, rec: &Record<'t>) -> Result<Option<(Option<&'t str>, bool, BankTransaction)>, ParseError> {
        let Section::Transactions { label, investments } = self.section else { return Ok(None) };
        let first = Some(rec.first_line);
        let Some(date_field) = rec.date else {
            if investments {
                self.warn(Kind::NoDate, first, || "skipped an investment record without a date (D line)".into());
                return Ok(None);
            }
            return Err(self
                .error(
                    first,
                    ParseErrorKind::MissingField,
                    "found a transaction record without a date, expected a D line (such as D12/31/2024) before its ^",
                )
                .in_field("D"));
        };
        let read = match self.last_date {
            Some((text, date)) if text == date_field.value => Some((date, "")),
            _ => dates::split_date(date_field.value)
                .and_then(|(raw, rest)| Some((dates::resolve(raw, self.order)?, rest))),
        };
        let Some((date, rest)) = read else {
            return Err(self
                .error(
                    Some(date_field.line),
                    ParseErrorKind::InvalidDate,
                    format!(
                        "found {:?}, expected a date such as 12/31/2024, 12/31'24 or 2024-12-31 (this file is read {})",
                        excerpt(date_field.value),
                        order_name(self.order)
                    ),
                )
                .at_column(2)
                .in_field("D"));
        };
        if rest.is_empty() {
            self.last_date = Some((date_field.value, date));
        } else {
            self.warn(Kind::DateText, Some(date_field.line), || "ignored the text after the date".into());
        }

        let action = if investments { rec.number.map(str::trim).filter(|a| !a.is_empty()) } else { None };
        let flow = match action.map_or(Some(CashFlow::AsWritten), invest::cash_flow) {
            Some(CashFlow::NoCash) => {
                self.warn(Kind::NoCash, first, || {
                    format!(
                        "skipped the investment record {:?}: it moves shares, not money",
                        action.unwrap_or_default()
                    )
                });
                return Ok(None);
            }
            Some(flow) => flow,
            None => {
                self.warn(Kind::UnknownAction, first, || {
                    format!(
                        "unknown investment action {:?}; its amount is taken as written",
                        excerpt(action.unwrap_or_default())
                    )
                });
                CashFlow::AsWritten
            }
        };

        let mut details = Vec::new();
        let mut split_total = Some(Decimal::ZERO);
        for split in &rec.splits {
            let amount = split.amount.map(|f| self.amount(f, "$")).transpose()?;
            split_total = split_total.zip(amount).and_then(|(sum, a)| sum.checked_add(a));
            let detail = TransactionDetail {
                amount: amount.map(|a| Money::new(a, self.currency)),
                reference: None,
                payee: None,
                counterparty_account: split.category.and_then(transfer_account),
                description: split.memo.and_then(clean),
            };
            if detail != TransactionDetail::default() {
                details.push(detail);
            }
        }

        let amount = match (rec.amount, rec.amount_u) {
            (Some(t), u) => {
                let amount = self.amount(t, "T")?;
                if let Some(u) = u {
                    if amounts::parse(u.value, self.separator) != Some(amount) {
                        self.warn(Kind::Duplicate, Some(u.line), || "the U amount differs from the T amount; T is used".into());
                    }
                }
                amount
            }
            (None, Some(u)) => self.amount(u, "U")?,
            (None, None) => match split_total.filter(|_| !rec.splits.is_empty()) {
                Some(total) => {
                    self.warn(Kind::NoAmount, first, || "no T line; the splits' total is the amount".into());
                    total
                }
                None if investments => {
                    self.warn(Kind::NoAmount, first, || "investment record without an amount; booked as 0".into());
                    Decimal::ZERO
                }
                None => {
                    return Err(self
                        .error(
                            first,
                            ParseErrorKind::MissingField,
                            "found a transaction record without an amount, expected a T line (such as T-12.34) before its ^",
                        )
                        .in_field("T"))
                }
            },
        };
        if let Some(total) = split_total.filter(|_| !rec.splits.is_empty()) {
            if total != amount {
                self.warn(Kind::SplitTotal, first, || format!("the splits add up to {total}, the line says {amount}"));
            }
        }
        let mut amount = match flow {
            CashFlow::In => amount.abs(),
            CashFlow::Out => -amount.abs(),
            CashFlow::AsWritten | CashFlow::NoCash => amount,
        };
        if amount.is_zero() {
            amount.set_sign_positive(true);
        }

        let mut txn = BankTransaction::new(date, Money::new(amount, self.currency));
        txn.payee = rec.payee.and_then(clean).map(Into::into);
        let memo = rec.memo.as_deref().and_then(clean);
        txn.description = match (memo, &txn.payee) {
            (Some(memo), _) => memo.into(),
            (None, Some(payee)) => payee.clone(),
            (None, None) => match action {
                Some(action) => text::squash_ws(&format!("{action} {}", rec.security.unwrap_or_default())).into(),
                None => Box::default(),
            },
        };
        if investments {
            txn.bank_code = action.map(Into::into);
        } else if let Some(number) = rec.number.and_then(clean) {
            if number.bytes().all(|b| b.is_ascii_digit()) {
                txn.check_number = Some(number.into());
            } else {
                txn.reference = Some(number.into());
            }
        }
        // Quicken's opening balance record names the account itself in brackets.
        let opening = txn.payee.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("Opening Balance"));
        if !opening {
            txn.counterparty_account = rec.category.and_then(transfer_account).map(Into::into);
        }
        txn.details = details.into();
        Ok(Some((label, investments, txn)))
    }

    fn finish(mut self) -> Result<Parsed, ParseError> {
        if !self.saw_header && !self.saw_end {
            let (line, text) = self.first_content.unwrap_or((1, ""));
            return Err(self.error(
                Some(line),
                ParseErrorKind::Syntax,
                format!(
                    "found {:?}, expected QIF: a header such as !Type:Bank, or records ending with a ^ line",
                    excerpt(text)
                ),
            ));
        }
        self.close_record(None, false)?;
        if self.statements.is_empty() {
            if !self.listed.is_empty() {
                self.warn(Kind::Reading, None, || "the file lists accounts but holds no transactions".into());
                for info in std::mem::take(&mut self.listed) {
                    let investments = info.kind.as_deref().is_some_and(is_investment_kind);
                    self.find_or_create(&info.id, investments, info.kind.as_deref(), info.description.as_deref());
                }
            } else if self.saw_fields {
                self.warn(Kind::Reading, None, || {
                    "the file holds no transactions, only lists or skipped records".into()
                });
            } else {
                return Err(self.error(
                    None,
                    ParseErrorKind::Empty,
                    "found no transactions, accounts or lists, expected records ending with ^ after a header such \
                     as !Type:Bank",
                ));
            }
        }
        Ok(Parsed { statements: self.statements, warnings: self.warnings.finish() })
    }
}
