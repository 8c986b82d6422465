//! Text evidence: counterparty name normalisation and similarity, reference token extraction and
//! reference comparison. Banks upper-case, truncate and re-punctuate what the books wrote, so
//! every comparison here works on normalised forms.

/// Words that say what kind of company it is, not which one; they are dropped before comparing.
const LEGAL_WORDS: &[&str] = &[
    "group",
    "holding",
    "holdings",
    "gmbh",
    "ag",
    "kg",
    "ohg",
    "ug",
    "ev",
    "ltd",
    "limited",
    "llc",
    "llp",
    "lp",
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "co",
    "company",
    "plc",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "bv",
    "nv",
    "oy",
    "ab",
    "as",
    "aps",
    "pty",
    "pte",
    "the",
    "und",
    "and",
    "et",
    "cie",
];

/// Words banks put around the counterparty's name; they carry no identity.
const BANK_NOISE: &[&str] = &[
    "sepa",
    "credit",
    "debit",
    "transfer",
    "payment",
    "pmt",
    "ach",
    "wire",
    "pos",
    "card",
    "deposit",
    "ref",
    "reference",
    "inv",
    "invoice",
    "from",
    "to",
    "dd",
    "direct",
    "trf",
    "tfr",
    "ccd",
    "ppd",
    "web",
    "online",
    "purchase",
    "incoming",
    "outgoing",
    "remittance",
    "ueberweisung",
    "gutschrift",
    "lastschrift",
    "dauerauftrag",
    // What banks print in front of a check, a counter deposit or an incoming payment, in the
    // United Kingdom and Germany as in the United States: never a counterparty's name.
    "check",
    "cheque",
    "chq",
    "scheck",
    "scheckeinreichung",
    "paid",
    "in",
    "at",
    "branch",
    "counter",
    "faster",
    "received",
    "intl",
    "swift",
    "bacs",
    "sammelgutschrift",
    "kartenzahlung",
    "preauth",
];

/// Lower-case words of `text` (letters and digits), in order, accents folded (`Çelik` → `celik`)
/// because banks print names in plain ASCII.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(fold).collect()
}

/// Lower case with Latin accents and ligatures folded to ASCII.
pub fn fold(word: &str) -> String {
    if word.is_ascii() {
        // Nothing to fold but the case, byte by byte.
        return word.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(word.len());
    for c in word.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ą' | 'ā' | 'ă' => out.push('a'),
            'æ' => out.push_str("ae"),
            'ç' | 'ć' | 'č' | 'ĉ' => out.push('c'),
            'ď' | 'đ' | 'ð' => out.push('d'),
            'è' | 'é' | 'ê' | 'ë' | 'ę' | 'ě' | 'ē' => out.push('e'),
            'ğ' => out.push('g'),
            'ì' | 'í' | 'î' | 'ï' | 'ı' | 'ī' => out.push('i'),
            'ł' | 'ľ' => out.push('l'),
            'ñ' | 'ń' | 'ň' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ő' | 'ō' => out.push('o'),
            'œ' => out.push_str("oe"),
            'ř' => out.push('r'),
            'ś' | 'š' | 'ş' | 'ș' => out.push('s'),
            'ß' => out.push_str("ss"),
            'ť' | 'ț' | 'ţ' => out.push('t'),
            'ù' | 'ú' | 'û' | 'ü' | 'ů' | 'ű' | 'ū' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'ź' | 'ż' | 'ž' => out.push('z'),
            'þ' => out.push_str("th"),
            other => out.push(other),
        }
    }
    out
}

/// A counterparty name reduced to what identifies it: lower case, punctuation gone, legal-form
/// words (GmbH, Ltd, Inc...) dropped, single spaces.
pub fn normalise_name(name: &str) -> String {
    let words: Vec<String> = tokens(name).into_iter().filter(|w| !LEGAL_WORDS.contains(&w.as_str())).collect();
    words.join(" ")
}

/// Normalised name words of a bank line's text that may name the counterparty (bank boilerplate and
/// words with digits dropped).
pub fn name_words(text: &str) -> Vec<String> {
    tokens(text)
        .into_iter()
        .filter(|w| {
            w.chars().count() >= 2
                && !w.chars().any(|c| c.is_ascii_digit())
                && !LEGAL_WORDS.contains(&w.as_str())
                && !BANK_NOISE.contains(&w.as_str())
        })
        .collect()
}

