//! QIF text as lines, and what a `!` header line announces.

/// One line of the file, without its terminator.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line<'t> {
    /// 1-based line number.
    pub number: usize,
    /// Byte offset of the line's start in the decoded text.
    pub offset: usize,
    /// The line's text, without `\n` / `\r\n` / `\r`.
    pub text: &'t str,
}

/// Iterates over lines without allocating. Lines end with LF or CRLF; a file with CR but no LF at
/// all (classic Mac OS exports) is split on CR.
pub(super) struct Lines<'t> {
    text: &'t str,
    pos: usize,
    number: usize,
    terminator: u8,
}

impl<'t> Lines<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        let bytes = text.as_bytes();
        let terminator = if memchr::memchr(b'\n', bytes).is_none() && memchr::memchr(b'\r', bytes).is_some() {
            b'\r'
        } else {
            b'\n'
        };
        Lines { text, pos: 0, number: 0, terminator }
    }
}

impl<'t> Iterator for Lines<'t> {
    type Item = Line<'t>;

    fn next(&mut self) -> Option<Line<'t>> {
        let bytes = self.text.as_bytes();
        let rest = bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let start = self.pos;
        let end = memchr::memchr(self.terminator, rest).map_or(bytes.len(), |i| start + i);
        self.pos = end + 1;
        self.number += 1;
        // The terminator is ASCII, so `start..end` always falls on character boundaries.
        let raw = self.text.get(start..end).unwrap_or_default();
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        Some(Line { number: self.number, offset: start, text })
    }
}

/// What a line starting with `!` announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Header<'t> {
    /// Transactions of a cash-like account (`Bank`, `Cash`, `CCard`, `Oth A`, `Oth L`, and the
    /// business subtypes `Invoice`, `Tax`, `Bill`); `label` is the type as written.
    Transactions { label: &'t str },
    /// Investment transactions (`!Type:Invst`).
    Investments { label: &'t str },
    /// A list that holds no booked lines (categories, classes, memorised transactions...).
    List { what: &'static str },
    /// A `!Type:` bankrec does not know.
    UnknownType { label: &'t str },
    /// `!Account`: account records follow.
    Account,
    /// `!Option:AutoSwitch`: the account records that follow are a list, not a selection.
    AutoSwitchOn,
    /// `!Clear:AutoSwitch`: the next account record selects the account of what follows.
    AutoSwitchOff,
    /// An option that changes nothing for a statement import (`!Option:AllXfr`).
    HarmlessOption,
    /// Anything else.
    Unknown,
}

/// Compares ignoring ASCII case and blanks, so `Oth A`, `OthA` and `oth a` are one type.
fn loose_eq(written: &str, name: &str) -> bool {
    let mut a = written.bytes().filter(|b| !b.is_ascii_whitespace()).map(|b| b.to_ascii_lowercase());
    let mut b = name.bytes();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

/// Classifies a header line (the caller has checked that it starts with `!`).
pub(super) fn classify(line: &str) -> Header<'_> {
    let body = line.get(1..).unwrap_or_default().trim();
    let (name, arg) = match body.split_once(':') {
        Some((n, a)) => (n.trim(), a.trim()),
        None => (body, ""),
    };
    if loose_eq(name, "type") {
        const CASH_LIKE: [&str; 8] = ["bank", "cash", "ccard", "otha", "othl", "invoice", "tax", "bill"];
        const LISTS: [(&str, &str); 10] = [
            ("cat", "category list"),
            ("class", "class list"),
            ("memorized", "memorised transactions"),
            ("memorised", "memorised transactions"),
            ("security", "security list"),
            ("prices", "security prices"),
            ("budget", "budget"),
            ("invitem", "invoice items"),
            ("template", "business templates"),
            ("payee", "payee list"),
        ];
        if CASH_LIKE.iter().any(|t| loose_eq(arg, t)) {
            return Header::Transactions { label: arg };
        }
        if loose_eq(arg, "invst") {
            return Header::Investments { label: arg };
        }
        if let Some((_, what)) = LISTS.iter().find(|(t, _)| loose_eq(arg, t)) {
            return Header::List { what };
        }
        // Some exporters shorten `Memorized` to `Memo`.
        if arg.len() >= 4 && arg.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("memo")) {
            return Header::List { what: "memorised transactions" };
        }
        return Header::UnknownType { label: arg };
    }
    if loose_eq(name, "account") && arg.is_empty() {
        return Header::Account;
    }
    if loose_eq(name, "option") && loose_eq(arg, "autoswitch") {
        return Header::AutoSwitchOn;
    }
    if loose_eq(name, "clear") && loose_eq(arg, "autoswitch") {
        return Header::AutoSwitchOff;
    }
    if loose_eq(name, "option") && loose_eq(arg, "allxfr") {
        return Header::HarmlessOption;
    }
    Header::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<&str> {
        Lines::new(s).map(|l| l.text).collect()
    }

    #[test]
    fn lines_end_with_lf_crlf_or_a_lone_cr() {
        assert_eq!(texts("a\nb\r\nc"), ["a", "b", "c"]);
        assert_eq!(texts("a\rb\r"), ["a", "b"]);
        assert_eq!(texts("a\n\nb\n"), ["a", "", "b"]);
        assert!(texts("").is_empty());
    }

    #[test]
    fn lines_know_their_number_and_offset() {
        let lines: Vec<_> = Lines::new("ab\ncd").collect();
        assert_eq!((lines[1].number, lines[1].offset), (2, 3));
    }

    #[test]
    fn headers_are_read_loosely_as_quicken_and_its_imitators_write_them() {
        assert_eq!(classify("!Type:Bank "), Header::Transactions { label: "Bank" });
        assert_eq!(classify("!type:oth a"), Header::Transactions { label: "oth a" });
        assert_eq!(classify("!Type:OthL"), Header::Transactions { label: "OthL" });
        assert_eq!(classify("!Type:Invst"), Header::Investments { label: "Invst" });
        assert_eq!(classify("!Type:Cat"), Header::List { what: "category list" });
        assert_eq!(classify("!Type:Memorized"), Header::List { what: "memorised transactions" });
        assert_eq!(classify("!Type:Memo"), Header::List { what: "memorised transactions" });
        assert_eq!(classify("!Type:Stocks"), Header::UnknownType { label: "Stocks" });
        assert_eq!(classify("!Account"), Header::Account);
        assert_eq!(classify("!Option:AutoSwitch"), Header::AutoSwitchOn);
        assert_eq!(classify("!Clear:AutoSwitch"), Header::AutoSwitchOff);
        assert_eq!(classify("!Option:AllXfr"), Header::HarmlessOption);
        assert_eq!(classify("!"), Header::Unknown);
        assert_eq!(classify("!Typé:Bank"), Header::Unknown);
    }
}
