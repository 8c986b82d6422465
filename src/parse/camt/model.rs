//! The camt element vocabulary and the state machine that turns element values into statements,
//! balances, entries and their transaction details.

use std::collections::HashSet;

use chrono::NaiveDate;
use quick_xml::events::BytesStart;
use rust_decimal::Decimal;

use crate::domain::{AccountIdent, BankTransaction, Currency, Money, Statement, TransactionDetail};
use crate::parse::text::{self, DateOrder};
use crate::parse::{Format, ParseError, ParseErrorKind, Parsed, Source, Warning};

/// Entries between two progress reports.
const PROGRESS_EVERY: usize = 4096;

/// Which message a document carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// camt.053 `BkToCstmrStmt`.
    Statement,
    /// camt.052 `BkToCstmrAcctRpt`.
    Report,
    /// camt.054 `BkToCstmrDbtCdtNtfctn`.
    Notification,
}

/// The elements the parser cares about; everything else is `Other`, which still takes its place in
/// the path so that `Ntry/Other/Amt` is never mistaken for `Ntry/Amt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum El {
    Document,
    Container(Kind),
    /// `Stmt`, `Rpt` or `Ntfctn`.
    Report,
    Id,
    Acct,
    Iban,
    Othr,
    PrtryAcct,
    Bban,
    Ccy,
    Ownr,
    Nm,
    Svcr,
    FinInstnId,
    Bic,
    ClrSysMmbId,
    MmbId,
    Tp,
    Cd,
    Prtry,
    FrToDt,
    FrDt,
    ToDt,
    Bal,
    CdOrPrtry,
    Amt,
    CdtDbtInd,
    /// `Dt` or `DtTm`: only the calendar date is kept.
    Dt,
    Ntry,
    NtryRef,
    Sts,
    BookgDt,
    ValDt,
    AcctSvcrRef,
    BkTxCd,
    Domn,
    Fmly,
    SubFmlyCd,
    AddtlNtryInf,
    NtryDtls,
    TxDtls,
    Refs,
    EndToEndId,
    ChqNb,
    AmtDtls,
    TxAmt,
    RltdPties,
    Dbtr,
    Cdtr,
    UltmtDbtr,
    UltmtCdtr,
    Pty,
    DbtrAcct,
    CdtrAcct,
    RmtInf,
    Ustrd,
    Strd,
    CdtrRefInf,
    Ref,
    AddtlTxInf,
    TxsSummry,
    TtlNtries,
    NbOfNtries,
    Other,
}

impl El {
    /// Maps a local element name to its meaning.
    pub(super) fn from_name(name: &[u8]) -> El {
        match name {
            b"Document" => El::Document,
            b"Stmt" | b"Rpt" | b"Ntfctn" => El::Report,
            b"Id" => El::Id,
            b"Acct" => El::Acct,
            b"IBAN" => El::Iban,
            b"Othr" => El::Othr,
            b"PrtryAcct" => El::PrtryAcct,
            b"BBAN" => El::Bban,
            b"Ccy" => El::Ccy,
            b"Ownr" => El::Ownr,
            b"Nm" => El::Nm,
            b"Svcr" => El::Svcr,
            b"FinInstnId" => El::FinInstnId,
            b"BIC" | b"BICFI" => El::Bic,
            b"ClrSysMmbId" => El::ClrSysMmbId,
            b"MmbId" => El::MmbId,
            b"Tp" => El::Tp,
            b"Cd" => El::Cd,
            b"Prtry" => El::Prtry,
            b"FrToDt" => El::FrToDt,
            b"FrDtTm" | b"FrDt" => El::FrDt,
            b"ToDtTm" | b"ToDt" => El::ToDt,
            b"Bal" => El::Bal,
            b"CdOrPrtry" => El::CdOrPrtry,
            b"Amt" => El::Amt,
            b"CdtDbtInd" => El::CdtDbtInd,
            b"Dt" | b"DtTm" => El::Dt,
            b"Ntry" => El::Ntry,
            b"NtryRef" => El::NtryRef,
            b"Sts" => El::Sts,
            b"BookgDt" => El::BookgDt,
            b"ValDt" => El::ValDt,
            b"AcctSvcrRef" => El::AcctSvcrRef,
            b"BkTxCd" => El::BkTxCd,
            b"Domn" => El::Domn,
            b"Fmly" => El::Fmly,
            b"SubFmlyCd" => El::SubFmlyCd,
            b"AddtlNtryInf" => El::AddtlNtryInf,
            b"NtryDtls" => El::NtryDtls,
            b"TxDtls" => El::TxDtls,
            b"Refs" => El::Refs,
            b"EndToEndId" => El::EndToEndId,
            b"ChqNb" => El::ChqNb,
            b"AmtDtls" => El::AmtDtls,
            b"TxAmt" => El::TxAmt,
            b"RltdPties" => El::RltdPties,
            b"Dbtr" => El::Dbtr,
            b"Cdtr" => El::Cdtr,
            b"UltmtDbtr" => El::UltmtDbtr,
            b"UltmtCdtr" => El::UltmtCdtr,
            b"Pty" => El::Pty,
            b"DbtrAcct" => El::DbtrAcct,
            b"CdtrAcct" => El::CdtrAcct,
            b"RmtInf" => El::RmtInf,
            b"Ustrd" => El::Ustrd,
            b"Strd" => El::Strd,
            b"CdtrRefInf" => El::CdtrRefInf,
            b"Ref" => El::Ref,
            b"AddtlTxInf" => El::AddtlTxInf,
            b"TxsSummry" => El::TxsSummry,
            b"TtlNtries" => El::TtlNtries,
            b"NbOfNtries" => El::NbOfNtries,
            // Version 1 messages carry a suffix (`BkToCstmrStmtV01`).
            n if n.starts_with(b"BkToCstmrStmt") => El::Container(Kind::Statement),
            n if n.starts_with(b"BkToCstmrAcctRpt") => El::Container(Kind::Report),
            n if n.starts_with(b"BkToCstmrDbtCdtNtfctn") => El::Container(Kind::Notification),
            _ => El::Other,
        }
    }