/// The keys a counterparty is indexed under: its first two words of at least three characters
/// (two, because banks print personal names surname first or last).
pub fn name_keys(normalised: &str) -> impl Iterator<Item = String> + '_ {
    normalised.split(' ').filter(|w| w.chars().count() >= 3).take(2).map(word_key)
}

/// The index key of one name word: its first four letters once German umlaut spellings are
/// folded, so that a bank's truncation (`LUKASI MARKET`) finds the full name (`Łukasiewicz
/// Marketing`).
pub fn word_key(word: &str) -> String {
    if has_umlaut_spelling(word) {
        fold_umlauts(word).chars().take(4).collect()
    } else {
        word.chars().take(4).collect()
    }
}

/// Whether `word` holds a German umlaut spelled out (`oe`, `ue`, `ae`).
fn has_umlaut_spelling(word: &str) -> bool {
    word.as_bytes().windows(2).any(|w| matches!(w, [b'o' | b'u' | b'a', b'e']))
}

/// `word` with spelled-out umlauts folded to their base letter.
fn fold_umlauts(word: &str) -> String {
    word.replace("oe", "o").replace("ue", "u").replace("ae", "a")
}

/// How alike two counterparty names are, in [0, 1]; `None` when either is empty after
/// normalisation. A truncated name scores as nearly equal to the full one.
pub fn similar(a: &str, b: &str) -> Option<f64> {
    similar_normalised(&normalise_name(a), &normalise_name(b))
}

/// [`similar`] on names already passed through [`normalise_name`]. The engine compares names it
/// prepared once ([`similar_forms`]); this prepares both for a single comparison.
pub fn similar_normalised(a: &str, b: &str) -> Option<f64> {
    similar_forms(&NameForm::new(a), &NameForm::new(b))
}

/// A normalised name prepared once for many comparisons: its words (with their umlaut-folded
/// spelling where they have one), its characters without spaces and their sorted bigrams, so
/// that [`similar_forms`] splits, counts and sorts nothing.
#[derive(Debug, Clone, Default)]
pub struct NameForm {
    name: String,
    words: Vec<FormWord>,
    squeezed: Vec<char>,
    /// Each bigram packed as `first << 32 | second`, which sorts as the pair of characters does.
    bigrams: Vec<u64>,
    /// The union of its words' [`FormWord::first`] bits.
    firsts: u64,
}

/// One word of a [`NameForm`].
#[derive(Debug, Clone)]
struct FormWord {
    text: String,
    /// The word's first eight bytes (zero-padded) as one integer: two words that differ there
    /// are neither equal nor prefixes of one another, which settles most comparisons without
    /// comparing strings.
    head: u64,
    /// [`fold_umlauts`] of the word, when it spells an umlaut out.
    folded: Option<String>,
    /// Whether the word is one character (an initial).
    initial: bool,
    /// One bit for the word's first byte (every bit for an empty word). Every way two words can
    /// match ([`form_word_match`]) keeps the first byte (folding an umlaut spelling does too), so
    /// words whose bits differ cannot match.
    first: u64,
}

impl FormWord {
    fn new(w: &str) -> Self {
        FormWord {
            text: w.to_string(),
            head: head(w),
            folded: has_umlaut_spelling(w).then(|| fold_umlauts(w)),
            initial: w.chars().count() == 1,
            first: w.as_bytes().first().map_or(u64::MAX, |b| 1 << (b & 63)),
        }
    }
}

impl NameForm {
    /// Prepares a name already passed through [`normalise_name`].
    pub fn new(normalised: &str) -> Self {
        let words = if normalised.is_empty() { Vec::new() } else { normalised.split(' ').map(FormWord::new).collect() };
        let squeezed: Vec<char> = squeezed(normalised).collect();
        let mut bigrams: Vec<u64> = squeezed.windows(2).map(|w| (u64::from(w[0]) << 32) | u64::from(w[1])).collect();
        bigrams.sort_unstable();
        let firsts = words.iter().fold(0, |m, w| m | w.first);
        NameForm { name: normalised.to_string(), words, squeezed, bigrams, firsts }
    }

    /// How many of its words could match a word of `other`, an upper bound on those that do.
    fn could_match(&self, other: &NameForm) -> usize {
        self.words.iter().filter(|w| w.first & other.firsts != 0).count()
    }

