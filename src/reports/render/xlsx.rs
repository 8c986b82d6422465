//! XLSX: one sheet per section, real number and date cells, totals as formulas (with their computed
//! results stored too, so readers that do not recalculate see the figures).

use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rust_xlsxwriter::{Chart, ChartType, Color, Format, Formula, Workbook, Worksheet, XlsxError};

use super::super::model::{DiscrepancyRow, MatchRow, Report};
use super::super::{money, ReportError, ReportFormat};
use super::rows;

/// One cell of a table.
enum Cell {
    Text(String),
    Money(Decimal),
    Int(i64),
    Ratio(f64),
    Date(NaiveDate),
}

struct Formats {
    bold: Format,
    money: Format,
    money_bold: Format,
    money_red: Format,
    date: Format,
}

impl Formats {
    fn new(dp: u32) -> Self {
        let pattern = if dp == 0 { "#,##0".to_string() } else { format!("#,##0.{}", "0".repeat(dp as usize)) };
        Formats {
            bold: Format::new().set_bold(),
            money: Format::new().set_num_format(&pattern),
            money_bold: Format::new().set_num_format(&pattern).set_bold(),
            money_red: Format::new().set_num_format(&pattern).set_bold().set_font_color(Color::Red),
            date: Format::new().set_num_format("yyyy-mm-dd"),
        }
    }
}

/// Excel stores numbers as IEEE doubles: this is the one place a `Decimal` becomes a float.
fn to_cell_number(d: Decimal) -> f64 {
    d.to_f64().unwrap_or_default()
}

/// A1-style column letters (0 → A).
fn column(col: u16) -> String {
    let mut n = u32::from(col) + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        out.push(char::from(b'A' + rem));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

fn write_cell(ws: &mut Worksheet, row: u32, col: u16, cell: &Cell, f: &Formats) -> Result<(), XlsxError> {
    match cell {
        Cell::Text(s) => ws.write_string(row, col, s).map(|_| ()),
        Cell::Money(d) => ws.write_number_with_format(row, col, to_cell_number(*d), &f.money).map(|_| ()),
        Cell::Int(i) => ws.write_number(row, col, *i as f64).map(|_| ()),
        Cell::Ratio(r) => ws.write_number(row, col, *r).map(|_| ()),
        Cell::Date(d) => ws.write_date_with_format(row, col, d, &f.date).map(|_| ()),
    }
}

/// A sheet with a header row, the rows, and a total row (a `SUM` formula) under every money
/// column when there are rows.
fn table(
    wb: &mut Workbook,
    name: &str,
    header: &[&str],
    rows: Vec<Vec<Cell>>,
    f: &Formats,
    currency: crate::domain::Currency,
) -> Result<(), XlsxError> {
    let ws = wb.add_worksheet();
    ws.set_name(name)?;
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &f.bold)?;
        ws.set_column_width(c as u16, 16)?;
    }
    let mut totals: Vec<Decimal> = vec![Decimal::ZERO; header.len()];
    let mut money_cols = vec![false; header.len()];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            write_cell(ws, r as u32 + 1, c as u16, cell, f)?;
            if let (Cell::Money(d), Some(t), Some(is)) = (cell, totals.get_mut(c), money_cols.get_mut(c)) {
                *t = t.saturating_add(*d);
                *is = true;
            }
        }
    }
    if !rows.is_empty() && money_cols.iter().any(|m| *m) {
        let last = rows.len() as u32 + 1;
        ws.write_string_with_format(last, 0, "Total", &f.bold)?;
        for (c, total) in totals.iter().enumerate().filter(|(c, _)| money_cols.get(*c).copied().unwrap_or(false)) {
            let col = column(c as u16);
            let formula = Formula::new(format!("=SUM({col}2:{col}{last})")).set_result(money(*total, currency));
            ws.write_formula_with_format(last, c as u16, formula, &f.money_bold)?;
        }
    }
    Ok(())
}

fn opt(s: &Option<String>) -> Cell {
    Cell::Text(s.clone().unwrap_or_default())
}

fn discrepancy_rows(rows: &[DiscrepancyRow]) -> Vec<Vec<Cell>> {
    rows.iter()
        .map(|d| {
            vec![
                Cell::Text(d.id.clone()),
                Cell::Text(d.kind.clone()),
                Cell::Date(d.date),
                Cell::Int(d.age_days),
                Cell::Money(d.amount),
                Cell::Text(d.description.clone()),
                opt(&d.resolution),
                opt(&d.account),
                opt(&d.note),
                opt(&d.resolved_by),
            ]
        })
        .collect()
}

