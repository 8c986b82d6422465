//! The report's sections as tables of text: each section's columns and, row by row, the text of
//! its cells, built here once so that the CSV files, the web page and the PDF list the same
//! columns with the same text. The PDF's narrower tables are here too (`*_print`); its column
//! widths stay in the PDF renderer.

use rust_decimal::Decimal;

use super::super::model::{
    AuditRow, BankLine, BookLine, ChartPoint, DiscrepancyRow, MatchRow, Report, StatementItem, StatementLine,
    SummaryFigures,
};
use super::super::money;
use crate::domain::Currency;
use crate::matching::Method;

/// A column of a section's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    /// The CSV header: lower case and stable, for the scripts that read the files.
    pub name: &'static str,
    /// The header a reader sees.
    pub title: &'static str,
    /// The cells are figures, which the page right-aligns.
    pub numeric: bool,
}

const fn text(name: &'static str, title: &'static str) -> Column {
    Column { name, title, numeric: false }
}

const fn number(name: &'static str, title: &'static str) -> Column {
    Column { name, title, numeric: true }
}

/// A section as text: its columns, and one cell per column in every row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// The columns, left to right.
    pub columns: Vec<Column>,
    /// The rows, top to bottom.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[Column], rows: Vec<Vec<String>>) -> Self {
        Table { columns: columns.to_vec(), rows }
    }

    /// The CSV header row.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }
}

/// The titles of columns, for the workbook, which writes its own typed cells under them.
pub(crate) fn titles(columns: &[Column]) -> Vec<&'static str> {
    columns.iter().map(|c| c.title).collect()
}

/// The statement line an item belongs to, where every line's items share one table.
const LINE_COLUMN: Column = text("line", "Line");

/// The items behind a statement line.
pub(crate) const ITEM_COLUMNS: [Column; 8] = [
    text("source", "Source"),
    text("id", "Id"),
    text("date", "Date"),
    text("description", "Description"),
    number("amount", "Amount"),
    number("effect", "Effect"),
    text("discrepancy_id", "Discrepancy"),
    text("resolution", "Resolution"),
];

/// Unmatched bank lines.
pub(crate) const BANK_COLUMNS: [Column; 5] = [
    text("id", "Id"),
    text("date", "Date"),
    number("amount", "Amount"),
    text("description", "Description"),
    text("status", "Status"),
];

/// Unmatched records.
pub(crate) const RECORD_COLUMNS: [Column; 6] = [
    text("id", "Id"),
    text("kind", "Kind"),
    text("date", "Date"),
    number("amount", "Amount"),
    text("description", "Description"),
    text("status", "Status"),
];

/// Open and resolved discrepancies.
pub(crate) const DISCREPANCY_COLUMNS: [Column; 10] = [
    text("id", "Id"),
    text("kind", "Kind"),
    text("date", "Date"),
    number("age_days", "Age (days)"),
    number("amount", "Amount"),
    text("description", "Description"),
    text("resolution", "Resolution"),
    text("account", "Account"),
    text("note", "Note"),
    text("resolved_by", "By"),
];

/// Matches and suggestions.
pub(crate) const MATCH_COLUMNS: [Column; 12] = [
    text("id", "Id"),
    text("state", "State"),
    text("method", "Method"),
    number("confidence", "Confidence"),
    text("rule", "Rule"),
    text("bank_ids", "Bank lines"),
    text("record_ids", "Records"),
    number("bank_total", "Bank total"),
    number("difference", "Difference"),
    text("created_by", "Created by"),
    text("confirmed_by", "Confirmed by"),
    text("note", "Note"),
];

/// Audit events.
pub(crate) const AUDIT_COLUMNS: [Column; 6] = [
    number("seq", "Seq"),
    text("at", "At"),
    text("actor", "Actor"),
    text("action", "Action"),
    text("entity", "Entity"),
    text("entity_id", "Entity id"),
];

/// Summary figures.
pub(crate) const SUMMARY_COLUMNS: [Column; 2] = [text("figure", "Figure"), number("value", "Value")];

/// The chart's bars.
pub(crate) const CHART_COLUMNS: [Column; 3] =
    [text("date", "Date"), number("matched", "Matched"), number("unmatched", "Unmatched")];