    /// A readable name for messages.
    pub(super) fn name(&self) -> &'static str {
        match self {
            El::Document => "Document",
            El::Container(Kind::Statement) => "BkToCstmrStmt",
            El::Container(Kind::Report) => "BkToCstmrAcctRpt",
            El::Container(Kind::Notification) => "BkToCstmrDbtCdtNtfctn",
            El::Report => "Stmt",
            El::Ntry => "Ntry",
            El::TxDtls => "TxDtls",
            El::Bal => "Bal",
            El::Acct => "Acct",
            El::Amt => "Amt",
            _ => "an element",
        }
    }
}

/// What every error and warning needs: the file, its format and its decoded text.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub(super) source: &'a Source<'a>,
    pub(super) format: Format,
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    /// An error at a byte offset of the decoded text, with its line and column.
    pub(super) fn error_at(&self, offset: usize, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        let (line, column) = text::line_col(self.text.as_bytes(), offset);
        self.source.error(self.format, Some(line), kind, message).at_column(column)
    }
}

/// Line numbers for warnings without rescanning the file each time: offsets asked for are close to
/// each other, so only the bytes between the last offset and the new one are counted.
struct LineCounter {
    pos: usize,
    line: usize,
}

impl LineCounter {
    fn line(&mut self, text: &[u8], offset: usize) -> usize {
        let offset = offset.min(text.len());
        if offset >= self.pos {
            self.line += text.get(self.pos..offset).map_or(0, |s| memchr::memchr_iter(b'\n', s).count());
        } else {
            self.line -= text.get(offset..self.pos).map_or(0, |s| memchr::memchr_iter(b'\n', s).count());
        }
        self.pos = offset;
        self.line
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Credit,
    Debit,
}

impl Sign {
    fn apply(self, amount: Decimal) -> Decimal {
        match self {
            Sign::Credit => amount,
            Sign::Debit => -amount,
        }
    }
}

/// An amount as written: unsigned value and its currency (`None` when absent or `XXX`).
#[derive(Debug, Clone, Copy)]
struct Amount {
    value: Decimal,
    currency: Option<Currency>,
}

#[derive(Default)]
struct BalanceBuilder {
    at: usize,
    code: Option<String>,
    amount: Option<Amount>,
    sign: Option<Sign>,
}

/// A balance kept until the statement ends, when the codes present decide which is which.
struct Balance {
    code: String,
    money: Money,
    line: usize,
}

#[derive(Default)]
struct EntryBuilder {
    at: usize,
    ntry_ref: Option<String>,
    amount: Option<Amount>,
    sign: Option<Sign>,
    status: Option<String>,
    booking: Option<NaiveDate>,
    value: Option<NaiveDate>,
    acct_svcr_ref: Option<String>,
    domain: Option<String>,
    family: Option<String>,
    sub_family: Option<String>,
    proprietary: Option<String>,
    info: Option<String>,
    details: Vec<DetailBuilder>,
}

/// Party slots of `RltdPties`, in the order they are looked up.
const DBTR: usize = 0;
const CDTR: usize = 1;
const ULTMT_DBTR: usize = 2;
const ULTMT_CDTR: usize = 3;

#[derive(Default)]
struct DetailBuilder {
    end_to_end: Option<String>,
    acct_svcr_ref: Option<String>,
    check: Option<String>,
    amount: Option<Amount>,
    tx_amount: Option<Amount>,
    sign: Option<Sign>,
    names: [Option<String>; 4],
    accounts: [Option<String>; 2],
    unstructured: String,
    structured_ref: Option<String>,
    info: Option<String>,
}

impl DetailBuilder {
    fn reference(&self) -> Option<String> {
        self.end_to_end.clone().or_else(|| self.structured_ref.clone())
    }

