//! CSV: one file per section, zipped.

use std::io::Write;

use zip::write::SimpleFileOptions;

use super::super::model::Report;
use super::super::{money, ReportError, ReportFormat};
use super::rows::{self, Table};
use super::statement_rows;

fn write(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>, ReportError> {
    let fail = |e| ReportError::render(ReportFormat::Csv, e);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(fail)?;
    for row in rows {
        w.write_record(row).map_err(fail)?;
    }
    w.into_inner().map_err(|e| ReportError::render(ReportFormat::Csv, e.into_error()))
}

fn table(t: &Table) -> Result<Vec<u8>, ReportError> {
    write(&t.names(), &t.rows)
}

/// The sections as `(file name, CSV bytes)`.
pub fn sections(report: &Report) -> Result<Vec<(&'static str, Vec<u8>)>, ReportError> {
    let c = report.currency;
    let open = &report.statement.open_items;
    let statement: Vec<Vec<String>> = statement_rows(report)
        .into_iter()
        .map(|r| (r.label, r.figure))
        .chain(std::iter::once((open.label.clone(), open.total)))
        .map(|(label, v)| vec![label, money(v, c), c.to_string()])
        .collect();
    let x = &report.exceptions;
    let d = &report.detail;
    let s = &report.summary;
    Ok(vec![
        ("statement.csv", write(&["line", "amount", "currency"], &statement)?),
        ("statement_items.csv", table(&rows::all_statement_items(report))?),
        ("unmatched_bank.csv", table(&rows::unmatched_bank(&x.unmatched_bank, c))?),
        ("unmatched_records.csv", table(&rows::unmatched_records(&x.unmatched_records, c))?),
        ("open_discrepancies.csv", table(&rows::discrepancies(&x.open_discrepancies, c))?),
        ("suggestions.csv", table(&rows::matches(&x.suggestions, c))?),
        ("matches.csv", table(&rows::matches(&d.matches, c))?),
        ("resolved_discrepancies.csv", table(&rows::discrepancies(&d.resolved_discrepancies, c))?),
        ("audit_events.csv", table(&rows::audit(&d.audit, c))?),
        ("summary.csv", table(&rows::summary_data(s))?),
        ("chart.csv", table(&rows::chart(&s.chart, c))?),
    ])
}

/// The zip of every section.
pub fn render(report: &Report) -> Result<Vec<u8>, ReportError> {
    let fail = |e: zip::result::ZipError| ReportError::render(ReportFormat::Csv, e);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in sections(report)? {
        zip.start_file(name, options).map_err(fail)?;
        zip.write_all(&bytes).map_err(|e| ReportError::render(ReportFormat::Csv, e))?;
    }
    Ok(zip.finish().map_err(fail)?.into_inner())
}
