//! Reading single CSV cells: dates in the many ways exports write them, the header vocabulary
//! that names column roles in English and the main European languages, and the labels of
//! balance rows.

use chrono::NaiveDate;

use crate::domain::Currency;
use crate::parse::text::{date_fields, date_from_fields, DateOrder};

/// A date cell as read, before the file's day/month order is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateCell {
    /// Unambiguous (ISO, year first, named month).
    Fixed(NaiveDate),
    /// Numeric day and month in an order the whole file decides.
    Fields([u32; 3], usize),
}

impl DateCell {
    /// The date under `order`, when the fields make one.
    pub(crate) fn resolve(self, order: DateOrder) -> Option<NaiveDate> {
        match self {
            DateCell::Fixed(d) => Some(d),
            DateCell::Fields(f, digits) => date_from_fields(f, order, digits),
        }
    }
}

/// Drops a time of day after the date (`01.10.2013 00:00:00`, `2024-01-05T10:00:00Z`,
/// `12/15/2018 10:05 AM`).
fn strip_time(s: &str) -> &str {
    let Some(colon) = s.find(':') else { return s };
    let head = &s[..colon];
    match head.rfind([' ', 'T']) {
        Some(cut) => head[..cut].trim_end(),
        None => s,
    }
}

/// Reads a date cell: numeric dates in any order (with `/ - . '` or, year first, `:`
/// separators, or eight digits), a 4-digit year in the middle, named months in English, German,
/// French, Spanish, Italian and Dutch, and a trailing time of day.
pub(crate) fn read_date(raw: &str) -> Option<DateCell> {
    let s = raw.trim();
    match numeric_date(s.as_bytes()) {
        Some(cell) => cell,
        None => read_any_date(s),
    }
}

/// [`read_date`] for every shape, on trimmed text.
fn read_any_date(s: &str) -> Option<DateCell> {
    if s.is_empty() || s.len() > 40 {
        return None;
    }
    // `2012:03:01`: colons as date separators, year first.
    let colon_date =
        s.len() <= 10 && s.as_bytes().get(4) == Some(&b':') && s.bytes().all(|b| b.is_ascii_digit() || b == b':');
    let s = if colon_date { s } else { strip_time(s) };
    if s.bytes().any(|b| b.is_ascii_alphabetic()) {
        return named_month_date(s);
    }
    let fields = if colon_date {
        let mut it = s.split(':').map(|p| p.parse::<u32>().ok());
        [it.next()??, it.next()??, it.next()??]
    } else {
        date_fields(s)?
    };
    let last = s.rsplit(['/', '-', '.', '\'', ':']).next().unwrap_or("").trim();
    if fields[0] > 999 || (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())) {
        return date_from_fields(fields, DateOrder::Ymd, 4).map(DateCell::Fixed);
    }
    if fields[1] > 999 {
        // `10/2009/09`: the year sits in the middle.
        return Some(DateCell::Fields([fields[0], fields[2], fields[1]], 4));
    }
    let first_len = s.split(['/', '-', '.', '\'']).next().map(|p| p.trim().len()).unwrap_or(0);
    if first_len == 4 {
        return date_from_fields(fields, DateOrder::Ymd, 4).map(DateCell::Fixed);
    }
    Some(DateCell::Fields(fields, last.len()))
}

