//! The simulated business: its bank, its customers, suppliers and vendors, how banks print their
//! names, and each counterparty's habits (payment lag, channel, fees, how it writes references).
//!
//! Everything here is a pure function of the business seed and the profile, so that every period
//! generated for the same seed shows the same counterparties behaving the same way: what a matcher
//! learns from one period can be checked against the next.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::profile::Profile;
use super::rng::{mix, Rng};
use crate::domain::Currency;

/// How the business's bank writes statement lines (and which currency the account is in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BankStyle {
    /// A US bank: ACH and wires, checks, USD, short payee fields.
    Us,
    /// A euro-area bank: SEPA transfers and direct debits, EUR, 35-character names.
    Sepa,
    /// A UK bank: Faster Payments, BACS, cheques, GBP, 18-character names.
    Uk,
}

impl BankStyle {
    /// How many characters of a counterparty name the bank keeps.
    pub fn payee_width(&self) -> usize {
        match self {
            BankStyle::Us => 22,
            BankStyle::Sepa => 35,
            BankStyle::Uk => 18,
        }
    }

    /// The account's currency.
    pub fn currency(&self) -> Currency {
        match self {
            BankStyle::Us => Currency::USD,
            BankStyle::Sepa => Currency::EUR,
            BankStyle::Uk => Currency::new("GBP").unwrap_or(Currency::EUR),
        }
    }
}

/// How a counterparty usually moves money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Bank transfer (ACH, SEPA credit transfer, Faster Payment).
    Transfer,
    /// International wire, often reduced by a fee on the way.
    Wire,
    /// Card payment through a processor that pays out in batches.
    Card,
    /// Paper check.
    Check,
    /// Direct debit pulled by the counterparty.
    DirectDebit,
}

/// How a counterparty writes our document number in its remittance information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceStyle {
    /// `INV-00123`
    Exact,
    /// `INV00123`
    NoDash,
    /// `123`
    DigitsOnly,
    /// `inv 00123`
    LowerSpaced,
    /// `INV-001` (cut by a short remittance field)
    Truncated,
    /// No reference field; the number is somewhere in the free text.
    InText,
    /// Nothing at all.
    Missing,
}

impl ReferenceStyle {
    /// `reference` as this counterparty would write it; `None` when it writes none.
    pub fn apply(&self, reference: &str) -> Option<String> {
        match self {
            ReferenceStyle::Exact | ReferenceStyle::InText => Some(reference.to_string()),
            ReferenceStyle::NoDash => Some(reference.chars().filter(|c| *c != '-').collect()),
            ReferenceStyle::DigitsOnly => {
                let digits: String = reference.chars().filter(char::is_ascii_digit).collect();
                let trimmed = digits.trim_start_matches('0');
                Some(if trimmed.is_empty() { digits } else { trimmed.to_string() })
            }
            ReferenceStyle::LowerSpaced => Some(reference.to_lowercase().replace('-', " ")),
            ReferenceStyle::Truncated => {
                let len = reference.chars().count();
                Some(reference.chars().take(len.saturating_sub(2).max(1)).collect())
            }
            ReferenceStyle::Missing => None,
        }
    }

    /// Whether the reference goes in a field of its own (as opposed to the free text or nowhere).
    pub fn in_field(&self) -> bool {
        !matches!(self, ReferenceStyle::InText | ReferenceStyle::Missing)
    }
}

/// A customer, supplier or vendor, with its habits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterparty {
    /// The name as the books write it.
    pub name: String,
    /// How banks print it, usual form first (upper-cased, transliterated, truncated, abbreviated,
    /// or a parent company's or payer's name).
    pub bank_names: Vec<String>,
    /// Its bank account (IBAN or account number).
    pub account: String,
    /// How it usually pays or is paid.
    pub channel: Channel,
    /// Its usual payment lag in business days after the record's date.
    pub lag_days: u32,
    /// A fee its payments lose on the way (wire charges), when it has that habit.
    pub fee: Option<Decimal>,
    /// How it writes our references.
    pub reference_style: ReferenceStyle,
    /// Its typical amount in minor units (cents).
    pub typical_cents: i64,
    /// Whether it always pays the same amount (subscriptions, rent, retainers).
    pub recurring: bool,
    /// Prefix of its own document numbers (suppliers' invoice numbers, vendors' contract numbers).
    pub doc_prefix: String,
}

