//! The report's content, computed from plain inputs ([`ReportData`]) so that the stored path
//! (`bankrec report`, the API, the `reports` Lambda) and the one-shot path (`bankrec reconcile
//! --report`) feed the same arithmetic.
//!
//! # The bank reconciliation statement
//!
//! Every figure is in the account's currency and is a sum of listed items:
//!
//! - **Balance per bank**: the closing balance the bank states for the period end (the import whose
//!   last day is the period end), or else the opening balance plus every bank line booked up to the
//!   period end.
//! - **Outstanding payments** (negative) and **deposits in transit** (positive): records dated up to
//!   the period end that no bank line dated up to the period end clears.
//! - **Bank items booked after the period end**: bank lines up to the period end whose matched
//!   records the books date after it; taken out of the bank side.
//! - **Resolved write-offs and adjustments**: bank lines no record explains (fees, interest,
//!   unknown receipts) and amount differences of matches, once a person resolved them
//!   (`write_off`, `adjust`, `ignore`): booked outside the records ledger, so taken out too.
//! - **Adjusted bank balance** = the sum of the lines above.
//! - **Book balance** = the opening balance + every record in the account's currency dated up to
//!   the period end. The opening balance is the account's, else the first statement's, else zero:
//!   bank and books are taken to agree before the first statement.
//! - **Difference** = adjusted bank balance − book balance. It is the total of the **open items**:
//!   bank lines and amount differences nobody has explained yet (open discrepancies, lines in
//!   suggestions awaiting review), and a stated bank balance its lines do not add up to. It is
//!   zero, and the reconciliation complete, when every item is explained.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::Currency;
use crate::matching::Method;
use crate::store::{AuditEvent, Discrepancy, ItemStatus, MatchState, ResolutionAction, StoredMatch};

/// A bank line as the report sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankLine {
    /// Stored id (the statement's own id on the one-shot path).
    pub id: String,
    /// Booking date.
    pub date: NaiveDate,
    /// Signed amount.
    pub amount: Decimal,
    /// The bank's text.
    pub description: String,
    /// Reconciliation status.
    pub status: ItemStatus,
}

/// A record from the books as the report sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookLine {
    /// The books' id.
    pub id: String,
    /// invoice, bill, check...
    pub kind: String,
    /// Record date.
    pub date: NaiveDate,
    /// Signed amount.
    pub amount: Decimal,
    /// Counterparty or description.
    pub description: String,
    /// Reconciliation status.
    pub status: ItemStatus,
}

/// Everything a report is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportData {
    /// The account's id.
    pub account_id: String,
    /// Its display name.
    pub account_name: String,
    /// Its currency.
    pub currency: Currency,
    /// First day of the period.
    pub start_date: NaiveDate,
    /// Last day of the period.
    pub end_date: NaiveDate,
    /// Balance before the first statement (bank and books alike).
    pub opening_balance: Decimal,
    /// The closing balance the bank states for the period end, with where it comes from.
    pub stated_closing: Option<(Decimal, String)>,
    /// Bank lines booked up to the period end.
    pub bank_lines: Vec<BankLine>,
    /// Records in the account's currency dated up to the period end, and records of matches.
    pub records: Vec<BookLine>,
    /// Matches touching the period, in any state.
    pub matches: Vec<StoredMatch>,
    /// The account's discrepancies dated up to the period end.
    pub discrepancies: Vec<Discrepancy>,
    /// Audit events of the report's runs, matches and discrepancies.
    pub audit: Vec<AuditEvent>,
}

/// One item behind a figure of the statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementItem {
    /// `bank`, `record` or `match` (an amount difference).
    pub source: String,
    /// The item's id.
    pub id: String,
    /// Its date.
    pub date: NaiveDate,
    /// What it is.
    pub description: String,
    /// Its own signed amount.
    pub amount: Decimal,
    /// How it moves the bank balance towards the books.
    pub effect: Decimal,
    /// The discrepancy that concerns it, if any.
    pub discrepancy_id: Option<String>,
    /// How it was resolved (`write_off: 6800 bank fees`), if it was.
    pub resolution: Option<String>,
}

/// One line of the statement: a label, a figure and the items it adds up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// Stable key (`outstanding_payments`...).
    pub key: String,
    /// What a reader sees.
    pub label: String,
    /// The figure: the sum of the items' effects.
    pub total: Decimal,
    /// The items.
    pub items: Vec<StatementItem>,
}

