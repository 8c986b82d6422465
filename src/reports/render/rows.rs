//! The report's sections as tables of text: each section's columns and, row by row, the text of
//! its cells, built here once so that the CSV files, the web page and the PDF list the same
//! columns with the same text. The PDF's narrower tables are here too (`*_print`); its column
//! widths stay in the PDF renderer.
//!
//! A column is declared once with its header and the text of its cell ([`Field`]), so that a
//! header cannot drift from its cells, and the full and the printed variant of a table share the
//! columns they have in common.

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

impl AsRef<Column> for Column {
    fn as_ref(&self) -> &Column {
        self
    }
}

/// A column of a table over rows of `T`, with the text of its cell in a row. The currency is
/// there for the amounts; other cells ignore it.
pub(crate) struct Field<T> {
    /// The column.
    pub column: Column,
    cell: fn(&T, Currency) -> String,
}

// Not derived: the derive would ask `T` to be `Copy` too, and the report's rows are not.
impl<T> Clone for Field<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Field<T> {}

impl<T> AsRef<Column> for Field<T> {
    fn as_ref(&self) -> &Column {
        &self.column
    }
}

impl<T> Field<T> {
    const fn text(name: &'static str, title: &'static str, cell: fn(&T, Currency) -> String) -> Self {
        Field { column: Column { name, title, numeric: false }, cell }
    }

    const fn number(name: &'static str, title: &'static str, cell: fn(&T, Currency) -> String) -> Self {
        Field { column: Column { name, title, numeric: true }, cell }
    }

    /// The same cells under a shorter title, for the narrow printed columns.
    const fn titled(self, title: &'static str) -> Self {
        Field { column: Column { title, ..self.column }, cell: self.cell }
    }
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
    /// The table of `items`, one row each, one cell per field.
    fn of<T>(fields: &[Field<T>], items: &[T], c: Currency) -> Self {
        let rows = items.iter().map(|item| fields.iter().map(|f| (f.cell)(item, c)).collect()).collect();
        Table { columns: fields.iter().map(|f| f.column).collect(), rows }
    }

    /// The CSV header row.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }
}

