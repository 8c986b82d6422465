//! One renderer per format. Each prints the same figures from the same [`super::Report`], amounts
//! with the currency's minor units ([`crate::domain::money::fixed`]).

pub mod csv;
pub mod html;
pub mod pdf;
mod rows;
pub mod xlsx;

use super::model::Report;

/// The statement as `(label, figure)` rows, top to bottom, shared by every renderer so that
/// they print the same lines in the same order.
pub(crate) fn statement_rows(report: &Report) -> Vec<(String, rust_decimal::Decimal)> {
    let s = &report.statement;
    let mut rows = vec![(format!("Balance per bank at {}", report.end_date), s.bank_balance)];
    rows.extend(s.adjustments.iter().map(|l| (l.label.clone(), l.total)));
    rows.push(("Adjusted bank balance".into(), s.adjusted_bank_balance));
    rows.push(("Opening balance".into(), s.opening_balance));
    rows.push((format!("Records booked up to {}", report.end_date), s.records_total));
    rows.push(("Book balance".into(), s.book_balance));
    rows.push(("Difference".into(), s.difference));
    rows
}