/// The simulated business: its bank and its counterparties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Business {
    /// The seed it was generated from.
    pub seed: u64,
    /// How its bank writes statements.
    pub style: BankStyle,
    /// Its own account number, as statements identify it.
    pub account: String,
    /// Its savings account, the other side of its own transfers.
    pub savings_account: String,
    /// Customers (they pay invoices).
    pub customers: Vec<Counterparty>,
    /// Suppliers (the business pays their bills by transfer or check).
    pub suppliers: Vec<Counterparty>,
    /// Card and direct-debit vendors (expenses).
    pub vendors: Vec<Counterparty>,
    /// The card processor or lockbox whose payouts bundle several customers' payments.
    pub processor: String,
}

impl Business {
    /// The business for `seed`: the same seed and profile always give the same business, and each
    /// counterparty depends only on the seed and its position, so a larger profile adds
    /// counterparties without changing the existing ones.
    pub fn new(profile: &Profile, seed: u64) -> Self {
        let mut rng = Rng::derived(seed, 0xB05);
        let style = match rng.below(3) {
            0 => BankStyle::Us,
            1 => BankStyle::Sepa,
            _ => BankStyle::Uk,
        };
        let account = account_number(&mut rng, style);
        let savings_account = account_number(&mut rng, style);
        let processor = rng.pick(PROCESSORS).copied().unwrap_or("STRIPE").to_string();
        let make = |role: Role, n: usize| -> Vec<Counterparty> {
            (0..n).map(|i| counterparty(profile, style, mix(seed, role as u64), i as u64, role)).collect()
        };
        Business {
            seed,
            style,
            account,
            savings_account,
            customers: make(Role::Customer, profile.customers()),
            suppliers: make(Role::Supplier, profile.suppliers()),
            vendors: make(Role::Vendor, profile.vendors()),
            processor,
        }
    }

