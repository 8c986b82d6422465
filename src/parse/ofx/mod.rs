//! OFX statement parser: OFX 1.x (SGML) and 2.x (XML), including Quicken QFX and QuickBooks QBO.
//!
//! One tolerant scanner (`lexer`) serves both dialects; this module streams its tags, keeps only
//! the stack of open aggregates and the statement and transaction being read, and turns bank
//! (`STMTRS`) and credit-card (`CCSTMTRS`) statements into domain [`Statement`]s. The cash lines of
//! an investment statement (`INVBANKTRAN`) are imported too; its trades are not.

mod lexer;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;

use chrono::NaiveDate;
use encoding_rs::Encoding;
use hashbrown::{DefaultHashBuilder, HashTable};
use rust_decimal::Decimal;

use super::text::{self, DateOrder, DecimalSeparator, LineIndex};
use super::{Format, ParseError, ParseErrorKind, Parsed, Source, Warning};
use crate::domain::{AccountIdent, BankTransaction, Currency, Money, Statement};
use lexer::{Lexer, Pos, Token};

/// Deeper nesting than any OFX response has; a cap keeps hostile input from growing the stack.
const MAX_DEPTH: usize = 256;
/// Progress is reported after this many transactions.
const PROGRESS_EVERY: usize = 4096;

/// Parses an OFX, QFX or QBO file.
pub fn parse(source: &Source<'_>) -> Result<Parsed, ParseError> {
    let text = text::decode(source.bytes, declared_encoding(source.bytes));
    Reader::new(source, &text).run()
}

/// The character set the file declares: the 1.x header's `ENCODING`/`CHARSET`, or the XML
/// declaration's `encoding`. Only the head of the file is looked at.
fn declared_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(4096)];
    let head = String::from_utf8_lossy(head);
    let upper_end = head.to_ascii_uppercase().find("<OFX").unwrap_or(head.len());
    let header = head.get(..upper_end).unwrap_or("");
    let mut encoding = None;
    let mut charset = None;
    for line in header.split(['\r', '\n']) {
        if let Some((key, value)) = line.split_once(':') {
            match key.trim().to_ascii_uppercase().as_str() {
                "ENCODING" => encoding = Some(value.trim().to_ascii_uppercase()),
                "CHARSET" => charset = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    if let Some(pos) = header.find("encoding=") {
        let rest = &header[pos + "encoding=".len()..];
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
        if let Some(q) = quote {
            let value = rest[1..].split(q).next().unwrap_or("");
            return text::encoding_for_label(value);
        }
    }
    match encoding.as_deref() {
        Some("UTF-8" | "UTF8" | "UNICODE") => Some(encoding_rs::UTF_8),
        _ => charset.filter(|c| !c.eq_ignore_ascii_case("NONE")).and_then(|c| text::encoding_for_label(&c)),
    }
}

/// The tags this parser acts on; everything else is [`Tag::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    // Aggregates.
    Sonrs,
    Status,
    StmtTrnRs,
    CcStmtTrnRs,
    InvStmtTrnRs,
    StmtRs,
    CcStmtRs,
    InvStmtRs,
    BankAcctFrom,
    CcAcctFrom,
    InvAcctFrom,
    BankAcctTo,
    CcAcctTo,
    BankTranList,
    InvTranList,
    StmtTrn,
    StmtTrnP,
    InvTran,
    LedgerBal,
    AvailBal,
    Payee,
    Currency,
    OrigCurrency,
    AcctInfo,
    // Leaves.
    Code,
    Severity,
    Message,
    CurDef,
    BankId,
    AcctId,
    AcctType,
    BrokerId,
    DtStart,
    DtEnd,
    BalAmt,
    TrnType,
    DtPosted,
    DtUser,
    DtAvail,
    ValueDate,
    TrnAmt,
    FitId,
    CheckNum,
    RefNum,
    Name,
    ExtdName,
    Memo,
    CurSym,
    CorrectAction,
    CorrectFitId,
    Desc,
    /// A leaf of the OFX specification that is not imported; known so that an empty one left open
    /// in SGML is not taken for an aggregate.
    Unused,
    Other,
}

impl Tag {
    fn of(name: &str) -> Tag {
        let mut buf = [0u8; 16];
        let bytes = name.as_bytes();
        if bytes.len() > buf.len() {
            return Tag::Other;
        }
        for (d, s) in buf.iter_mut().zip(bytes) {
            *d = s.to_ascii_uppercase();
        }
        match &buf[..bytes.len()] {
            b"SONRS" => Tag::Sonrs,
            b"STATUS" => Tag::Status,
            b"STMTTRNRS" => Tag::StmtTrnRs,
            b"CCSTMTTRNRS" => Tag::CcStmtTrnRs,
            b"INVSTMTTRNRS" => Tag::InvStmtTrnRs,
            b"STMTRS" => Tag::StmtRs,
            b"CCSTMTRS" => Tag::CcStmtRs,
            b"INVSTMTRS" => Tag::InvStmtRs,
            b"BANKACCTFROM" => Tag::BankAcctFrom,
            b"CCACCTFROM" => Tag::CcAcctFrom,
            b"INVACCTFROM" => Tag::InvAcctFrom,
            b"BANKACCTTO" => Tag::BankAcctTo,
            b"CCACCTTO" => Tag::CcAcctTo,
            b"BANKTRANLIST" => Tag::BankTranList,
            b"INVTRANLIST" => Tag::InvTranList,
            b"STMTTRN" => Tag::StmtTrn,
            b"STMTTRNP" => Tag::StmtTrnP,
            b"INVTRAN" => Tag::InvTran,
            b"LEDGERBAL" => Tag::LedgerBal,
            b"AVAILBAL" => Tag::AvailBal,
            b"PAYEE" => Tag::Payee,
            b"CURRENCY" => Tag::Currency,
            b"ORIGCURRENCY" => Tag::OrigCurrency,
            b"ACCTINFO" => Tag::AcctInfo,
            b"CODE" => Tag::Code,
            b"SEVERITY" => Tag::Severity,
            b"MESSAGE" => Tag::Message,
            b"CURDEF" => Tag::CurDef,
            b"BANKID" => Tag::BankId,
            b"ACCTID" => Tag::AcctId,
            b"ACCTTYPE" => Tag::AcctType,
            b"BROKERID" => Tag::BrokerId,
            b"DTSTART" => Tag::DtStart,
            b"DTEND" => Tag::DtEnd,
            b"BALAMT" => Tag::BalAmt,
            b"TRNTYPE" => Tag::TrnType,
            b"DTPOSTED" => Tag::DtPosted,
            b"DTUSER" => Tag::DtUser,
            b"DTAVAIL" => Tag::DtAvail,
            b"VALUEDATE" => Tag::ValueDate,
            b"TRNAMT" => Tag::TrnAmt,
            b"FITID" => Tag::FitId,
            b"CHECKNUM" => Tag::CheckNum,
            b"REFNUM" => Tag::RefNum,
            b"NAME" => Tag::Name,
            b"EXTDNAME" => Tag::ExtdName,
            b"MEMO" => Tag::Memo,
            b"CURSYM" => Tag::CurSym,
            b"CORRECTACTION" => Tag::CorrectAction,
            b"CORRECTFITID" => Tag::CorrectFitId,
            b"DESC" => Tag::Desc,
            b"BRANCHID" | b"ACCTKEY" | b"DTASOF" | b"DTSERVER" | b"LANGUAGE" | b"TRNUID" | b"CLTCOOKIE" | b"SIC"
            | b"PAYEEID" | b"SRVRTID" | b"CURRATE" | b"DTPROFUP" | b"DTACCTUP" | b"ORG" | b"FID" | b"ADDR1"
            | b"ADDR2" | b"ADDR3" | b"CITY" | b"STATE" | b"POSTALCODE" | b"COUNTRY" | b"PHONE" | b"INV401KSOURCE"
            | b"SUBACCTFUND" | b"SUBACCTSEC" | b"DTTRADE" | b"DTSETTLE" | b"TOTAL" | b"UNITS" | b"UNITPRICE"
            | b"SECNAME" | b"TICKER" | b"UNIQUEID" | b"UNIQUEIDTYPE" | b"MKTGINFO" | b"SUPTXDL" | b"XFERSRC"
            | b"XFERDEST" | b"SVCSTATUS" => Tag::Unused,
            _ => Tag::Other,
        }
    }

    fn is_aggregate(self) -> bool {
        (self as u8) < (Tag::Code as u8)
    }

    fn is_leaf(self) -> bool {
        !self.is_aggregate() && self != Tag::Other
    }
}

/// A leaf value with where its tag stands.
#[derive(Debug, Clone)]
struct Field<'a> {
    value: Cow<'a, str>,
    pos: Pos,
}