/// The discrepancies' titles, with the resolver's column named in full where the web page, short
/// of width, says "By".
fn discrepancy_header() -> Vec<&'static str> {
    rows::DISCREPANCY_COLUMNS
        .iter()
        .map(|f| if f.column.name == "resolved_by" { "Resolved by" } else { f.column.title })
        .collect()
}

fn match_rows(list: &[MatchRow]) -> Vec<Vec<Cell>> {
    list.iter()
        .map(|m| {
            vec![
                Cell::Text(m.id.clone()),
                Cell::Text(m.state.as_str().into()),
                Cell::Text(rows::method_name(m.method)),
                Cell::Ratio(m.confidence),
                opt(&m.rule),
                Cell::Text(m.bank_ids.join(" ")),
                Cell::Text(m.record_ids.join(" ")),
                Cell::Money(m.bank_total),
                Cell::Money(m.difference),
                Cell::Text(m.created_by.clone()),
                opt(&m.confirmed_by),
                opt(&m.note),
            ]
        })
        .collect()
}

/// The statement sheet: every figure, with the totals as formulas over the items sheet.
fn statement_sheet(wb: &mut Workbook, report: &Report, f: &Formats) -> Result<(), XlsxError> {
    let c = report.currency;
    let s = &report.statement;
    let ws = wb.add_worksheet();
    ws.set_name("Statement")?;
    ws.set_column_width(0, 48)?;
    ws.set_column_width(1, 18)?;
    ws.write_string_with_format(0, 0, "Bank reconciliation statement", &f.bold)?;
    ws.write_string(1, 0, format!("{} ({}) · {c} · period", report.account_name, report.account_id))?;
    ws.write_date_with_format(1, 1, report.start_date, &f.date)?;
    ws.write_date_with_format(1, 2, report.end_date, &f.date)?;
    // Row 3 is the bank balance; the adjustments follow, then the balances (0-based rows).
    ws.write_string(3, 0, format!("Balance per bank at {} ({})", report.end_date, s.bank_balance_source))?;
    ws.write_number_with_format(3, 1, to_cell_number(s.bank_balance), &f.money)?;
    let mut row = 4;
    for line in &s.adjustments {
        ws.write_string(row, 0, &line.label)?;
        let formula = Formula::new(format!("=SUMIF('Statement items'!A:A,\"{}\",'Statement items'!G:G)", line.key))
            .set_result(money(line.total, c));
        ws.write_formula_with_format(row, 1, formula, &f.money)?;
        row += 1;
    }
    let first_adj = 5;
    let last_adj = 4 + s.adjustments.len() as u32;
    ws.write_string_with_format(row, 0, "Adjusted bank balance", &f.bold)?;
    let adjusted =
        Formula::new(format!("=B4+SUM(B{first_adj}:B{last_adj})")).set_result(money(s.adjusted_bank_balance, c));
    ws.write_formula_with_format(row, 1, adjusted, &f.money_bold)?;
    let adjusted_row = row + 1;
    row += 1;
    ws.write_string(row, 0, "Opening balance")?;
    ws.write_number_with_format(row, 1, to_cell_number(s.opening_balance), &f.money)?;
    let opening_row = row + 1;
    row += 1;
    ws.write_string(row, 0, format!("Records booked up to {}", report.end_date))?;
    ws.write_number_with_format(row, 1, to_cell_number(s.records_total), &f.money)?;
    let records_row = row + 1;
    row += 1;
    ws.write_string_with_format(row, 0, "Book balance", &f.bold)?;
    let book = Formula::new(format!("=B{opening_row}+B{records_row}")).set_result(money(s.book_balance, c));
    ws.write_formula_with_format(row, 1, book, &f.money_bold)?;
    let book_row = row + 1;
    row += 1;
    ws.write_string_with_format(row, 0, "Difference", &f.bold)?;
    let difference = Formula::new(format!("=B{adjusted_row}-B{book_row}")).set_result(money(s.difference, c));
    let format = if s.difference.is_zero() { &f.money_bold } else { &f.money_red };
    ws.write_formula_with_format(row, 1, difference, format)?;
    row += 1;
    ws.write_string(row, 0, &s.open_items.label)?;
    let open = Formula::new("=SUMIF('Statement items'!A:A,\"open_items\",'Statement items'!G:G)")
        .set_result(money(s.open_items.total, c));
    ws.write_formula_with_format(row, 1, open, &f.money)?;
    row += 2;
    let status = if s.complete {
        "Complete: every item is explained."
    } else {
        "Not complete: see the open items in the exceptions sheets."
    };
    ws.write_string(row, 0, status)?;
    Ok(())
}

