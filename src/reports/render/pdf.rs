//! PDF: a paginated, printable A4 document with a header on every page, the statement with its
//! totals, the exceptions and the match detail, and "page n of N" footers.
//!
//! It uses the PDF base-14 fonts (Helvetica for text, Courier for figures), which every viewer
//! has, so no font is embedded. Figures are in Courier because its fixed advance (0.6 em) makes
//! right-aligned columns exact without font metrics.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rust_decimal::Decimal;

use super::super::model::Report;
use super::super::money;
use super::rows::{self, Table};
use super::statement_rows;

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 40.0;
const TOP: f32 = HEIGHT - 70.0;
const BOTTOM: f32 = 50.0;
const COURIER_ADVANCE: f32 = 0.6;
/// A generous average Helvetica advance, so truncated text never runs into the next column.
const HELVETICA_ADVANCE: f32 = 0.56;

#[derive(Clone, Copy, PartialEq)]
enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    fn name(&self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
            Font::Mono => Name(b"F3"),
        }
    }
}

enum Op {
    Text { x: f32, y: f32, font: Font, size: f32, text: String, red: bool },
    Rule { y: f32 },
    Bar { x: f32, y: f32, width: f32, height: f32, matched: bool },
}

/// WinAnsi bytes of `s`: Latin-1 maps to itself, a few typographic characters to their WinAnsi
/// codes, anything else to `?`.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '€' => 0x80,
            '–' => 0x96,
            '—' => 0x97,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '…' => 0x85,
            '−' => b'-',
            c if (c as u32) < 0x7f && (c as u32) >= 0x20 => c as u8,
            c if (0xa0..=0xff).contains(&(c as u32)) => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

