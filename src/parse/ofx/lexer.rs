//! One tolerant tag scanner for both OFX dialects: 1.x SGML (leaf tags left open, values running up
//! to the next `<`) and 2.x XML (every tag closed, CDATA, entities). It streams tags and values
//! straight out of the text without building a tree, and keeps the byte offset of every tag (its
//! line and column are worked out only for the few a warning or an error names).

use std::borrow::Cow;

use memchr::{memchr, memmem};

/// Where a tag starts: its byte offset in the decoded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Pos {
    /// Byte offset in the decoded text.
    pub at: usize,
}

/// A start or end tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// `<NAME>` or `<NAME/>` (attributes, which OFX does not use, are ignored).
    Start {
        /// The tag name as written.
        name: &'a str,
        /// `<NAME/>`.
        self_closing: bool,
        /// Where the tag starts.
        pos: Pos,
    },
    /// `</NAME>`.
    End {
        /// The tag name as written.
        name: &'a str,
        /// Where the tag starts.
        pos: Pos,
    },
}

/// Why the text cannot be scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexError {
    /// Where the broken construct starts.
    pub pos: Pos,
    /// What was found and what was expected.
    pub message: &'static str,
}

/// Streams the tags of an OFX document.
pub(super) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A scanner at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0 }
    }

    /// The current byte offset.
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Moves forward to `to` (never back, never past the end).
    fn advance(&mut self, to: usize) {
        self.pos = self.pos.max(to.min(self.text.len()));
    }

    fn here(&self) -> Pos {
        Pos { at: self.pos }
    }

    fn rest_starts_with(&self, at: usize, prefix: &[u8]) -> bool {
        self.bytes().get(at..).is_some_and(|r| r.starts_with(prefix))
    }

    /// Skips a comment, CDATA section, declaration or processing instruction starting at the `<`
    /// at `at`; returns false when `at` starts none of them.
    fn skip_markup(&mut self, at: usize) -> Result<bool, LexError> {
        let (close, open_len): (&[u8], usize) = if self.rest_starts_with(at, b"<!--") {
            (b"-->", 4)
        } else if self.rest_starts_with(at, b"<![CDATA[") {
            (b"]]>", 9)
        } else if self.rest_starts_with(at, b"<!") || self.rest_starts_with(at, b"<?") {
            (b">", 2)
        } else {
            return Ok(false);
        };
        self.advance(at);
        let from = at + open_len;
        match self.bytes().get(from..).and_then(|r| memmem::find(r, close)) {
            Some(i) => {
                self.advance(from + i + close.len());
                Ok(true)
            }
            None => Err(LexError { pos: self.here(), message: "found markup that is never closed, expected its end" }),
        }
    }

    /// The next start or end tag; text between tags is skipped (values are read with
    /// [`Lexer::value`] right after their start tag).
    pub fn next_tag(&mut self) -> Result<Option<Token<'a>>, LexError> {
        loop {
            let Some(i) = self.bytes().get(self.pos..).and_then(|r| memchr(b'<', r)) else {
                self.advance(self.text.len());
                return Ok(None);
            };
            let at = self.pos + i;
            if self.skip_markup(at)? {
                continue;
            }
            self.advance(at);
            let pos = self.here();
            let Some(gt) = self.bytes().get(at + 1..).and_then(|r| memchr(b'>', r)) else {
                return Err(LexError { pos, message: "found a tag that is never closed, expected `>`" });
            };
            let inner_end = at + 1 + gt;
            let inner = self.text.get(at + 1..inner_end).unwrap_or("");
            if inner.contains('<') {
                // A stray `<` in a value (SGML files do not always escape it): not a tag.
                self.advance(at + 1);
                continue;
            }
            let (is_end, body) = match inner.strip_prefix('/') {
                Some(b) => (true, b),
                None => (false, inner),
            };
            let self_closing = !is_end && body.ends_with('/');
            let name = body.split(|c: char| c.is_ascii_whitespace() || c == '/').next().unwrap_or("").trim();
            if !name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) {
                self.advance(at + 1);
                continue;
            }
            self.advance(inner_end + 1);
            return Ok(Some(if is_end { Token::End { name, pos } } else { Token::Start { name, self_closing, pos } }));
        }
    }

    /// The value after a start tag: text up to the next tag, with CDATA sections taken verbatim,
    /// comments dropped and entities decoded; surrounding blanks trimmed.
    pub fn value(&mut self) -> Cow<'a, str> {
        let mut owned: Option<String> = None;
        let mut first: &'a str = "";
        loop {
            let stop = self.markup_from(self.pos);
            let segment = self.text.get(self.pos..stop).unwrap_or("");
            let cdata = self.rest_starts_with(stop, b"<![CDATA[");
            let comment = self.rest_starts_with(stop, b"<!--");
            if owned.is_none() && !cdata && !comment {
                first = segment;
                self.advance(stop);
                break;
            }
            let buf = owned.get_or_insert_with(String::new);
            push_decoded(buf, segment);
            self.advance(stop);
            if cdata {
                let from = stop + 9;
                let end = self.bytes().get(from..).and_then(|r| memmem::find(r, b"]]>")).map(|i| from + i);
                let content_end = end.unwrap_or(self.text.len());
                buf.push_str(self.text.get(from..content_end).unwrap_or(""));
                self.advance(end.map(|e| e + 3).unwrap_or(self.text.len()));
            } else if comment {
                let from = stop + 4;
                let end = self.bytes().get(from..).and_then(|r| memmem::find(r, b"-->")).map(|i| from + i + 3);
                self.advance(end.unwrap_or(self.text.len()));
            } else {
                break;
            }
        }
        match owned {
            Some(s) => {
                let trimmed = s.trim();
                if trimmed.len() == s.len() {
                    Cow::Owned(s)
                } else {
                    Cow::Owned(trimmed.to_string())
                }
            }
            None => {
                let trimmed = first.trim();
                if trimmed.contains('&') {
                    let mut s = String::with_capacity(trimmed.len());
                    push_decoded(&mut s, trimmed);
                    Cow::Owned(s)
                } else {
                    Cow::Borrowed(trimmed)
                }
            }
        }
    }

    /// The first `<` at or after `from` that can open markup; a `<` followed by a blank or a digit
    /// is text (SGML files do not always escape it).
    fn markup_from(&self, from: usize) -> usize {
        let bytes = self.bytes();
        let mut at = from;
        while let Some(i) = bytes.get(at..).and_then(|r| memchr(b'<', r)) {
            let lt = at + i;
            match bytes.get(lt + 1) {
                Some(b) if b.is_ascii_alphabetic() || matches!(b, b'/' | b'!' | b'?') => return lt,
                Some(_) => at = lt + 1,
                None => return bytes.len(),
            }
        }
        bytes.len()
    }

    /// Consumes `</name>` when it is the next tag (after blanks), as XML and some SGML files close
    /// their leaf elements.
    pub fn eat_end(&mut self, name: &str) -> bool {
        let rest = self.bytes().get(self.pos..).unwrap_or(&[]);
        let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let after = &rest[skip.min(rest.len())..];
        let Some(tail) = after.strip_prefix(b"</") else { return false };
        let n = name.len();
        let matches = tail.get(..n).is_some_and(|t| t.eq_ignore_ascii_case(name.as_bytes()));
        if !matches {
            return false;
        }
        let after_name = &tail[n..];
        let blanks = after_name.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if after_name.get(blanks) != Some(&b'>') {
            return false;
        }
        self.advance(self.pos + skip + 2 + n + blanks + 1);
        true
    }
}