fn workbook(report: &Report) -> Result<Vec<u8>, XlsxError> {
    let c = report.currency;
    let f = Formats::new(c.minor_units());
    let mut wb = Workbook::new();
    statement_sheet(&mut wb, report, &f)?;
    let items = rows::statement_lines(report)
        .flat_map(|l| {
            l.items.iter().map(move |i| {
                vec![
                    Cell::Text(l.key.clone()),
                    Cell::Text(i.source.clone()),
                    Cell::Text(i.id.clone()),
                    Cell::Date(i.date),
                    Cell::Text(i.description.clone()),
                    Cell::Money(i.amount),
                    Cell::Money(i.effect),
                    opt(&i.discrepancy_id),
                    opt(&i.resolution),
                ]
            })
        })
        .collect();
    table(&mut wb, "Statement items", &rows::titles(&rows::all_item_columns()), items, &f, c)?;
    let x = &report.exceptions;
    let bank = x
        .unmatched_bank
        .iter()
        .map(|t| {
            vec![
                Cell::Text(t.id.clone()),
                Cell::Date(t.date),
                Cell::Money(t.amount),
                Cell::Text(t.description.clone()),
                Cell::Text(t.status.as_str().into()),
            ]
        })
        .collect();
    table(&mut wb, "Unmatched bank lines", &rows::titles(&rows::BANK_COLUMNS), bank, &f, c)?;
    let records = x
        .unmatched_records
        .iter()
        .map(|r| {
            vec![
                Cell::Text(r.id.clone()),
                Cell::Text(r.kind.clone()),
                Cell::Date(r.date),
                Cell::Money(r.amount),
                Cell::Text(r.description.clone()),
                Cell::Text(r.status.as_str().into()),
            ]
        })
        .collect();
    table(&mut wb, "Unmatched records", &rows::titles(&rows::RECORD_COLUMNS), records, &f, c)?;
    let (discrepancy_header, match_header) = (discrepancy_header(), rows::titles(&rows::MATCH_COLUMNS));
    let open = discrepancy_rows(&x.open_discrepancies);
    table(&mut wb, "Open discrepancies", &discrepancy_header, open, &f, c)?;
    table(&mut wb, "Suggestions", &match_header, match_rows(&x.suggestions), &f, c)?;
    table(&mut wb, "Matches", &match_header, match_rows(&report.detail.matches), &f, c)?;
    let resolved = discrepancy_rows(&report.detail.resolved_discrepancies);
    table(&mut wb, "Resolved discrepancies", &discrepancy_header, resolved, &f, c)?;
    let audit = report
        .detail
        .audit
        .iter()
        .map(|e| {
            vec![
                Cell::Int(e.seq as i64),
                Cell::Text(e.at.to_rfc3339()),
                Cell::Text(e.actor.clone()),
                Cell::Text(e.action.clone()),
                Cell::Text(e.entity.clone()),
                Cell::Text(e.entity_id.clone()),
            ]
        })
        .collect();
    table(&mut wb, "Audit events", &rows::titles(&rows::AUDIT_COLUMNS), audit, &f, c)?;
    let s = &report.summary;
    // Percentages are numbers here, so the unit moves into the label.
    let figures = rows::figures(s)
        .into_iter()
        .map(|figure| match figure.value {
            rows::Value::Count(n) => vec![Cell::Text(figure.title), Cell::Int(n as i64)],
            rows::Value::Percent(p) => {
                vec![Cell::Text(format!("{} (%)", figure.title)), Cell::Ratio(to_cell_number(p))]
            }
        })
        .collect();
    table(&mut wb, "Summary", &rows::titles(&rows::SUMMARY_COLUMNS), figures, &f, c)?;
    let chart = s
        .chart
        .iter()
        .map(|p| vec![Cell::Date(p.date), Cell::Int(p.matched as i64), Cell::Int(p.unmatched as i64)])
        .collect();
    table(&mut wb, "Chart data", &rows::titles(&rows::CHART_COLUMNS), chart, &f, c)?;
    if !s.chart.is_empty() {
        let last = s.chart.len() as u32;
        let mut chart = Chart::new(ChartType::ColumnStacked);
        chart.title().set_name("Matched vs unmatched bank lines");
        for (col, name) in [(1, "Matched"), (2, "Unmatched")] {
            chart.add_series().set_name(name).set_categories(("Chart data", 1, 0, last, 0)).set_values((
                "Chart data",
                1,
                col,
                last,
                col,
            ));
        }
        wb.worksheet_from_name("Summary")?.insert_chart(1, 3, &chart)?;
    }
    wb.save_to_buffer()
}

/// The workbook's bytes.
pub fn render(report: &Report) -> Result<Vec<u8>, ReportError> {
    workbook(report).map_err(|e| ReportError::render(ReportFormat::Xlsx, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_follow_spreadsheet_order() {
        assert_eq!(column(0), "A");
        assert_eq!(column(25), "Z");
        assert_eq!(column(26), "AA");
        assert_eq!(column(701), "ZZ");
    }
}