/// Cuts `s` to what fits in `width` points (on a char boundary), marking the cut with `…`.
fn fit(s: &str, width: f32, size: f32, font: Font) -> String {
    let advance = if font == Font::Mono { COURIER_ADVANCE } else { HELVETICA_ADVANCE };
    let max = ((width / (size * advance)).floor() as usize).max(1);
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// How a table column prints: its width in points, and whether it holds figures, which are
/// right-aligned in Courier. The titles and cells come from `rows`, column by column.
struct Column {
    width: f32,
    numeric: bool,
}

const fn col(width: f32, numeric: bool) -> Column {
    Column { width, numeric }
}

// The tables' layouts: one entry per column of the table in `rows` they print, which their types
// hold to at compile time; each adds up to at most the 515 points between the margins.
const ITEM_LAYOUT: [Column; rows::ITEM_PRINT_COLUMNS.len()] =
    [col(38.0, false), col(100.0, false), col(50.0, false), col(170.0, false), col(62.0, true), col(95.0, false)];
const BANK_LAYOUT: [Column; rows::BANK_COLUMNS.len()] =
    [col(110.0, false), col(55.0, false), col(70.0, true), col(210.0, false), col(70.0, false)];
const RECORD_LAYOUT: [Column; rows::RECORD_COLUMNS.len()] =
    [col(90.0, false), col(50.0, false), col(55.0, false), col(70.0, true), col(180.0, false), col(70.0, false)];
const DISCREPANCY_LAYOUT: [Column; rows::DISCREPANCY_PRINT_COLUMNS.len()] = [
    col(95.0, false),
    col(70.0, false),
    col(50.0, false),
    col(25.0, true),
    col(60.0, true),
    col(125.0, false),
    col(90.0, false),
];
const MATCH_LAYOUT: [Column; rows::MATCH_PRINT_COLUMNS.len()] = [
    col(90.0, false),
    col(50.0, false),
    col(48.0, false),
    col(28.0, true),
    col(60.0, false),
    col(85.0, false),
    col(55.0, true),
    col(40.0, true),
    col(59.0, false),
];
const AUDIT_LAYOUT: [Column; rows::AUDIT_PRINT_COLUMNS.len()] =
    [col(35.0, true), col(110.0, false), col(80.0, false), col(110.0, false), col(180.0, false)];
const SUMMARY_LAYOUT: [Column; rows::SUMMARY_COLUMNS.len()] = [col(200.0, false), col(80.0, true)];

struct Layout {
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Layout { pages: vec![Vec::new()], y: TOP }
    }

    fn page(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Starts a new page when `height` more points do not fit; true when it did.
    fn room(&mut self, height: f32) -> bool {
        if self.y - height < BOTTOM {
            self.pages.push(Vec::new());
            self.y = TOP;
            return true;
        }
        false
    }

    fn text(&mut self, x: f32, font: Font, size: f32, text: &str, red: bool) {
        let y = self.y;
        self.page().push(Op::Text { x, y, font, size, text: text.to_string(), red });
    }

    fn right(&mut self, right: f32, size: f32, text: &str, red: bool) {
        let x = right - text.chars().count() as f32 * size * COURIER_ADVANCE;
        self.text(x, Font::Mono, size, text, red);
    }

    fn heading(&mut self, text: &str, size: f32) {
        self.room(size * 2.5 + 30.0);
        self.y -= size * 1.6;
        self.text(MARGIN, Font::Bold, size, text, false);
        self.y -= size * 0.8;
    }

    fn paragraph(&mut self, text: &str, red: bool) {
        self.room(14.0);
        self.y -= 12.0;
        let font = if red { Font::Bold } else { Font::Regular };
        self.text(MARGIN, font, 9.0, &fit(text, WIDTH - 2.0 * MARGIN, 9.0, font), red);
    }

    fn table_header(&mut self, cols: &[Column], titles: &[rows::Column]) {
        self.y -= 11.0;
        let mut x = MARGIN;
        for (c, t) in cols.iter().zip(titles) {
            let title = fit(t.title, c.width - 4.0, 7.0, Font::Bold);
            if c.numeric {
                let w = title.chars().count() as f32 * 7.0 * HELVETICA_ADVANCE;
                self.text(x + c.width - 4.0 - w, Font::Bold, 7.0, &title, false);
            } else {
                self.text(x, Font::Bold, 7.0, &title, false);
            }
            x += c.width;
        }
        self.y -= 3.0;
        let y = self.y;
        self.page().push(Op::Rule { y });
    }

    /// A table whose header repeats on every page it spans.
    fn table(&mut self, cols: &[Column], table: &Table) {
        if table.rows.is_empty() {
            self.paragraph("None.", false);
            return;
        }
        self.room(30.0);
        self.table_header(cols, &table.columns);
        for row in &table.rows {
            if self.room(10.0) {
                self.table_header(cols, &table.columns);
            }
            self.y -= 9.5;
            let mut x = MARGIN;
            for (c, cell) in cols.iter().zip(row) {
                if c.numeric {
                    let text = fit(cell, c.width - 4.0, 7.0, Font::Mono);
                    self.right(x + c.width - 4.0, 7.0, &text, false);
                } else {
                    let text = fit(cell, c.width - 4.0, 7.0, Font::Regular);
                    self.text(x, Font::Regular, 7.0, &text, false);
                }
                x += c.width;
            }
        }
        self.y -= 4.0;
    }
}

fn lay_out(report: &Report) -> Layout {
    let c = report.currency;
    let m = |d: Decimal| money(d, c);
    let s = &report.statement;
    let mut l = Layout::new();
    l.heading("Bank reconciliation statement", 13.0);
    let lines = statement_rows(report);
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        let red = i == last && !line.figure.is_zero();
        l.room(16.0);
        l.y -= if line.total { 15.0 } else { 12.0 };
        l.text(MARGIN, if line.total { Font::Bold } else { Font::Regular }, 10.0, &line.label, red);
        l.right(WIDTH - MARGIN - 40.0, 10.0, &m(line.figure), red);
        l.text(WIDTH - MARGIN - 30.0, Font::Regular, 10.0, c.code(), false);
    }
    l.paragraph(&format!("Balance per bank: {}.", s.bank_balance_source), false);
    if s.complete {
        l.paragraph("Complete: every item is explained.", false);
    } else if !s.difference.is_zero() {
        l.paragraph(&format!("Difference of {} {c}: the open items listed below explain it.", m(s.difference)), true);
    } else {
        l.paragraph("The statement balances; items remain open for review (see the exceptions).", false);
    }
    for line in rows::statement_lines(report) {
        l.heading(&format!("{}: {} {c}", line.label, m(line.total)), 10.0);
        l.table(&ITEM_LAYOUT, &rows::statement_items_print(line, c));
    }

    let x = &report.exceptions;
    l.heading("Exceptions", 13.0);
    l.heading("Unmatched bank lines", 10.0);
    l.table(&BANK_LAYOUT, &rows::unmatched_bank(&x.unmatched_bank, c));
    l.heading("Unmatched records", 10.0);
    l.table(&RECORD_LAYOUT, &rows::unmatched_records(&x.unmatched_records, c));
    l.heading("Open discrepancies", 10.0);
    l.table(&DISCREPANCY_LAYOUT, &rows::discrepancies_print(&x.open_discrepancies, c));
    l.heading("Suggestions awaiting review", 10.0);
    l.table(&MATCH_LAYOUT, &rows::matches_print(&x.suggestions, c));

    let d = &report.detail;
    l.heading("Match detail", 13.0);
    l.heading("Matches", 10.0);
    l.table(&MATCH_LAYOUT, &rows::matches_print(&d.matches, c));
    l.heading("Resolved discrepancies", 10.0);
    l.table(&DISCREPANCY_LAYOUT, &rows::discrepancies_print(&d.resolved_discrepancies, c));
    l.heading("Audit events", 10.0);
    l.table(&AUDIT_LAYOUT, &rows::audit_print(&d.audit, c));

    let f = &report.summary;
    l.heading("Summary", 13.0);
    l.table(&SUMMARY_LAYOUT, &rows::summary(f));
    chart(&mut l, &f.chart);
    l
}