/// The common shapes of a date cell (`2024-03-05`, `05.03.2024`, `3/5/24`, `20240305`: digits
/// only, or three groups of one to four digits between `/ - . '`) read in one pass, as
/// [`read_date`] reads them. `None` when the cell has another shape and needs the general reader;
/// `Some(None)` when it has this shape but is no date.
///
/// Every row of a file goes through here, so it avoids the general reader's splitting and
/// rescanning.
fn numeric_date(s: &[u8]) -> Option<Option<DateCell>> {
    if s.len() == 8 && s.iter().all(u8::is_ascii_digit) {
        let n = |r: std::ops::Range<usize>| {
            s.get(r).map_or(0, |d| d.iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0')))
        };
        let fields = [n(0..4), n(4..6), n(6..8)];
        return Some(date_from_fields(fields, DateOrder::Ymd, 4).map(DateCell::Fixed));
    }
    if s.len() > 14 {
        return None;
    }
    let mut fields = [0u32; 3];
    let mut lens = [0usize; 3];
    let mut count = 0usize;
    for &b in s {
        match b {
            b'0'..=b'9' => {
                let (Some(f), Some(len)) = (fields.get_mut(count), lens.get_mut(count)) else { return None };
                if *len == 4 {
                    return None;
                }
                *f = *f * 10 + u32::from(b - b'0');
                *len += 1;
            }
            b'/' | b'-' | b'.' | b'\'' => {
                if lens.get(count).is_none_or(|l| *l == 0) {
                    return None;
                }
                count += 1;
            }
            _ => return None,
        }
    }
    if count != 2 || lens[2] == 0 {
        return None;
    }
    if fields[0] > 999 {
        return Some(date_from_fields(fields, DateOrder::Ymd, 4).map(DateCell::Fixed));
    }
    if fields[1] > 999 {
        return Some(Some(DateCell::Fields([fields[0], fields[2], fields[1]], 4)));
    }
    if lens[0] == 4 {
        return Some(date_from_fields(fields, DateOrder::Ymd, 4).map(DateCell::Fixed));
    }
    Some(Some(DateCell::Fields(fields, lens[2])))
}

/// Month number from a month name or abbreviation in the languages banks export in.
fn month_from_name(word: &str) -> Option<u32> {
    const PREFIXES: &[(&str, u32)] = &[
        ("juin", 6),
        ("juil", 7),
        ("jan", 1),
        ("ene", 1),
        ("gen", 1),
        ("feb", 2),
        ("fév", 2),
        ("fev", 2),
        ("mar", 3),
        ("mär", 3),
        ("mrz", 3),
        ("mrt", 3),
        ("apr", 4),
        ("avr", 4),
        ("abr", 4),
        ("may", 5),
        ("mai", 5),
        ("mag", 5),
        ("mei", 5),
        ("jun", 6),
        ("giu", 6),
        ("jul", 7),
        ("lug", 7),
        ("aug", 8),
        ("aoû", 8),
        ("aou", 8),
        ("ago", 8),
        ("sep", 9),
        ("set", 9),
        ("oct", 10),
        ("okt", 10),
        ("ott", 10),
        ("nov", 11),
        ("dec", 12),
        ("déc", 12),
        ("dez", 12),
        ("dic", 12),
    ];
    let lower = word.trim_end_matches('.').to_lowercase();
    if lower.chars().count() < 3 || lower.chars().count() > 10 {
        return None;
    }
    PREFIXES.iter().find(|(p, _)| lower.starts_with(p)).map(|(_, m)| *m)
}

const WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn named_month_date(s: &str) -> Option<DateCell> {
    let mut month = None;
    let mut numbers: [(u32, usize); 2] = [(0, 0); 2];
    let mut count = 0;
    for token in s.split([' ', '-', '/', '.', ',']).filter(|t| !t.is_empty()) {
        if token.chars().all(char::is_alphabetic) {
            let lower = token.to_lowercase();
            if month.is_none() {
                if let Some(m) = month_from_name(token) {
                    month = Some(m);
                    continue;
                }
            }
            if WEEKDAYS.iter().any(|w| lower.starts_with(w)) {
                continue;
            }
            return None;
        }
        let digits = token.trim_end_matches(['s', 't', 'h', 'n', 'd', 'r']);
        if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || count == 2 {
            return None;
        }
        numbers[count] = (digits.parse().ok()?, digits.len());
        count += 1;
    }
    let month = month?;
    if count != 2 {
        return None;
    }
    let ((day, _), (year, digits)) =
        if numbers[0].1 == 4 { (numbers[1], numbers[0]) } else { (numbers[0], numbers[1]) };
    let year = crate::parse::text::expand_year(year, digits);
    NaiveDate::from_ymd_opt(year as i32, month, day).map(DateCell::Fixed)
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    Date,
    ValueDate,
    Amount,
    Debit,
    Credit,
    Indicator,
    Description,
    Memo,
    Payee,
    CounterpartyAccount,
    Reference,
    Id,
    CheckNumber,
    BankCode,
    Balance,
    Currency,
    Account,
    OpeningBalance,
    ClosingBalance,
    /// The gross amount of a line that also has a fee column.
    Gross,
    /// A fee charged on the line, booked as a line of its own.
    Fee,
    /// An amount in another currency (kept out of the statement).
    ForeignAmount,
    /// The currency of [`Role::ForeignAmount`].
    ForeignCurrency,
}

impl Role {
    /// Whether the cells must read as dates.
    pub(crate) fn is_date(self) -> bool {
        matches!(self, Role::Date | Role::ValueDate)
    }

    /// Whether the cells must read as amounts.
    pub(crate) fn is_amount(self) -> bool {
        matches!(
            self,
            Role::Amount
                | Role::Debit
                | Role::Credit
                | Role::Balance
                | Role::OpeningBalance
                | Role::ClosingBalance
                | Role::Gross
                | Role::Fee
        )
    }
}

/// Normalises a header cell for lookup: lower case, `_` as blank, single blanks, no BOM, no
/// trailing colon; a currency code in it (`Betrag (EUR)`, `Betrag in EUR`) is taken out and
/// returned beside the name.
pub(crate) fn normalise_header(raw: &str) -> (String, Option<Currency>) {
    let cleaned = raw.trim_start_matches('\u{feff}').replace(['_', '(', ')', '[', ']'], " ");
    let mut currency = None;
    let mut words: Vec<&str> = Vec::new();
    for word in cleaned.split_whitespace() {
        if word.len() == 3 && word.bytes().all(|b| b.is_ascii_uppercase()) {
            if let Ok(c) = Currency::new(word) {
                currency = Some(c);
                if words.last().is_some_and(|w| w.eq_ignore_ascii_case("in")) {
                    words.pop();
                }
                continue;
            }
        }
        words.push(word);
    }
    let mut name = words.join(" ").to_lowercase();
    while name.ends_with(':') {
        name.pop();
    }
    // `reference1`, `item2`: numbered copies of the same role.
    let trimmed_len = name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if trimmed_len > 2 {
        name.truncate(trimmed_len);
    }
    (name.trim().to_string(), currency)
}

/// The roles a header name can stand for, with a priority (higher wins when several columns
/// claim a role). Several roles are listed when the word differs between languages (`valuta`
/// is the value date in German and the currency in Dutch or Italian); the cells decide.
pub(crate) fn roles_for(name: &str) -> &'static [(Role, u8)] {
    use Role::*;
    match name {
        "booking date"
        | "posting date"
        | "post date"
        | "posted date"
        | "date posted"
        | "buchungstag"
        | "buchungsdatum"
        | "date comptable"
        | "fecha contable"
        | "data contabile"
        | "boekdatum"
        | "boekingsdatum"
        | "datum zaúčtování"
        | "data księgowania"
        | "bokföringsdag"
        | "bogføringsdato" => &[(Date, 4)],
        "date"
        | "datum"
        | "fecha"
        | "data"
        | "dato"
        | "transaction date"
        | "trans date"
        | "date opération"
        | "date d'opération"
        | "fecha operación"
        | "fecha de operación"
        | "data operazione"
        | "transactiedatum"
        | "datum transakce"
        | "data operacji" => &[(Date, 3)],
        "valuta" => &[(ValueDate, 3), (Currency, 2)],
        "value date" | "wertstellung" | "valutadatum" | "date de valeur" | "date valeur" | "fecha valor"
        | "data valuta" | "rentedatum" | "valuta datum" => &[(ValueDate, 3)],
        "belegdatum" | "receipt date" | "purchase date" => &[(Date, 1)],
        "initial date" | "final date" => &[],
        "amount" | "betrag" | "montant" | "importe" | "importo" | "bedrag" | "suma" | "kwota" | "belopp" | "beløb"
        | "částka" | "transaction amount" | "umsatz" | "valor" | "montante" => &[(Amount, 3)],
        "net" | "neto" | "netto" | "net amount" => &[(Amount, 2)],
        "gross" | "bruto" | "brutto" | "lordo" => &[(Gross, 3)],
        "fee" | "fees" | "comisión" | "commission" | "gebühr" | "gebühren" | "frais" | "commissione" => &[(Fee, 3)],
        "debit" | "debits" | "debe" | "débit" | "soll" | "withdrawal" | "withdrawals" | "paid out" | "money out"
        | "outflow" | "cargo" | "cargos" | "addebiti" | "uscite" | "af" | "debet" | "debit amount" | "amount debit"
        | "withdrawal amount" | "ausgang" | "ausgaben" | "lastschrift" => &[(Debit, 3)],
        "credit" | "credits" | "haber" | "crédit" | "haben" | "deposit" | "deposits" | "paid in" | "money in"
        | "inflow" | "abono" | "abonos" | "accrediti" | "entrate" | "bij" | "credit amount" | "amount credit"
        | "deposit amount" | "eingang" | "einnahmen" | "gutschrift" => &[(Credit, 3)],
        "d/c" | "dc" | "c/d" | "cr/dr" | "dr/cr" | "debit/credit" | "credit/debit" | "d/k" | "s/h" | "soll/haben"
        | "af/bij" | "af bij" | "cd" | "debit credit" | "sign" | "signe" => &[(Indicator, 3)],
        "description"
        | "descripción"
        | "descrizione"
        | "beschreibung"
        | "verwendungszweck"
        | "umsatzbeschreibung"
        | "narrative"
        | "narration"
        | "particulars"
        | "label"
        | "libellé"
        | "libelle"
        | "concepto"
        | "causale"
        | "omschrijving"
        | "mededelingen"
        | "remarque"
        | "paaiškinimai"
        | "opis"
        | "transaction details"
        | "text"
        | "popis"
        | "poznámka"
        | "beskrivning"
        | "tekst"
        | "item" => &[(Description, 3)],
        "details" | "detail" => &[(Memo, 2)],
        "memo" | "note" | "notes" | "remarks" | "comment" | "item title" | "additional information" => &[(Memo, 3)],
        "payee"
        | "name"
        | "counterparty"
        | "counterparty name"
        | "beneficiary"
        | "auftraggeber / empfänger"
        | "auftraggeber/empfänger"
        | "empfänger"
        | "auftraggeber"
        | "zahlungsempfänger"
        | "begünstigter"
        | "begünstigter/zahlungspflichtiger"
        | "partner name"
        | "partner"
        | "merchant"
        | "nombre"
        | "beneficiario"
        | "ordenante"
        | "tiers"
        | "bénéficiaire"
        | "nome"
        | "naam"
        | "tegenpartij"
        | "gavėjas"
        | "nazwa kontrahenta"
        | "název protiúčtu"
        | "payer"
        | "payer/payee"
        | "payee/payer"
        | "merchant name"
        | "description payee" => &[(Payee, 3)],
        "bank account"
        | "counterparty account"
        | "counter account"
        | "iban"
        | "tegenrekening"
        | "gegenkonto"
        | "kontonummer/iban"
        | "iban/kontonummer"
        | "protiúčet"
        | "cuenta bancaria"
        | "beneficiary account"
        | "payee account"
        | "counterparty iban"
        | "tegenrekening iban"
        | "iban zahlungsbeteiligter" => &[(CounterpartyAccount, 3)],
        "reference"
        | "ref"
        | "end to end reference"
        | "end-to-end reference"
        | "end-to-end-referenz"
        | "kundenreferenz"
        | "referenz"
        | "referencia"
        | "riferimento"
        | "kenmerk"
        | "variabilní symbol"
        | "invoice id"
        | "invoice number"
        | "remittance information"
        | "įmokos kodas"
        | "mandatsreferenz"
        | "référence" => &[(Reference, 3)],
        "id"
        | "transaction id"
        | "fitid"
        | "trans id"
        | "transactionid"
        | "transaction number"
        | "operation number"
        | "id. de transacción"
        | "transaktions-id"
        | "įrašo nr."
        | "numéro d'opération"
        | "bank reference"
        | "reference number"
        | "transaction reference" => &[(Id, 3)],
        "check number" | "checknumber" | "check or slip #" | "check #" | "check no" | "check no." | "cheque number"
        | "cheque no" | "cheque no." | "chq no" | "scheck-nr" | "check" => &[(CheckNumber, 3)],
        "type"
        | "transaction type"
        | "trans type"
        | "tipo"
        | "typ"
        | "buchungsart"
        | "buchungstext"
        | "operation type"
        | "označení operace"
        | "kodas"
        | "transaction code"
        | "trntype"
        | "code"
        | "type de transaction"
        | "umsatzart" => &[(BankCode, 3)],
        "balance" | "running balance" | "runningbalance" | "current balance" | "saldo" | "kontostand" | "solde"
        | "balance after" | "zůstatek" | "likutis" | "saldo na koniec" | "saldo nach buchung" => &[(Balance, 3)],
        "currency" | "ccy" | "währung" | "devise" | "divisa" | "moneda" | "měna" | "waluta" | "valiuta"
        | "currency code" | "valute" => &[(Currency, 3)],
        "account" | "account number" | "account no" | "account no." | "account id" | "auftragskonto" | "konto"
        | "sąskaitos nr." | "rekening" | "rekeningnummer" | "numéro de compte" | "compte" | "cuenta"
        | "numero conto" | "card number" | "kartennummer" | "eigen rekening" => &[(Account, 3)],
        "initial balance" | "opening balance" | "anfangssaldo" | "saldo inicial" => &[(OpeningBalance, 3)],
        "final balance" | "closing balance" | "endsaldo" | "saldo final" => &[(ClosingBalance, 3)],
        "original amount"
        | "amount currency"
        | "foreign amount"
        | "ursprünglicher betrag"
        | "originalbetrag"
        | "amount in original currency" => &[(ForeignAmount, 3)],
        "original currency" | "foreign currency" | "originalwährung" => &[(ForeignCurrency, 3)],
        _ => {
            if name.contains("date") || name.contains("datum") || name.contains("fecha") {
                &[(Date, 0)]
            } else if name.contains("amount") || name.contains("betrag") || name.contains("montant") {
                &[(Amount, 0)]
            } else {
                &[]
            }
        }
    }
}

