//! CSV: one file per section, zipped.

use std::io::Write;

use zip::write::SimpleFileOptions;

use super::super::model::Report;
use super::super::{money, ReportError, ReportFormat};
use super::statement_rows;

fn table(header: &[&str], rows: Vec<Vec<String>>) -> Result<Vec<u8>, ReportError> {
    let fail = |e| ReportError::render(ReportFormat::Csv, e);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(fail)?;
    for row in rows {
        w.write_record(&row).map_err(fail)?;
    }
    w.into_inner().map_err(|e| ReportError::render(ReportFormat::Csv, e.into_error()))
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// The sections as `(file name, CSV bytes)`.
pub fn sections(report: &Report) -> Result<Vec<(&'static str, Vec<u8>)>, ReportError> {
    let c = report.currency;
    let m = |d| money(d, c);
    let statement = table(
        &["line", "amount", "currency"],
        statement_rows(report)
            .into_iter()
            .chain(std::iter::once((report.statement.open_items.label.clone(), report.statement.open_items.total)))
            .map(|(label, v)| vec![label, m(v), c.to_string()])
            .collect(),
    )?;
    let items = table(
        &["line", "source", "id", "date", "description", "amount", "effect", "discrepancy_id", "resolution"],
        report
            .statement
            .adjustments
            .iter()
            .chain(std::iter::once(&report.statement.open_items))
            .flat_map(|l| {
                l.items.iter().map(move |i| {
                    vec![
                        l.key.clone(),
                        i.source.clone(),
                        i.id.clone(),
                        i.date.to_string(),
                        i.description.clone(),
                        m(i.amount),
                        m(i.effect),
                        opt(&i.discrepancy_id),
                        opt(&i.resolution),
                    ]
                })
            })
            .collect(),
    )?;
    let x = &report.exceptions;
    let unmatched_bank = table(
        &["id", "date", "amount", "description", "status"],
        x.unmatched_bank
            .iter()
            .map(|t| {
                vec![t.id.clone(), t.date.to_string(), m(t.amount), t.description.clone(), t.status.as_str().into()]
            })
            .collect(),
    )?;
    let unmatched_records = table(
        &["id", "kind", "date", "amount", "description", "status"],
        x.unmatched_records
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.kind.clone(),
                    r.date.to_string(),
                    m(r.amount),
                    r.description.clone(),
                    r.status.as_str().into(),
                ]
            })
            .collect(),
    )?;
    let discrepancies = |rows: &[super::super::model::DiscrepancyRow]| {
        table(
            &[
                "id",
                "kind",
                "date",
                "age_days",
                "amount",
                "description",
                "resolution",
                "account",
                "note",
                "resolved_by",
            ],
            rows.iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.kind.clone(),
                        d.date.to_string(),
                        d.age_days.to_string(),
                        m(d.amount),
                        d.description.clone(),
                        opt(&d.resolution),
                        opt(&d.account),
                        opt(&d.note),
                        opt(&d.resolved_by),
                    ]
                })
                .collect(),
        )
    };
    let matches = |rows: &[super::super::model::MatchRow]| {
        table(
            &[
                "id",
                "state",
                "method",
                "confidence",
                "rule",
                "bank_ids",
                "record_ids",
                "bank_total",
                "difference",
                "created_by",
                "confirmed_by",
                "note",
            ],
            rows.iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.state.as_str().into(),
                        serde_json::to_value(r.method)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default(),
                        format!("{:.3}", r.confidence),
                        opt(&r.rule),
                        r.bank_ids.join(" "),
                        r.record_ids.join(" "),
                        m(r.bank_total),
                        m(r.difference),
                        r.created_by.clone(),
                        opt(&r.confirmed_by),
                        opt(&r.note),
                    ]
                })
                .collect(),
        )
    };
    let audit = table(
        &["seq", "at", "actor", "action", "entity", "entity_id"],
        report
            .detail
            .audit
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
            .collect(),
    )?;
    let s = &report.summary;
    let mut figures = vec![
        vec!["bank_lines".to_string(), s.bank_lines.to_string()],
        vec!["records".into(), s.records.to_string()],
        vec!["bank_lines_matched".into(), s.bank_lines_matched.to_string()],
        vec!["automatic_matches".into(), s.automatic_matches.to_string()],
        vec!["manual_matches".into(), s.manual_matches.to_string()],
        vec!["auto_match_rate_percent".into(), s.auto_match_rate.to_string()],
        vec!["manual_share_percent".into(), s.manual_share.to_string()],
        vec!["automatic_share_percent".into(), s.automatic_share.to_string()],
    ];
    for (prefix, map) in
        [("bank", &s.bank_by_status), ("records", &s.records_by_status), ("matches", &s.matches_by_state)]
    {
        figures.extend(map.iter().map(|(k, v)| vec![format!("{prefix}.{k}"), v.to_string()]));
    }
    let summary = table(&["figure", "value"], figures)?;
    let chart = table(
        &["date", "matched", "unmatched"],
        s.chart.iter().map(|p| vec![p.date.to_string(), p.matched.to_string(), p.unmatched.to_string()]).collect(),
    )?;
    Ok(vec![
        ("statement.csv", statement),
        ("statement_items.csv", items),
        ("unmatched_bank.csv", unmatched_bank),
        ("unmatched_records.csv", unmatched_records),
        ("open_discrepancies.csv", discrepancies(&x.open_discrepancies)?),
        ("suggestions.csv", matches(&x.suggestions)?),
        ("matches.csv", matches(&report.detail.matches)?),
        ("resolved_discrepancies.csv", discrepancies(&report.detail.resolved_discrepancies)?),
        ("audit_events.csv", audit),
        ("summary.csv", summary),
        ("chart.csv", chart),
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