    /// The normalised name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How alike two prepared names are, in [0, 1] (`None` when either is empty): 1 for equal names,
/// 0.95 when one is the other truncated, 0.9 when every word of the shorter appears in the longer,
/// else the better of the share of words that match as a bank abbreviates them and the Dice
/// coefficient of their character bigrams.
pub fn similar_forms(a: &NameForm, b: &NameForm) -> Option<f64> {
    similar_forms_bounded(a, b, true)
}

/// [`similar_forms`]; with `bounded`, word-by-word comparisons that cannot change the result are
/// skipped: the words of two names a shared word brought together (most pairs a run compares)
/// mostly start with different letters, and a word can only match one starting with its own.
fn similar_forms_bounded(a: &NameForm, b: &NameForm, bounded: bool) -> Option<f64> {
    if a.name.is_empty() || b.name.is_empty() {
        return None;
    }
    if a.name == b.name {
        return Some(1.0);
    }
    let (short, long) = if a.name.len() <= b.name.len() { (a, b) } else { (b, a) };
    if short.squeezed.len() > 3
        && short.squeezed.first() == long.squeezed.first()
        && long.squeezed.starts_with(&short.squeezed)
    {
        return Some(0.95);
    }
    if (!bounded || short.could_match(long) == short.words.len())
        && short.words.iter().all(|w| long.words.iter().any(|m| same_word(m, w)))
    {
        return Some(0.9);
    }
    let dice = if short.bigrams.is_empty() || long.bigrams.is_empty() {
        if short.squeezed == long.squeezed {
            1.0
        } else {
            0.0
        }
    } else {
        dice_sorted(&short.bigrams, &long.bigrams)
    };
    let (fewer, more) = if short.words.len() <= long.words.len() { (short, long) } else { (long, short) };
    let share = |matched: usize| 0.95 * matched as f64 / fewer.words.len().max(1) as f64;
    // The share of words is at most what the words that could match would give; when that does
    // not beat the bigrams, counting the matches cannot change the result.
    if bounded && share(fewer.could_match(more)) <= dice {
        return Some(dice);
    }
    let matched = fewer.words.iter().filter(|w| more.words.iter().any(|m| form_word_match(w, m))).count();
    Some(share(matched).max(dice))
}

/// Whether two name words can be the same word as a bank abbreviates or transliterates it:
/// equal, one a prefix of the other (three letters at least), equal once German umlaut spellings
/// (`oe`, `ue`, `ae`) are folded, or a single initial.
fn form_word_match(a: &FormWord, b: &FormWord) -> bool {
    if same_word(a, b) {
        return true;
    }
    let prefix = |x: &FormWord, y: &FormWord| {
        // Within eight bytes the heads hold the whole of `x`.
        x.text.len() >= 3
            && y.text.len() >= x.text.len()
            && heads_agree(x, y)
            && (x.text.len() <= 8 || y.text.starts_with(&x.text))
    };
    if prefix(a, b) || prefix(b, a) {
        return true;
    }
    if a.folded.is_some() || b.folded.is_some() {
        let pa = a.folded.as_deref().unwrap_or(&a.text);
        let pb = b.folded.as_deref().unwrap_or(&b.text);
        let prefix = |x: &str, y: &str| x.len() >= 3 && y.starts_with(x);
        if pa == pb || prefix(pa, pb) || prefix(pb, pa) {
            return true;
        }
    }
    (a.initial && heads_agree(a, b) && b.text.starts_with(a.text.as_str()))
        || (b.initial && heads_agree(b, a) && a.text.starts_with(b.text.as_str()))
        || abbreviates(&a.text, &b.text)
        || abbreviates(&b.text, &a.text)
}

/// Whether `short` is how a bank abbreviates `long` by dropping letters: two to four letters, the
/// first the same and the rest in order (`sv` and `svcs` for services, `mgmt` for management,
/// `intl` for international), the word itself at least two letters longer.
fn abbreviates(short: &str, long: &str) -> bool {
    let (s, l) = (short.as_bytes(), long.as_bytes());
    if !(2..=4).contains(&s.len()) || l.len() < s.len() + 2 || s.first() != l.first() {
        return false;
    }
    if !short.bytes().all(|c| c.is_ascii_lowercase()) {
        return false;
    }
    let mut rest = l.iter().skip(1);
    s.iter().skip(1).all(|c| rest.any(|x| x == c))
}

/// The first eight bytes of `word`, zero-padded, as an integer (see [`FormWord::head`]).
fn head(word: &str) -> u64 {
    let mut bytes = [0u8; 8];
    for (to, from) in bytes.iter_mut().zip(word.as_bytes()) {
        *to = *from;
    }
    u64::from_le_bytes(bytes)
}

/// Whether `y` can start with `x` as far as their heads tell: their first `min(8, x's length)`
/// bytes agree.
fn heads_agree(x: &FormWord, y: &FormWord) -> bool {
    let n = x.text.len().min(8);
    let mask = if n >= 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
    (x.head ^ y.head) & mask == 0
}

/// Whether two words are equal, comparing their heads before their text (which the heads hold
/// whole up to eight bytes).
fn same_word(a: &FormWord, b: &FormWord) -> bool {
    a.head == b.head && a.text.len() == b.text.len() && (a.text.len() <= 8 || a.text == b.text)
}

/// Sørensen–Dice coefficient of two sorted, non-empty bigram lists.
fn dice_sorted(ga: &[u64], gb: &[u64]) -> f64 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    // Each step advances by comparison results rather than by a three-way branch, which on two
    // unrelated names is mispredicted about every other step.
    while let (Some(&x), Some(&y)) = (ga.get(i), gb.get(j)) {
        common += usize::from(x == y);
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    (2 * common) as f64 / (ga.len() + gb.len()) as f64
}

/// The characters of a name without its spaces.
fn squeezed(s: &str) -> impl Iterator<Item = char> + Clone + '_ {
    s.chars().filter(|c| *c != ' ')
}