/// The statement lines that list items: the adjustments in order, then the open items.
pub(crate) fn statement_lines(report: &Report) -> impl Iterator<Item = &StatementLine> {
    let s = &report.statement;
    s.adjustments.iter().chain(std::iter::once(&s.open_items))
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// A method as the API names it (`subset_sum`), so that files and pages use the same words.
pub(crate) fn method_name(method: Method) -> String {
    serde_json::to_value(method).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn item_cells(i: &StatementItem, c: Currency) -> Vec<String> {
    vec![
        i.source.clone(),
        i.id.clone(),
        i.date.to_string(),
        i.description.clone(),
        money(i.amount, c),
        money(i.effect, c),
        opt(&i.discrepancy_id),
        opt(&i.resolution),
    ]
}

/// The items behind one statement line.
pub(crate) fn statement_items(line: &StatementLine, c: Currency) -> Table {
    Table::new(&ITEM_COLUMNS, line.items.iter().map(|i| item_cells(i, c)).collect())
}

/// The columns of every statement line's items in one table: the line's key, then the items'.
pub(crate) fn all_item_columns() -> Vec<Column> {
    std::iter::once(LINE_COLUMN).chain(ITEM_COLUMNS).collect()
}

/// The items of every statement line in one table, each row led by its line's key.
pub(crate) fn all_statement_items(report: &Report) -> Table {
    let c = report.currency;
    let columns = all_item_columns();
    let rows = statement_lines(report)
        .flat_map(|l| l.items.iter().map(move |i| std::iter::once(l.key.clone()).chain(item_cells(i, c)).collect()))
        .collect();
    Table { columns, rows }
}

/// Unmatched bank lines.
pub(crate) fn unmatched_bank(lines: &[BankLine], c: Currency) -> Table {
    let rows = lines
        .iter()
        .map(|t| {
            vec![t.id.clone(), t.date.to_string(), money(t.amount, c), t.description.clone(), t.status.as_str().into()]
        })
        .collect();
    Table::new(&BANK_COLUMNS, rows)
}

/// Unmatched records.
pub(crate) fn unmatched_records(records: &[BookLine], c: Currency) -> Table {
    let rows = records
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.kind.clone(),
                r.date.to_string(),
                money(r.amount, c),
                r.description.clone(),
                r.status.as_str().into(),
            ]
        })
        .collect();
    Table::new(&RECORD_COLUMNS, rows)
}

/// Discrepancies, open or resolved.
pub(crate) fn discrepancies(rows: &[DiscrepancyRow], c: Currency) -> Table {
    let rows = rows
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.kind.clone(),
                d.date.to_string(),
                d.age_days.to_string(),
                money(d.amount, c),
                d.description.clone(),
                opt(&d.resolution),
                opt(&d.account),
                opt(&d.note),
                opt(&d.resolved_by),
            ]
        })
        .collect();
    Table::new(&DISCREPANCY_COLUMNS, rows)
}

/// Matches or suggestions.
pub(crate) fn matches(rows: &[MatchRow], c: Currency) -> Table {
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.state.as_str().into(),
                method_name(r.method),
                format!("{:.3}", r.confidence),
                opt(&r.rule),
                r.bank_ids.join(" "),
                r.record_ids.join(" "),
                money(r.bank_total, c),
                money(r.difference, c),
                r.created_by.clone(),
                opt(&r.confirmed_by),
                opt(&r.note),
            ]
        })
        .collect();
    Table::new(&MATCH_COLUMNS, rows)
}

/// Audit events, oldest first.
pub(crate) fn audit(events: &[AuditRow]) -> Table {
    let rows = events
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                e.at.to_rfc3339(),
                e.actor.clone(),
                e.action.clone(),
                e.entity.clone(),
                e.entity_id.clone(),
            ]
        })
        .collect();
    Table::new(&AUDIT_COLUMNS, rows)
}

/// A summary figure's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    /// A number of lines, records or matches.
    Count(usize),
    /// A rate or share in percent.
    Percent(Decimal),
}

/// One summary figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Figure {
    /// What the CSV file calls it (`bank_lines`, `bank.matched`).
    pub name: String,
    /// What a reader sees (`Bank lines`, `Bank lines: matched`), without a unit.
    pub title: String,
    /// The figure.
    pub value: Value,
}

/// The summary figures, top to bottom: the counts and rates, then the counts by status and state.
pub(crate) fn figures(s: &SummaryFigures) -> Vec<Figure> {
    let figure = |name: &str, title: &str, value| Figure { name: name.into(), title: title.into(), value };
    let mut figures = vec![
        figure("bank_lines", "Bank lines", Value::Count(s.bank_lines)),
        figure("records", "Records", Value::Count(s.records)),
        figure("bank_lines_matched", "Bank lines matched", Value::Count(s.bank_lines_matched)),
        figure("automatic_matches", "Automatic matches", Value::Count(s.automatic_matches)),
        figure("manual_matches", "Manual or confirmed matches", Value::Count(s.manual_matches)),
        figure("auto_match_rate_percent", "Auto-match rate", Value::Percent(s.auto_match_rate)),
        figure("manual_share_percent", "Manual share", Value::Percent(s.manual_share)),
        figure("automatic_share_percent", "Automatic share", Value::Percent(s.automatic_share)),
    ];
    for (name, title, map) in [
        ("bank", "Bank lines", &s.bank_by_status),
        ("records", "Records", &s.records_by_status),
        ("matches", "Matches", &s.matches_by_state),
    ] {
        figures.extend(map.iter().map(|(k, v)| Figure {
            name: format!("{name}.{k}"),
            title: format!("{title}: {k}"),
            value: Value::Count(*v),
        }));
    }
    figures
}

/// The summary for the CSV file: figures by name, percentages as bare numbers that a script can
/// read back.
pub(crate) fn summary_data(s: &SummaryFigures) -> Table {
    let rows = figures(s)
        .into_iter()
        .map(|f| {
            let value = match f.value {
                Value::Count(n) => n.to_string(),
                Value::Percent(p) => p.to_string(),
            };
            vec![f.name, value]
        })
        .collect();
    Table::new(&SUMMARY_COLUMNS, rows)
}

