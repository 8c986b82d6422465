//! ISO 20022 camt.052 (account report), camt.053 (statement) and camt.054 (debit/credit
//! notification) parser, versions .001.01 to .001.08 and later.
//!
//! The file is read as a stream of XML events (`quick-xml`, no document tree), so memory grows only
//! with the transactions parsed. Elements are matched by local name, whatever their namespace or
//! prefix, because banks ship every schema version and the element names barely change between
//! them (`BkToCstmrStmtV01` and `BkToCstmrStmt` are both accepted).
//!
//! Decisions, where the standard or the banks leave room:
//! - Every `Stmt` / `Rpt` / `Ntfctn` is one [`Statement`](crate::domain::Statement). The account id
//!   is the IBAN, else `Othr/Id` (or the older `PrtryAcct/Id`, `BBAN`). The statement currency is
//!   `Acct/Ccy`, else the first currency an amount of the statement names, else the configured
//!   fallback.
//! - `Ccy="XXX"` ("no currency") and amounts without `Ccy` take the statement currency: PostFinance
//!   writes `XXX` on every amount and expects the account's currency to be configured.
//! - Balances by code: `OPBD` is the opening balance, `PRCD` (previous closing) stands in when there
//!   is no `OPBD`; `CLBD` is the closing balance; `CLAV` the available one. `ITBD` (interim) balances
//!   are ignored in statements; in a camt.052 report with neither opening nor closing balance, two or
//!   more `ITBD` balances give the opening (first) and closing (last) balance, because intraday
//!   reports bracket their entries that way. A single `ITBD` brackets nothing and is not used.
//! - Only booked entries (`Sts` `BOOK`, plain or as `<Cd>`) become transactions of a statement or a
//!   notification, since only they move the booked balance; pending, future or informational entries
//!   are skipped with a warning. A camt.052 intraday report exists to show what is not booked yet, so
//!   its pending (`PDNG`) entries are imported, each with a warning. An entry without a status is
//!   taken as booked, with a warning.
//! - `RvslInd` does not flip the sign: ISO 20022 says `CdtDbtInd` already gives the direction of the
//!   reversal booking (a `DBIT` reversal undoes an earlier credit).
//! - A batch entry (one `Ntry` with several `TxDtls`) is one transaction: it is what was booked and
//!   what the balances add up. Each `TxDtls` becomes a
//!   [`TransactionDetail`](crate::domain::TransactionDetail) so the matcher still sees every part;
//!   a batch without its own `AddtlNtryInf` takes the remittance text, payee and counterparty account
//!   all its parts share, if they share one. A single `TxDtls` is lifted onto the transaction itself
//!   (reference, payee, counterparty account, remittance text, check number).
//! - The bank id is the entry's `AcctSvcrRef`, else its `NtryRef`, else the first `TxDtls`
//!   `Refs/AcctSvcrRef`; a value repeated within a statement is dropped (with a warning) so that ids
//!   stay unique and the line gets a fingerprint instead.
//! - The counterparty is the debtor for credits and the creditor for debits (falling back to the
//!   ultimate party, then to the other side when the bank names only that one).
//! - Dates are the calendar date as written: `2024-03-01`, `2024-03-01+02:00` and
//!   `2024-03-01T23:59:59Z` are all the 1st of March. The one exception is a UTC time of exactly
//!   20:00 to 23:00, which is a European bank's local midnight of the next day (see
//!   `model::parse_date`).
//! - The description is `AddtlNtryInf`, followed by the lifted remittance text of a single
//!   `TxDtls` (or its `AddtlTxInf` when there is nothing else), with runs of blanks squashed.
//! - A `TxsSummry` entry count that disagrees with the entries found is warned about; a file that
//!   ends before its elements close is refused rather than read in part.

mod model;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use self::model::{Ctx, El, State};
use super::{text, Format, ParseError, ParseErrorKind, Parsed, Source};

/// Parses a CAMT file (`format` says which variant was detected or asked for).
pub fn parse(source: &Source<'_>, format: Format) -> Result<Parsed, ParseError> {
    let declared = declared_encoding(source.bytes).and_then(text::encoding_for_label);
    let text = text::decode(source.bytes, declared);
    let cx = Ctx { source, format, text: &text };
    run(cx)
}

/// The `encoding` label of an XML declaration, read from the raw bytes (ASCII-compatible files).
fn declared_encoding(bytes: &[u8]) -> Option<&str> {
    let head = bytes.get(..bytes.len().min(256))?;
    let head = head.strip_prefix(b"<?xml")?;
    let end = memchr::memmem::find(head, b"?>")?;
    let decl = head.get(..end)?;
    let at = memchr::memmem::find(decl, b"encoding")?;
    let rest = decl.get(at + b"encoding".len()..)?;
    let rest = rest.iter().position(|b| *b == b'=').and_then(|p| rest.get(p + 1..))?;
    let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let quote = *rest.get(start)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = rest.get(start + 1..)?;
    let len = value.iter().position(|b| *b == quote)?;
    std::str::from_utf8(value.get(..len)?).ok()
}