/// Upper-case letters and digits of `text`, everything else dropped: `inv 00123` and `INV-00123`
/// both become `INV00123`.
pub fn compact(text: &str) -> String {
    if text.is_ascii() {
        // Nearly all bank text: letters and digits kept and upper-cased byte by byte.
        let mut out = String::with_capacity(text.len());
        out.extend(text.bytes().filter(u8::is_ascii_alphanumeric).map(|b| char::from(b.to_ascii_uppercase())));
        return out;
    }
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

/// Whether the bank text quotes another document of the reference's kind: the reference's
/// letters followed by at least three digits that neither start the reference's digits nor start
/// with them (`INV09696` or a cut `INV095` for `INV10194`, but not `INV101` or `INV10194`). Both
/// sides as [`compact`] gives them; a reference that is not letters then digits is never
/// contradicted.
pub fn quotes_another(compact_ref: &str, bank_compact: &str) -> bool {
    let letters = compact_ref.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (prefix, digits) = compact_ref.split_at(letters);
    if letters < 2 || digits.len() < 3 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let mut other = false;
    let mut from = 0;
    while let Some(at) = bank_compact.get(from..).and_then(|rest| rest.find(prefix)) {
        let start = from + at + prefix.len();
        let tail = bank_compact.get(start..).unwrap_or_default();
        let run = tail.get(..tail.bytes().take_while(u8::is_ascii_digit).count()).unwrap_or_default();
        if run.len() >= 3 {
            if digits.starts_with(run) || run.starts_with(digits) {
                return false;
            }
            other = true;
        }
        from = start;
    }
    other
}

/// Runs of digits in `text`, leading zeros stripped, at least `min_len` digits long before
/// stripping (`INV-00123` gives `123`).
pub fn digit_runs(text: &str, min_len: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run.push(c);
        } else if !run.is_empty() {
            if run.len() >= min_len {
                let stripped = run.trim_start_matches('0');
                out.push(if stripped.is_empty() { "0".to_string() } else { stripped.to_string() });
            }
            run.clear();
        }
    }
    out
}

/// The digits of a reference, concatenated, leading zeros stripped (`INV-2024-0042` gives
/// `20240042`); `None` when it has no digits.
pub fn digit_core(reference: &str) -> Option<String> {
    let digits: String = reference.chars().filter(char::is_ascii_digit).collect();
    let stripped = digits.trim_start_matches('0');
    if digits.is_empty() {
        None
    } else if stripped.is_empty() {
        Some("0".into())
    } else {
        Some(stripped.to_string())
    }
}

/// Reference-like tokens of free text: words of at least four characters holding a digit
/// (invoice ids such as `INV-00123`, compacted to `INV00123`) and digit runs of four or more
/// (the Odoo rule), leading zeros stripped.
pub fn refs_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '(' | ')' | '[' | ']')) {
        let c = compact(word);
        if c.chars().count() >= 4 && c.chars().any(|ch| ch.is_ascii_digit()) && !out.contains(&c) {
            out.push(c);
        }
    }
    for run in digit_runs(text, 4) {
        if !out.contains(&run) {
            out.push(run);
        }
    }
    out
}