    /// Name and account of the counterparty: the debtor of a credit, the creditor of a debit.
    fn counterparty(&self, sign: Sign) -> (Option<String>, Option<String>) {
        let (own, ultimate, account, other, other_ultimate, other_account) = match sign {
            Sign::Credit => (DBTR, ULTMT_DBTR, 0, CDTR, ULTMT_CDTR, 1),
            Sign::Debit => (CDTR, ULTMT_CDTR, 1, DBTR, ULTMT_DBTR, 0),
        };
        let pick = |name: usize, ultimate: usize, account: usize| {
            let name = self.names.get(name).cloned().flatten().or_else(|| self.names.get(ultimate).cloned().flatten());
            (name, self.accounts.get(account).cloned().flatten())
        };
        let (name, account_id) = pick(own, ultimate, account);
        if name.is_none() && account_id.is_none() {
            pick(other, other_ultimate, other_account)
        } else {
            (name, account_id)
        }
    }
}

#[derive(Default)]
struct StatementBuilder {
    at: usize,
    id: Option<String>,
    iban: Option<String>,
    other_id: Option<String>,
    account_currency: Option<Currency>,
    first_currency: Option<Currency>,
    account_name: Option<String>,
    owner_name: Option<String>,
    account_kind: Option<String>,
    bic: Option<String>,
    bank_id: Option<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    balances: Vec<Balance>,
    transactions: Vec<BankTransaction>,
    ids: HashSet<String>,
    entries_seen: usize,
    stated_entries: Option<(usize, usize)>,
}

impl StatementBuilder {
    /// The currency known so far (the account's, else the first amount's).
    fn known_currency(&self) -> Option<Currency> {
        self.account_currency.or(self.first_currency)
    }

    /// Money for an amount of this statement; an unstated currency stays `XXX` until the statement
    /// ends and its currency is known.
    fn money(&mut self, amount: Amount, sign: Sign) -> Money {
        if self.first_currency.is_none() {
            self.first_currency = amount.currency;
        }
        Money::new(sign.apply(amount.value), amount.currency.unwrap_or(Currency::XXX))
    }
}

/// The parser's state between XML events.
pub(super) struct State<'a> {
    cx: Ctx<'a>,
    lines: LineCounter,
    kind: Option<Kind>,
    stmt: Option<StatementBuilder>,
    entry: EntryBuilder,
    detail: DetailBuilder,
    balance: BalanceBuilder,
    amount_currency: Option<Currency>,
    last_currency: Option<Currency>,
    parsed: Parsed,
    entries: usize,
}

/// The value every part of a batch has in common (a batch without its own text is still described
/// by what all its parts share).
fn shared(details: &[TransactionDetail], field: impl Fn(&TransactionDetail) -> Option<&String>) -> Option<String> {
    let first = details.first().and_then(&field)?;
    details.iter().all(|d| field(d) == Some(first)).then(|| first.clone())
}

/// Trimmed text, or `None` when blank.
fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// Like [`non_empty`], also dropping the `NOTPROVIDED` and `NONREF` placeholders banks write into
/// mandatory fields.
fn provided(v: &str) -> Option<String> {
    non_empty(v).filter(|s| !s.eq_ignore_ascii_case("NOTPROVIDED") && !s.eq_ignore_ascii_case("NONREF"))
}

/// Appends `v` to `out` with a single space between parts.
fn append(out: &mut String, v: &str) {
    let v = v.trim();
    if v.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(v);
}

/// The calendar date of an ISO date or date-time as written (`2024-03-01`, `2024-03-01+02:00`,
/// `2024-03-01T10:00:00Z`).
///
/// One exception: a UTC time of exactly 20:00, 21:00, 22:00 or 23:00 is the next day. Banks east of
/// Greenwich that store booking days as local midnight and export them in UTC write
/// `2014-01-04T23:00:00.000Z` for the 5th of January; a real booking at a round hour to the
/// millisecond is far less likely than that conversion.
pub(super) fn parse_date(v: &str) -> Option<NaiveDate> {
    let v = v.trim();
    let day = v.get(..10)?;
    let rest = v.get(10..)?;
    if !(rest.is_empty() || rest.starts_with(['T', 'Z', '+', '-'])) {
        return None;
    }
    let b = day.as_bytes();
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let date = text::date_from_fields(text::date_fields(day)?, DateOrder::Ymd, 4)?;
    if is_utc_local_midnight(rest) {
        return date.succ_opt();
    }
    Some(date)
}

/// `T2h:00:00[.000…]Z` (or `+00:00`) with `h` from 0 to 3: see [`parse_date`].
fn is_utc_local_midnight(time: &str) -> bool {
    let Some(rest) = time.strip_prefix("T2") else { return false };
    let Some(rest) = rest.strip_prefix(['0', '1', '2', '3']) else { return false };
    let Some(rest) = rest.strip_prefix(":00:00") else { return false };
    let rest = match rest.strip_prefix('.') {
        Some(fraction) => fraction.trim_start_matches('0'),
        None => rest,
    };
    rest == "Z" || rest == "+00:00"
}