/// What kind of statement response is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StmtKind {
    Bank,
    Card,
    Investment,
}

/// The statement being read.
struct StmtDraft<'a> {
    kind: StmtKind,
    pos: Pos,
    account: AccountIdent,
    curdef: Option<Field<'a>>,
    /// `CURDEF` read as a currency, once seen and valid.
    currency: Option<Currency>,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    ledger: Option<Decimal>,
    available: Option<Decimal>,
    transactions: Vec<BankTransaction>,
    /// FITID → line and index of the transaction that carries it.
    fitids: FitIds,
    /// Indexes of lines a later `DELETE` correction removed.
    deleted: Vec<usize>,
    without_fitid: usize,
    pending: usize,
    trades: usize,
}

/// The FITIDs of a statement's lines, each with the position and the index of the transaction that
/// carries it.
///
/// While every FITID is greater than the one before (as most banks number them), none can repeat an
/// earlier one, so only their positions and indexes are listed, in file order. The first FITID out
/// of order, or the first correction, moves them into a hash table. The table keeps hashes and
/// indexes, not strings: a FITID is compared with the id of the transaction it points to, and
/// growing the table rehashes the stored hashes instead of reading every FITID again (a map of
/// strings was a third of the time of a large file). A FITID with blanks at an end (an entity such
/// as `&#32;` can give one) is not the id its transaction gets, so such FITIDs keep their own map.
struct FitIds {
    /// `Some` while the FITIDs come in ascending order.
    ascending: Option<Ascending>,
    table: HashTable<Seen>,
    hasher: DefaultHashBuilder,
    untrimmed: HashMap<String, (Pos, usize)>,
}

/// FITIDs so far in ascending order: the greatest, and where each is.
#[derive(Default)]
struct Ascending {
    last: String,
    seen: Vec<(Pos, usize)>,
}

/// One FITID in the table: its hash, and the position and index of its transaction.
struct Seen {
    hash: u64,
    pos: Pos,
    index: usize,
}

impl Default for FitIds {
    fn default() -> Self {
        FitIds {
            ascending: Some(Ascending::default()),
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            untrimmed: HashMap::new(),
        }
    }
}