/// The bank reconciliation statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationStatement {
    /// Balance per bank at period end.
    pub bank_balance: Decimal,
    /// Where it comes from (a statement import, or computed from the lines).
    pub bank_balance_source: String,
    /// The adjustments, in order: outstanding payments, deposits in transit, bank items not yet
    /// booked, resolved write-offs and adjustments.
    pub adjustments: Vec<StatementLine>,
    /// Bank balance plus the adjustments.
    pub adjusted_bank_balance: Decimal,
    /// Opening balance.
    pub opening_balance: Decimal,
    /// Records dated up to the period end.
    pub records_total: Decimal,
    /// Opening balance plus records.
    pub book_balance: Decimal,
    /// Adjusted bank balance minus book balance.
    pub difference: Decimal,
    /// The items nobody has explained yet; their total is the difference.
    pub open_items: StatementLine,
    /// True when the difference is zero and nothing stays open.
    pub complete: bool,
}

/// A match as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRow {
    /// `mat_...`
    pub id: String,
    /// Its state.
    pub state: MatchState,
    /// What found it.
    pub method: Method,
    /// Calibrated confidence in [0, 1].
    pub confidence: f64,
    /// The rule that decided.
    pub rule: Option<String>,
    /// Bank lines.
    pub bank_ids: Vec<String>,
    /// Records.
    pub record_ids: Vec<String>,
    /// Total of its bank lines booked up to the period end.
    pub bank_total: Decimal,
    /// Bank total minus records total.
    pub difference: Decimal,
    /// Who created it.
    pub created_by: String,
    /// Who confirmed it (from the audit trail), when a person did.
    pub confirmed_by: Option<String>,
    /// A person's note.
    pub note: Option<String>,
}

/// A discrepancy as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscrepancyRow {
    /// `dis_...`
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its date.
    pub date: NaiveDate,
    /// Days from its date to the period end.
    pub age_days: i64,
    /// Signed amount.
    pub amount: Decimal,
    /// What is wrong.
    pub description: String,
    /// The resolution's action, when resolved.
    pub resolution: Option<String>,
    /// The resolution's ledger account.
    pub account: Option<String>,
    /// The resolution's note.
    pub note: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
}

/// An audit event as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Position in the trail.
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// The kind of object.
    pub entity: String,
    /// Its id.
    pub entity_id: String,
}

/// Items that stay open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exceptions {
    /// Bank lines in the period no live match holds.
    pub unmatched_bank: Vec<BankLine>,
    /// Records in the period no live match holds.
    pub unmatched_records: Vec<BookLine>,
    /// Open discrepancies with their age.
    pub open_discrepancies: Vec<DiscrepancyRow>,
    /// Suggestions awaiting review.
    pub suggestions: Vec<MatchRow>,
}

/// How the period was reconciled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchDetail {
    /// Every live match.
    pub matches: Vec<MatchRow>,
    /// Resolved discrepancies with resolution and note.
    pub resolved_discrepancies: Vec<DiscrepancyRow>,
    /// The audit events.
    pub audit: Vec<AuditRow>,
}

/// One bar of the chart: bank lines of a day (or a month, for long periods).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartPoint {
    /// First day of the bucket.
    pub date: NaiveDate,
    /// Lines in a live match.
    pub matched: usize,
    /// Lines in none.
    pub unmatched: usize,
}

/// Summary figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryFigures {
    /// Bank lines in the period.
    pub bank_lines: usize,
    /// Records in the period.
    pub records: usize,
    /// Bank lines in a live match.
    pub bank_lines_matched: usize,
    /// Live matches found by the engine (matched, discrepancy, reconciled engine matches).
    pub automatic_matches: usize,
    /// Live matches a person made or confirmed.
    pub manual_matches: usize,
    /// Bank lines matched by the engine without review, in percent of all bank lines (1 dp).
    pub auto_match_rate: Decimal,
    /// Share of live matches made or confirmed by a person, in percent (1 dp).
    pub manual_share: Decimal,
    /// Share of live matches the engine made alone, in percent (1 dp).
    pub automatic_share: Decimal,
    /// Bank lines by status.
    pub bank_by_status: BTreeMap<String, usize>,
    /// Records by status.
    pub records_by_status: BTreeMap<String, usize>,
    /// Matches by state.
    pub matches_by_state: BTreeMap<String, usize>,
    /// Matched vs unmatched bank lines over the period.
    pub chart: Vec<ChartPoint>,
}