    /// The account's currency.
    pub fn currency(&self) -> Currency {
        self.style.currency()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Customer = 1,
    Supplier = 2,
    Vendor = 3,
}

const PROCESSORS: &[&str] = &["STRIPE", "SQUARE", "ADYEN", "PAYPAL", "LOCKBOX"];

const BRANDS: &[&str] = &[
    "Acme",
    "Northwind",
    "Summit",
    "Pioneer",
    "Bluewater",
    "Redwood",
    "Silverline",
    "Granite",
    "Evergreen",
    "Harbor",
    "Lakeside",
    "Meridian",
    "Orion",
    "Atlas",
    "Beacon",
    "Cobalt",
    "Crescent",
    "Delta",
    "Falcon",
    "Frontier",
    "Horizon",
    "Ironwood",
    "Juniper",
    "Keystone",
    "Liberty",
    "Maple",
    "Nova",
    "Oakridge",
    "Paragon",
    "Quantum",
    "Riverside",
    "Sterling",
    "Titan",
    "Unity",
    "Vertex",
    "Westfield",
    "Zenith",
    "Alpine",
    "Brightway",
    "Cascade",
    "Müller",
    "Schröder",
    "Brückner",
    "Société Générale de Café",
    "Østergaard",
    "Çelik",
    "Łukasiewicz",
    "Peñalver",
    "García",
    "Nørgaard",
];

const TRADES: &[&str] = &[
    "Industrial Supplies",
    "Logistics",
    "Foods",
    "Dental Care",
    "Engineering",
    "Consulting",
    "Software",
    "Construction",
    "Packaging",
    "Medical Devices",
    "Print & Media",
    "Facility Services",
    "Electrical",
    "Automotive Parts",
    "Hospitality",
    "Textiles",
    "Architects",
    "Marketing",
    "Freight",
    "Office Equipment",
];

const PLACES: &[&str] = &[
    "", "", "", "North", "Bremen", "Leeds", "Austin", "Lyon", "Porto", "Gdańsk", "Malmö", "Zürich", "Denver", "Cork",
    "Graz", "Utrecht",
];

const SUFFIXES_US: &[&str] = &["Inc.", "LLC", "Corp.", "Co.", "Group Inc."];
const SUFFIXES_EU: &[&str] = &["GmbH", "GmbH & Co. KG", "S.A.", "B.V.", "S.à r.l.", "AG", "SAS"];
const SUFFIXES_UK: &[&str] = &["Ltd", "Limited", "PLC", "& Sons Ltd", "LLP"];

const FIRST_NAMES: &[&str] =
    &["John", "Maria", "José", "Anna", "Jürgen", "Chloé", "Wei", "Priya", "Ole", "Siobhán", "Tomás", "Sarah"];
const LAST_NAMES: &[&str] =
    &["Smith", "García", "Müller", "O'Brien", "Nguyen", "Kowalski", "Dubois", "Rossi", "Andersson", "Patel"];

const VENDORS: &[(&str, bool)] = &[
    ("Amazon Web Services EMEA SARL", true),
    ("Google Cloud", true),
    ("Microsoft 365", true),
    ("City Power & Light", true),
    ("Metro Water Utility", true),
    ("Telekom Business", true),
    ("Shell Fuel", false),
    ("Office Depot", false),
    ("Uber Business", false),
    ("Lufthansa", false),
    ("Hilton Hotels", false),
    ("Staples", false),
    ("Adobe Systems", true),
    ("Slack Technologies", true),
    ("DHL Express", false),
    ("Landlord Property Management", true),
];

fn counterparty(profile: &Profile, style: BankStyle, role_seed: u64, index: u64, role: Role) -> Counterparty {
    let mut rng = Rng::derived(role_seed, index);
    // The flag is "pays by direct debit" for a vendor and "is a person" for a customer.
    let (name, flag) = match role {
        Role::Vendor => {
            let base = VENDORS.get(index as usize % VENDORS.len()).copied().unwrap_or(("Vendor", false));
            let name = if (index as usize) < VENDORS.len() {
                base.0.to_string()
            } else {
                format!("{} {}", base.0, rng.pick(PLACES).copied().unwrap_or("")).trim().to_string()
            };
            (name, base.1)
        }
        _ if role == Role::Customer && rng.chance(0.15) => (person_name(&mut rng), true),
        _ => (company_name(&mut rng, style), false),
    };
    let person = role == Role::Customer && flag;
    let direct_debit = role == Role::Vendor && flag;
    let bank_names = bank_names(&mut rng, &name, style, person);
    let account = account_number(&mut rng, style);
    let channel = match role {
        Role::Vendor => {
            if direct_debit {
                Channel::DirectDebit
            } else {
                Channel::Card
            }
        }
        Role::Supplier => {
            if style != BankStyle::Sepa && rng.chance(0.3) {
                Channel::Check
            } else if rng.chance(0.15) {
                Channel::Wire
            } else {
                Channel::Transfer
            }
        }
        Role::Customer => match rng.weighted(&[0.6, 0.15, 0.15, if style == BankStyle::Sepa { 0.02 } else { 0.1 }]) {
            0 => Channel::Transfer,
            1 => Channel::Wire,
            2 => Channel::Card,
            _ => Channel::Check,
        },
    };
    let lag_days = match role {
        Role::Vendor => rng.range(0, 2) as u32,
        _ => rng.range(0, i64::from(profile.lag_limit() * 2 / 3)) as u32,
    };
    let fee = (channel == Channel::Wire).then(|| {
        let fees = [750_i64, 1000, 1500, 2000, 2500, 3500];
        Decimal::new(rng.pick(&fees).copied().unwrap_or(1500), 2)
    });
    let reference_style = if role == Role::Vendor {
        ReferenceStyle::Exact
    } else {
        let missing = profile.missing_reference.clamp(0.0, 1.0);
        let mangled = profile.mangled_reference.clamp(0.0, 1.0);
        let roll = rng.unit();
        if roll < missing {
            if rng.chance(0.4) {
                ReferenceStyle::InText
            } else {
                ReferenceStyle::Missing
            }
        } else if roll < missing + mangled {
            match rng.below(4) {
                0 => ReferenceStyle::NoDash,
                1 => ReferenceStyle::DigitsOnly,
                2 => ReferenceStyle::LowerSpaced,
                _ => ReferenceStyle::Truncated,
            }
        } else {
            ReferenceStyle::Exact
        }
    };
    // Typical amounts spread over three orders of magnitude, drawn in integer cents.
    let typical_cents = {
        let exponent = match role {
            Role::Vendor => rng.range(3, 5),
            _ => rng.range(3, 6),
        };
        rng.range(100, 999) * 10_i64.pow(exponent as u32 - 2)
    };
    // Rent is the one expense that never changes; utilities and cloud bills vary month to month.
    let recurring = name.starts_with("Landlord") || (role == Role::Customer && rng.chance(0.1));
    let doc_prefix = match rng.below(5) {
        0 => "A-".to_string(),
        1 => "RE".to_string(),
        2 => format!("SI/{}/", 2024),
        3 => "INV".to_string(),
        _ => format!("{}-", initials(&name)),
    };
    Counterparty {
        name,
        bank_names,
        account,
        channel,
        lag_days,
        fee,
        reference_style,
        typical_cents,
        recurring,
        doc_prefix,
    }
}

fn company_name(rng: &mut Rng, style: BankStyle) -> String {
    let brand = rng.pick(BRANDS).copied().unwrap_or("Acme");
    let trade = rng.pick(TRADES).copied().unwrap_or("Services");
    let place = rng.pick(PLACES).copied().unwrap_or("");
    let suffixes = match style {
        BankStyle::Us => SUFFIXES_US,
        BankStyle::Sepa => SUFFIXES_EU,
        BankStyle::Uk => SUFFIXES_UK,
    };
    let suffix = rng.pick(suffixes).copied().unwrap_or("");
    [brand, trade, place, suffix].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ")
}

fn person_name(rng: &mut Rng) -> String {
    let first = rng.pick(FIRST_NAMES).copied().unwrap_or("Anna");
    let last = rng.pick(LAST_NAMES).copied().unwrap_or("Smith");
    if rng.chance(0.3) {
        format!("{last}, {first}")
    } else {
        format!("{first} {last}")
    }
}

fn initials(name: &str) -> String {
    let out: String = bank_print(name, 64)
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .filter(char::is_ascii_alphabetic)
        .take(3)
        .collect();
    if out.is_empty() {
        "DOC".into()
    } else {
        out
    }
}

fn account_number(rng: &mut Rng, style: BankStyle) -> String {
    let digits =
        |rng: &mut Rng, n: usize| -> String { (0..n).map(|_| char::from(b'0' + rng.below(10) as u8)).collect() };
    match style {
        BankStyle::Us => digits(rng, 10),
        BankStyle::Sepa => {
            let country = rng.pick(&["DE", "FR", "NL", "ES", "IT", "AT"]).copied().unwrap_or("DE");
            format!("{country}{}", digits(rng, 20))
        }
        BankStyle::Uk => format!("GB{}NWBK{}", digits(rng, 2), digits(rng, 14)),
    }
}

/// A name as a bank prints it: transliterated to ASCII, upper-cased, punctuation dropped, runs of
/// blanks squashed, and cut to `width` characters.
pub fn bank_print(name: &str, width: usize) -> String {
    let mut ascii = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            'ä' | 'Ä' => ascii.push_str("AE"),
            'ö' | 'Ö' | 'ø' | 'Ø' => ascii.push_str("OE"),
            'ü' | 'Ü' => ascii.push_str("UE"),
            'ß' => ascii.push_str("SS"),
            'à' | 'á' | 'â' | 'å' | 'Å' => ascii.push('A'),
            'é' | 'è' | 'ê' | 'É' => ascii.push('E'),
            'ç' | 'Ç' => ascii.push('C'),
            'ñ' => ascii.push('N'),
            'í' => ascii.push('I'),
            'ó' => ascii.push('O'),
            'ł' | 'Ł' => ascii.push('L'),
            'ń' => ascii.push('N'),
            '&' => ascii.push('&'),
            c if c.is_ascii_alphanumeric() => ascii.push(c.to_ascii_uppercase()),
            '\'' | '.' | ',' => {}
            _ => ascii.push(' '),
        }
    }
    let squashed = crate::parse::text::squash_ws(&ascii);
    squashed.chars().take(width).collect::<String>().trim_end().to_string()
}