/// An amount as the schema writes it: digits with an optional decimal point.
fn parse_decimal(v: &str) -> Option<Decimal> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+') {
        return None;
    }
    Decimal::from_str_exact(v).ok()
}

impl<'a> State<'a> {
    pub(super) fn new(cx: Ctx<'a>) -> Self {
        State {
            cx,
            lines: LineCounter { pos: 0, line: 1 },
            kind: None,
            stmt: None,
            entry: EntryBuilder::default(),
            detail: DetailBuilder::default(),
            balance: BalanceBuilder::default(),
            amount_currency: None,
            last_currency: None,
            parsed: Parsed::default(),
            entries: 0,
        }
    }

    pub(super) fn set_kind(&mut self, kind: Kind) {
        self.kind = Some(kind);
    }

    fn line(&mut self, offset: usize) -> usize {
        self.lines.line(self.cx.text.as_bytes(), offset)
    }

    /// A warning at a byte offset, attached to the statement being read.
    pub(super) fn warn_at(&mut self, offset: usize, message: impl Into<String>) {
        let line = self.line(offset);
        let statement = self.stmt.as_ref().map(|_| self.parsed.statements.len());
        self.parsed.warnings.push(Warning { line: Some(line), statement, message: message.into() });
    }

    pub(super) fn start_statement(&mut self, at: usize) {
        self.stmt = Some(StatementBuilder { at, ..StatementBuilder::default() });
    }

    /// An element that starts a record (or carries attributes) opened at `at`.
    pub(super) fn open(&mut self, rel: &[El], e: &BytesStart<'_>, at: usize) -> Result<(), ParseError> {
        use El::*;
        match rel {
            [Ntry] => self.entry = EntryBuilder { at, ..EntryBuilder::default() },
            [Ntry, NtryDtls, TxDtls] | [Ntry, TxDtls] => self.detail = DetailBuilder::default(),
            [Bal] => self.balance = BalanceBuilder { at, ..BalanceBuilder::default() },
            // Only the amounts that are read: a bad code on a charge or counter-value amount must
            // not refuse the file.
            [Bal, Amt]
            | [Ntry, Amt]
            | [Ntry, NtryDtls, TxDtls, Amt]
            | [Ntry, TxDtls, Amt]
            | [Ntry, NtryDtls, TxDtls, AmtDtls, TxAmt, Amt]
            | [Ntry, TxDtls, AmtDtls, TxAmt, Amt] => self.amount_currency = self.currency_attribute(e, at)?,
            _ => {}
        }
        Ok(())
    }

    /// The `Ccy` attribute of an amount; `XXX` ("no currency") counts as absent.
    fn currency_attribute(&mut self, e: &BytesStart<'_>, at: usize) -> Result<Option<Currency>, ParseError> {
        let Some(attr) = e.attributes().flatten().find(|a| a.key.local_name().as_ref() == b"Ccy") else {
            return Ok(None);
        };
        let raw = String::from_utf8_lossy(&attr.value);
        let code = raw.trim();
        if let Some(last) = self.last_currency.filter(|c| c.code() == code) {
            return Ok((!last.is_unknown()).then_some(last));
        }
        let currency = Currency::new(code).map_err(|_| {
            self.cx
                .error_at(
                    at,
                    ParseErrorKind::InvalidCurrency,
                    format!("found currency {code:?}, expected an ISO 4217 code such as EUR"),
                )
                .in_field("Ccy")
        })?;
        self.last_currency = Some(currency);
        Ok((!currency.is_unknown()).then_some(currency))
    }

    fn amount(&self, v: &str, at: usize) -> Result<Amount, ParseError> {
        let value = parse_decimal(v).ok_or_else(|| {
            self.cx
                .error_at(
                    at,
                    ParseErrorKind::InvalidAmount,
                    format!("found amount {:?}, expected a decimal such as 1234.56", v.trim()),
                )
                .in_field("Amt")
        })?;
        Ok(Amount { value, currency: self.amount_currency })
    }

    fn sign(&self, v: &str, at: usize) -> Result<Sign, ParseError> {
        match v.trim() {
            "CRDT" => Ok(Sign::Credit),
            "DBIT" => Ok(Sign::Debit),
            other => Err(self
                .cx
                .error_at(
                    at,
                    ParseErrorKind::Syntax,
                    format!("found credit/debit indicator {other:?}, expected CRDT or DBIT"),
                )
                .in_field("CdtDbtInd")),
        }
    }

    fn date(&self, v: &str, at: usize, field: &str) -> Result<NaiveDate, ParseError> {
        parse_date(v).ok_or_else(|| {
            self.cx
                .error_at(
                    at,
                    ParseErrorKind::InvalidDate,
                    format!("found date {:?}, expected YYYY-MM-DD or an ISO date-time", v.trim()),
                )
                .in_field(field)
        })
    }