/// How strongly a bank line's text evidences a book reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefEvidence {
    /// Nothing ties them.
    None,
    /// The text ends in a truncated start of the reference.
    Truncated,
    /// A short digit core (three digits) matches: weak, numbers that short collide.
    ShortCore,
    /// The reference's digits (leading zeros stripped) appear as a number in the text.
    Core,
    /// The whole reference appears, ignoring case, spaces and punctuation.
    Full,
}

impl RefEvidence {
    /// The feature value in [0, 1].
    pub fn value(self) -> f64 {
        match self {
            RefEvidence::None => 0.0,
            RefEvidence::Truncated => 0.5,
            RefEvidence::ShortCore => 0.4,
            RefEvidence::Core => 0.8,
            RefEvidence::Full => 1.0,
        }
    }
}

/// Compares a book reference with a bank line. `bank_compact` is [`compact`] of the bank text and
/// `bank_runs` its [`digit_runs`] (minimum length 1).
pub fn ref_evidence(reference: &str, bank_compact: &str, bank_runs: &[String]) -> RefEvidence {
    ref_evidence_prepared(&compact(reference), digit_core(reference).as_deref(), bank_compact, bank_runs)
}

/// [`ref_evidence`] with the reference already reduced: `compact_ref` is [`compact`] of it and
/// `core` its [`digit_core`]. Allocates nothing, so it can run on every candidate pair.
pub fn ref_evidence_prepared(
    compact_ref: &str,
    core: Option<&str>,
    bank_compact: &str,
    bank_runs: &[String],
) -> RefEvidence {
    let refs = RefBits { compact: pair_bits(compact_ref), core: core.map_or(0, pair_bits) };
    let chars = compact_ref.chars().count();
    ref_evidence_counted(compact_ref, chars, refs, core, bank_compact, pair_bits(bank_compact), bank_runs)
}

/// [`ref_evidence_prepared`] with the characters of `compact_ref` already counted (`chars`) and
/// the [`pair_bits`] of both sides known (`bank_bits` those of `bank_compact`; see
/// [`ref_ties_prepared`]).
pub fn ref_evidence_counted(
    compact_ref: &str,
    chars: usize,
    refs: RefBits,
    core: Option<&str>,
    bank_compact: &str,
    bank_bits: u64,
    bank_runs: &[String],
) -> RefEvidence {
    let n = chars;
    if n >= 3 && refs.compact & !bank_bits == 0 && contains_short(bank_compact, compact_ref) {
        return RefEvidence::Full;
    }
    if let Some(core) = core.filter(|_| refs.core & !bank_bits == 0) {
        if bank_runs.iter().any(|r| same_text(r, core)) {
            return if core.len() >= 4 {
                RefEvidence::Core
            } else if core.len() == 3 {
                RefEvidence::ShortCore
            } else {
                RefEvidence::None
            };
        }
    }
    let min = 5.max(n * 3 / 5);
    if n > min {
        // Char boundaries of the prefixes of `min..n` characters, longest first.
        let truncated = compact_ref
            .char_indices()
            .map(|(at, _)| at)
            .skip(min)
            .filter_map(|at| compact_ref.get(..at))
            .any(|prefix| ends_with_short(bank_compact, prefix));
        if truncated {
            return RefEvidence::Truncated;
        }
    }
    RefEvidence::None
}

/// Whether the bank text ties it to the reference at least by its digit core: `ref_evidence_prepared
/// (..) >= RefEvidence::Core`, without looking for truncations (what a group's parts need, asked
/// for every candidate part).
pub fn ref_ties(compact_ref: &str, core: Option<&str>, bank_compact: &str, bank_runs: &[String]) -> bool {
    let refs = RefBits { compact: pair_bits(compact_ref), core: core.map_or(0, pair_bits) };
    ref_ties_prepared(compact_ref, refs, core, bank_compact, pair_bits(bank_compact), bank_runs)
}

/// The [`pair_bits`] of a reference's compact form and of its digit core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefBits {
    /// Of the [`compact`] reference.
    pub compact: u64,
    /// Of its [`digit_core`].
    pub core: u64,
}