/// A complete report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The account's id.
    pub account_id: String,
    /// Its name.
    pub account_name: String,
    /// Its currency.
    pub currency: Currency,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: NaiveDate,
    /// When it was generated.
    pub generated_at: DateTime<Utc>,
    /// The bank reconciliation statement.
    pub statement: ReconciliationStatement,
    /// Open items.
    pub exceptions: Exceptions,
    /// Matches, resolutions, audit events.
    pub detail: MatchDetail,
    /// Figures and the chart.
    pub summary: SummaryFigures,
}

/// Lookups every match row needs, built once: a report can hold many thousands of matches.
struct Index<'a> {
    /// Bank line id → amount.
    amount: HashMap<&'a str, Decimal>,
    /// Match id → who confirmed it last (the audit trail is oldest first).
    confirmed_by: HashMap<&'a str, &'a str>,
}

/// Sums amounts. Parsed amounts are bounded far below `Decimal`'s range, but a report must not
/// panic on any input: a sum beyond the range stays at its bound.
fn sum(amounts: impl Iterator<Item = Decimal>) -> Decimal {
    amounts.fold(Decimal::ZERO, |a, b| a.saturating_add(b))
}

/// Percent of `part` in `whole`, one decimal place (0 for an empty whole).
fn percent(part: usize, whole: usize) -> Decimal {
    if whole == 0 {
        return Decimal::ZERO;
    }
    (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole)).round_dp(1)
}

fn resolution_text(d: &Discrepancy) -> Option<String> {
    d.resolution.as_ref().map(|r| match &r.account {
        Some(a) => format!("{}: {a}", r.action.as_str()),
        None => r.action.as_str().to_string(),
    })
}

fn discrepancy_row(d: &Discrepancy, end: NaiveDate) -> DiscrepancyRow {
    DiscrepancyRow {
        id: d.id.clone(),
        kind: d.kind.as_str().to_string(),
        date: d.date,
        age_days: (end - d.date).num_days().max(0),
        amount: d.amount,
        description: d.description.clone(),
        resolution: d.resolution.as_ref().map(|r| r.action.as_str().to_string()),
        account: d.resolution.as_ref().and_then(|r| r.account.clone()),
        note: d.resolution.as_ref().map(|r| r.note.clone()),
        resolved_by: d.resolution.as_ref().map(|r| r.resolved_by.clone()),
    }
}

/// Whether a later run replaced this discrepancy with its own view (the store resolves such
/// discrepancies as `ignore` with a "superseded by reconciliation" note): nobody explained it.
fn superseded(d: &Discrepancy) -> bool {
    d.resolution
        .as_ref()
        .is_some_and(|r| r.action == ResolutionAction::Ignore && r.note.starts_with("superseded by reconciliation"))
}

/// Whether a resolution books the item outside the records ledger (a record created for it is
/// matched to it instead, so it is no adjustment).
fn books_outside_records(d: &Discrepancy) -> bool {
    d.resolution.as_ref().is_some_and(|r| r.action != ResolutionAction::CreateRecord)
}