/// Appends `s` with the XML/SGML character entities replaced; an unknown or malformed entity is
/// kept as written (1.x files often carry a bare `&`).
fn push_decoded(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let entity = tail.get(1..).and_then(|t| t.find(';')).filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &tail[1..1 + semi];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name.strip_prefix('#').and_then(|num| {
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse::<u32>().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            ch.map(|c| (c, semi + 2))
        });
        match entity {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> Vec<String> {
        let mut lx = Lexer::new(text);
        let mut out = Vec::new();
        while let Some(t) = lx.next_tag().unwrap() {
            match t {
                Token::Start { name, self_closing, .. } => {
                    let v = lx.value();
                    out.push(format!("<{name}{}>{v}", if self_closing { "/" } else { "" }));
                }
                Token::End { name, .. } => out.push(format!("</{name}>")),
            }
        }
        out
    }

    #[test]
    fn sgml_leaves_end_at_the_next_tag() {
        assert_eq!(tags("<A><B>1<C>two words\n</A>"), ["<A>", "<B>1", "<C>two words", "</A>"]);
    }

    #[test]
    fn cdata_is_taken_verbatim_and_comments_are_dropped() {
        assert_eq!(
            tags("<N><![CDATA[a <b> & c]]></N><M>x<!-- note -->y</M>"),
            ["<N>a <b> & c", "</N>", "<M>xy", "</M>"]
        );
    }

    #[test]
    fn entities_are_decoded_and_a_bare_ampersand_is_kept() {
        assert_eq!(tags("<N>AT&amp;T &#233; &lt;x&gt;<M>B&B"), ["<N>AT&T é <x>", "<M>B&B"]);
    }

    #[test]
    fn declarations_instructions_and_self_closing_tags_are_understood() {
        assert_eq!(tags("<?xml version=\"1.0\"?><!DOCTYPE x><A><B/></A>"), ["<A>", "<B/>", "</A>"]);
    }

    #[test]
    fn tags_know_their_line_and_column() {
        let text = "<A>\n  <B>1\r\n<C>";
        let lines = crate::parse::text::LineIndex::new(text.as_bytes());
        let mut lx = Lexer::new(text);
        let mut seen = Vec::new();
        while let Some(Token::Start { pos, .. }) = lx.next_tag().unwrap() {
            seen.push(lines.line_col(pos.at));
        }
        assert_eq!(seen, [(1, 1), (2, 3), (3, 1)]);
    }

    #[test]
    fn a_matching_end_tag_after_a_value_is_consumed() {
        let mut lx = Lexer::new("<CODE>\n0</CODE>\n<X>");
        lx.next_tag().unwrap();
        assert_eq!(lx.value(), "0");
        assert!(lx.eat_end("code"));
        assert!(matches!(lx.next_tag().unwrap(), Some(Token::Start { name: "X", .. })));
    }

    #[test]
    fn an_unclosed_comment_or_tag_is_an_error() {
        assert!(Lexer::new("<A><!-- open").next_tag().is_ok());
        let mut lx = Lexer::new("<A><!-- open");
        lx.next_tag().unwrap();
        assert!(lx.next_tag().is_err());
        assert!(Lexer::new("text <A").next_tag().is_err());
    }

    #[test]
    fn a_stray_less_than_sign_is_not_a_tag() {
        assert_eq!(tags("<M>a < b <3<N>c"), ["<M>a < b <3", "<N>c"]);
    }
}
