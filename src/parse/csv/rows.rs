//! The rows of a delimited text, read in place.
//!
//! Most bank exports quote nothing: such a row is one line of the text, split at its delimiters,
//! and its cells are slices of the text itself. A row with a quote in it is handed to `csv_core`,
//! which unescapes it into a buffer of its own, so quoted fields (with delimiters, quotes and line
//! breaks inside) read exactly as the `csv` crate reads them. Copying every row into a record
//! first, as the `csv` crate's reader does, was the largest single cost of reading a large file.
//!
//! Both paths follow `csv_core`'s defaults: `\n`, `\r` and `\r\n` end a row, empty lines are
//! skipped, `"` quotes and `""` escapes it.

use csv_core::ReadRecordResult;

/// A row: its cells and where it starts in the text.
pub(crate) struct Row<'r> {
    /// Byte offset in the text of the row's first byte.
    pub start: usize,
    /// The row's line, or a quoted row's unescaped fields laid end to end.
    text: &'r str,
    /// Each cell's byte range in `text`.
    cells: &'r [(usize, usize)],
}

impl<'r> Row<'r> {
    /// Number of cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Cell `i`, untrimmed.
    pub fn get(&self, i: usize) -> Option<&'r str> {
        let &(from, to) = self.cells.get(i)?;
        self.text.get(from..to)
    }
}

/// A reader of rows over the whole text.
pub(crate) struct Rows<'t> {
    text: &'t str,
    pos: usize,
    delimiter: u8,
    core: csv_core::Reader,
    /// A quoted row's unescaped fields and their ends, as `csv_core` writes them.
    fields: Vec<u8>,
    ends: Vec<usize>,
    cells: Vec<(usize, usize)>,
}

/// Text that does not read as rows: the byte offset of the row and what went wrong.
#[derive(Debug)]
pub(crate) struct RowError {
    pub start: usize,
    pub message: String,
}

impl<'t> Rows<'t> {
    pub fn new(text: &'t str, delimiter: u8) -> Self {
        // `csv_core` drops a UTF-8 byte order mark at the start; so does this reader.
        let pos = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
        Rows {
            text,
            pos,
            delimiter,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            fields: Vec::new(),
            ends: Vec::new(),
            cells: Vec::new(),
        }
    }