impl Report {
    /// Computes the report. Items outside the period end are ignored; nothing here can fail.
    pub fn build(data: &ReportData, generated_at: DateTime<Utc>) -> Report {
        let end = data.end_date;
        let bank: Vec<&BankLine> = data.bank_lines.iter().filter(|t| t.date <= end).collect();
        let records: Vec<&BookLine> = data.records.iter().filter(|r| r.date <= end).collect();
        let bank_date: HashMap<&str, NaiveDate> = data.bank_lines.iter().map(|t| (t.id.as_str(), t.date)).collect();
        let record_date: HashMap<&str, NaiveDate> = data.records.iter().map(|r| (r.id.as_str(), r.date)).collect();
        let live: Vec<&StoredMatch> = data.matches.iter().filter(|m| m.state.is_live()).collect();

        // A live match whose every item is dated up to the period end settles inside it; its
        // difference is the only thing left to explain. Items of other matches stand alone.
        let inside = |m: &StoredMatch| {
            m.bank_transaction_ids.iter().all(|id| bank_date.get(id.as_str()).is_some_and(|d| *d <= end))
                && m.record_ids.iter().all(|id| record_date.get(id.as_str()).is_some_and(|d| *d <= end))
        };
        let settled: Vec<&StoredMatch> = live.iter().copied().filter(|m| inside(m)).collect();
        let cleared_bank: HashSet<&str> =
            settled.iter().flat_map(|m| m.bank_transaction_ids.iter().map(String::as_str)).collect();
        let cleared_records: HashSet<&str> =
            settled.iter().flat_map(|m| m.record_ids.iter().map(String::as_str)).collect();

        // The latest discrepancy about an item is its current state.
        let mut current: Vec<&Discrepancy> = data.discrepancies.iter().filter(|d| !superseded(d)).collect();
        current.sort_by_key(|d| d.created_at);
        let mut by_txn: HashMap<&str, &Discrepancy> = HashMap::new();
        let mut by_match: HashMap<&str, &Discrepancy> = HashMap::new();
        let mut by_record: HashMap<&str, &Discrepancy> = HashMap::new();
        for d in current {
            for t in &d.transaction_ids {
                by_txn.insert(t.as_str(), d);
            }
            for r in &d.record_ids {
                by_record.insert(r.as_str(), d);
            }
            if let Some(m) = &d.match_id {
                by_match.insert(m.as_str(), d);
            }
        }

        let (mut payments, mut deposits, mut unbooked, mut resolved) = (vec![], vec![], vec![], vec![]);
        for r in records.iter().filter(|r| !cleared_records.contains(r.id.as_str())) {
            let item = StatementItem {
                source: "record".into(),
                id: r.id.clone(),
                date: r.date,
                description: format!("{} {}", r.kind, r.description).trim().to_string(),
                amount: r.amount,
                effect: r.amount,
                discrepancy_id: by_record.get(r.id.as_str()).map(|d| d.id.clone()),
                resolution: by_record.get(r.id.as_str()).and_then(|d| resolution_text(d)),
            };
            if r.amount < Decimal::ZERO {
                payments.push(item);
            } else {
                deposits.push(item);
            }
        }
        // Bank lines whose records the books date after the period end: booked, just later.
        let booked_later: HashSet<&str> = live
            .iter()
            .filter(|m| !inside(m))
            .flat_map(|m| m.bank_transaction_ids.iter().map(String::as_str))
            .collect();
        let mut open = vec![];
        let mut place = |item: StatementItem, d: Option<&&Discrepancy>| {
            let mut item = item;
            item.discrepancy_id = d.map(|d| d.id.clone());
            item.resolution = d.and_then(|d| resolution_text(d));
            if d.is_some_and(|d| books_outside_records(d)) {
                resolved.push(item);
            } else if item.source == "bank" && booked_later.contains(item.id.as_str()) {
                item.resolution = Some("matched to records dated after the period end".into());
                unbooked.push(item);
            } else {
                open.push(item);
            }
        };
        for t in bank.iter().filter(|t| !cleared_bank.contains(t.id.as_str())) {
            let item = StatementItem {
                source: "bank".into(),
                id: t.id.clone(),
                date: t.date,
                description: t.description.clone(),
                amount: t.amount,
                effect: -t.amount,
                discrepancy_id: None,
                resolution: None,
            };
            place(item, by_txn.get(t.id.as_str()));
        }
        for m in settled.iter().filter(|m| !m.difference.is_zero()) {
            let date = m.bank_transaction_ids.iter().filter_map(|id| bank_date.get(id.as_str())).max().copied();
            let item = StatementItem {
                source: "match".into(),
                id: m.id.clone(),
                date: date.unwrap_or(end),
                description: format!("amount difference with records {}", m.record_ids.join(", ")),
                amount: m.difference,
                effect: -m.difference,
                discrepancy_id: None,
                resolution: None,
            };
            place(item, by_match.get(m.id.as_str()));
        }
        for list in [&mut payments, &mut deposits, &mut unbooked, &mut resolved, &mut open] {
            list.sort_by(|a, b| (a.date, &a.id).cmp(&(b.date, &b.id)));
        }
        let line = |key: &str, label: &str, items: Vec<StatementItem>| StatementLine {
            key: key.into(),
            label: label.into(),
            total: sum(items.iter().map(|i| i.effect)),
            items,
        };
        let adjustments = vec![
            line("outstanding_payments", "Outstanding payments and checks (−)", payments),
            line("deposits_in_transit", "Deposits in transit (+)", deposits),
            line("unbooked_bank_items", "Bank items booked after the period end (±)", unbooked),
            line("resolved_adjustments", "Resolved write-offs and adjustments (±)", resolved),
        ];
        let computed_bank = data.opening_balance.saturating_add(sum(bank.iter().map(|t| t.amount)));
        let (bank_balance, bank_balance_source) = match &data.stated_closing {
            Some((amount, source)) => (*amount, source.clone()),
            None => (computed_bank, "opening balance plus the bank lines".to_string()),
        };
        if bank_balance != computed_bank {
            open.push(StatementItem {
                source: "bank".into(),
                id: "balance".into(),
                date: end,
                description: "stated bank balance not explained by the opening balance and the lines".into(),
                amount: bank_balance.saturating_sub(computed_bank),
                effect: bank_balance.saturating_sub(computed_bank),
                discrepancy_id: None,
                resolution: None,
            });
        }
        let adjusted = bank_balance.saturating_add(sum(adjustments.iter().map(|l| l.total)));
        let records_total = sum(records.iter().map(|r| r.amount));
        let book_balance = data.opening_balance.saturating_add(records_total);
        let difference = adjusted.saturating_sub(book_balance);
        // Open items are not adjustments: they are what the difference consists of. Their
        // effect is how each one leaves the adjusted bank balance off the books.
        for item in &mut open {
            item.effect = if item.id == "balance" { item.amount } else { -item.effect };
        }
        let open_items = line("open_items", "Open items explaining the difference", open);
        let index = Index {
            amount: data.bank_lines.iter().map(|t| (t.id.as_str(), t.amount)).collect(),
            confirmed_by: data
                .audit
                .iter()
                .filter(|e| e.action == "match.confirmed")
                .map(|e| (e.entity_id.as_str(), e.actor.as_str()))
                .collect(),
        };
        let exceptions = Self::exceptions(data, &index, &live, end);
        let detail = Self::detail(data, &index, &live, end);
        let complete = difference.is_zero()
            && open_items.items.is_empty()
            && exceptions.open_discrepancies.is_empty()
            && exceptions.suggestions.is_empty();
        let statement = ReconciliationStatement {
            bank_balance,
            bank_balance_source,
            adjustments,
            adjusted_bank_balance: adjusted,
            opening_balance: data.opening_balance,
            records_total,
            book_balance,
            difference,
            open_items,
            complete,
        };
        let summary = Self::summary(data, &live, &detail);
        Report {
            account_id: data.account_id.clone(),
            account_name: data.account_name.clone(),
            currency: data.currency,
            start_date: data.start_date,
            end_date: data.end_date,
            generated_at,
            statement,
            exceptions,
            detail,
            summary,
        }
    }