impl FitIds {
    /// Position and index of the transaction carrying `fitid`.
    fn get(&mut self, fitid: &str, transactions: &[BankTransaction]) -> Option<(Pos, usize)> {
        if is_untrimmed(fitid) {
            return self.untrimmed.get(fitid).copied();
        }
        if let Some(asc) = &self.ascending {
            if asc.seen.is_empty() || fitid > asc.last.as_str() {
                return None;
            }
            self.switch_to_table(transactions);
        }
        let hash = self.hasher.hash_one(fitid);
        self.table.find(hash, |s| s.hash == hash && carries(transactions, s.index, fitid)).map(|s| (s.pos, s.index))
    }

    /// Records that the transaction at `index`, at `pos`, carries `fitid`, which [`FitIds::get`]
    /// has just not found; that transaction's id is `fitid` once it is in the statement.
    fn insert(&mut self, fitid: &str, pos: Pos, index: usize) {
        if is_untrimmed(fitid) {
            self.untrimmed.insert(fitid.to_string(), (pos, index));
            return;
        }
        if let Some(asc) = &mut self.ascending {
            // `get` found no place for `fitid` only because it is greater than every one so far.
            asc.last.clear();
            asc.last.push_str(fitid);
            asc.seen.push((pos, index));
            return;
        }
        let hash = self.hasher.hash_one(fitid);
        self.table.insert_unique(hash, Seen { hash, pos, index }, |s| s.hash);
    }

    /// Forgets `fitid` (a correction removed or replaced its line).
    fn remove(&mut self, fitid: &str, transactions: &[BankTransaction]) {
        if is_untrimmed(fitid) {
            self.untrimmed.remove(fitid);
            return;
        }
        self.switch_to_table(transactions);
        let hash = self.hasher.hash_one(fitid);
        if let Ok(entry) = self.table.find_entry(hash, |s| s.hash == hash && carries(transactions, s.index, fitid)) {
            entry.remove();
        }
    }

    /// Moves the ascending list into the table.
    fn switch_to_table(&mut self, transactions: &[BankTransaction]) {
        let Some(asc) = self.ascending.take() else { return };
        self.table.reserve(asc.seen.len(), |s| s.hash);
        for (pos, index) in asc.seen {
            let id = transactions.get(index).map_or("", |t| t.id.as_ref());
            let hash = self.hasher.hash_one(id);
            self.table.insert_unique(hash, Seen { hash, pos, index }, |s| s.hash);
        }
    }
}

/// Whether `fitid` differs from the id a transaction gets from it (which is trimmed).
fn is_untrimmed(fitid: &str) -> bool {
    fitid.trim().len() != fitid.len()
}

/// Whether the transaction at `index` has `fitid` as its id.
fn carries(transactions: &[BankTransaction], index: usize, fitid: &str) -> bool {
    transactions.get(index).is_some_and(|t| *t.id == *fitid)
}

/// The transaction being read.
#[derive(Default)]
struct TxnDraft<'a> {
    pos: Pos,
    trntype: Option<Field<'a>>,
    posted: Option<Field<'a>>,
    user: Option<Field<'a>>,
    avail: Option<Field<'a>>,
    amount: Option<Field<'a>>,
    fitid: Option<Field<'a>>,
    checknum: Option<Field<'a>>,
    refnum: Option<Field<'a>>,
    name: Option<Field<'a>>,
    extdname: Option<Field<'a>>,
    payee_name: Option<Field<'a>>,
    memo: Option<Field<'a>>,
    counterparty: Option<Field<'a>>,
    cursym: Option<Field<'a>>,
    correction: Option<Field<'a>>,
    corrected_fitid: Option<Field<'a>>,
}

/// A `STATUS` aggregate being read.
#[derive(Default)]
struct StatusDraft<'a> {
    pos: Pos,
    in_signon: bool,
    code: Option<Cow<'a, str>>,
    severity: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
}

/// A bank's non-zero status for one response.
struct Failure {
    line: usize,
    code: String,
    message: String,
}

/// The streaming reader: the stack of open aggregates and the drafts being filled.
struct Reader<'s, 'a> {
    source: &'s Source<'s>,
    text: &'a str,
    /// Lines and columns of the positions a warning or an error names.
    lines: LineIndex<'a>,
    stack: Vec<(Tag, &'a str)>,
    stmt: Option<StmtDraft<'a>>,
    txn: Option<TxnDraft<'a>>,
    status: Option<StatusDraft<'a>>,
    account_info: Option<AccountIdent>,
    accounts_listed: Vec<AccountIdent>,
    statements: Vec<Statement>,
    warnings: Vec<Warning>,
    failures: Vec<Failure>,
    investment_skipped: Vec<(usize, String)>,
    transactions_read: usize,
}

impl<'s, 'a> Reader<'s, 'a> {
    fn new(source: &'s Source<'s>, text: &'a str) -> Self {
        Reader {
            source,
            text,
            lines: LineIndex::new(text.as_bytes()),
            stack: Vec::new(),
            stmt: None,
            txn: None,
            status: None,
            account_info: None,
            accounts_listed: Vec::new(),
            statements: Vec::new(),
            warnings: Vec::new(),
            failures: Vec::new(),
            investment_skipped: Vec::new(),
            transactions_read: 0,
        }
    }

    fn error(&self, pos: Pos, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        let (line, column) = self.lines.line_col(pos.at);
        self.source.error(Format::Ofx, Some(line), kind, message).at_column(column)
    }