/// What a labelled row or metadata line states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    Opening,
    Closing,
    /// A turnover or total row: a sum of lines, not a line.
    Total,
    Account,
    Currency,
    StartDate,
    EndDate,
}

/// The meaning of a row label or metadata key (`Balance at end of period`, `Saldo:`,
/// `Likutis pradžiai`, `Von:`).
pub(crate) fn label_of(raw: &str, metadata: bool) -> Option<Label> {
    // Cells come trimmed from the row reader: the Unicode-aware trim runs only when an end is not
    // plainly visible ASCII.
    let t = match (raw.as_bytes().first(), raw.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => raw,
        _ => raw.trim(),
    };
    if t.is_empty() || t.len() > 48 || !t.chars().next().is_some_and(char::is_alphabetic) {
        return None;
    }
    // Row labels are 6 to 30 bytes long: most descriptions are rejected without lower-casing.
    if !metadata && !(6..=32).contains(&t.len()) {
        return None;
    }
    let key = if t.ends_with([':', ' ']) { t.trim_end_matches([':', ' ']) } else { t };
    // Labels are words and blanks: a cell with a digit or ASCII punctuation (ids, amounts,
    // references, most descriptions) is none, and is not lower-cased and looked up.
    if key.bytes().any(|b| b.is_ascii_digit() || b.is_ascii_punctuation()) {
        return None;
    }
    // Every row's first cell and description are looked up here: ASCII text is lower-cased on
    // the stack rather than in a new string.
    let mut buf = [0u8; 48];
    let owned;
    let lower: &str = match buf.get_mut(..key.len()) {
        Some(out) if key.is_ascii() => {
            out.copy_from_slice(key.as_bytes());
            out.make_ascii_lowercase();
            match std::str::from_utf8(out) {
                Ok(l) => l,
                Err(_) => return None,
            }
        }
        _ => {
            owned = key.to_lowercase();
            &owned
        }
    };
    let row_label = match lower {
        "opening balance"
        | "balance at start of period"
        | "start balance"
        | "starting balance"
        | "beginning balance"
        | "previous balance"
        | "anfangssaldo"
        | "alter kontostand"
        | "saldo inicial"
        | "solde initial"
        | "solde de début"
        | "saldo iniziale"
        | "beginsaldo"
        | "likutis pradžiai"
        | "počáteční zůstatek"
        | "saldo początkowe" => Some(Label::Opening),
        "closing balance"
        | "balance at end of period"
        | "end balance"
        | "ending balance"
        | "new balance"
        | "endsaldo"
        | "schlusssaldo"
        | "neuer kontostand"
        | "saldo final"
        | "solde final"
        | "saldo finale"
        | "eindsaldo"
        | "likutis pabaigai"
        | "konečný zůstatek"
        | "saldo końcowe" => Some(Label::Closing),
        "apyvarta" | "turnover" | "umsatzsumme" | "total debits" | "total credits" | "obroty" => Some(Label::Total),
        _ => None,
    };
    if row_label.is_some() || !metadata {
        return row_label;
    }
    match lower {
        "saldo" | "balance" | "kontostand" | "current balance" | "solde" => Some(Label::Closing),
        "account" | "account number" | "account no" | "konto" | "kontonummer" | "iban" | "kreditkarte" | "card"
        | "card number" | "cuenta" | "compte" | "numéro de compte" | "rekeningnummer" | "účet" => {
            Some(Label::Account)
        }
        "currency" | "währung" | "devise" | "moneda" | "divisa" | "měna" | "valuta" => Some(Label::Currency),
        "von" | "from" | "start date" | "download start date" | "period start" | "date from" | "du" | "desde" => {
            Some(Label::StartDate)
        }
        "bis" | "to" | "end date" | "download end date" | "period end" | "date to" | "au" | "hasta" => {
            Some(Label::EndDate)
        }
        _ => None,
    }
}