    fn in_period(data: &ReportData, date: NaiveDate) -> bool {
        date >= data.start_date && date <= data.end_date
    }

    fn exceptions(data: &ReportData, index: &Index<'_>, live: &[&StoredMatch], end: NaiveDate) -> Exceptions {
        let held: HashSet<&str> = live
            .iter()
            .flat_map(|m| m.bank_transaction_ids.iter().chain(m.record_ids.iter()).map(String::as_str))
            .collect();
        Exceptions {
            unmatched_bank: data
                .bank_lines
                .iter()
                .filter(|t| Self::in_period(data, t.date) && !held.contains(t.id.as_str()))
                .cloned()
                .collect(),
            unmatched_records: data
                .records
                .iter()
                .filter(|r| Self::in_period(data, r.date) && !held.contains(r.id.as_str()))
                .cloned()
                .collect(),
            open_discrepancies: data
                .discrepancies
                .iter()
                .filter(|d| d.resolution.is_none() && d.date <= end)
                .map(|d| discrepancy_row(d, end))
                .collect(),
            suggestions: data
                .matches
                .iter()
                .filter(|m| m.state == MatchState::Suggested)
                .map(|m| Self::match_row(index, m))
                .collect(),
        }
    }

    fn match_row(index: &Index<'_>, m: &StoredMatch) -> MatchRow {
        let bank_total = sum(m.bank_transaction_ids.iter().filter_map(|id| index.amount.get(id.as_str()).copied()));
        let confirmed_by = if m.state == MatchState::Manual {
            Some(m.created_by.clone())
        } else {
            index.confirmed_by.get(m.id.as_str()).map(|a| a.to_string())
        };
        MatchRow {
            id: m.id.clone(),
            state: m.state,
            method: m.method,
            confidence: m.confidence,
            rule: m.rule.clone(),
            bank_ids: m.bank_transaction_ids.clone(),
            record_ids: m.record_ids.clone(),
            bank_total,
            difference: m.difference,
            created_by: m.created_by.clone(),
            confirmed_by,
            note: m.note.clone(),
        }
    }