/// Stacked bars of matched (green) and unmatched (red) bank lines, one per day or month.
fn chart(l: &mut Layout, points: &[super::super::model::ChartPoint]) {
    if points.is_empty() {
        return;
    }
    let height = 140.0;
    // The heading stays on the chart's page.
    l.room(height + 60.0);
    l.heading("Matched vs unmatched bank lines", 10.0);
    let max = points.iter().map(|p| p.matched + p.unmatched).max().unwrap_or(0).max(1) as f32;
    let slot = (WIDTH - 2.0 * MARGIN) / points.len() as f32;
    let scale = height / max;
    let base = l.y - height - 6.0;
    for (i, p) in points.iter().enumerate() {
        let x = MARGIN + i as f32 * slot;
        let (hm, hu) = (p.matched as f32 * scale, p.unmatched as f32 * scale);
        let width = (slot * 0.8).max(0.5);
        l.page().push(Op::Bar { x, y: base, width, height: hm, matched: true });
        l.page().push(Op::Bar { x, y: base + hm, width, height: hu, matched: false });
    }
    l.y = base;
    l.page().push(Op::Rule { y: base });
    l.y -= 10.0;
    let (first, last) = (points.first().map(|p| p.date), points.last().map(|p| p.date));
    if let (Some(first), Some(last)) = (first, last) {
        let legend = format!("{first} to {last}; highest bar {max} lines; green matched, red unmatched");
        l.text(MARGIN, Font::Regular, 7.0, &legend, false);
    }
}