/// Streams the XML events into the [`State`] machine.
fn run(cx: Ctx<'_>) -> Result<Parsed, ParseError> {
    let mut reader = Reader::from_str(cx.text);
    reader.config_mut().check_end_names = true;
    let mut walker = Walker {
        cx,
        st: State::new(cx),
        names: Vec::with_capacity(32),
        starts: Vec::with_capacity(32),
        stmt_depth: None,
        value: String::with_capacity(256),
        leaf: false,
        namespace: None,
    };
    loop {
        let before = pos(reader.buffer_position());
        let event = reader.read_event().map_err(|e| {
            cx.error_at(
                pos(reader.error_position()),
                ParseErrorKind::Syntax,
                format!("found malformed XML ({e}), expected well-formed camt XML"),
            )
        })?;
        match event {
            Event::Start(e) => walker.open(&e, before)?,
            Event::Empty(e) => {
                walker.open(&e, before)?;
                walker.close()?;
            }
            Event::End(_) => walker.close()?,
            Event::Text(t) if walker.collecting() => match t.unescape() {
                Ok(s) => walker.value.push_str(&s),
                Err(_) => {
                    walker.value.push_str(&String::from_utf8_lossy(t.as_ref()));
                    walker.st.warn_at(
                        before,
                        "a character or entity reference in the text is invalid; the text is kept as written",
                    );
                }
            },
            Event::CData(t) if walker.collecting() => walker.value.push_str(&String::from_utf8_lossy(t.as_ref())),
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(el) = walker.names.last() {
        return Err(cx.error_at(
            cx.text.len(),
            ParseErrorKind::Syntax,
            format!(
                "found the end of the file inside <{}>, expected its closing tag (is the file truncated?)",
                el.name()
            ),
        ));
    }
    walker.st.into_parsed(walker.namespace.as_deref())
}

fn pos(p: u64) -> usize {
    usize::try_from(p).unwrap_or(usize::MAX)
}

/// The open elements and the text of the current leaf element.
struct Walker<'a> {
    cx: Ctx<'a>,
    st: State<'a>,
    names: Vec<El>,
    starts: Vec<usize>,
    /// Index in `names` of the statement element (`Stmt`, `Rpt`, `Ntfctn`) being read.
    stmt_depth: Option<usize>,
    value: String,
    leaf: bool,
    namespace: Option<String>,
}

impl Walker<'_> {
    /// Text matters only inside a statement and only for elements without children.
    fn collecting(&self) -> bool {
        self.leaf && self.stmt_depth.is_some()
    }

    fn open(&mut self, e: &BytesStart<'_>, at: usize) -> Result<(), ParseError> {
        let el = El::from_name(e.local_name().as_ref());
        let depth = self.names.len();
        let found = || String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        if depth == 0 {
            self.namespace = root_namespace(e);
            match el {
                El::Document => {}
                El::Container(kind) => self.st.set_kind(kind),
                _ => {
                    return Err(self.cx.error_at(
                        at,
                        ParseErrorKind::Unsupported,
                        format!("found <{}>, expected an ISO 20022 camt <Document>", found()),
                    ))
                }
            }
        } else if depth == 1 && self.names.first() == Some(&El::Document) {
            match el {
                El::Container(kind) => self.st.set_kind(kind),
                _ => {
                    return Err(self.cx.error_at(
                        at,
                        ParseErrorKind::Unsupported,
                        format!(
                            "found <{}>, expected BkToCstmrStmt, BkToCstmrAcctRpt or BkToCstmrDbtCdtNtfctn \
                             (camt.052, camt.053 or camt.054)",
                            found()
                        ),
                    ))
                }
            }
        } else {
            match self.stmt_depth {
                None => {
                    if el == El::Report && matches!(self.names.last(), Some(El::Container(_))) {
                        self.stmt_depth = Some(depth);
                        self.st.start_statement(at);
                    }
                }
                Some(d) => {
                    // Only elements that start a record or carry a currency need work on opening.
                    if matches!(el, El::Ntry | El::TxDtls | El::Bal | El::Amt) {
                        self.names.push(el);
                        let result = match self.names.get(d + 1..) {
                            Some(rel) => self.st.open(rel, e, at),
                            None => Ok(()),
                        };
                        self.names.pop();
                        result?;
                    }
                }
            }
        }
        self.names.push(el);
        self.starts.push(at);
        self.value.clear();
        self.leaf = true;
        Ok(())
    }

    fn close(&mut self) -> Result<(), ParseError> {
        let at = self.starts.last().copied().unwrap_or(0);
        let value = if self.leaf { self.value.as_str() } else { "" };
        if let Some(d) = self.stmt_depth {
            let depth = self.names.len().saturating_sub(1);
            if depth == d {
                self.st.finish_statement()?;
                self.stmt_depth = None;
            } else if let Some(rel) = self.names.get(d + 1..) {
                self.st.close(rel, value, at)?;
            }
        }
        self.names.pop();
        self.starts.pop();
        self.leaf = false;
        Ok(())
    }
}

/// The namespace the root element declares (default or prefixed), if any.
fn root_namespace(e: &BytesStart<'_>) -> Option<String> {
    let prefix = e.name().prefix().map(|p| p.as_ref().to_vec());
    for attr in e.attributes().flatten() {
        let key = attr.key.as_ref();
        let matches = match &prefix {
            None => key == b"xmlns",
            Some(p) => key.strip_prefix(b"xmlns:") == Some(p.as_slice()),
        };
        if matches {
            return Some(String::from_utf8_lossy(&attr.value).into_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests;