/// [`ref_ties`] with the [`pair_bits`] of both sides known (`bank_bits` those of `bank_compact`):
/// a bank text that lacks a byte pair of the reference (or of its core, whose digits a matching
/// run leaves in the compact text) cannot tie, and most candidates are ruled out so, before
/// their text is read.
pub fn ref_ties_prepared(
    compact_ref: &str,
    refs: RefBits,
    core: Option<&str>,
    bank_compact: &str,
    bank_bits: u64,
    bank_runs: &[String],
) -> bool {
    (refs.compact & !bank_bits == 0
        && compact_ref.chars().nth(2).is_some()
        && contains_short(bank_compact, compact_ref))
        || (refs.core & !bank_bits == 0
            && core.is_some_and(|c| c.len() >= 4 && bank_runs.iter().any(|r| same_text(r, c))))
}

/// The byte pairs of `text` as a set of 64 bits (each pair hashed to one): a text holds another
/// only if its set holds all of the other's bits.
pub fn pair_bits(text: &str) -> u64 {
    text.as_bytes()
        .windows(2)
        .filter_map(|w| w.first().zip(w.get(1)))
        .fold(0, |bits, (a, b)| bits | 1 << ((u32::from(*a) << 8 | u32::from(*b)).wrapping_mul(0x9E37_79B1) >> 26))
}

/// `a == b` for short texts such as digit runs: lengths, then bytes in a loop rather than a
/// call to compare memory.
fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// `haystack.ends_with(needle)`, comparing the needle's first byte before the rest: most of the
/// truncations tried against a bank line fail there.
fn ends_with_short(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    h.len() >= n.len() && h.get(h.len() - n.len()) == n.first() && h.ends_with(n)
}

