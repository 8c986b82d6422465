//! HTML: one self-contained page (inline CSS and an inline SVG chart, no external assets).

use std::fmt::Write;

use rust_decimal::Decimal;

use super::super::model::{ChartPoint, Report};
use super::super::money;
use super::rows::{self, Table};
use super::statement_rows;

/// Escapes text for element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 6px;font-size:13px}\
th{background:#f2f2f2;text-align:left}td.n{text-align:right;font-family:monospace;white-space:nowrap}\
tr.total td{font-weight:bold}.red{color:#c00;font-weight:bold}.ok{color:#070;font-weight:bold}\
h1{font-size:22px}h2{font-size:18px;margin-top:1.5em;border-bottom:1px solid #999}h3{font-size:15px}";

fn table(out: &mut String, t: &Table) {
    if t.rows.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    out.push_str("<table><tr>");
    for c in &t.columns {
        let _ = write!(out, "<th>{}</th>", esc(c.title));
    }
    out.push_str("</tr>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (c, text) in t.columns.iter().zip(row) {
            let class = if c.numeric { " class=\"n\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", esc(text));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// Stacked bars: matched (green) under unmatched (red), one per day or month.
fn chart(points: &[ChartPoint]) -> String {
    let (width, height, pad) = (720.0_f64, 220.0_f64, 30.0_f64);
    let max = points.iter().map(|p| p.matched + p.unmatched).max().unwrap_or(0).max(1) as f64;
    let slot = (width - 2.0 * pad) / points.len().max(1) as f64;
    let bar = (slot * 0.8).max(1.0);
    let scale = (height - 2.0 * pad) / max;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"Matched and unmatched bank lines over the period\">\
         <line x1=\"{pad}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#999\"/>",
        y = height - pad,
        x2 = width - pad
    );
    for (i, p) in points.iter().enumerate() {
        let x = pad + i as f64 * slot;
        let hm = p.matched as f64 * scale;
        let hu = p.unmatched as f64 * scale;
        let base = height - pad;
        let _ = write!(
            svg,
            "<g><title>{}: {} matched, {} unmatched</title>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{hm:.1}\" fill=\"#2a8a3a\"/>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{hu:.1}\" fill=\"#c0392b\"/></g>",
            p.date,
            p.matched,
            p.unmatched,
            base - hm,
            base - hm - hu
        );
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            "<text x=\"{pad}\" y=\"{}\" font-size=\"11\">{}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            height - 10.0,
            first.date,
            width - pad,
            height - 10.0,
            last.date
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{pad}\" y=\"16\" font-size=\"11\">max {max} lines</text>\
         <rect x=\"{}\" y=\"6\" width=\"10\" height=\"10\" fill=\"#2a8a3a\"/><text x=\"{}\" y=\"15\" font-size=\"11\">matched</text>\
         <rect x=\"{}\" y=\"6\" width=\"10\" height=\"10\" fill=\"#c0392b\"/><text x=\"{}\" y=\"15\" font-size=\"11\">unmatched</text></svg>",
        width - 200.0,
        width - 186.0,
        width - 110.0,
        width - 96.0
    );
    svg
}

/// The page.
pub fn render(report: &Report) -> String {
    let c = report.currency;
    let m = |d: Decimal| money(d, c);
    let s = &report.statement;
    let mut out = String::new();
    let title = format!("Bank reconciliation: {} ({})", report.account_name, report.account_id);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(
        out,
        "<h1>{}</h1>\n<p>Period {} to {} · currency {} · generated {}</p>",
        esc(&title),
        report.start_date,
        report.end_date,
        c,
        report.generated_at.format("%Y-%m-%d %H:%M UTC")
    );

    out.push_str("<h2>Bank reconciliation statement</h2>\n<table>\n");
    let lines = statement_rows(report);
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        let class = if i == last && !line.figure.is_zero() {
            " class=\"red\""
        } else if line.total {
            " class=\"ok\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td class=\"n\"><span{class} data-figure=\"{}\">{}</span></td></tr>",
            if line.total { " class=\"total\"" } else { "" },
            esc(&line.label),
            i,
            esc(&m(line.figure))
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(out, "<p>Balance per bank: {}.</p>", esc(&s.bank_balance_source));
    if s.complete {
        out.push_str("<p class=\"ok\">Complete: every item is explained.</p>\n");
    } else if !s.difference.is_zero() {
        let _ = writeln!(
            out,
            "<p class=\"red\">Difference of {} {c}: the open items in the exceptions explain it.</p>",
            esc(&m(s.difference))
        );
    } else {
        out.push_str("<p>The statement balances; items remain open for review (see the exceptions).</p>\n");
    }
    for line in rows::statement_lines(report) {
        let _ = writeln!(out, "<h3>{} — {}</h3>", esc(&line.label), esc(&m(line.total)));
        table(&mut out, &rows::statement_items(line, c));
    }

    let x = &report.exceptions;
    out.push_str("<h2>Exceptions</h2>\n<h3>Unmatched bank lines</h3>\n");
    table(&mut out, &rows::unmatched_bank(&x.unmatched_bank, c));
    out.push_str("<h3>Unmatched records</h3>\n");
    table(&mut out, &rows::unmatched_records(&x.unmatched_records, c));
    out.push_str("<h3>Open discrepancies</h3>\n");
    table(&mut out, &rows::discrepancies(&x.open_discrepancies, c));
    out.push_str("<h3>Suggestions awaiting review</h3>\n");
    table(&mut out, &rows::matches(&x.suggestions, c));

    let d = &report.detail;
    out.push_str("<h2>Match detail</h2>\n<h3>Matches</h3>\n");
    table(&mut out, &rows::matches(&d.matches, c));
    out.push_str("<h3>Resolved discrepancies</h3>\n");
    table(&mut out, &rows::discrepancies(&d.resolved_discrepancies, c));
    out.push_str("<h3>Audit events</h3>\n");
    table(&mut out, &rows::audit(&d.audit, c));

    let f = &report.summary;
    out.push_str("<h2>Summary</h2>\n");
    table(&mut out, &rows::summary(f));
    out.push_str("<h3>Matched vs unmatched bank lines</h3>\n");
    out.push_str(&chart(&f.chart));
    out.push_str("\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn an_empty_chart_is_still_a_valid_svg() {
        let svg = chart(&[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