const LEGAL_FORMS: &[&str] = &[
    "INC", "LLC", "CORP", "CO", "GROUP", "GMBH", "KG", "SA", "BV", "SARL", "S", "R", "L", "AG", "SAS", "LTD",
    "LIMITED", "PLC", "LLP", "&", "SONS",
];

fn abbreviate(word: &str) -> String {
    match word {
        "INDUSTRIAL" => "IND".into(),
        "SUPPLIES" => "SUPPL".into(),
        "LOGISTICS" => "LOG".into(),
        "ENGINEERING" => "ENG".into(),
        "CONSULTING" => "CONS".into(),
        "CONSTRUCTION" => "CONSTR".into(),
        "SERVICES" => "SVCS".into(),
        "INTERNATIONAL" => "INTL".into(),
        "MANAGEMENT" => "MGMT".into(),
        "TECHNOLOGIES" => "TECH".into(),
        w if w.chars().count() > 8 => w.chars().take(6).collect(),
        w => w.to_string(),
    }
}

fn bank_names(rng: &mut Rng, name: &str, style: BankStyle, person: bool) -> Vec<String> {
    let width = style.payee_width();
    let full = bank_print(name, 80);
    let words: Vec<&str> = full.split_whitespace().collect();
    let core: Vec<&str> = {
        let mut w = words.clone();
        while w.len() > 1 && w.last().is_some_and(|l| LEGAL_FORMS.contains(l)) {
            w.pop();
        }
        w
    };
    let cut = |s: String| -> String { s.chars().take(width).collect::<String>().trim_end().to_string() };
    let mut variants = vec![
        cut(full.clone()),
        cut(core.join(" ")),
        cut(core.iter().map(|w| abbreviate(w)).collect::<Vec<_>>().join(" ")),
    ];
    if person {
        // Banks print people as "SMITH J" or "J SMITH", whichever order the books use.
        let first_initial: String = words.first().and_then(|w| w.chars().next()).map(String::from).unwrap_or_default();
        let last_initial: String = words.last().and_then(|w| w.chars().next()).map(String::from).unwrap_or_default();
        variants.push(cut(format!("{} {first_initial}", words.last().copied().unwrap_or(""))));
        variants.push(cut(format!("{last_initial} {}", words.first().copied().unwrap_or(""))));
    } else {
        // A parent company or trading name pays on the customer's behalf.
        let first = core.first().copied().unwrap_or("X");
        variants.push(cut(if rng.chance(0.5) { format!("{first} HOLDINGS") } else { format!("{first} GROUP") }));
    }
    // The usual form first, then one or two others in a fixed per-counterparty order.
    let primary = rng.index(3);
    let mut out = vec![variants.swap_remove(primary)];
    while !variants.is_empty() && out.len() < 3 {
        let v = variants.swap_remove(rng.index(variants.len()));
        if !out.contains(&v) && !v.is_empty() {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banks_print_names_upper_cased_transliterated_and_cut() {
        assert_eq!(bank_print("Müller Logistics GmbH & Co. KG", 18), "MUELLER LOGISTICS");
        assert_eq!(bank_print("Société Générale de Café S.à r.l.", 80), "SOCIETE GENERALE DE CAFE SA RL");
        assert_eq!(bank_print("Łukasiewicz", 4), "LUKA");
        assert_eq!(bank_print("", 10), "");
    }

    #[test]
    fn reference_styles_mangle_as_customers_do() {
        let r = "INV-00123";
        assert_eq!(ReferenceStyle::Exact.apply(r).as_deref(), Some("INV-00123"));
        assert_eq!(ReferenceStyle::NoDash.apply(r).as_deref(), Some("INV00123"));
        assert_eq!(ReferenceStyle::DigitsOnly.apply(r).as_deref(), Some("123"));
        assert_eq!(ReferenceStyle::LowerSpaced.apply(r).as_deref(), Some("inv 00123"));
        assert_eq!(ReferenceStyle::Truncated.apply(r).as_deref(), Some("INV-001"));
        assert_eq!(ReferenceStyle::Missing.apply(r), None);
        assert_eq!(ReferenceStyle::DigitsOnly.apply("000").as_deref(), Some("000"));
        assert_eq!(ReferenceStyle::Truncated.apply("é").as_deref(), Some("é"));
    }

    #[test]
    fn the_same_seed_gives_the_same_business_and_another_seed_another() {
        let p = Profile::realistic().with_records(2_000);
        assert_eq!(Business::new(&p, 7), Business::new(&p, 7));
        assert_ne!(Business::new(&p, 7).customers, Business::new(&p, 8).customers);
    }

    #[test]
    fn a_larger_profile_keeps_the_existing_counterparties() {
        let small = Business::new(&Profile::realistic().with_records(200), 3);
        let large = Business::new(&Profile::realistic().with_records(2_000), 3);
        assert!(large.customers.len() > small.customers.len());
        assert_eq!(small.customers[..], large.customers[..small.customers.len()]);
    }

    #[test]
    fn every_counterparty_has_at_least_one_bank_name_within_the_field_width() {
        let b = Business::new(&Profile::hard().with_records(5_000), 11);
        let width = b.style.payee_width();
        for c in b.customers.iter().chain(&b.suppliers).chain(&b.vendors) {
            assert!(!c.bank_names.is_empty(), "{}", c.name);
            assert!(c.bank_names.iter().all(|n| !n.is_empty() && n.chars().count() <= width), "{:?}", c.bank_names);
        }
    }
}