/// `haystack.contains(needle)` for the short texts of a bank line: a scan for the needle's first
/// and last byte and a comparison where both agree, without the set-up of a general substring
/// search. Comparing bytes is exact for UTF-8, where no character's encoding starts inside
/// another's.
fn contains_short(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    let (Some(&first), Some(&last)) = (n.first(), n.last()) else { return true };
    if n.len() > h.len() {
        return false;
    }
    let span = n.len() - 1;
    h.iter()
        .zip(h.get(span..).unwrap_or(&[]))
        .enumerate()
        .any(|(i, (&a, &z))| a == first && z == last && h.get(i..i + n.len()).is_some_and(|w| w.iter().eq(n)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Few letters (one of them two bytes long) make matches, near misses and overlaps
        /// frequent.
        #[test]
        fn the_short_substring_search_agrees_with_contains(h in "[ab1ä]{0,12}", n in "[ab1ä]{0,4}") {
            prop_assert_eq!(contains_short(&h, &n), h.contains(n.as_str()));
            prop_assert_eq!(ends_with_short(&h, &n), h.ends_with(n.as_str()));
        }

        /// ASCII text takes a shortcut through `compact` and `fold`; it gives what the
        /// character-by-character path gives.
        #[test]
        fn ascii_shortcuts_agree_with_the_general_path(t in "[ -~]{0,40}") {
            let general: String = t.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect();
            prop_assert_eq!(compact(&t), general);
            let lowered: String = t.chars().flat_map(char::to_lowercase).collect();
            prop_assert_eq!(fold(&t), lowered);
        }

        /// A group's part needs the reference's core or the whole of it, as the full evidence says.
        #[test]
        fn reference_ties_are_core_evidence_or_better(
            reference in "[a-c0-9]{0,8}",
            text in "[a-c0-9 ]{0,24}",
        ) {
            let (compact_ref, core) = (compact(&reference), digit_core(&reference));
            let bank_compact = compact(&text);
            let runs = digit_runs(&text, 1);
            let full = ref_evidence_prepared(&compact_ref, core.as_deref(), &bank_compact, &runs);
            prop_assert_eq!(
                ref_ties(&compact_ref, core.as_deref(), &bank_compact, &runs),
                full >= RefEvidence::Core
            );
        }

        /// Comparing heads first never hides an equal word or a prefix (a two-byte letter
        /// makes heads cut through characters).
        #[test]
        fn word_heads_agree_whenever_one_word_starts_with_the_other(x in "[abä]{0,10}", y in "[abä]{0,12}") {
            let (fx, fy) = (FormWord::new(&x), FormWord::new(&y));
            prop_assert!(!y.starts_with(x.as_str()) || heads_agree(&fx, &fy));
            prop_assert_eq!(same_word(&fx, &fy), x == y);
        }

        /// The byte-pair sets only rule out what the texts themselves would.
        #[test]
        fn prepared_reference_ties_agree_with_plain_ones(
            reference in "[a-c0-9-]{0,8}",
            text in "[a-c0-9 ]{0,24}",
        ) {
            let (compact_ref, core) = (compact(&reference), digit_core(&reference));
            let (bank_compact, runs) = (compact(&text), digit_runs(&text, 1));
            let refs = RefBits { compact: pair_bits(&compact_ref), core: core.as_deref().map_or(0, pair_bits) };
            let plain = (compact_ref.chars().nth(2).is_some() && bank_compact.contains(compact_ref.as_str()))
                || core.as_deref().is_some_and(|c| c.len() >= 4 && runs.iter().any(|r| r == c));
            prop_assert_eq!(
                ref_ties_prepared(&compact_ref, refs, core.as_deref(), &bank_compact, pair_bits(&bank_compact), &runs),
                plain
            );
        }

        /// Words drawn from a few letters make prefixes, initials, umlaut spellings and shared
        /// words frequent.
        #[test]
        fn a_similarity_lies_between_0_and_1_and_a_name_is_fully_like_itself(
            a in proptest::collection::vec("[aeouxmr]{1,6}", 0..4),
            b in proptest::collection::vec("[aeouxmr]{1,6}", 0..4),
        ) {
            let (a, b) = (a.join(" "), b.join(" "));
            let s = similar_normalised(&a, &b);
            prop_assert_eq!(s.is_none(), a.is_empty() || b.is_empty());
            prop_assert!(s.is_none_or(|s| (0.0..=1.0).contains(&s)), "{:?}", s);
            prop_assert_eq!(similar_normalised(&a, &a), (!a.is_empty()).then_some(1.0));
        }

        /// Skipping the word comparisons that cannot change the result never changes it.
        #[test]
        fn the_bounded_similarity_is_the_plain_one(
            a in proptest::collection::vec("[aeobmsä]{1,5}", 0..5),
            b in proptest::collection::vec("[aeobmsä]{1,5}", 0..5),
        ) {
            let (a, b) = (NameForm::new(&a.join(" ")), NameForm::new(&b.join(" ")));
            prop_assert_eq!(similar_forms_bounded(&a, &b, true), similar_forms_bounded(&a, &b, false));
        }
    }

    #[test]
    fn each_kind_of_likeness_scores_as_documented() {
        let cases = [
            ("acme", "acme", Some(1.0)),
            // Truncated by the bank.
            ("acme widgets internat", "acme widgets international", Some(0.95)),
            // Every word of the shorter name, in another order.
            ("smith jones", "jones smith", Some(0.9)),
            // Word by word: a name and an initial; an umlaut spelled out and a truncated word.
            ("maria d", "dubois maria", Some(0.95)),
            // Words a bank abbreviates by dropping letters.
            ("bluewa facility sv", "bluewater facility services", Some(0.95)),
            ("acme mgmt intl", "acme management international", Some(0.95)),
            ("brueck foods malmoe", "bruckner foods malmo", Some(0.95)),
            // Bigrams alone: ab, bc shared of three each.
            ("abcd", "abce", Some(2.0 / 3.0)),
            ("xyz", "abc", Some(0.0)),
            ("", "acme", None),
        ];
        for (a, b, want) in cases {
            let got = similar_forms(&NameForm::new(a), &NameForm::new(b));
            let close = match (got, want) {
                (Some(g), Some(w)) => (g - w).abs() < 1e-12,
                (g, w) => g == w,
            };
            assert!(close, "{a} / {b}: {got:?}, expected {want:?}");
        }
    }

    #[test]
    fn an_abbreviation_keeps_the_first_letter_and_the_rest_in_order() {
        for (short, long) in
            [("sv", "services"), ("svcs", "services"), ("mgmt", "management"), ("intl", "international")]
        {
            assert!(abbreviates(short, long), "{short} / {long}");
        }
        for (short, long) in [
            ("sv", "svc"),         // not two letters shorter
            ("vs", "services"),    // first letter differs
            ("smv", "services"),   // letters out of order
            ("s", "services"),     // one letter is an initial, not an abbreviation
            ("servi", "services"), // five letters: a truncation, not an abbreviation
            ("sv2", "sv2xxxx"),    // not letters
        ] {
            assert!(!abbreviates(short, long), "{short} / {long}");
        }
    }

    #[test]
    fn legal_forms_case_and_punctuation_do_not_change_a_name() {
        assert_eq!(normalise_name("ACME GmbH"), "acme");
        assert_eq!(normalise_name("Acme, Inc."), "acme");
        assert_eq!(normalise_name("The Smith & Jones Co."), "smith jones");
        assert_eq!(normalise_name("Çelik Straße"), "celik strasse");
    }

    #[test]
    fn a_truncated_upper_cased_name_is_nearly_equal_to_the_full_one() {
        let s = similar("ACME WIDGETS INTERNAT", "Acme Widgets International Ltd").unwrap_or(0.0);
        assert!(s >= 0.9, "{s}");
        let other = similar("ACME WIDGETS", "Brightside Bakery").unwrap_or(1.0);
        assert!(other < 0.3, "{other}");
        for (bank, books) in [
            ("SILVER CONSTR LYON", "Silverline Construction Lyon Corp."),
            ("BRUECK FOODS MALMOE", "Brückner Foods Malmö Group Inc."),
            ("GARCIA IND SUPPL GDANS", "García Industrial Supplies Gdańsk LLC"),
            ("MARIA D", "Dubois, Maria"),
        ] {
            let s = similar(bank, books).unwrap_or(0.0);
            assert!(s >= 0.75, "{bank} ~ {books}: {s}");
        }
        assert_eq!(similar("", "Acme"), None);
    }

    #[test]
    fn references_are_found_however_the_bank_mangles_them() {
        let runs = |t: &str| digit_runs(t, 1);
        let check = |bank: &str| ref_evidence("INV-00123", &compact(bank), &runs(bank));
        assert_eq!(check("PAYMENT INV00123 ACME"), RefEvidence::Full);
        assert_eq!(check("acme inv 00123"), RefEvidence::Full);
        assert_eq!(check("ACME 123 THANKS"), RefEvidence::ShortCore);
        assert_eq!(ref_evidence("INV-004567", &compact("ref 4567"), &runs("ref 4567")), RefEvidence::Core);
        assert_eq!(check("ACME PAYMENT INV001"), RefEvidence::Truncated);
        assert_eq!(check("ACME PAYMENT 99"), RefEvidence::None);
    }

    #[test]
    fn a_line_quoting_another_document_of_the_kind_contradicts_the_reference() {
        let q = |reference: &str, bank: &str| quotes_another(&compact(reference), &compact(bank));
        assert!(q("INV-10194", "FASTER PAYMENT RECEIVED GRANITE HOLDINGS inv 09696"));
        assert!(q("INV-10508", "FASTER PAYMENT RECEIVED DELTA FREIGHT UTRE INV-098"));
        // Its own number, whole, cut short or mangled, does not.
        assert!(!q("INV-10194", "ACME inv 10194"));
        assert!(!q("INV-10194", "ACME INV-101"));
        assert!(!q("INV-00123", "ACME INV00123"));
        // One of several quoted is its own: no contradiction.
        assert!(!q("INV-10194", "ACME INV-10193 INV-10194"));
        // Nothing of the kind quoted, too few digits, or a reference without letters then digits.
        assert!(!q("INV-10194", "ACME PAYMENT 09696"));
        assert!(!q("INV-10194", "ACME INV 12"));
        assert!(!q("10194", "ACME INV 09696"));
        // Any kind of letters then digits: a supplier's invoice quoted by a debit too.
        assert!(q("SI/2024/336441", "LANDLORD SI/2023/100000"));
        assert!(!q("SI/2024/336441", "LANDLORD SI/2024/336441"));
    }

    #[test]
    fn reference_tokens_follow_the_four_digit_rule_and_keep_invoice_ids() {
        let refs = refs_in("SEPA CT INV-00123 Order 98765 x 12");
        assert!(refs.contains(&"INV00123".to_string()));
        assert!(refs.contains(&"98765".to_string()));
        assert!(!refs.iter().any(|r| r == "12"));
    }

    #[test]
    fn name_words_drop_bank_boilerplate_and_numbers() {
        assert_eq!(name_words("SEPA CREDIT TRANSFER ACME GMBH INV 00123"), vec!["acme".to_string()]);
        assert_eq!(name_words("FASTER PAYMENT RECEIVED ACME LTD"), vec!["acme".to_string()]);
        assert!(name_words("PAID IN AT BRANCH").is_empty());
        assert!(name_words("SCHECKEINREICHUNG").is_empty());
        assert!(name_words("CHQ 100234").is_empty());
    }

    #[test]
    fn odd_unicode_never_breaks_the_helpers() {
        for s in ["ß", "İstanbul ﬁnance", "€€€ 0000", "\u{0301}x", ""] {
            let _ = refs_in(s);
            let _ = similar(s, "x");
            let _ = ref_evidence(s, &compact(s), &digit_runs(s, 1));
            let _ = name_words(s);
        }
    }
}