/// The summary for a reader: figures by label, percentages with their `%`.
pub(crate) fn summary(s: &SummaryFigures) -> Table {
    let rows = figures(s)
        .into_iter()
        .map(|f| {
            let value = match f.value {
                Value::Count(n) => n.to_string(),
                Value::Percent(p) => format!("{p}%"),
            };
            vec![f.title, value]
        })
        .collect();
    Table::new(&SUMMARY_COLUMNS, rows)
}

/// The chart's bars as figures.
pub(crate) fn chart(points: &[ChartPoint]) -> Table {
    let rows =
        points.iter().map(|p| vec![p.date.to_string(), p.matched.to_string(), p.unmatched.to_string()]).collect();
    Table::new(&CHART_COLUMNS, rows)
}

// The PDF prints on A4 and cannot fit the wide tables above: its variants merge or drop columns
// and round more, and are built here too so that the printed texts stay beside the full ones.

/// The items behind a statement line, as printed: the effect alone, and the resolution in place
/// of the discrepancy it resolves.
pub(crate) const ITEM_PRINT_COLUMNS: [Column; 6] = [
    text("source", "Source"),
    text("id", "Id"),
    text("date", "Date"),
    text("description", "Description"),
    number("effect", "Effect"),
    text("resolution_or_discrepancy_id", "Discrepancy / resolution"),
];

/// Discrepancies as printed: the resolution and its account stand in for the description once
/// there is one, and the resolver follows the note.
pub(crate) const DISCREPANCY_PRINT_COLUMNS: [Column; 7] = [
    text("id", "Id"),
    text("kind", "Kind"),
    text("date", "Date"),
    number("age_days", "Age"),
    number("amount", "Amount"),
    text("resolution_or_description", "Resolution / description"),
    text("note", "Note"),
];

/// Matches as printed: no bank line ids (the records identify the match), and the creator in
/// brackets where nobody confirmed it.
pub(crate) const MATCH_PRINT_COLUMNS: [Column; 9] = [
    text("id", "Id"),
    text("state", "State"),
    text("method", "Method"),
    number("confidence", "Conf."),
    text("rule", "Rule"),
    text("record_ids", "Records"),
    number("bank_total", "Bank total"),
    number("difference", "Diff."),
    text("confirmed_by", "Confirmed by"),
];

/// Audit events as printed: the time to the second, the entity and its id in one column.
pub(crate) const AUDIT_PRINT_COLUMNS: [Column; 5] = [
    number("seq", "Seq"),
    text("at", "At"),
    text("actor", "Actor"),
    text("action", "Action"),
    text("entity", "Entity"),
];

/// The items behind one statement line, as printed.
pub(crate) fn statement_items_print(line: &StatementLine, c: Currency) -> Table {
    let rows = line
        .items
        .iter()
        .map(|i| {
            vec![
                i.source.clone(),
                i.id.clone(),
                i.date.to_string(),
                i.description.clone(),
                money(i.effect, c),
                i.resolution.clone().or_else(|| i.discrepancy_id.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    Table::new(&ITEM_PRINT_COLUMNS, rows)
}

/// Discrepancies, open or resolved, as printed.
pub(crate) fn discrepancies_print(rows: &[DiscrepancyRow], c: Currency) -> Table {
    let rows = rows
        .iter()
        .map(|d| {
            let what = match (&d.resolution, &d.account) {
                (Some(r), Some(a)) => format!("{r}: {a}"),
                (Some(r), None) => r.clone(),
                _ => d.description.clone(),
            };
            let note = match (&d.note, &d.resolved_by) {
                (Some(n), Some(by)) => format!("{n} ({by})"),
                (n, _) => opt(n),
            };
            vec![
                d.id.clone(),
                d.kind.clone(),
                d.date.to_string(),
                d.age_days.to_string(),
                money(d.amount, c),
                what,
                note,
            ]
        })
        .collect();
    Table::new(&DISCREPANCY_PRINT_COLUMNS, rows)
}

/// Matches or suggestions, as printed.
pub(crate) fn matches_print(rows: &[MatchRow], c: Currency) -> Table {
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.state.as_str().to_string(),
                method_name(r.method),
                format!("{:.2}", r.confidence),
                opt(&r.rule),
                r.record_ids.join(" "),
                money(r.bank_total, c),
                money(r.difference, c),
                r.confirmed_by.clone().unwrap_or_else(|| format!("({})", r.created_by)),
            ]
        })
        .collect();
    Table::new(&MATCH_PRINT_COLUMNS, rows)
}

/// Audit events, oldest first, as printed.
pub(crate) fn audit_print(events: &[AuditRow]) -> Table {
    let rows = events
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                e.actor.clone(),
                e.action.clone(),
                format!("{} {}", e.entity, e.entity_id),
            ]
        })
        .collect();
    Table::new(&AUDIT_PRINT_COLUMNS, rows)
}