    fn detail(data: &ReportData, index: &Index<'_>, live: &[&StoredMatch], end: NaiveDate) -> MatchDetail {
        MatchDetail {
            matches: live.iter().map(|m| Self::match_row(index, m)).collect(),
            resolved_discrepancies: data
                .discrepancies
                .iter()
                .filter(|d| d.resolution.is_some() && !superseded(d) && d.date <= end)
                .map(|d| discrepancy_row(d, end))
                .collect(),
            audit: data
                .audit
                .iter()
                .map(|e| AuditRow {
                    seq: e.seq,
                    at: e.at,
                    actor: e.actor.clone(),
                    action: e.action.clone(),
                    entity: e.entity.clone(),
                    entity_id: e.entity_id.clone(),
                })
                .collect(),
        }
    }

    fn summary(data: &ReportData, live: &[&StoredMatch], detail: &MatchDetail) -> SummaryFigures {
        let period_bank: Vec<&BankLine> = data.bank_lines.iter().filter(|t| Self::in_period(data, t.date)).collect();
        let period_records = data.records.iter().filter(|r| Self::in_period(data, r.date)).count();
        let held: HashSet<&str> = live.iter().flat_map(|m| m.bank_transaction_ids.iter().map(String::as_str)).collect();
        let by_person = |m: &MatchRow| m.confirmed_by.is_some() || m.state == MatchState::Manual;
        let manual = detail.matches.iter().filter(|m| by_person(m)).count();
        let automatic = detail.matches.len() - manual;
        let auto_lines: HashSet<&str> = detail
            .matches
            .iter()
            .filter(|m| !by_person(m))
            .flat_map(|m| m.bank_ids.iter().map(String::as_str))
            .collect();
        let auto_matched = period_bank.iter().filter(|t| auto_lines.contains(t.id.as_str())).count();
        let matched_lines = period_bank.iter().filter(|t| held.contains(t.id.as_str())).count();
        let mut bank_by_status = BTreeMap::new();
        for t in &period_bank {
            *bank_by_status.entry(t.status.as_str().to_string()).or_insert(0) += 1;
        }
        let mut records_by_status = BTreeMap::new();
        for r in data.records.iter().filter(|r| Self::in_period(data, r.date)) {
            *records_by_status.entry(r.status.as_str().to_string()).or_insert(0) += 1;
        }
        let mut matches_by_state = BTreeMap::new();
        for m in &data.matches {
            *matches_by_state.entry(m.state.as_str().to_string()).or_insert(0) += 1;
        }
        SummaryFigures {
            bank_lines: period_bank.len(),
            records: period_records,
            bank_lines_matched: matched_lines,
            automatic_matches: automatic,
            manual_matches: manual,
            auto_match_rate: percent(auto_matched, period_bank.len()),
            manual_share: percent(manual, detail.matches.len()),
            automatic_share: percent(automatic, detail.matches.len()),
            bank_by_status,
            records_by_status,
            matches_by_state,
            chart: Self::chart(data, &period_bank, &held),
        }
    }