fn draw(content: &mut Content, x: f32, y: f32, font: Font, size: f32, text: &str, red: bool) {
    if red {
        content.set_fill_rgb(0.8, 0.0, 0.0);
    }
    content.begin_text();
    content.set_font(font.name(), size);
    content.next_line(x, y);
    content.show(Str(&win_ansi(text)));
    content.end_text();
    if red {
        content.set_fill_rgb(0.0, 0.0, 0.0);
    }
}

/// The document's bytes.
pub fn render(report: &Report) -> Vec<u8> {
    let layout = lay_out(report);
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let fonts = [
        (Font::Regular, Ref::new(3), "Helvetica"),
        (Font::Bold, Ref::new(4), "Helvetica-Bold"),
        (Font::Mono, Ref::new(5), "Courier"),
    ];
    let info = Ref::new(6);
    let first = 7;
    let count = layout.pages.len();
    let page_ids: Vec<Ref> = (0..count).map(|i| Ref::new(first + 2 * i as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(count as i32);
    for (_, id, base) in fonts {
        pdf.type1_font(id).base_font(Name(base.as_bytes())).encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let title = format!("Bank reconciliation {} {} to {}", report.account_id, report.start_date, report.end_date);
    pdf.document_info(info).title(TextStr(&title)).producer(TextStr("bankrec"));
    let header = format!(
        "{} ({}) · {} · {} to {}",
        report.account_name, report.account_id, report.currency, report.start_date, report.end_date
    );
    for (n, (ops, page_id)) in layout.pages.iter().zip(&page_ids).enumerate() {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
        page.parent(tree);
        page.contents(content_id);
        {
            let mut resources = page.resources();
            let mut f = resources.fonts();
            for (font, id, _) in fonts {
                f.pair(font.name(), id);
            }
        }
        page.finish();
        let mut content = Content::new();
        draw(&mut content, MARGIN, HEIGHT - 40.0, Font::Bold, 11.0, "Bank reconciliation", false);
        draw(
            &mut content,
            MARGIN,
            HEIGHT - 54.0,
            Font::Regular,
            8.5,
            &fit(&header, WIDTH - 2.0 * MARGIN, 8.5, Font::Regular),
            false,
        );
        let footer = format!("Page {} of {count}", n + 1);
        let generated = format!("Generated {}", report.generated_at.format("%Y-%m-%d %H:%M UTC"));
        draw(&mut content, MARGIN, 28.0, Font::Regular, 8.0, &generated, false);
        draw(
            &mut content,
            WIDTH - MARGIN - footer.len() as f32 * 8.0 * HELVETICA_ADVANCE,
            28.0,
            Font::Regular,
            8.0,
            &footer,
            false,
        );
        for op in ops {
            match op {
                Op::Text { x, y, font, size, text, red } => draw(&mut content, *x, *y, *font, *size, text, *red),
                Op::Bar { x, y, width, height, matched } => {
                    if *matched {
                        content.set_fill_rgb(0.16, 0.54, 0.23);
                    } else {
                        content.set_fill_rgb(0.75, 0.22, 0.17);
                    }
                    content.rect(*x, *y, *width, *height);
                    content.fill_nonzero();
                    content.set_fill_rgb(0.0, 0.0, 0.0);
                }
                Op::Rule { y } => {
                    content.set_line_width(0.4);
                    content.move_to(MARGIN, *y);
                    content.line_to(WIDTH - MARGIN, *y);
                    content.stroke();
                }
            }
        }
        content.set_line_width(0.6);
        content.move_to(MARGIN, HEIGHT - 60.0);
        content.line_to(WIDTH - MARGIN, HEIGHT - 60.0);
        content.stroke();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_outside_win_ansi_becomes_a_question_mark() {
        assert_eq!(win_ansi("a€é→−±"), vec![b'a', 0x80, 0xe9, b'?', b'-', 0xb1]);
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let cut = fit("ééééééééééééééééééééééééééééé", 20.0, 10.0, Font::Mono);
        assert!(cut.ends_with('…') && cut.chars().count() == 3, "{cut}");
    }
}
