//! One renderer per format. Each prints the same figures from the same [`super::Report`], amounts
//! with the currency's minor units ([`crate::domain::money::fixed`]).
//!
//! The statement's lines (`statement_rows`) and the sections' tables as text (module `rows`) are
//! built once here: the CSV, HTML and PDF renderers only lay them out, and the workbook takes
//! their headers and writes typed cells (numbers, dates) under them.

pub mod csv;
pub mod html;
pub mod pdf;
mod rows;
pub mod xlsx;

use rust_decimal::Decimal;

use super::model::Report;

/// One line of the statement.
pub(crate) struct StatementRow {
    /// What a reader sees.
    pub label: String,
    /// The figure.
    pub figure: Decimal,
    /// A balance the lines above it add up to, which the page and the PDF set in bold.
    pub total: bool,
}

/// The statement's lines, top to bottom, shared by every renderer so that they print the same
/// lines in the same order. The last is the difference.
pub(crate) fn statement_rows(report: &Report) -> Vec<StatementRow> {
    let s = &report.statement;
    let row = |label: String, figure, total| StatementRow { label, figure, total };
    let mut rows = vec![row(format!("Balance per bank at {}", report.end_date), s.bank_balance, false)];
    rows.extend(s.adjustments.iter().map(|l| row(l.label.clone(), l.total, false)));
    rows.push(row("Adjusted bank balance".into(), s.adjusted_bank_balance, true));
    rows.push(row("Opening balance".into(), s.opening_balance, false));
    rows.push(row(format!("Records booked up to {}", report.end_date), s.records_total, false));
    rows.push(row("Book balance".into(), s.book_balance, true));
    rows.push(row("Difference".into(), s.difference, true));
    rows
}