    /// Daily bars up to two months, monthly bars beyond, so a chart stays readable.
    fn chart(data: &ReportData, lines: &[&BankLine], held: &HashSet<&str>) -> Vec<ChartPoint> {
        let monthly = (data.end_date - data.start_date).num_days() > 62;
        let bucket = |d: NaiveDate| if monthly { d.with_day(1).unwrap_or(d) } else { d };
        let mut points: BTreeMap<NaiveDate, ChartPoint> = BTreeMap::new();
        if !monthly {
            let mut day = data.start_date;
            while day <= data.end_date {
                points.insert(day, ChartPoint { date: day, matched: 0, unmatched: 0 });
                match day.succ_opt() {
                    Some(next) => day = next,
                    None => break,
                }
            }
        }
        for t in lines {
            let p =
                points.entry(bucket(t.date)).or_insert(ChartPoint { date: bucket(t.date), matched: 0, unmatched: 0 });
            if held.contains(t.id.as_str()) {
                p.matched += 1;
            } else {
                p.unmatched += 1;
            }
        }
        points.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::Explanation;
    use crate::store::{DiscrepancyKind, Resolution};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn bank(id: &str, d: u32, amount: &str) -> BankLine {
        BankLine {
            id: id.into(),
            date: day(d),
            amount: dec(amount),
            description: id.into(),
            status: ItemStatus::Matched,
        }
    }

    fn record(id: &str, d: u32, amount: &str) -> BookLine {
        BookLine {
            id: id.into(),
            kind: "invoice".into(),
            date: day(d),
            amount: dec(amount),
            description: String::new(),
            status: ItemStatus::Matched,
        }
    }

    fn matched(id: &str, bank: &[&str], records: &[&str], difference: &str) -> StoredMatch {
        StoredMatch {
            id: id.into(),
            run_id: None,
            account_id: "acc".into(),
            state: MatchState::Matched,
            bank_transaction_ids: bank.iter().map(|s| s.to_string()).collect(),
            record_ids: records.iter().map(|s| s.to_string()).collect(),
            confidence: 0.99,
            method: Method::Score,
            rule: None,
            difference: dec(difference),
            explanation: Explanation::default(),
            note: None,
            created_by: "system".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 1,
        }
    }

    fn fee_discrepancy(resolution: Option<(ResolutionAction, &str)>) -> Discrepancy {
        Discrepancy {
            id: "dis_fee".into(),
            account_id: "acc".into(),
            run_id: Some("rec_1".into()),
            kind: DiscrepancyKind::MissingInBooks,
            amount: dec("-2.50"),
            transaction_ids: vec!["fee".into()],
            record_ids: vec![],
            match_id: None,
            date: day(20),
            description: "a bank line with no record in the books".into(),
            proposal: None,
            resolution: resolution.map(|(action, note)| Resolution {
                action,
                account: Some("6800".into()),
                note: note.into(),
                record_id: None,
                resolved_by: "key_1".into(),
                resolved_at: Utc::now(),
            }),
            created_at: Utc::now(),
            version: 1,
        }
    }

    /// Opening 1000; a paid invoice; a check not yet cashed; a deposit not yet credited; a bank
    /// fee; a short payment; a line whose record is dated after the period.
    fn march(fee: Option<(ResolutionAction, &str)>) -> ReportData {
        ReportData {
            account_id: "acc".into(),
            account_name: "Operating".into(),
            currency: Currency::EUR,
            start_date: day(1),
            end_date: day(31),
            opening_balance: dec("1000"),
            stated_closing: None,
            bank_lines: vec![
                bank("paid", 5, "100"),
                bank("short", 6, "48"),
                bank("fee", 20, "-2.50"),
                bank("early", 30, "70"),
            ],
            records: vec![
                record("INV-1", 2, "100"),
                record("INV-2", 3, "50"),
                record("CHK-9", 28, "-300"),
                record("INV-3", 29, "40"),
                record("INV-4", 31, "0"),
            ],
            matches: vec![
                matched("m1", &["paid"], &["INV-1"], "0"),
                matched("m2", &["short"], &["INV-2"], "-2"),
                matched("m3", &["early"], &["INV-9"], "0"),
            ],
            discrepancies: vec![fee_discrepancy(fee)],
            audit: vec![],
        }
    }

    fn line<'a>(r: &'a Report, key: &str) -> &'a StatementLine {
        r.statement.adjustments.iter().find(|l| l.key == key).unwrap_or(&r.statement.open_items)
    }

    #[test]
    fn outstanding_items_and_timing_differences_are_adjustments_and_open_items_make_the_difference() {
        let r = Report::build(&march(None), Utc::now());
        let s = &r.statement;
        assert_eq!(s.bank_balance, dec("1215.50"));
        assert_eq!(line(&r, "outstanding_payments").total, dec("-300"));
        assert_eq!(line(&r, "deposits_in_transit").total, dec("40"));
        assert_eq!(line(&r, "unbooked_bank_items").total, dec("-70"), "the line whose record comes later");
        assert_eq!(line(&r, "resolved_adjustments").total, Decimal::ZERO);
        assert_eq!(s.adjusted_bank_balance, dec("885.50"));
        assert_eq!(s.book_balance, dec("890"));
        // The fee (-2.50) and the short payment (-2) are open.
        assert_eq!(s.open_items.items.len(), 2);
        assert_eq!(s.difference, dec("-4.50"));
        assert_eq!(s.difference, s.open_items.total);
        assert!(!s.complete);
        assert_eq!(r.exceptions.open_discrepancies.len(), 1);
        assert_eq!(r.exceptions.open_discrepancies[0].age_days, 11);
    }

    #[test]
    fn a_written_off_fee_moves_from_the_open_items_to_the_resolved_adjustments() {
        let r = Report::build(&march(Some((ResolutionAction::WriteOff, "bank fee"))), Utc::now());
        assert_eq!(line(&r, "resolved_adjustments").total, dec("2.50"));
        assert_eq!(r.statement.difference, dec("-2"));
        assert_eq!(r.detail.resolved_discrepancies.len(), 1);
        assert_eq!(r.detail.resolved_discrepancies[0].note.as_deref(), Some("bank fee"));
    }

    #[test]
    fn a_superseded_discrepancy_explains_nothing() {
        let r =
            Report::build(&march(Some((ResolutionAction::Ignore, "superseded by reconciliation rec_2"))), Utc::now());
        assert_eq!(r.statement.difference, dec("-4.50"));
        assert!(r.detail.resolved_discrepancies.is_empty());
    }

    #[test]
    fn a_stated_balance_its_lines_do_not_reach_is_an_open_item() {
        let mut data = march(Some((ResolutionAction::WriteOff, "fee")));
        data.matches[1].difference = Decimal::ZERO;
        data.bank_lines[1].amount = dec("50");
        data.stated_closing = Some((dec("1217.50"), "closing balance of statement march.csv".into()));
        let r = Report::build(&data, Utc::now());
        assert_eq!(r.statement.bank_balance, dec("1217.50"));
        assert_eq!(r.statement.difference, Decimal::ZERO);
        data.stated_closing = Some((dec("1220"), "closing balance of statement march.csv".into()));
        let r = Report::build(&data, Utc::now());
        assert_eq!(r.statement.difference, dec("2.50"));
        assert_eq!(r.statement.open_items.items.len(), 1);
        assert_eq!(r.statement.open_items.total, dec("2.50"));
    }

    #[test]
    fn an_empty_period_reports_zeroes_without_failing() {
        let mut data = march(None);
        data.bank_lines.clear();
        data.records.clear();
        data.matches.clear();
        data.discrepancies.clear();
        let r = Report::build(&data, Utc::now());
        assert_eq!(r.statement.difference, Decimal::ZERO);
        assert!(r.statement.complete);
        assert_eq!(r.summary.auto_match_rate, Decimal::ZERO);
        assert_eq!(r.summary.chart.len(), 31, "one bar a day");
    }

    proptest::proptest! {
        #[test]
        fn the_open_items_always_add_up_to_the_difference(
            lines in proptest::collection::vec((1u32..=31, -1_000_000i64..1_000_000), 0..30),
            books in proptest::collection::vec((1u32..=31, -1_000_000i64..1_000_000), 0..30),
            pairs in proptest::collection::vec((0usize..30, 0usize..30, 0u8..1), 0..20),
            stated in proptest::option::of(-10_000_000i64..10_000_000),
            end in 1u32..=31,
        ) {
            let mut data = march(None);
            data.end_date = day(end);
            data.start_date = day(1);
            data.bank_lines = lines.iter().enumerate().map(|(i, (d, a))| BankLine {
                id: format!("b{i}"), date: day(*d), amount: Decimal::new(*a, 2), description: String::new(),
                status: ItemStatus::Pending,
            }).collect();
            data.records = books.iter().enumerate().map(|(i, (d, a))| BookLine {
                id: format!("r{i}"), kind: "bill".into(), date: day(*d), amount: Decimal::new(*a, 2),
                description: String::new(), status: ItemStatus::Pending,
            }).collect();
            // Each item in at most one match; a match's difference is what its amounts differ by.
            let (mut used_b, mut used_r) = (HashSet::new(), HashSet::new());
            data.matches = pairs
                .iter()
                .filter(|(b, r, _)| *b < lines.len() && *r < books.len() && used_b.insert(*b) && used_r.insert(*r))
                .map(|(b, r, _)| {
                    let mut m = matched(&format!("m{b}"), &[&format!("b{b}")], &[&format!("r{r}")], "0");
                    m.difference = Decimal::new(lines[*b].1 - books[*r].1, 2);
                    m
                })
                .collect();
            data.stated_closing = stated.map(|s| (Decimal::new(s, 2), "stated".to_string()));
            let r = Report::build(&data, Utc::now());
            let st = &r.statement;
            proptest::prop_assert_eq!(st.difference, st.open_items.total);
            proptest::prop_assert_eq!(st.difference, st.adjusted_bank_balance - st.book_balance);
        }
    }
}