    /// The next row, or `None` at the end of the text.
    pub fn next_row(&mut self) -> Result<Option<Row<'_>>, RowError> {
        let bytes = self.text.as_bytes();
        let mut start = self.pos;
        while bytes.get(start).is_some_and(|b| *b == b'\n' || *b == b'\r') {
            start += 1;
        }
        let Some(rest) = bytes.get(start..).filter(|r| !r.is_empty()) else {
            self.pos = bytes.len();
            return Ok(None);
        };
        let stop = memchr::memchr3(b'\n', b'\r', b'"', rest).unwrap_or(rest.len());
        if rest.get(stop) == Some(&b'"') {
            return self.quoted_row(start);
        }
        let line = rest.get(..stop).unwrap_or(rest);
        self.cells.clear();
        let mut from = 0;
        for at in memchr::memchr_iter(self.delimiter, line) {
            self.cells.push((from, at));
            from = at + 1;
        }
        self.cells.push((from, line.len()));
        self.pos = start + stop;
        // The line ends at an ASCII byte or at the end of the text, so it is whole characters.
        let text = self.text.get(start..start + stop).ok_or_else(|| RowError {
            start,
            message: "found a row that does not end on a character boundary".into(),
        })?;
        Ok(Some(Row { start, text, cells: &self.cells }))
    }

    /// Reads the row at `start` with `csv_core`, which unescapes its quoted fields.
    fn quoted_row(&mut self, start: usize) -> Result<Option<Row<'_>>, RowError> {
        let bytes = self.text.as_bytes();
        if self.fields.len() < 256 {
            self.fields.resize(256, 0);
        }
        if self.ends.len() < 32 {
            self.ends.resize(32, 0);
        }
        let (mut read, mut written, mut ended) = (start, 0, 0);
        loop {
            let input = bytes.get(read..).unwrap_or(&[]);
            let output = self.fields.get_mut(written..).unwrap_or(&mut []);
            let ends = self.ends.get_mut(ended..).unwrap_or(&mut []);
            let (result, nin, nout, nend) = self.core.read_record(input, output, ends);
            read += nin;
            written += nout;
            ended += nend;
            match result {
                // All input is given at once: an empty input tells the reader the text ended.
                ReadRecordResult::InputEmpty if input.is_empty() => break,
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record | ReadRecordResult::End => break,
            }
        }
        self.pos = read;
        if ended == 0 {
            return Ok(None);
        }
        self.cells.clear();
        let mut from = 0;
        for &end in self.ends.get(..ended).unwrap_or(&[]) {
            self.cells.push((from, end));
            from = end;
        }
        // Quotes are ASCII, so unescaping whole characters leaves whole characters.
        let text = std::str::from_utf8(self.fields.get(..written).unwrap_or(&[]))
            .map_err(|e| RowError { start, message: format!("found a quoted row that is not valid text ({e})") })?;
        Ok(Some(Row { start, text, cells: &self.cells }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every row as the `csv` crate reads it: the start of the row's text and its cells.
    fn by_csv_crate(text: &str, delimiter: u8) -> Vec<Vec<String>> {
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        let mut record = ::csv::ByteRecord::new();
        let mut rows = Vec::new();
        while reader.read_byte_record(&mut record).expect("the csv crate reads any text") {
            rows.push(record.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect());
        }
        rows
    }

    fn by_rows(text: &str, delimiter: u8) -> Vec<(usize, Vec<String>)> {
        let mut rows = Rows::new(text, delimiter);
        let mut out = Vec::new();
        while let Some(row) = rows.next_row().expect("valid text reads") {
            out.push((row.start, (0..row.len()).map(|i| row.get(i).unwrap_or("?").to_string()).collect()));
        }
        out
    }

    #[test]
    fn plain_and_quoted_rows_read_as_the_csv_crate_reads_them() {
        let text =
            "\u{feff}id;date;text\r\n1;2024-01-02;\"a;b\"\"c\"\r\n\r\n2;2024-01-03;plain é\n3;;\"two\nlines\"\r4;x;";
        let rows = by_rows(text, b';');
        let cells: Vec<Vec<String>> = rows.iter().map(|(_, c)| c.clone()).collect();
        assert_eq!(cells, by_csv_crate(text, b';'));
        assert_eq!(cells[1], ["1", "2024-01-02", "a;b\"c"]);
        assert_eq!(cells[3], ["3", "", "two\nlines"]);
        assert_eq!(cells[4], ["4", "x", ""]);
        // Starts point at each row's first byte, past the blank line before the third row.
        let starts: Vec<usize> = rows.iter().map(|(s, _)| *s).collect();
        assert_eq!(&text[starts[2]..starts[2] + 2], "2;");
        assert_eq!(&text[starts[4]..], "4;x;");
    }

    #[test]
    fn an_unclosed_quote_at_the_end_reads_to_the_end() {
        let text = "a,b\nc,\"open";
        assert_eq!(by_rows(text, b',').into_iter().map(|(_, c)| c).collect::<Vec<_>>(), by_csv_crate(text, b','));
    }

    proptest! {
        #[test]
        fn rows_agree_with_the_csv_crate(text in "[a,;\"\r\n é]{0,60}", semicolon in any::<bool>()) {
            let delimiter = if semicolon { b';' } else { b',' };
            let rows: Vec<Vec<String>> = by_rows(&text, delimiter).into_iter().map(|(_, c)| c).collect();
            prop_assert_eq!(rows, by_csv_crate(&text, delimiter));
        }
    }
}