/// The titles of columns, for the workbook, which writes its own typed cells under them.
pub(crate) fn titles<C: AsRef<Column>>(columns: &[C]) -> Vec<&'static str> {
    columns.iter().map(|c| c.as_ref().title).collect()
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// A method as the API names it (`subset_sum`), so that files and pages use the same words.
pub(crate) fn method_name(method: Method) -> String {
    serde_json::to_value(method).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// The statement lines that list items: the adjustments in order, then the open items.
pub(crate) fn statement_lines(report: &Report) -> impl Iterator<Item = &StatementLine> {
    let s = &report.statement;
    s.adjustments.iter().chain(std::iter::once(&s.open_items))
}

/// The statement line an item belongs to, where every line's items share one table.
const LINE_COLUMN: Column = Column { name: "line", title: "Line", numeric: false };

mod item_field {
    //! The columns of statement items.

    use super::*;

    pub const SOURCE: Field<StatementItem> = Field::text("source", "Source", |i, _| i.source.clone());
    pub const ID: Field<StatementItem> = Field::text("id", "Id", |i, _| i.id.clone());
    pub const DATE: Field<StatementItem> = Field::text("date", "Date", |i, _| i.date.to_string());
    pub const DESCRIPTION: Field<StatementItem> =
        Field::text("description", "Description", |i, _| i.description.clone());
    pub const AMOUNT: Field<StatementItem> = Field::number("amount", "Amount", |i, c| money(i.amount, c));
    pub const EFFECT: Field<StatementItem> = Field::number("effect", "Effect", |i, c| money(i.effect, c));
    pub const DISCREPANCY_ID: Field<StatementItem> =
        Field::text("discrepancy_id", "Discrepancy", |i, _| opt(&i.discrepancy_id));
    pub const RESOLUTION: Field<StatementItem> = Field::text("resolution", "Resolution", |i, _| opt(&i.resolution));
    /// A resolved item's resolution, else the discrepancy that keeps it open.
    pub const RESOLUTION_OR_DISCREPANCY: Field<StatementItem> =
        Field::text("resolution_or_discrepancy_id", "Discrepancy / resolution", |i, _| {
            i.resolution.clone().or_else(|| i.discrepancy_id.clone()).unwrap_or_default()
        });
}

/// The items behind a statement line.
pub(crate) const ITEM_COLUMNS: [Field<StatementItem>; 8] = [
    item_field::SOURCE,
    item_field::ID,
    item_field::DATE,
    item_field::DESCRIPTION,
    item_field::AMOUNT,
    item_field::EFFECT,
    item_field::DISCREPANCY_ID,
    item_field::RESOLUTION,
];

/// Unmatched bank lines.
pub(crate) const BANK_COLUMNS: [Field<BankLine>; 5] = [
    Field::text("id", "Id", |t, _| t.id.clone()),
    Field::text("date", "Date", |t, _| t.date.to_string()),
    Field::number("amount", "Amount", |t, c| money(t.amount, c)),
    Field::text("description", "Description", |t, _| t.description.clone()),
    Field::text("status", "Status", |t, _| t.status.as_str().into()),
];

/// Unmatched records.
pub(crate) const RECORD_COLUMNS: [Field<BookLine>; 6] = [
    Field::text("id", "Id", |r, _| r.id.clone()),
    Field::text("kind", "Kind", |r, _| r.kind.clone()),
    Field::text("date", "Date", |r, _| r.date.to_string()),
    Field::number("amount", "Amount", |r, c| money(r.amount, c)),
    Field::text("description", "Description", |r, _| r.description.clone()),
    Field::text("status", "Status", |r, _| r.status.as_str().into()),
];

mod discrepancy_field {
    //! The columns of discrepancies.

    use super::*;

    pub const ID: Field<DiscrepancyRow> = Field::text("id", "Id", |d, _| d.id.clone());
    pub const KIND: Field<DiscrepancyRow> = Field::text("kind", "Kind", |d, _| d.kind.clone());
    pub const DATE: Field<DiscrepancyRow> = Field::text("date", "Date", |d, _| d.date.to_string());
    pub const AGE: Field<DiscrepancyRow> = Field::number("age_days", "Age (days)", |d, _| d.age_days.to_string());
    pub const AMOUNT: Field<DiscrepancyRow> = Field::number("amount", "Amount", |d, c| money(d.amount, c));
    pub const DESCRIPTION: Field<DiscrepancyRow> =
        Field::text("description", "Description", |d, _| d.description.clone());
    pub const RESOLUTION: Field<DiscrepancyRow> = Field::text("resolution", "Resolution", |d, _| opt(&d.resolution));
    pub const ACCOUNT: Field<DiscrepancyRow> = Field::text("account", "Account", |d, _| opt(&d.account));
    pub const NOTE: Field<DiscrepancyRow> = Field::text("note", "Note", |d, _| opt(&d.note));
    pub const RESOLVED_BY: Field<DiscrepancyRow> = Field::text("resolved_by", "By", |d, _| opt(&d.resolved_by));
    /// The resolution and its account once there is one, else what is wrong.
    pub const RESOLUTION_OR_DESCRIPTION: Field<DiscrepancyRow> =
        Field::text("resolution_or_description", "Resolution / description", |d, _| {
            match (&d.resolution, &d.account) {
                (Some(r), Some(a)) => format!("{r}: {a}"),
                (Some(r), None) => r.clone(),
                _ => d.description.clone(),
            }
        });
    /// The note followed by who resolved it; who resolved it also without a note, since an
    /// auditor asks who decided every resolution.
    pub const NOTE_AND_RESOLVER: Field<DiscrepancyRow> =
        Field::text("note", "Note", |d, _| match (&d.note, &d.resolved_by) {
            (Some(n), Some(by)) => format!("{n} ({by})"),
            (None, Some(by)) => format!("({by})"),
            (n, None) => opt(n),
        });
}

/// Open and resolved discrepancies.
pub(crate) const DISCREPANCY_COLUMNS: [Field<DiscrepancyRow>; 10] = [
    discrepancy_field::ID,
    discrepancy_field::KIND,
    discrepancy_field::DATE,
    discrepancy_field::AGE,
    discrepancy_field::AMOUNT,
    discrepancy_field::DESCRIPTION,
    discrepancy_field::RESOLUTION,
    discrepancy_field::ACCOUNT,
    discrepancy_field::NOTE,
    discrepancy_field::RESOLVED_BY,
];

mod match_field {
    //! The columns of matches and suggestions.

    use super::*;

    pub const ID: Field<MatchRow> = Field::text("id", "Id", |r, _| r.id.clone());
    pub const STATE: Field<MatchRow> = Field::text("state", "State", |r, _| r.state.as_str().into());
    pub const METHOD: Field<MatchRow> = Field::text("method", "Method", |r, _| method_name(r.method));
    pub const CONFIDENCE: Field<MatchRow> =
        Field::number("confidence", "Confidence", |r, _| format!("{:.3}", r.confidence));
    pub const RULE: Field<MatchRow> = Field::text("rule", "Rule", |r, _| opt(&r.rule));
    pub const BANK_IDS: Field<MatchRow> = Field::text("bank_ids", "Bank lines", |r, _| r.bank_ids.join(" "));
    pub const RECORD_IDS: Field<MatchRow> = Field::text("record_ids", "Records", |r, _| r.record_ids.join(" "));
    pub const BANK_TOTAL: Field<MatchRow> = Field::number("bank_total", "Bank total", |r, c| money(r.bank_total, c));
    pub const DIFFERENCE: Field<MatchRow> = Field::number("difference", "Difference", |r, c| money(r.difference, c));
    pub const CREATED_BY: Field<MatchRow> = Field::text("created_by", "Created by", |r, _| r.created_by.clone());
    pub const CONFIRMED_BY: Field<MatchRow> = Field::text("confirmed_by", "Confirmed by", |r, _| opt(&r.confirmed_by));
    pub const NOTE: Field<MatchRow> = Field::text("note", "Note", |r, _| opt(&r.note));
    /// Two places are enough on paper.
    pub const CONFIDENCE_SHORT: Field<MatchRow> =
        Field::number("confidence", "Conf.", |r, _| format!("{:.2}", r.confidence));
    /// Who confirmed it, else its creator in brackets.
    pub const CONFIRMED_OR_CREATED_BY: Field<MatchRow> = Field::text("confirmed_by", "Confirmed by", |r, _| {
        r.confirmed_by.clone().unwrap_or_else(|| format!("({})", r.created_by))
    });
}

/// Matches and suggestions.
pub(crate) const MATCH_COLUMNS: [Field<MatchRow>; 12] = [
    match_field::ID,
    match_field::STATE,
    match_field::METHOD,
    match_field::CONFIDENCE,
    match_field::RULE,
    match_field::BANK_IDS,
    match_field::RECORD_IDS,
    match_field::BANK_TOTAL,
    match_field::DIFFERENCE,
    match_field::CREATED_BY,
    match_field::CONFIRMED_BY,
    match_field::NOTE,
];

mod audit_field {
    //! The columns of audit events.

    use super::*;

    pub const SEQ: Field<AuditRow> = Field::number("seq", "Seq", |e, _| e.seq.to_string());
    pub const AT: Field<AuditRow> = Field::text("at", "At", |e, _| e.at.to_rfc3339());
    pub const ACTOR: Field<AuditRow> = Field::text("actor", "Actor", |e, _| e.actor.clone());
    pub const ACTION: Field<AuditRow> = Field::text("action", "Action", |e, _| e.action.clone());
    pub const ENTITY: Field<AuditRow> = Field::text("entity", "Entity", |e, _| e.entity.clone());
    pub const ENTITY_ID: Field<AuditRow> = Field::text("entity_id", "Entity id", |e, _| e.entity_id.clone());
    /// To the second, without the offset: every time is UTC.
    pub const AT_SECONDS: Field<AuditRow> =
        Field::text("at", "At", |e, _| e.at.format("%Y-%m-%d %H:%M:%S").to_string());
    /// The kind of object and its id.
    pub const ENTITY_AND_ID: Field<AuditRow> =
        Field::text("entity", "Entity", |e, _| format!("{} {}", e.entity, e.entity_id));
}

/// Audit events.
pub(crate) const AUDIT_COLUMNS: [Field<AuditRow>; 6] = [
    audit_field::SEQ,
    audit_field::AT,
    audit_field::ACTOR,
    audit_field::ACTION,
    audit_field::ENTITY,
    audit_field::ENTITY_ID,
];

/// Summary figures.
pub(crate) const SUMMARY_COLUMNS: [Column; 2] = [
    Column { name: "figure", title: "Figure", numeric: false },
    Column { name: "value", title: "Value", numeric: true },
];

/// The chart's bars.
pub(crate) const CHART_COLUMNS: [Field<ChartPoint>; 3] = [
    Field::text("date", "Date", |p, _| p.date.to_string()),
    Field::number("matched", "Matched", |p, _| p.matched.to_string()),
    Field::number("unmatched", "Unmatched", |p, _| p.unmatched.to_string()),
];

// The PDF prints on A4 and cannot fit the wide tables above: its variants merge or drop columns
// and round more.

/// The items behind a statement line, as printed: the effect alone, and the resolution in place
/// of the discrepancy it resolves.
pub(crate) const ITEM_PRINT_COLUMNS: [Field<StatementItem>; 6] = [
    item_field::SOURCE,
    item_field::ID,
    item_field::DATE,
    item_field::DESCRIPTION,
    item_field::EFFECT,
    item_field::RESOLUTION_OR_DISCREPANCY,
];

/// Discrepancies as printed: the resolution and its account stand in for the description once
/// there is one, and the resolver follows the note.
pub(crate) const DISCREPANCY_PRINT_COLUMNS: [Field<DiscrepancyRow>; 7] = [
    discrepancy_field::ID,
    discrepancy_field::KIND,
    discrepancy_field::DATE,
    discrepancy_field::AGE.titled("Age"),
    discrepancy_field::AMOUNT,
    discrepancy_field::RESOLUTION_OR_DESCRIPTION,
    discrepancy_field::NOTE_AND_RESOLVER,
];

/// Matches as printed: no bank line ids (the records identify the match), and the creator in
/// brackets where nobody confirmed it.
pub(crate) const MATCH_PRINT_COLUMNS: [Field<MatchRow>; 9] = [
    match_field::ID,
    match_field::STATE,
    match_field::METHOD,
    match_field::CONFIDENCE_SHORT,
    match_field::RULE,
    match_field::RECORD_IDS,
    match_field::BANK_TOTAL,
    match_field::DIFFERENCE.titled("Diff."),
    match_field::CONFIRMED_OR_CREATED_BY,
];

/// Audit events as printed: the time to the second, the entity and its id in one column.
pub(crate) const AUDIT_PRINT_COLUMNS: [Field<AuditRow>; 5] =
    [audit_field::SEQ, audit_field::AT_SECONDS, audit_field::ACTOR, audit_field::ACTION, audit_field::ENTITY_AND_ID];

/// The items behind one statement line.
pub(crate) fn statement_items(line: &StatementLine, c: Currency) -> Table {
    Table::of(&ITEM_COLUMNS, &line.items, c)
}

/// The items behind one statement line, as printed.
pub(crate) fn statement_items_print(line: &StatementLine, c: Currency) -> Table {
    Table::of(&ITEM_PRINT_COLUMNS, &line.items, c)
}

/// The columns of every statement line's items in one table: the line's key, then the items'.
pub(crate) fn all_item_columns() -> Vec<Column> {
    std::iter::once(LINE_COLUMN).chain(ITEM_COLUMNS.iter().map(|f| f.column)).collect()
}

/// The items of every statement line in one table, each row led by its line's key.
pub(crate) fn all_statement_items(report: &Report) -> Table {
    let rows = statement_lines(report)
        .flat_map(|l| {
            statement_items(l, report.currency).rows.into_iter().map(|row| {
                let mut cells = vec![l.key.clone()];
                cells.extend(row);
                cells
            })
        })
        .collect();
    Table { columns: all_item_columns(), rows }
}

/// Unmatched bank lines.
pub(crate) fn unmatched_bank(lines: &[BankLine], c: Currency) -> Table {
    Table::of(&BANK_COLUMNS, lines, c)
}

/// Unmatched records.
pub(crate) fn unmatched_records(records: &[BookLine], c: Currency) -> Table {
    Table::of(&RECORD_COLUMNS, records, c)
}

/// Discrepancies, open or resolved.
pub(crate) fn discrepancies(list: &[DiscrepancyRow], c: Currency) -> Table {
    Table::of(&DISCREPANCY_COLUMNS, list, c)
}

/// Discrepancies, open or resolved, as printed.
pub(crate) fn discrepancies_print(list: &[DiscrepancyRow], c: Currency) -> Table {
    Table::of(&DISCREPANCY_PRINT_COLUMNS, list, c)
}

/// Matches or suggestions.
pub(crate) fn matches(list: &[MatchRow], c: Currency) -> Table {
    Table::of(&MATCH_COLUMNS, list, c)
}

/// Matches or suggestions, as printed.
pub(crate) fn matches_print(list: &[MatchRow], c: Currency) -> Table {
    Table::of(&MATCH_PRINT_COLUMNS, list, c)
}

/// Audit events, oldest first.
pub(crate) fn audit(events: &[AuditRow], c: Currency) -> Table {
    Table::of(&AUDIT_COLUMNS, events, c)
}

/// Audit events, oldest first, as printed.
pub(crate) fn audit_print(events: &[AuditRow], c: Currency) -> Table {
    Table::of(&AUDIT_PRINT_COLUMNS, events, c)
}

/// The chart's bars as figures.
pub(crate) fn chart(points: &[ChartPoint], c: Currency) -> Table {
    Table::of(&CHART_COLUMNS, points, c)
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
    Table { columns: SUMMARY_COLUMNS.to_vec(), rows }
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
    Table { columns: SUMMARY_COLUMNS.to_vec(), rows }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MatchState;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn suggestion() -> MatchRow {
        MatchRow {
            id: "mat_1".into(),
            state: MatchState::Suggested,
            method: Method::SubsetSum,
            confidence: 0.8766,
            rule: None,
            bank_ids: vec!["txn_1".into(), "txn_2".into()],
            record_ids: vec!["INV-1".into()],
            bank_total: dec("-12.5"),
            difference: dec("0"),
            created_by: "engine".into(),
            confirmed_by: None,
            note: None,
        }
    }

    fn resolved() -> DiscrepancyRow {
        DiscrepancyRow {
            id: "dis_1".into(),
            kind: "amount_mismatch".into(),
            date: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default(),
            age_days: 29,
            amount: dec("1.5"),
            description: "amounts differ".into(),
            resolution: Some("write_off".into()),
            account: Some("6800 bank fees".into()),
            note: Some("reviewed".into()),
            resolved_by: Some("key_reviewer".into()),
        }
    }

    #[test]
    fn every_row_has_a_cell_under_each_title() {
        let full = matches(&[suggestion()], Currency::EUR);
        assert_eq!(full.names()[..3], ["id", "state", "method"]);
        assert_eq!(full.rows[0].len(), full.columns.len());
        assert_eq!(
            full.rows[0],
            [
                "mat_1",
                "suggested",
                "subset_sum",
                "0.877",
                "",
                "txn_1 txn_2",
                "INV-1",
                "-12.50",
                "0.00",
                "engine",
                "",
                ""
            ]
        );
    }

    #[test]
    fn the_printed_tables_merge_what_the_full_ones_list_apart() {
        let printed = matches_print(&[suggestion()], Currency::EUR);
        assert_eq!(
            printed.rows[0],
            ["mat_1", "suggested", "subset_sum", "0.88", "", "INV-1", "-12.50", "0.00", "(engine)"]
        );
        assert_eq!(printed.columns[7].title, "Diff.");
        let printed = discrepancies_print(&[resolved()], Currency::EUR);
        assert_eq!(printed.rows[0][5..], ["write_off: 6800 bank fees", "reviewed (key_reviewer)"]);
        assert_eq!(discrepancies(&[resolved()], Currency::EUR).rows[0].len(), DISCREPANCY_COLUMNS.len());
    }

    #[test]
    fn the_printed_statement_names_who_resolved_a_discrepancy_without_a_note() {
        let silent = DiscrepancyRow { note: None, ..resolved() };
        assert_eq!(discrepancies_print(&[silent], Currency::EUR).rows[0][6], "(key_reviewer)");
    }
}