    /// A leaf (or record) element of the current statement closed; `rel` is its path below the
    /// statement element, `v` its text, `at` where it started.
    pub(super) fn close(&mut self, rel: &[El], v: &str, at: usize) -> Result<(), ParseError> {
        use El::*;
        match rel {
            [Ntry] => return self.finish_entry(),
            [Ntry, rest @ ..] => return self.close_entry_field(rest, v, at),
            [Bal] => return self.finish_balance(),
            [Bal, Tp, CdOrPrtry, Cd] | [Bal, Tp, Cd] => self.balance.code = non_empty(v),
            [Bal, Amt] => self.balance.amount = Some(self.amount(v, at)?),
            [Bal, CdtDbtInd] => self.balance.sign = Some(self.sign(v, at)?),
            [FrToDt, FrDt] => {
                let d = self.date(v, at, "FrDtTm")?;
                if let Some(s) = self.stmt.as_mut() {
                    s.from = Some(d);
                }
            }
            [FrToDt, ToDt] => {
                let d = self.date(v, at, "ToDtTm")?;
                if let Some(s) = self.stmt.as_mut() {
                    s.to = Some(d);
                }
            }
            [Acct, Ccy] => {
                let code = v.trim();
                let currency = Currency::new(code).map_err(|_| {
                    self.cx
                        .error_at(
                            at,
                            ParseErrorKind::InvalidCurrency,
                            format!("found account currency {code:?}, expected an ISO 4217 code"),
                        )
                        .in_field("Ccy")
                })?;
                if let Some(s) = self.stmt.as_mut() {
                    s.account_currency = (!currency.is_unknown()).then_some(currency);
                }
            }
            [TxsSummry, TtlNtries, NbOfNtries] => {
                let count = v.trim().parse::<usize>().ok();
                let line = self.line(at);
                if let (Some(s), Some(count)) = (self.stmt.as_mut(), count) {
                    s.stated_entries = Some((count, line));
                }
            }
            _ => {
                let Some(s) = self.stmt.as_mut() else { return Ok(()) };
                match rel {
                    [Id] => s.id = non_empty(v),
                    [Acct, Id, Iban] => s.iban = non_empty(v),
                    [Acct, Id, Othr | PrtryAcct, Id] | [Acct, Id, Bban] if s.other_id.is_none() => {
                        s.other_id = non_empty(v)
                    }
                    [Acct, Nm] => s.account_name = non_empty(v),
                    [Acct, Ownr, Nm] => s.owner_name = non_empty(v),
                    [Acct, Tp, Cd | Prtry] => s.account_kind = non_empty(v),
                    [Acct, Svcr, FinInstnId, Bic] => s.bic = non_empty(v),
                    [Acct, Svcr, FinInstnId, ClrSysMmbId, MmbId] => s.bank_id = non_empty(v),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn close_entry_field(&mut self, rel: &[El], v: &str, at: usize) -> Result<(), ParseError> {
        use El::*;
        match rel {
            [NtryDtls, TxDtls] | [TxDtls] => {
                let detail = std::mem::take(&mut self.detail);
                self.entry.details.push(detail);
            }
            [NtryDtls, TxDtls, rest @ ..] | [TxDtls, rest @ ..] => self.close_detail_field(rest, v, at)?,
            [Amt] => self.entry.amount = Some(self.amount(v, at)?),
            [CdtDbtInd] => self.entry.sign = Some(self.sign(v, at)?),
            [Sts] | [Sts, Cd] => {
                if let Some(s) = non_empty(v) {
                    self.entry.status = Some(s);
                }
            }
            [BookgDt, Dt] => self.entry.booking = Some(self.date(v, at, "BookgDt")?),
            [ValDt, Dt] => self.entry.value = Some(self.date(v, at, "ValDt")?),
            [NtryRef] => self.entry.ntry_ref = provided(v),
            [AcctSvcrRef] => self.entry.acct_svcr_ref = provided(v),
            [BkTxCd, Domn, Cd] => self.entry.domain = non_empty(v),
            [BkTxCd, Domn, Fmly, Cd] => self.entry.family = non_empty(v),
            [BkTxCd, Domn, Fmly, SubFmlyCd] => self.entry.sub_family = non_empty(v),
            [BkTxCd, Prtry, Cd] => self.entry.proprietary = non_empty(v),
            [AddtlNtryInf] => {
                let info = self.entry.info.get_or_insert_with(String::new);
                append(info, v);
            }
            _ => {}
        }
        Ok(())
    }

    fn close_detail_field(&mut self, rel: &[El], v: &str, at: usize) -> Result<(), ParseError> {
        use El::*;
        let party = |el: &El| match el {
            Dbtr => Some(DBTR),
            Cdtr => Some(CDTR),
            UltmtDbtr => Some(ULTMT_DBTR),
            UltmtCdtr => Some(ULTMT_CDTR),
            _ => None,
        };
        match rel {
            [Amt] => self.detail.amount = Some(self.amount(v, at)?),
            [AmtDtls, TxAmt, Amt] => self.detail.tx_amount = Some(self.amount(v, at)?),
            [CdtDbtInd] => self.detail.sign = Some(self.sign(v, at)?),
            [Refs, EndToEndId] => self.detail.end_to_end = provided(v),
            [Refs, AcctSvcrRef] => self.detail.acct_svcr_ref = provided(v),
            [Refs, ChqNb] => self.detail.check = provided(v),
            [RltdPties, p, Nm] | [RltdPties, p, Pty, Nm] => {
                if let Some(slot) = party(p).and_then(|i| self.detail.names.get_mut(i)) {
                    if slot.is_none() {
                        *slot = non_empty(v);
                    }
                }
            }
            [RltdPties, a @ (DbtrAcct | CdtrAcct), Id, Iban] | [RltdPties, a @ (DbtrAcct | CdtrAcct), Id, Othr, Id] => {
                let i = usize::from(*a == CdtrAcct);
                if let Some(slot) = self.detail.accounts.get_mut(i) {
                    if slot.is_none() {
                        *slot = non_empty(v);
                    }
                }
            }
            [RmtInf, Ustrd] => append(&mut self.detail.unstructured, v),
            [RmtInf, Strd, CdtrRefInf, Ref] if self.detail.structured_ref.is_none() => {
                self.detail.structured_ref = provided(v)
            }
            [AddtlTxInf] => {
                let info = self.detail.info.get_or_insert_with(String::new);
                append(info, v);
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_balance(&mut self) -> Result<(), ParseError> {
        let b = std::mem::take(&mut self.balance);
        let line = self.line(b.at);
        let Some(code) = b.code else {
            // Proprietary balance types have no agreed meaning; they are not used.
            return Ok(());
        };
        let amount = b.amount.ok_or_else(|| {
            self.cx
                .error_at(
                    b.at,
                    ParseErrorKind::MissingField,
                    format!("found balance {code} without <Amt>, expected its amount"),
                )
                .in_field("Bal")
        })?;
        let sign = match b.sign {
            Some(s) => s,
            None if amount.value.is_zero() => Sign::Credit,
            None => {
                return Err(self
                    .cx
                    .error_at(
                        b.at,
                        ParseErrorKind::MissingField,
                        format!("found balance {code} without <CdtDbtInd>, expected CRDT or DBIT"),
                    )
                    .in_field("CdtDbtInd"))
            }
        };
        if let Some(s) = self.stmt.as_mut() {
            let money = s.money(amount, sign);
            s.balances.push(Balance { code: code.to_ascii_uppercase(), money, line });
        }
        Ok(())
    }

    fn finish_entry(&mut self) -> Result<(), ParseError> {
        let e = std::mem::take(&mut self.entry);
        self.entries += 1;
        if self.entries % PROGRESS_EVERY == 0 {
            self.cx.source.report_progress(e.at);
        }
        if let Some(s) = self.stmt.as_mut() {
            s.entries_seen += 1;
        }
        match e.status.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("BOOK") => {}
            None => self.warn_at(e.at, "entry has no <Sts>; taken as booked"),
            Some("PDNG") if self.kind == Some(Kind::Report) => {
                self.warn_at(e.at, "pending (PDNG) entry of an intraday report imported; it is not booked yet");
            }
            Some(other) => {
                self.warn_at(
                    e.at,
                    format!("entry with status {other} skipped: only booked (BOOK) entries are imported"),
                );
                return Ok(());
            }
        }
        let amount = e.amount.ok_or_else(|| {
            self.cx
                .error_at(e.at, ParseErrorKind::MissingField, "found an entry without <Amt>, expected its amount")
                .in_field("Ntry")
        })?;
        let sign = match e.sign {
            Some(s) => s,
            None if amount.value.is_zero() => Sign::Credit,
            None => {
                return Err(self
                    .cx
                    .error_at(
                        e.at,
                        ParseErrorKind::MissingField,
                        "found an entry without <CdtDbtInd>, expected CRDT or DBIT",
                    )
                    .in_field("CdtDbtInd"))
            }
        };
        if amount.value.is_sign_negative() && !amount.value.is_zero() {
            self.warn_at(e.at, "entry amount is negative although <CdtDbtInd> gives the direction; both signs applied");
        }
        let booking = match (e.booking, e.value) {
            (Some(d), _) => d,
            (None, Some(d)) => {
                self.warn_at(e.at, "booked entry has no <BookgDt>; its value date is used");
                d
            }
            (None, None) => {
                return Err(self
                    .cx
                    .error_at(
                        e.at,
                        ParseErrorKind::MissingField,
                        "found a booked entry without <BookgDt> or <ValDt>, expected its booking date",
                    )
                    .in_field("BookgDt"))
            }
        };
        let known = self.stmt.as_ref().and_then(StatementBuilder::known_currency);
        if let (Some(stated), Some(own)) = (known, amount.currency) {
            if stated != own {
                self.warn_at(e.at, format!("entry amount is in {own}, the statement in {stated}"));
            }
        }
        let Some(s) = self.stmt.as_mut() else { return Ok(()) };
        let money = s.money(amount, sign);
        let mut t = BankTransaction::new(booking, money);
        t.value_date = e.value.filter(|d| *d != booking);
        t.bank_code = match (&e.domain, &e.proprietary) {
            (Some(domain), _) => {
                let mut code = domain.clone();
                for part in [&e.family, &e.sub_family].into_iter().flatten() {
                    code.push('-');
                    code.push_str(part);
                }
                Some(code.into())
            }
            (None, p) => p.as_deref().map(Into::into),
        };
        let mut description = e.info.as_deref().map(text::squash_ws).unwrap_or_default();
        if let [d] = e.details.as_slice() {
            let (payee, account) = d.counterparty(sign);
            t.payee = payee.map(Into::into);
            t.counterparty_account = account.map(Into::into);
            t.reference = d.reference().map(Into::into);
            t.check_number = d.check.as_deref().map(Into::into);
            let remittance = text::squash_ws(&d.unstructured);
            if !remittance.is_empty() && !description.contains(&remittance) {
                append(&mut description, &remittance);
            }
            if description.is_empty() {
                if let Some(info) = &d.info {
                    description = text::squash_ws(info);
                }
            }
        } else {
            t.details = e
                .details
                .iter()
                .map(|d| {
                    let detail_sign = d.sign.unwrap_or(sign);
                    let (payee, account) = d.counterparty(sign);
                    let unstructured = text::squash_ws(&d.unstructured);
                    TransactionDetail {
                        amount: d
                            .tx_amount
                            .or(d.amount)
                            .map(|a| Money::new(detail_sign.apply(a.value), a.currency.unwrap_or(Currency::XXX))),
                        reference: d.reference(),
                        payee,
                        counterparty_account: account,
                        description: (!unstructured.is_empty()).then_some(unstructured),
                    }
                })
                .collect();
            if description.is_empty() {
                description = shared(&t.details, |d| d.description.as_ref()).unwrap_or_default();
            }
            t.payee = shared(&t.details, |d| d.payee.as_ref()).map(Into::into);
            t.counterparty_account = shared(&t.details, |d| d.counterparty_account.as_ref()).map(Into::into);
        }
        t.description = description.into();
        let id = e.acct_svcr_ref.or(e.ntry_ref).or_else(|| e.details.iter().find_map(|d| d.acct_svcr_ref.clone()));
        let mut duplicate = None;
        if let Some(id) = id {
            if s.ids.insert(id.clone()) {
                t = t.with_bank_id(id);
            } else {
                duplicate = Some(id);
            }
        }
        s.transactions.push(t);
        if let Some(id) = duplicate {
            self.warn_at(e.at, format!("bank reference {id:?} repeats an earlier entry of this statement; a fingerprint id is used instead"));
        }
        Ok(())
    }

    /// The statement element closed: decide balances and currency, and emit the [`Statement`].
    pub(super) fn finish_statement(&mut self) -> Result<(), ParseError> {
        let Some(s) = self.stmt.take() else { return Ok(()) };
        let index = self.parsed.statements.len();
        let start_line = self.line(s.at);
        let mut warn = |line: usize, message: String| {
            self.parsed.warnings.push(Warning { line: Some(line), statement: Some(index), message });
        };
        let currency = s.known_currency().unwrap_or_else(|| self.cx.source.fallback_currency());
        let fix = |m: Money| if m.currency().is_unknown() { Money::new(m.amount(), currency) } else { m };

        let id = s.iban.clone().or_else(|| s.other_id.clone()).unwrap_or_default();
        if id.is_empty() {
            warn(start_line, "statement has no account id (neither <IBAN> nor <Othr><Id>)".to_string());
        }
        let account = AccountIdent {
            id,
            iban: s.iban.clone(),
            bic: s.bic.clone(),
            bank_id: s.bank_id.clone(),
            name: s.owner_name.clone().or_else(|| s.account_name.clone()),
            kind: s.account_kind.clone(),
        };
        let mut statement = Statement::new(account, currency);
        statement.statement_id = s.id.clone();
        statement.start_date = s.from;
        statement.end_date = s.to;

        let first = |code: &str| s.balances.iter().find(|b| b.code == code);
        let last = |code: &str| s.balances.iter().rev().find(|b| b.code == code);
        let mut opening = first("OPBD").or_else(|| first("PRCD"));
        let mut closing = last("CLBD");
        let interim: Vec<&Balance> = s.balances.iter().filter(|b| b.code == "ITBD").collect();
        if self.kind == Some(Kind::Report) && opening.is_none() && closing.is_none() && interim.len() >= 2 {
            opening = interim.first().copied();
            closing = interim.last().copied();
        }
        let available = last("CLAV");
        for (label, balance) in [("opening", opening), ("closing", closing), ("available", available)] {
            if let Some(b) = balance {
                if b.money.currency() != currency && !b.money.currency().is_unknown() {
                    warn(
                        b.line,
                        format!("{label} balance {} is in {}, the statement in {currency}", b.code, b.money.currency()),
                    );
                }
            }
        }
        statement.opening_balance = opening.map(|b| fix(b.money));
        statement.closing_balance = closing.map(|b| fix(b.money));
        statement.available_balance = available.map(|b| fix(b.money));
        if let Some((stated, line)) = s.stated_entries {
            if stated != s.entries_seen {
                warn(line, format!("the summary states {stated} entries, the statement holds {}", s.entries_seen));
            }
        }
        let mut transactions = s.transactions;
        for t in &mut transactions {
            t.amount = fix(t.amount);
            for d in &mut t.details {
                d.amount = d.amount.map(fix);
            }
        }
        statement.transactions = transactions;
        self.parsed.statements.push(statement);
        Ok(())
    }

    /// The result once the document ended; a document without any statement is refused.
    pub(super) fn into_parsed(self, namespace: Option<&str>) -> Result<Parsed, ParseError> {
        if !self.parsed.statements.is_empty() {
            return Ok(self.parsed);
        }
        let cx = self.cx;
        let error = |kind, message: String| cx.source.error(cx.format, None, kind, message);
        Err(match (namespace, self.kind) {
            (Some(ns), _) if !ns.contains("camt.05") => error(
                ParseErrorKind::Unsupported,
                format!("found XML in namespace {ns:?}, expected an ISO 20022 camt.052, camt.053 or camt.054 document"),
            ),
            (_, None) => error(
                ParseErrorKind::Unsupported,
                "found no BkToCstmrStmt, BkToCstmrAcctRpt or BkToCstmrDbtCdtNtfctn message, expected a camt document"
                    .into(),
            ),
            (_, Some(kind)) => error(
                ParseErrorKind::Empty,
                format!(
                    "found a {} message without any <{}>, expected at least one statement",
                    El::Container(kind).name(),
                    match kind {
                        Kind::Statement => "Stmt",
                        Kind::Report => "Rpt",
                        Kind::Notification => "Ntfctn",
                    }
                ),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_keep_the_calendar_day_as_written() {
        let d = NaiveDate::from_ymd_opt(2017, 4, 11);
        assert_eq!(parse_date("2017-04-11"), d);
        assert_eq!(parse_date(" 2017-04-11+02:00 "), d);
        assert_eq!(parse_date("2017-04-11T23:59:59.999Z"), d);
        assert_eq!(parse_date("2017-04-11Z"), d);
        assert_eq!(parse_date("11.04.2017"), None);
        assert_eq!(parse_date("2017-04-11x"), None);
        assert_eq!(parse_date("2017-02-30"), None);
        assert_eq!(parse_date("2017-ä4-11"), None);
        assert_eq!(parse_date("2017-04-11T21:30:00Z"), d);
        assert_eq!(parse_date("2017-04-11T23:00:00+01:00"), d);
    }

    #[test]
    fn a_local_midnight_written_in_utc_is_the_next_day() {
        let next = NaiveDate::from_ymd_opt(2014, 1, 5);
        assert_eq!(parse_date("2014-01-04T23:00:00.000Z"), next);
        assert_eq!(parse_date("2014-01-04T22:00:00Z"), next);
        assert_eq!(parse_date("2014-01-04T22:00:00+00:00"), next);
        assert_eq!(parse_date("2014-12-31T23:00:00Z"), NaiveDate::from_ymd_opt(2015, 1, 1));
    }

    #[test]
    fn schema_amounts_are_plain_decimals() {
        assert_eq!(parse_decimal("18.150").map(|d| d.to_string()).as_deref(), Some("18.150"));
        assert_eq!(parse_decimal(" 200000 ").map(|d| d.to_string()).as_deref(), Some("200000"));
        assert_eq!(parse_decimal("1,50"), None);
        assert_eq!(parse_decimal("1e5"), None);
        assert_eq!(parse_decimal(""), None);
    }

    #[test]
    fn version_one_container_names_are_recognised() {
        assert_eq!(El::from_name(b"BkToCstmrAcctRptV01"), El::Container(Kind::Report));
        assert_eq!(El::from_name(b"BkToCstmrStmt"), El::Container(Kind::Statement));
        assert_eq!(El::from_name(b"Foo"), El::Other);
    }

    #[test]
    fn line_counter_moves_both_ways() {
        let text = b"a\nb\nc\nd";
        let mut lines = LineCounter { pos: 0, line: 1 };
        assert_eq!(lines.line(text, 4), 3);
        assert_eq!(lines.line(text, 2), 2);
        assert_eq!(lines.line(text, 100), 4);
    }
}