/// Debit and credit words of a D/C indicator column, upper case.
pub(crate) const DEBIT_WORDS: &[&str] =
    &["D", "DR", "DEBIT", "DBIT", "S", "SOLL", "AF", "DEB", "-", "DEBET", "BELASTUNG"];
/// See [`DEBIT_WORDS`].
pub(crate) const CREDIT_WORDS: &[&str] =
    &["C", "CR", "CREDIT", "CRDT", "K", "H", "HABEN", "BIJ", "CRED", "+", "KREDIT", "GUTSCHRIFT"];

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(s: &str) -> Option<NaiveDate> {
        match read_date(s) {
            Some(DateCell::Fixed(d)) => Some(d),
            _ => None,
        }
    }

    fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn year_first_dates_need_no_vote() {
        assert_eq!(fixed("2024-03-05"), ymd(2024, 3, 5));
        assert_eq!(fixed("2012/3/22"), ymd(2012, 3, 22));
        assert_eq!(fixed("2012:03:01"), ymd(2012, 3, 1));
        assert_eq!(fixed("20241231"), ymd(2024, 12, 31));
        assert_eq!(fixed("2024-01-05T10:00:00Z"), ymd(2024, 1, 5));
    }

    #[test]
    fn day_and_month_wait_for_the_file_to_decide() {
        assert_eq!(read_date("01.10.2013 00:00:00"), Some(DateCell::Fields([1, 10, 2013], 4)));
        assert_eq!(read_date("3/18/2016"), Some(DateCell::Fields([3, 18, 2016], 4)));
        assert_eq!(read_date("01/04/20"), Some(DateCell::Fields([1, 4, 20], 2)));
        assert_eq!(read_date("10/2009/09"), Some(DateCell::Fields([10, 9, 2009], 4)));
    }

    #[test]
    fn named_months_are_read_in_several_languages() {
        assert_eq!(fixed("12 Mar 2024"), ymd(2024, 3, 12));
        assert_eq!(fixed("12-MAR-24"), ymd(2024, 3, 12));
        assert_eq!(fixed("March 12, 2024"), ymd(2024, 3, 12));
        assert_eq!(fixed("3. Dez. 2023"), ymd(2023, 12, 3));
        assert_eq!(fixed("1 juil. 2022"), ymd(2022, 7, 1));
        assert_eq!(fixed("Tue, 5 Nov 2024"), ymd(2024, 11, 5));
    }

    proptest::proptest! {
        #[test]
        fn the_quick_date_reader_agrees_with_the_general_one(s in "[0-9]{0,5}([-/.'][0-9]{0,5}){0,3}") {
            if let Some(quick) = numeric_date(s.as_bytes()) {
                proptest::prop_assert_eq!(quick, read_any_date(&s), "{:?}", s);
            }
        }
    }

    #[test]
    fn the_quick_date_reader_takes_the_common_shapes() {
        for s in ["2024-03-05", "05.03.2024", "3/5/24", "20240305", "0024-01-02", "10/2009/09", "1'2'99"] {
            assert_eq!(numeric_date(s.as_bytes()), Some(read_any_date(s)), "{s}");
        }
        assert_eq!(numeric_date(b"2024-02-30"), Some(None));
        assert_eq!(numeric_date(b"12 Mar 2024"), None);
    }

    #[test]
    fn text_is_not_a_date() {
        assert_eq!(read_date("Total"), None);
        assert_eq!(read_date(""), None);
        assert_eq!(read_date("12.50"), None);
        assert_eq!(read_date("Balance at start of period"), None);
    }

    #[test]
    fn header_names_lose_their_currency_and_numbering() {
        assert_eq!(normalise_header("Betrag (EUR)"), ("betrag".into(), Some(Currency::EUR)));
        assert_eq!(normalise_header("Betrag in EUR"), ("betrag".into(), Some(Currency::EUR)));
        assert_eq!(normalise_header("reference1").0, "reference");
        assert_eq!(normalise_header("\u{feff}Posting_Date:").0, "posting date");
    }

    #[test]
    fn balance_rows_are_recognised_by_their_label() {
        assert_eq!(label_of("Balance at start of period", false), Some(Label::Opening));
        assert_eq!(label_of("Likutis pabaigai", false), Some(Label::Closing));
        assert_eq!(label_of("Saldo:", true), Some(Label::Closing));
        assert_eq!(label_of("Saldo", false), None);
        assert_eq!(label_of("Coffee shop", false), None);
    }
}