    /// The 1-based line of `pos`.
    fn line(&self, pos: Pos) -> usize {
        self.lines.line(pos.at)
    }

    fn warn(&mut self, pos: Pos, message: String) {
        let statement = self.stmt.as_ref().map(|_| self.statements.len());
        let line = self.line(pos);
        self.warnings.push(Warning { line: Some(line), statement, message });
    }

    fn run(mut self) -> Result<Parsed, ParseError> {
        let mut lx = Lexer::new(self.text);
        loop {
            let token = lx.next_tag().map_err(|e| self.error(e.pos, ParseErrorKind::Syntax, e.message))?;
            let Some(token) = token else { break };
            match token {
                Token::Start { name, self_closing, pos } => {
                    let tag = Tag::of(name);
                    if tag.is_aggregate() {
                        self.open(tag, name, pos)?;
                        if self_closing {
                            self.close(name, pos)?;
                        }
                    } else if self_closing {
                        if tag.is_leaf() {
                            self.leaf(tag, Field { value: Cow::Borrowed(""), pos })?;
                        }
                    } else {
                        let value = lx.value();
                        let closed = lx.eat_end(name);
                        if tag.is_leaf() {
                            self.leaf(tag, Field { value, pos })?;
                        } else if value.is_empty() && !closed && !name.contains('.') {
                            // An unknown tag with no value opens an aggregate (its end tag, if any,
                            // will pop it); dotted names are vendor leaves (INTU.BID).
                            self.open(Tag::Other, name, pos)?;
                        }
                    }
                }
                Token::End { name, pos } => self.close(name, pos)?,
            }
        }
        let end = self.end_pos(&lx);
        let unclosed: Vec<String> =
            self.stack.iter().rev().filter(|(t, _)| *t != Tag::Other).map(|(_, n)| format!("</{n}>")).collect();
        if !unclosed.is_empty() {
            self.warnings.push(Warning {
                line: Some(self.line(end)),
                statement: None,
                message: format!("the file ends before {}; it may be truncated", unclosed.join(", ")),
            });
        }
        while let Some((tag, _)) = self.stack.pop() {
            self.on_close(tag, end)?;
        }
        self.finish()
    }

    fn end_pos(&self, lx: &Lexer<'_>) -> Pos {
        Pos { at: lx.offset() }
    }

    /// The innermost open aggregate this parser knows; unknown ones are looked through, since an
    /// empty SGML leaf of an unknown extension is indistinguishable from an aggregate.
    fn parent(&self) -> Tag {
        self.known_ancestors().next().unwrap_or(Tag::Other)
    }

    fn grandparent(&self) -> Tag {
        self.known_ancestors().nth(1).unwrap_or(Tag::Other)
    }

    fn known_ancestors(&self) -> impl Iterator<Item = Tag> + '_ {
        self.stack.iter().rev().map(|(t, _)| *t).filter(|t| *t != Tag::Other)
    }

    fn inside(&self, tag: Tag) -> bool {
        self.stack.iter().rev().any(|(t, _)| *t == tag)
    }

