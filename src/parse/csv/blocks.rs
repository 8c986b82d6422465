//! Labelled-record exports: one `label: value` line per field, records separated by blank
//! lines, long values wrapped onto indented lines (Czech and Polish banks' "text" exports). Such
//! a file is a CSV turned on its side, so it is turned back into a header and rows and read with
//! the same column roles; lines in messages are mapped back to the record's first line.

/// A record's fields in file order, and the line it starts on.
type Block = (usize, Vec<(String, String)>);

/// `label: value` with a short label that starts with a letter.
fn split_label(line: &str) -> Option<(&str, &str)> {
    let (label, value) = line.split_once(':')?;
    let label = label.trim_end();
    (!label.is_empty()
        && label.len() <= 48
        && !line.starts_with([' ', '\t'])
        && label.chars().next().is_some_and(char::is_alphabetic)
        && !label.contains([',', ';', '\t', '"']))
    .then_some((label, value))
}

fn blocks(text: &str) -> (Vec<(usize, String)>, Vec<Block>) {
    let mut preamble = Vec::new();
    let mut out: Vec<Block> = Vec::new();
    let mut current: Option<Block> = None;
    let mut last_raw_padded = false;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let raw = raw.trim_end_matches('\r').trim_start_matches('\u{feff}');
        if raw.trim().is_empty() {
            if raw.is_empty() {
                if let Some(b) = current.take() {
                    out.push(b);
                }
            }
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            if let Some((_, fields)) = current.as_mut() {
                if let Some((_, value)) = fields.last_mut() {
                    // A value cut at a fixed width continues without a blank; a padded one
                    // ended at a word.
                    if last_raw_padded {
                        value.push(' ');
                    }
                    value.push_str(raw.trim());
                    last_raw_padded = raw.ends_with(' ');
                }
            }
            continue;
        }
        match split_label(raw) {
            Some((label, value)) => {
                last_raw_padded = value.ends_with(' ');
                // A label seen again starts the next record even without a blank line between.
                if current.as_ref().is_some_and(|(_, f)| f.iter().any(|(k, _)| k == label)) {
                    if let Some(b) = current.take() {
                        out.push(b);
                    }
                }
                let b = current.get_or_insert_with(|| (line, Vec::new()));
                b.1.push((label.to_string(), value.trim().to_string()));
            }
            None => {
                if current.is_none() && out.is_empty() {
                    preamble.push((line, raw.to_string()));
                }
            }
        }
    }
    if let Some(b) = current.take() {
        out.push(b);
    }
    // The title line may itself be `label: value` (`Pohyby na účtu č.: 211202112, ze dne ...`).
    if out.first().is_some_and(|(_, f)| f.len() == 1) && out.len() > 1 {
        let (line, fields) = out.remove(0);
        for (label, value) in fields {
            preamble.push((line, format!("{label}: {value}")));
        }
    }
    (preamble, out)
}

/// Whether the text is made of blank-line separated `label: value` records that repeat their
/// labels.
pub(crate) fn looks_like_blocks(text: &str) -> bool {
    let head: String = text.lines().take(80).collect::<Vec<_>>().join("\n");
    let (_, b) = blocks(&head);
    b.len() >= 2 && b[0].1.len() >= 3 && b[0].1.iter().zip(&b[1].1).take(3).all(|(x, y)| x.0 == y.0)
}

/// The records as a semicolon-separated table: the preamble lines, a header of every label, one
/// row per record. Returns the table and, per table line, the file line it stands for.
pub(crate) fn to_table(text: &str) -> (String, Vec<usize>) {
    let (preamble, records) = blocks(text);
    let mut labels: Vec<&str> = Vec::new();
    for (_, fields) in &records {
        for (label, _) in fields {
            if !labels.contains(&label.as_str()) {
                labels.push(label);
            }
        }
    }
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut table = String::with_capacity(text.len() + 256);
    let mut lines = Vec::new();
    for (line, raw) in &preamble {
        // Keep `label: value` metadata readable by the table reader.
        table.push_str(&quote(raw));
        table.push('\n');
        lines.push(*line);
    }
    table.push_str(&labels.iter().map(|l| quote(l)).collect::<Vec<_>>().join(";"));
    table.push('\n');
    lines.push(records.first().map_or(1, |r| r.0));
    for (line, fields) in &records {
        let row: Vec<String> = labels
            .iter()
            .map(|l| fields.iter().find(|(k, _)| k == l).map(|(_, v)| quote(v)).unwrap_or_default())
            .collect();
        table.push_str(&row.join(";"));
        table.push('\n');
        lines.push(*line);
    }
    (table, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Výpis z účtu: 123456789\n\ndatum: 14.3.2024\nčástka: 1500.00\nměna: CZK\n\
                          poznámka: RENT FOR MARCH AND\n   APRIL\n\ndatum: 12.3.2024\nčástka: -80.50\nměna: CZK\n\
                          poznámka: PHONE\n";

    #[test]
    fn labelled_records_become_rows_under_one_header() {
        assert!(looks_like_blocks(SAMPLE));
        let (table, lines) = to_table(SAMPLE);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows[1], "\"datum\";\"částka\";\"měna\";\"poznámka\"");
        assert_eq!(rows[2], "\"14.3.2024\";\"1500.00\";\"CZK\";\"RENT FOR MARCH ANDAPRIL\"");
        assert_eq!(lines[3], 9);
    }

    #[test]
    fn ordinary_csv_is_not_labelled_records() {
        assert!(!looks_like_blocks("Date,Amount\n2024-01-01,1\n"));
    }
}