    fn open(&mut self, tag: Tag, name: &'a str, pos: Pos) -> Result<(), ParseError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(
                pos,
                ParseErrorKind::Syntax,
                format!("found <{name}> nested {MAX_DEPTH} aggregates deep, expected an OFX response"),
            ));
        }
        match tag {
            Tag::StmtRs | Tag::CcStmtRs | Tag::InvStmtRs => {
                if self.stmt.is_some() {
                    return Err(self.error(
                        pos,
                        ParseErrorKind::Syntax,
                        format!("found <{name}> inside another statement, expected the statement's end tag first"),
                    ));
                }
                let kind = match tag {
                    Tag::StmtRs => StmtKind::Bank,
                    Tag::CcStmtRs => StmtKind::Card,
                    _ => StmtKind::Investment,
                };
                self.stmt = Some(StmtDraft {
                    kind,
                    pos,
                    account: AccountIdent::default(),
                    curdef: None,
                    currency: None,
                    start: None,
                    end: None,
                    ledger: None,
                    available: None,
                    transactions: Vec::new(),
                    fitids: FitIds::default(),
                    deleted: Vec::new(),
                    without_fitid: 0,
                    pending: 0,
                    trades: 0,
                });
            }
            Tag::StmtTrn => {
                if self.txn.is_some() {
                    // SGML with a missing </STMTTRN>: the previous line ends here.
                    self.finish_transaction()?;
                }
                if self.stmt.is_some() {
                    self.txn = Some(TxnDraft { pos, ..TxnDraft::default() });
                } else {
                    self.warn(pos, "a transaction outside any statement was skipped".into());
                }
            }
            Tag::StmtTrnP => {
                if let Some(stmt) = self.stmt.as_mut() {
                    stmt.pending += 1;
                }
            }
            Tag::InvTran => {
                if let Some(stmt) = self.stmt.as_mut() {
                    stmt.trades += 1;
                }
            }
            Tag::Status => {
                let in_signon = self.parent() == Tag::Sonrs;
                self.status = Some(StatusDraft { pos, in_signon, ..StatusDraft::default() });
            }
            Tag::AcctInfo => self.account_info = Some(AccountIdent::default()),
            _ => {}
        }
        self.stack.push((tag, name));
        Ok(())
    }

    fn close(&mut self, name: &str, pos: Pos) -> Result<(), ParseError> {
        let Some(index) = self.stack.iter().rposition(|(_, n)| n.eq_ignore_ascii_case(name)) else {
            // The end tag of a leaf whose value was followed by something else, or a stray one.
            return Ok(());
        };
        while self.stack.len() > index {
            if let Some((tag, _)) = self.stack.pop() {
                self.on_close(tag, pos)?;
            }
        }
        Ok(())
    }

    fn on_close(&mut self, tag: Tag, pos: Pos) -> Result<(), ParseError> {
        match tag {
            Tag::StmtTrn => self.finish_transaction(),
            Tag::StmtRs | Tag::CcStmtRs | Tag::InvStmtRs => self.finish_statement(),
            Tag::Status => self.finish_status(),
            Tag::AcctInfo => {
                if let Some(account) = self.account_info.take() {
                    if account.id.is_empty() {
                        self.warn(pos, "an account list entry without ACCTID was skipped".into());
                    } else {
                        self.accounts_listed.push(account);
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn leaf(&mut self, tag: Tag, field: Field<'a>) -> Result<(), ParseError> {
        let parent = self.parent();
        match parent {
            Tag::Status => {
                if let Some(status) = self.status.as_mut() {
                    match tag {
                        Tag::Code => status.code = Some(field.value),
                        Tag::Severity => status.severity = Some(field.value),
                        Tag::Message => status.message = Some(field.value),
                        _ => {}
                    }
                }
            }
            Tag::StmtRs | Tag::CcStmtRs | Tag::InvStmtRs if tag == Tag::CurDef => {
                if let Some(stmt) = self.stmt.as_mut() {
                    stmt.currency = Currency::new(&field.value).ok();
                    stmt.curdef = Some(field);
                }
            }
            Tag::BankAcctFrom | Tag::CcAcctFrom | Tag::InvAcctFrom => {
                let kind = match parent {
                    Tag::CcAcctFrom => Some("CREDITCARD"),
                    Tag::InvAcctFrom => Some("INVESTMENT"),
                    _ => None,
                };
                let in_info = self.inside(Tag::AcctInfo);
                let account = match (in_info, self.stmt.as_mut()) {
                    (true, _) => self.account_info.as_mut(),
                    (false, Some(stmt)) => Some(&mut stmt.account),
                    (false, None) => None,
                };
                if let Some(account) = account {
                    fill_account(account, tag, &field.value, kind);
                }
            }
            Tag::AcctInfo if tag == Tag::Desc => {
                if let Some(account) = self.account_info.as_mut() {
                    account.name = non_empty(&field.value);
                }
            }
            Tag::BankTranList | Tag::InvTranList if matches!(tag, Tag::DtStart | Tag::DtEnd) => {
                let date = if field.value.is_empty() { None } else { ofx_date(&field.value) };
                if date.is_none() && !field.value.is_empty() {
                    let which = if tag == Tag::DtStart { "DTSTART" } else { "DTEND" };
                    self.warn(
                        field.pos,
                        format!("{which} {:?} is not a date; the period is taken from the lines", field.value),
                    );
                }
                if let (Some(stmt), Some(d)) = (self.stmt.as_mut(), date) {
                    if tag == Tag::DtStart {
                        stmt.start = Some(stmt.start.map_or(d, |s| s.min(d)));
                    } else {
                        stmt.end = Some(stmt.end.map_or(d, |e| e.max(d)));
                    }
                }
            }
            Tag::LedgerBal | Tag::AvailBal if tag == Tag::BalAmt => {
                if self.stmt.is_none() || self.grandparent() == Tag::StmtTrn {
                    return Ok(());
                }
                let which = if parent == Tag::LedgerBal { "LEDGERBAL" } else { "AVAILBAL" };
                if field.value.is_empty() {
                    self.warn(field.pos, format!("{which} has an empty BALAMT; the statement has no such balance"));
                    return Ok(());
                }
                let amount = ofx_amount(&field.value).ok_or_else(|| {
                    self.error(
                        field.pos,
                        ParseErrorKind::InvalidAmount,
                        format!("found {:?} in {which}, expected an amount such as -12.34", field.value),
                    )
                    .in_field("BALAMT")
                })?;
                if let Some(stmt) = self.stmt.as_mut() {
                    if parent == Tag::LedgerBal {
                        stmt.ledger = Some(amount);
                    } else {
                        stmt.available = Some(amount);
                    }
                }
            }
            Tag::StmtTrn => {
                if let Some(txn) = self.txn.as_mut() {
                    let slot = match tag {
                        Tag::TrnType => &mut txn.trntype,
                        Tag::DtPosted => &mut txn.posted,
                        Tag::DtUser => &mut txn.user,
                        Tag::DtAvail | Tag::ValueDate => &mut txn.avail,
                        Tag::TrnAmt => &mut txn.amount,
                        Tag::FitId => &mut txn.fitid,
                        Tag::CheckNum => &mut txn.checknum,
                        Tag::RefNum => &mut txn.refnum,
                        Tag::Name => &mut txn.name,
                        Tag::ExtdName => &mut txn.extdname,
                        Tag::Memo => &mut txn.memo,
                        Tag::CorrectAction => &mut txn.correction,
                        Tag::CorrectFitId => &mut txn.corrected_fitid,
                        _ => return Ok(()),
                    };
                    *slot = Some(field);
                }
            }
            Tag::Payee if tag == Tag::Name && self.grandparent() == Tag::StmtTrn => {
                if let Some(txn) = self.txn.as_mut() {
                    txn.payee_name = Some(field);
                }
            }
            Tag::BankAcctTo | Tag::CcAcctTo if tag == Tag::AcctId && self.grandparent() == Tag::StmtTrn => {
                if let Some(txn) = self.txn.as_mut() {
                    txn.counterparty = Some(field);
                }
            }
            Tag::Currency if tag == Tag::CurSym && self.grandparent() == Tag::StmtTrn => {
                if let Some(txn) = self.txn.as_mut() {
                    txn.cursym = Some(field);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_status(&mut self) -> Result<(), ParseError> {
        let Some(status) = self.status.take() else { return Ok(()) };
        let code = status.code.as_deref().unwrap_or("").trim();
        if code.is_empty() || code.bytes().all(|b| b == b'0') {
            return Ok(());
        }
        let severity = status.severity.as_deref().unwrap_or("").trim().to_ascii_uppercase();
        let message = status.message.as_deref().map(text::squash_ws).unwrap_or_default();
        let described = if message.is_empty() { format!("code {code}") } else { format!("code {code}: {message}") };
        if severity == "ERROR" {
            if status.in_signon {
                return Err(self
                    .error(
                        status.pos,
                        ParseErrorKind::BankError,
                        format!("the bank refused the sign-on ({described}), so the file holds no statement"),
                    )
                    .in_field("STATUS"));
            }
            let line = self.line(status.pos);
            self.failures.push(Failure { line, code: code.to_string(), message });
        } else {
            self.warn(status.pos, format!("the bank reports status {described} ({severity})"));
        }
        Ok(())
    }

    fn finish_transaction(&mut self) -> Result<(), ParseError> {
        let Some(txn) = self.txn.take() else { return Ok(()) };
        let Some(stmt) = self.stmt.as_ref() else { return Ok(()) };
        // Lines are built in the currency known so far; the statement's end corrects them if
        // CURDEF came late.
        let currency = stmt.currency.unwrap_or_else(|| self.source.fallback_currency());

        let posted = txn.posted.as_ref().filter(|f| !f.value.is_empty()).ok_or_else(|| {
            let what = if txn.posted.is_some() { "an empty DTPOSTED" } else { "no DTPOSTED" };
            let pos = txn.posted.as_ref().map_or(txn.pos, |f| f.pos);
            self.error(
                pos,
                ParseErrorKind::MissingField,
                format!("found a transaction with {what}, expected its posting date"),
            )
            .in_field("DTPOSTED")
        })?;
        let booking_date = ofx_date(&posted.value).ok_or_else(|| {
            self.error(
                posted.pos,
                ParseErrorKind::InvalidDate,
                format!("found {:?}, expected a date YYYYMMDD[HHMMSS[.XXX]][[offset:TZ]]", posted.value),
            )
            .in_field("DTPOSTED")
        })?;
        let amount_field = txn.amount.as_ref().filter(|f| !f.value.is_empty()).ok_or_else(|| {
            let what = if txn.amount.is_some() { "an empty TRNAMT" } else { "no TRNAMT" };
            let pos = txn.amount.as_ref().map_or(txn.pos, |f| f.pos);
            self.error(
                pos,
                ParseErrorKind::MissingField,
                format!("found a transaction with {what}, expected its amount"),
            )
            .in_field("TRNAMT")
        })?;
        let amount = ofx_amount(&amount_field.value).ok_or_else(|| {
            self.error(
                amount_field.pos,
                ParseErrorKind::InvalidAmount,
                format!("found {:?}, expected an amount such as -12.34 or -12,34", amount_field.value),
            )
            .in_field("TRNAMT")
        })?;

        let mut t = BankTransaction::new(booking_date, Money::new(amount, currency));
        let mut notes: Vec<String> = Vec::new();
        // OFX has no value date as such: DTAVAIL (funds available) is one; failing that, DTUSER
        // (the day the card was used) is the line's other date.
        for field in [&txn.avail, &txn.user].into_iter().flatten() {
            if field.value.is_empty() {
                continue;
            }
            match ofx_date(&field.value) {
                Some(d) => {
                    if t.value_date.is_none() && d != booking_date {
                        t.value_date = Some(d);
                    }
                    break;
                }
                None => notes.push(format!("the date {:?} could not be read and was ignored", field.value)),
            }
        }
        let text_of = |f: &Option<Field<'_>>| f.as_ref().and_then(|f| non_empty(&f.value));
        let name = text_of(&txn.name);
        t.description = match text_of(&txn.memo) {
            Some(memo) => memo.into(),
            None => name.clone().or_else(|| text_of(&txn.extdname)).unwrap_or_default().into(),
        };
        t.payee = name.or_else(|| text_of(&txn.payee_name)).or_else(|| text_of(&txn.extdname)).map(Into::into);
        t.reference = text_of(&txn.refnum).map(Into::into);
        t.check_number = text_of(&txn.checknum).filter(|c| !c.bytes().all(|b| b == b'0')).map(Into::into);
        t.bank_code = txn.trntype.as_ref().and_then(|f| non_empty(&f.value)).map(|mut s| {
            s.make_ascii_uppercase();
            s.into()
        });
        t.counterparty_account = text_of(&txn.counterparty).map(Into::into);
        if let Some(sym) = txn.cursym.as_ref().filter(|f| !f.value.is_empty()) {
            if !sym.value.eq_ignore_ascii_case(currency.code()) && stmt.currency.is_some() {
                notes.push(format!(
                    "the amount is stated in {} (CURRENCY) while the statement is in {}; it is imported as written",
                    sym.value, currency
                ));
            }
        }
        let pos = txn.pos;
        let stmt = match self.stmt.as_mut() {
            Some(s) => s,
            None => return Ok(()),
        };
        // A correction names the line it replaces or deletes by FITID; it is applied when that line
        // is in this statement, since an earlier import is out of reach here.
        let action = txn.correction.as_ref().map(|f| f.value.trim().to_ascii_uppercase()).filter(|a| !a.is_empty());
        let mut replace_at = None;
        if let Some(action) = action {
            let corrected = txn.corrected_fitid.as_ref().map(|f| f.value.as_ref()).unwrap_or("");
            let target = stmt.fitids.get(corrected, &stmt.transactions);
            let skip = match (action.as_str(), target) {
                ("DELETE", Some((first, index))) => {
                    let first = self.lines.line(first.at);
                    stmt.deleted.push(index);
                    stmt.fitids.remove(corrected, &stmt.transactions);
                    notes.push(format!("this correction deletes the line of FITID {corrected} (line {first})"));
                    true
                }
                ("DELETE", None) => {
                    notes.push(format!(
                        "a DELETE correction of FITID {corrected:?}, which is not in this statement, was skipped; \
                         remove that line where it was imported"
                    ));
                    true
                }
                ("REPLACE", Some((first, index))) => {
                    let first = self.lines.line(first.at);
                    replace_at = Some(index);
                    stmt.fitids.remove(corrected, &stmt.transactions);
                    notes.push(format!("this correction replaces the line of FITID {corrected} (line {first})"));
                    false
                }
                (other, _) => {
                    notes.push(format!(
                        "a {other} correction of FITID {corrected:?}, which is not in this statement, is imported \
                         as a new line"
                    ));
                    false
                }
            };
            if skip {
                for note in notes {
                    self.warn(pos, note);
                }
                return Ok(());
            }
        }

        match txn.fitid.filter(|f| !f.value.is_empty()) {
            Some(fitid) => match stmt.fitids.get(&fitid.value, &stmt.transactions) {
                Some((first, _)) => notes.push(format!(
                    "FITID {} repeats the one on line {}; this line gets a fingerprint id instead",
                    fitid.value,
                    self.lines.line(first.at)
                )),
                None => {
                    t = t.with_bank_id(fitid.value.as_ref());
                    let index = replace_at.unwrap_or(stmt.transactions.len());
                    stmt.fitids.insert(&fitid.value, pos, index);
                }
            },
            None => stmt.without_fitid += 1,
        }
        match replace_at.and_then(|i| stmt.transactions.get_mut(i)) {
            Some(slot) => *slot = t,
            None => stmt.transactions.push(t),
        }
        for note in notes {
            self.warn(pos, note);
        }
        self.transactions_read += 1;
        if self.transactions_read % PROGRESS_EVERY == 0 {
            self.source.report_progress(txn.pos.at);
        }
        Ok(())
    }

    fn finish_statement(&mut self) -> Result<(), ParseError> {
        self.finish_transaction()?;
        let Some(draft) = self.stmt.take() else { return Ok(()) };
        let index = self.statements.len();
        let warn = |warnings: &mut Vec<Warning>, line: usize, message: String| {
            warnings.push(Warning { line: Some(line), statement: Some(index), message });
        };
        if draft.kind == StmtKind::Investment && draft.transactions.is_empty() {
            let id = draft.account.id.clone();
            let line = self.line(draft.pos);
            self.investment_skipped.push((line, id));
            return Ok(());
        }
        if draft.account.id.is_empty() {
            let from = match draft.kind {
                StmtKind::Bank => "BANKACCTFROM",
                StmtKind::Card => "CCACCTFROM",
                StmtKind::Investment => "INVACCTFROM",
            };
            return Err(self
                .error(
                    draft.pos,
                    ParseErrorKind::MissingField,
                    format!("found a statement without an account number, expected <{from}> with <ACCTID>"),
                )
                .in_field("ACCTID"));
        }
        let currency = match draft.curdef.as_ref().filter(|f| !f.value.is_empty()) {
            Some(f) => Currency::new(&f.value).map_err(|_| {
                self.error(
                    f.pos,
                    ParseErrorKind::InvalidCurrency,
                    format!("found {:?}, expected an ISO 4217 code such as USD", f.value),
                )
                .in_field("CURDEF")
            })?,
            None => {
                let fallback = self.source.fallback_currency();
                let line = self.line(draft.curdef.as_ref().map_or(draft.pos, |f| f.pos));
                warn(
                    &mut self.warnings,
                    line,
                    format!("the statement names no currency (CURDEF); amounts are taken as {fallback}"),
                );
                fallback
            }
        };
        let mut statement = Statement::new(draft.account, currency);
        statement.start_date = draft.start;
        statement.end_date = draft.end;
        statement.closing_balance = draft.ledger.map(|a| Money::new(a, currency));
        statement.available_balance = draft.available.map(|a| Money::new(a, currency));
        statement.transactions = draft.transactions;
        if !draft.deleted.is_empty() {
            let deleted: std::collections::HashSet<usize> = draft.deleted.into_iter().collect();
            let mut index = 0;
            statement.transactions.retain(|_| {
                index += 1;
                !deleted.contains(&(index - 1))
            });
        }
        for t in statement.transactions.iter_mut().filter(|t| t.amount.currency() != currency) {
            t.amount = Money::new(t.amount.amount(), currency);
        }
        let line = self.line(draft.pos);
        if draft.without_fitid > 0 {
            warn(
                &mut self.warnings,
                line,
                format!("{} transaction(s) have no FITID and get fingerprint ids", draft.without_fitid),
            );
        }
        if draft.pending > 0 {
            warn(
                &mut self.warnings,
                line,
                format!("{} pending transaction(s) (STMTTRNP) are not imported", draft.pending),
            );
        }
        if draft.trades > 0 {
            warn(
                &mut self.warnings,
                line,
                format!(
                    "{} investment transaction(s) are not imported; only the cash lines (INVBANKTRAN) are",
                    draft.trades
                ),
            );
        }
        self.statements.push(statement);
        Ok(())
    }

    fn finish(mut self) -> Result<Parsed, ParseError> {
        if self.statements.is_empty() {
            if !self.accounts_listed.is_empty() {
                let currency = self.source.fallback_currency();
                self.warnings.push(Warning {
                    line: None,
                    statement: None,
                    message: format!(
                        "the file is an account list (ACCTINFORS): {} account(s), no transactions",
                        self.accounts_listed.len()
                    ),
                });
                self.statements =
                    self.accounts_listed.drain(..).map(|account| Statement::new(account, currency)).collect();
                return Ok(Parsed { statements: self.statements, warnings: self.warnings });
            }
            if let Some(f) = self.failures.first() {
                let described = if f.message.is_empty() { String::new() } else { format!(": {}", f.message) };
                return Err(self
                    .source
                    .error(
                        Format::Ofx,
                        Some(f.line),
                        ParseErrorKind::BankError,
                        format!("the bank returned error code {}{described} instead of a statement", f.code),
                    )
                    .in_field("STATUS"));
            }
            if let Some((line, _)) = self.investment_skipped.first() {
                return Err(self.source.error(
                    Format::Ofx,
                    Some(*line),
                    ParseErrorKind::Unsupported,
                    "found an investment statement (INVSTMTRS) without cash lines; investment statements are not imported",
                ));
            }
            return Err(self.source.error(
                Format::Ofx,
                None,
                ParseErrorKind::Empty,
                "found no statement in the OFX body, expected <STMTRS> or <CCSTMTRS>",
            ));
        }
        for f in std::mem::take(&mut self.failures) {
            let described = if f.message.is_empty() { String::new() } else { format!(" ({})", f.message) };
            self.warnings.push(Warning {
                line: Some(f.line),
                statement: None,
                message: format!("a response in the file reports error code {}{described}", f.code),
            });
        }
        for (line, id) in std::mem::take(&mut self.investment_skipped) {
            self.warnings.push(Warning {
                line: Some(line),
                statement: None,
                message: format!("the investment statement of account {id} has no cash lines and is not imported"),
            });
        }
        Ok(Parsed { statements: self.statements, warnings: self.warnings })
    }
}

fn fill_account(account: &mut AccountIdent, tag: Tag, value: &str, kind: Option<&str>) {
    match tag {
        Tag::AcctId => {
            account.id = value.to_string();
            if looks_like_iban(value) {
                account.iban = Some(value.to_string());
            }
            if account.kind.is_none() {
                account.kind = kind.map(str::to_string);
            }
        }
        Tag::BankId | Tag::BrokerId => account.bank_id = non_empty(value),
        Tag::AcctType => {
            if let Some(k) = non_empty(value) {
                account.kind = Some(k);
            }
        }
        _ => {}
    }
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        None
    } else if v.bytes().any(|b| matches!(b, b'\n' | b'\r' | b'\t')) {
        Some(text::squash_ws(v))
    } else {
        Some(v.to_string())
    }
}

/// Reads an OFX date-time (`YYYYMMDD[HHMMSS[.XXX]][[+-h:TZ]]`) as the calendar date written; the
/// time and zone are not applied, so a line posted late on the 31st stays on the 31st.
fn ofx_date(value: &str) -> Option<NaiveDate> {
    let digits = value.trim().get(..8)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text::date_fields(digits).and_then(|f| text::date_from_fields(f, DateOrder::Ymd, 4))
}

/// Reads an OFX amount: an optional sign, digits and one decimal point or comma. This is the hot
/// path of every transaction, so it builds the decimal without allocating; anything else that is
/// still made only of digits, signs, separators and blanks goes through the shared reader, and a
/// currency symbol or letter is refused (a bank that writes `$120` has exported something else).
fn ofx_amount(value: &str) -> Option<Decimal> {
    let s = value.trim();
    let bytes = s.as_bytes();
    let (negative, body) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let mut mantissa: i128 = 0;
    let mut scale: u32 = 0;
    let mut seen_sep = false;
    let mut digits = 0usize;
    let mut ok = !body.is_empty();
    for &b in body {
        match b {
            b'0'..=b'9' => {
                digits += 1;
                if seen_sep {
                    scale += 1;
                }
                match mantissa.checked_mul(10).and_then(|m| m.checked_add(i128::from(b - b'0'))) {
                    Some(m) => mantissa = m,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            b'.' | b',' if !seen_sep => seen_sep = true,
            _ => {
                ok = false;
                break;
            }
        }
    }
    if ok && digits > 0 && scale <= 28 {
        if let Ok(d) = Decimal::try_from_i128_with_scale(if negative { -mantissa } else { mantissa }, scale) {
            return Some(d);
        }
    }
    if s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'-' | b'+' | b' ')) {
        return text::parse_amount(s, DecimalSeparator::Auto);
    }
    None
}

/// Whether an account number is an IBAN (country code, check digits, mod-97 check).
fn looks_like_iban(value: &str) -> bool {
    let b = value.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c.to_ascii_uppercase() - b'A') + 10 };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

#[cfg(test)]
mod tests;
