//! The workload generator: one period of a simulated business's books and bank statement, with the
//! ground truth of which lines belong together.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::business::{BankStyle, Business, Channel, Counterparty, ReferenceStyle};
use super::profile::Profile;
use super::rng::{mix, Rng};
use super::truth::{GroupKind, TruthGroup, Workload};
use crate::domain::{BankTransaction, Currency, Money, Record, RecordKind, TransactionDetail};

/// Periods repeat their calendar after this many, so that any `u32` period keeps dates far from
/// the calendar's end.
const PERIOD_CYCLE: u32 = 2_000;

/// Round amounts (whole currency units) that many unrelated counterparties happen to share.
const ROUND_UNITS: &[i64] = &[50, 100, 150, 200, 250, 300, 400, 500, 750, 1_000, 1_200, 1_500, 2_000, 2_500, 5_000];

/// Generates period `period` of the business `business_seed` shaped by `profile`.
///
/// The same arguments always give the same workload. The business (counterparties, their bank
/// names and habits) depends only on `business_seed` and the profile, so consecutive periods show
/// the same customers paying the same way; the events of each period are drawn from their own
/// stream.
pub fn generate(profile: &Profile, business_seed: u64, period: u32) -> Workload {
    let business = Business::new(profile, business_seed);
    generate_for(profile, &business, period)
}

/// [`generate`] for an already built business (saves rebuilding it for every period).
pub fn generate_for(profile: &Profile, business: &Business, period: u32) -> Workload {
    let days = business_days(profile, period);
    let mut g = Gen::new(profile, business, period, days);
    g.run();
    g.finish()
}

/// The period's business days (Monday to Friday), starting from a Monday.
fn business_days(profile: &Profile, period: u32) -> Vec<NaiveDate> {
    let count = profile.business_days() as usize;
    let weeks = count.div_ceil(5) as u64;
    let base = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    let offset = u64::from(period % PERIOD_CYCLE) * weeks * 7;
    let start = base.checked_add_days(Days::new(offset)).unwrap_or(base);
    let mut out = Vec::with_capacity(count);
    let mut day = start;
    while out.len() < count {
        if is_business_day(day) {
            out.push(day);
        }
        day = day.succ_opt().unwrap_or(day);
    }
    out
}

fn is_business_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// `n` business days after `date` (a weekend date first rolls to Monday, as banks book).
fn add_business_days(date: NaiveDate, n: u32) -> NaiveDate {
    let mut d = date;
    while !is_business_day(d) {
        d = d.succ_opt().unwrap_or(d);
    }
    for _ in 0..n {
        d = d.succ_opt().unwrap_or(d);
        while !is_business_day(d) {
            d = d.succ_opt().unwrap_or(d);
        }
    }
    d
}

fn cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// Which phrase a bank puts in front of a line.
#[derive(Debug, Clone, Copy)]
enum Verb {
    CreditTransfer,
    WireIn,
    DebitTransfer,
    WireOut,
    DirectDebit,
    Card,
    Check,
    Deposit,
    Payout,
    Fee,
    Interest,
    OwnTransferOut,
    OwnTransferIn,
}

fn verb(style: BankStyle, v: Verb) -> (&'static str, &'static str) {
    use BankStyle::*;
    let text = match (style, v) {
        (Us, Verb::CreditTransfer) => "ACH CREDIT",
        (Sepa, Verb::CreditTransfer) => "SEPA CREDIT TRANSFER",
        (Uk, Verb::CreditTransfer) => "FASTER PAYMENT RECEIVED",
        (Us, Verb::WireIn) => "WIRE TRANSFER IN",
        (Sepa, Verb::WireIn) => "SWIFT INCOMING PAYMENT",
        (Uk, Verb::WireIn) => "INTL PAYMENT IN",
        (Us, Verb::DebitTransfer) => "ACH DEBIT",
        (Sepa, Verb::DebitTransfer) => "SEPA UEBERWEISUNG",
        (Uk, Verb::DebitTransfer) => "FASTER PAYMENT",
        (Us, Verb::WireOut) => "WIRE TRANSFER OUT",
        (Sepa, Verb::WireOut) => "SWIFT OUTGOING PAYMENT",
        (Uk, Verb::WireOut) => "INTL PAYMENT OUT",
        (Us, Verb::DirectDebit) => "ACH DEBIT PREAUTH",
        (Sepa, Verb::DirectDebit) => "SEPA LASTSCHRIFT",
        (Uk, Verb::DirectDebit) => "DIRECT DEBIT",
        (Us, Verb::Card) => "POS PURCHASE",
        (Sepa, Verb::Card) => "KARTENZAHLUNG",
        (Uk, Verb::Card) => "CARD PAYMENT TO",
        (Us, Verb::Check) => "CHECK",
        (Sepa, Verb::Check) => "SCHECK",
        (Uk, Verb::Check) => "CHQ",
        (Us, Verb::Deposit) => "DEPOSIT",
        (Sepa, Verb::Deposit) => "SCHECKEINREICHUNG",
        (Uk, Verb::Deposit) => "PAID IN AT BRANCH",
        (Us, Verb::Payout) => "TRANSFER FROM",
        (Sepa, Verb::Payout) => "SAMMELGUTSCHRIFT",
        (Uk, Verb::Payout) => "BACS CREDIT",
        (Us, Verb::Fee) => "SERVICE CHARGE",
        (Sepa, Verb::Fee) => "KONTOFUEHRUNGSGEBUEHR",
        (Uk, Verb::Fee) => "ACCOUNT FEE",
        (Us, Verb::Interest) => "INTEREST PAYMENT",
        (Sepa, Verb::Interest) => "HABENZINSEN",
        (Uk, Verb::Interest) => "INTEREST PAID",
        (Us, Verb::OwnTransferOut) => "ONLINE TRANSFER TO SAV",
        (Sepa, Verb::OwnTransferOut) => "UMBUCHUNG AUF",
        (Uk, Verb::OwnTransferOut) => "TRANSFER TO",
        (Us, Verb::OwnTransferIn) => "ONLINE TRANSFER FROM SAV",
        (Sepa, Verb::OwnTransferIn) => "UMBUCHUNG VON",
        (Uk, Verb::OwnTransferIn) => "TRANSFER FROM",
    };
    let code = match v {
        Verb::CreditTransfer | Verb::WireIn | Verb::Payout => "CREDIT",
        Verb::DebitTransfer | Verb::WireOut => "DEBIT",
        Verb::DirectDebit => "DIRECTDEBIT",
        Verb::Card => "POS",
        Verb::Check => "CHECK",
        Verb::Deposit => "DEP",
        Verb::Fee => "FEE",
        Verb::Interest => "INT",
        Verb::OwnTransferOut | Verb::OwnTransferIn => "XFER",
    };
    (text, code)
}

/// A truth group before bank ids are assigned: bank lines by creation index.
struct PendingGroup {
    bank: Vec<usize>,
    records: Vec<usize>,
    kind: GroupKind,
    difference: Decimal,
}

/// Who a payment line is about.
#[derive(Clone, Copy)]
enum Side {
    Customer(usize),
    Supplier(usize),
    Vendor(usize),
}

struct Gen<'a> {
    profile: &'a Profile,
    business: &'a Business,
    period: u32,
    rng: Rng,
    currency: Currency,
    days: Vec<NaiveDate>,
    start: NaiveDate,
    end: NaiveDate,
    records: Vec<Record>,
    bank: Vec<BankTransaction>,
    groups: Vec<PendingGroup>,
    invoice_no: u64,
    first_invoice: u64,
    bill_no: u64,
    expense_no: u64,
    check_no: u64,
    journal_no: u64,
    payout_no: u64,
}

impl<'a> Gen<'a> {
    fn new(profile: &'a Profile, business: &'a Business, period: u32, days: Vec<NaiveDate>) -> Self {
        let start = days.first().copied().unwrap_or_default();
        let end = days.last().copied().unwrap_or(start);
        // Document numbers continue from one period to the next, as a business's numbering does.
        let base = u64::from(period) * profile.record_target() as u64;
        Gen {
            profile,
            business,
            period,
            rng: Rng::derived(mix(business.seed, 0xE7E), u64::from(period)),
            currency: business.currency(),
            days,
            start,
            end,
            records: Vec::with_capacity(profile.record_target() + 16),
            bank: Vec::with_capacity(profile.record_target() + 16),
            groups: Vec::new(),
            invoice_no: base + 1,
            first_invoice: base + 1,
            bill_no: base + 1,
            expense_no: base + 1,
            check_no: 1_001 + base,
            journal_no: base + 1,
            payout_no: mix(business.seed, u64::from(period)) % 90_000_000 + 10_000_000,
        }
    }

    fn run(&mut self) {
        let target = self.profile.record_target();
        let day_count = self.days.len().max(1);
        let p = self.profile;
        let grouped = p.fee + p.batch + p.split + p.check + p.transfer + p.record_noise;
        let weights = [(1.0 - grouped).max(0.0), p.fee, p.batch, p.split, p.check, p.transfer, p.record_noise];
        for d in 0..day_count {
            let day = self.days.get(d).copied().unwrap_or(self.start);
            let quota = target * (d + 1) / day_count;
            if d > 0 && self.days.get(d - 1).is_some_and(|prev| prev.month() != day.month()) {
                self.monthly_lines(day);
            }
            while self.records.len() < quota {
                match self.rng.weighted(&weights) {
                    0 => self.one_to_one(day),
                    1 => self.fee(day),
                    2 => self.batch(day),
                    3 => self.split(day),
                    4 => self.check(day),
                    5 => self.transfer(day),
                    _ => self.record_noise(day),
                }
                if self.rng.chance(p.bank_noise) {
                    self.bank_noise(day);
                }
            }
        }
    }

    fn finish(self) -> Workload {
        let Gen { bank, records, groups, period, currency, start, end, business, .. } = self;
        // Statement order is booking order; bank ids then increase through the statement as
        // FITIDs and entry references do.
        let mut order: Vec<usize> = (0..bank.len()).collect();
        order.sort_by_key(|&i| (bank.get(i).map(|t| t.booking_date), i));
        let mut id_of = vec![String::new(); bank.len()];
        let mut slots: Vec<Option<BankTransaction>> = bank.into_iter().map(Some).collect();
        let mut sorted = Vec::with_capacity(slots.len());
        for (pos, &i) in order.iter().enumerate() {
            let id = format!("TX{period}-{:07}", pos + 1);
            if let Some(slot) = id_of.get_mut(i) {
                slot.clone_from(&id);
            }
            if let Some(t) = slots.get_mut(i).and_then(Option::take) {
                sorted.push(t.with_bank_id(id));
            }
        }
        let truth = groups
            .into_iter()
            .map(|g| TruthGroup {
                bank_ids: g.bank.iter().filter_map(|&i| id_of.get(i).cloned()).collect(),
                record_ids: g.records.iter().filter_map(|&i| records.get(i).map(|r| r.id.clone())).collect(),
                kind: g.kind,
                difference: g.difference,
            })
            .collect();
        let mut records = records;
        records.sort_by_key(|r| r.date);
        Workload { currency, account: business.account.clone(), start, end, bank: sorted, records, truth }
    }

    // ---- counterparties and amounts ------------------------------------------------------------

    /// A counterparty index skewed towards the first ones: a few big customers pay most often.
    fn skewed(&mut self, len: usize) -> usize {
        let a = self.rng.index(len);
        let b = self.rng.index(len);
        a.min(b)
    }

    fn cp(&self, side: Side) -> Option<&'a Counterparty> {
        let b = self.business;
        match side {
            Side::Customer(i) => b.customers.get(i),
            Side::Supplier(i) => b.suppliers.get(i),
            Side::Vendor(i) => b.vendors.get(i),
        }
    }

    fn customer(&mut self) -> Side {
        Side::Customer(self.skewed(self.business.customers.len()))
    }

    fn supplier(&mut self) -> Side {
        Side::Supplier(self.skewed(self.business.suppliers.len()))
    }

    /// A customer with the given channel if one turns up in a few draws, else any customer.
    fn customer_with(&mut self, want: impl Fn(&Counterparty) -> bool) -> Side {
        for _ in 0..12 {
            let side = self.customer();
            if self.cp(side).is_some_and(&want) {
                return side;
            }
        }
        self.customer()
    }

    fn amount_cents(&mut self, side: Side) -> i64 {
        let (typical, recurring) = self.cp(side).map(|c| (c.typical_cents, c.recurring)).unwrap_or((10_000, false));
        if recurring {
            return (typical / 100).max(1) * 100;
        }
        if self.rng.chance(self.profile.round_amount) {
            return self.rng.pick(ROUND_UNITS).copied().unwrap_or(100) * 100;
        }
        (typical * self.rng.range(50, 150) / 100).max(100)
    }

    fn money(&self, cents_value: i64) -> Money {
        Money::new(cents(cents_value), self.currency)
    }

    fn bank_name(&mut self, side: Side) -> String {
        let names = self.cp(side).map(|c| c.bank_names.as_slice()).unwrap_or(&[]);
        let pick = if names.len() > 1 && self.rng.chance(self.profile.name_alias) {
            1 + self.rng.index(names.len() - 1)
        } else {
            0
        };
        names.get(pick).cloned().unwrap_or_else(|| "UNKNOWN".into())
    }

    fn lag(&mut self, side: Side) -> u32 {
        let usual = i64::from(self.cp(side).map(|c| c.lag_days).unwrap_or(1));
        self.rng.range(usual - 1, usual + 2).clamp(0, i64::from(self.profile.lag_limit())) as u32
    }

    // ---- records ---------------------------------------------------------------------------------

    fn push_record(&mut self, record: Record) -> usize {
        self.records.push(record);
        self.records.len() - 1
    }

    fn invoice(&mut self, date: NaiveDate, side: Side, amount: i64) -> usize {
        let id = format!("INV-{:05}", self.invoice_no);
        self.invoice_no += 1;
        let cp = self.cp(side).map(|c| c.name.clone());
        let record = Record {
            id: id.clone(),
            kind: RecordKind::Invoice,
            date,
            due_date: None,
            amount: self.money(amount),
            counterparty: cp,
            reference: Some(id.clone()),
            description: Some(format!("Invoice {id}")),
        };
        self.push_record(record)
    }

    fn bill(&mut self, date: NaiveDate, side: Side, amount: i64) -> usize {
        let id = format!("BILL-{:05}", self.bill_no);
        self.bill_no += 1;
        let (name, prefix) = self.cp(side).map(|c| (c.name.clone(), c.doc_prefix.clone())).unwrap_or_default();
        let doc = format!("{prefix}{}", self.rng.range(1_000, 999_999));
        let record = Record {
            id,
            kind: RecordKind::Bill,
            date,
            due_date: None,
            amount: self.money(-amount),
            counterparty: Some(name.clone()),
            reference: Some(doc),
            description: Some(format!("Bill from {name}")),
        };
        self.push_record(record)
    }

    // ---- bank lines ------------------------------------------------------------------------------

    fn push_bank(&mut self, t: BankTransaction) -> usize {
        self.bank.push(t);
        self.bank.len() - 1
    }

    /// A payment line for `side` as the business's bank prints it. `reference` is the reference
    /// as the payer wrote it; `in_field` says whether the bank keeps it in a field of its own.
    fn line(
        &mut self,
        date: NaiveDate,
        amount: i64,
        side: Side,
        v: Verb,
        reference: Option<String>,
        in_field: bool,
    ) -> usize {
        let (verb_text, code) = verb(self.business.style, v);
        let payee = self.bank_name(side);
        let account = self.cp(side).map(|c| c.account.clone());
        let text_only = self.rng.chance(self.profile.text_only);
        let mut description = format!("{verb_text} {payee}");
        if let Some(r) = &reference {
            if !in_field {
                let phrase = match self.rng.below(3) {
                    0 => format!(" PAYMENT FOR INVOICE {r} THANK YOU"),
                    1 => format!(" RE {r}"),
                    _ => format!(" INV {r}"),
                };
                description.push_str(&phrase);
            } else if text_only {
                description.push(' ');
                description.push_str(r);
            }
        }
        let mut t = BankTransaction::new(date, self.money(amount));
        t.description = description.into();
        t.bank_code = Some(code.into());
        if !text_only {
            t.payee = Some(payee.into());
            t.reference = reference.filter(|_| in_field).map(Into::into);
            if self.rng.chance(0.6) {
                t.counterparty_account = account.map(Into::into);
            }
        }
        self.push_bank(t)
    }

    fn group(&mut self, bank: Vec<usize>, records: Vec<usize>, kind: GroupKind, difference: Decimal) {
        self.groups.push(PendingGroup { bank, records, kind, difference });
    }

    /// Whether a bank date still falls in this statement; later payments are in transit.
    fn in_period(&self, date: NaiveDate) -> bool {
        date <= self.end
    }

    // ---- events ----------------------------------------------------------------------------------

    fn one_to_one(&mut self, day: NaiveDate) {
        match self.rng.weighted(&[0.55, 0.2, 0.25]) {
            0 => {
                let side = self.customer_with(|c| c.channel != Channel::Card);
                let amount = self.amount_cents(side);
                let rec = self.invoice(day, side, amount);
                let date = add_business_days(day, self.lag(side));
                if !self.in_period(date) {
                    return; // deposit in transit
                }
                let (channel, style) = self
                    .cp(side)
                    .map(|c| (c.channel, c.reference_style))
                    .unwrap_or((Channel::Transfer, ReferenceStyle::Exact));
                let reference = self.records.get(rec).and_then(|r| r.reference.clone()).unwrap_or_default();
                let b = match channel {
                    Channel::Check => {
                        let (text, code) = verb(self.business.style, Verb::Deposit);
                        let mut t = BankTransaction::new(date, self.money(amount));
                        t.description = text.into();
                        t.bank_code = Some(code.into());
                        self.push_bank(t)
                    }
                    Channel::Wire => {
                        self.line(date, amount, side, Verb::WireIn, style.apply(&reference), style.in_field())
                    }
                    _ => self.line(date, amount, side, Verb::CreditTransfer, style.apply(&reference), style.in_field()),
                };
                self.group(vec![b], vec![rec], GroupKind::OneToOne, Decimal::ZERO);
            }
            1 => {
                let side = self.supplier();
                let amount = self.amount_cents(side);
                let rec = self.bill(day, side, amount);
                let date = add_business_days(day, self.rng.range(0, 2) as u32);
                if !self.in_period(date) {
                    return;
                }
                let doc = self.records.get(rec).and_then(|r| r.reference.clone());
                let b = self.line(date, -amount, side, Verb::DebitTransfer, doc, true);
                self.group(vec![b], vec![rec], GroupKind::OneToOne, Decimal::ZERO);
            }
            _ => self.expense(day),
        }
    }

    fn expense(&mut self, day: NaiveDate) {
        let side = Side::Vendor(self.skewed(self.business.vendors.len()));
        let amount = self.amount_cents(side);
        let Some((name, channel, prefix, account)) =
            self.cp(side).map(|c| (c.name.clone(), c.channel, c.doc_prefix.clone(), c.account.clone()))
        else {
            return;
        };
        let direct_debit = channel == Channel::DirectDebit;
        // Card purchases happen any day of the week; the bank books them on the next business day.
        let purchase =
            if direct_debit { day } else { day.checked_sub_days(Days::new(self.rng.below(3))).unwrap_or(day) };
        // The mandate (contract) reference is the same on every debit of one vendor.
        let mandate = direct_debit.then(|| {
            let tail: String = account.chars().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
            format!("{prefix}{tail}")
        });
        let id = format!("EXP-{:05}", self.expense_no);
        self.expense_no += 1;
        let rec = self.push_record(Record {
            id,
            kind: RecordKind::Expense,
            date: purchase,
            due_date: None,
            amount: self.money(-amount),
            counterparty: Some(name.clone()),
            reference: mandate.clone(),
            description: Some(format!("{name} expense")),
        });
        let date = add_business_days(purchase, if direct_debit { 0 } else { self.lag(side) });
        if !self.in_period(date) {
            return;
        }
        let b = if direct_debit {
            self.line(date, -amount, side, Verb::DirectDebit, mandate, true)
        } else {
            self.line(date, -amount, side, Verb::Card, None, true)
        };
        self.group(vec![b], vec![rec], GroupKind::OneToOne, Decimal::ZERO);
    }

    fn fee(&mut self, day: NaiveDate) {
        if self.rng.chance(0.2) {
            // A wire to a supplier: the bank adds its charge to the debit.
            let side = self.supplier();
            let amount = self.amount_cents(side);
            let rec = self.bill(day, side, amount);
            let fee = self.rng.pick(&[1_500_i64, 2_000, 2_500, 3_000]).copied().unwrap_or(2_500);
            let date = add_business_days(day, self.rng.range(0, 2) as u32);
            let doc = self.records.get(rec).and_then(|r| r.reference.clone());
            if self.in_period(date) {
                let b = self.line(date, -(amount + fee), side, Verb::WireOut, doc, true);
                self.group(vec![b], vec![rec], GroupKind::Fee, cents(-fee));
            }
            return;
        }
        let side = self.customer_with(|c| c.fee.is_some());
        // Wires carry invoices large enough to be worth their fee.
        let amount = self.amount_cents(side).max(50_000);
        let rec = self.invoice(day, side, amount);
        let habit_fee = self.cp(side).and_then(|c| c.fee);
        let short = match habit_fee {
            Some(f) if self.rng.chance(0.8) => (f * Decimal::ONE_HUNDRED).trunc().to_i64().unwrap_or(1_500),
            _ => {
                // A short payment: the customer drops the cents, or a small sum, without saying so.
                let odd = amount % 100;
                if odd > 0 && self.rng.chance(0.5) {
                    odd
                } else {
                    self.rng.range(1, 500)
                }
            }
        };
        let date = add_business_days(day, self.lag(side));
        if !self.in_period(date) {
            return;
        }
        let style = self.cp(side).map(|c| c.reference_style).unwrap_or(ReferenceStyle::Exact);
        let reference = self.records.get(rec).and_then(|r| r.reference.clone()).unwrap_or_default();
        let v = if habit_fee.is_some() { Verb::WireIn } else { Verb::CreditTransfer };
        let b = self.line(date, amount - short, side, v, style.apply(&reference), style.in_field());
        self.group(vec![b], vec![rec], GroupKind::Fee, cents(-short));
    }

    fn batch(&mut self, day: NaiveDate) {
        if self.rng.chance(0.5) {
            self.combined_payment(day);
        } else {
            self.payout(day);
        }
    }

    /// One customer pays several of its invoices with one transfer.
    fn combined_payment(&mut self, day: NaiveDate) {
        let side = self.customer_with(|c| matches!(c.channel, Channel::Transfer | Channel::Wire));
        let k = self.rng.range(2, 4) as usize;
        let mut recs = Vec::with_capacity(k);
        let mut total = 0;
        let start_idx = self.days.binary_search(&day).unwrap_or_else(|i| i);
        for _ in 0..k {
            let back = self.rng.index(5).min(start_idx);
            let date = self.days.get(start_idx - back).copied().unwrap_or(day);
            let amount = self.amount_cents(side);
            total += amount;
            recs.push(self.invoice(date, side, amount));
        }
        let date = add_business_days(day, self.lag(side));
        if !self.in_period(date) {
            return;
        }
        let style = self.cp(side).map(|c| c.reference_style).unwrap_or(ReferenceStyle::Exact);
        let refs: Vec<String> = recs
            .iter()
            .filter_map(|&i| self.records.get(i).and_then(|r| r.reference.as_deref()).and_then(|r| style.apply(r)))
            .collect();
        // Remittance fields are short: the last invoice numbers are often cut off.
        let joined: String = refs.join(" ").chars().take(35).collect();
        let reference = (!joined.is_empty()).then_some(joined);
        let b = self.line(date, total, side, Verb::CreditTransfer, reference, style.in_field());
        self.group(vec![b], recs, GroupKind::Batch, Decimal::ZERO);
    }

    /// A card processor's payout or a lockbox deposit: several customers' payments in one credit.
    fn payout(&mut self, day: NaiveDate) {
        let k = self.rng.range(2, 6) as usize;
        let mut recs = Vec::with_capacity(k);
        let mut details = Vec::with_capacity(k);
        let mut total = 0;
        for _ in 0..k {
            let side = self.customer_with(|c| matches!(c.channel, Channel::Card | Channel::Check));
            // Card payments and mailed checks are small; large invoices are paid by transfer.
            let mut amount = self.amount_cents(side);
            while amount > 250_000 {
                amount /= 10;
            }
            total += amount;
            let rec = self.invoice(day, side, amount);
            recs.push(rec);
            let reference = self.records.get(rec).and_then(|r| r.reference.clone());
            details.push(TransactionDetail {
                amount: Some(self.money(amount)),
                reference,
                payee: self.cp(side).and_then(|c| c.bank_names.first().cloned()),
                counterparty_account: None,
                description: None,
            });
        }
        let date = add_business_days(day, self.rng.range(1, 2) as u32);
        if !self.in_period(date) {
            return;
        }
        let processor = self.business.processor.clone();
        let (verb_text, code) = verb(self.business.style, Verb::Payout);
        let payout_id = format!("PO{}", self.payout_no);
        self.payout_no += 1;
        let mut t = BankTransaction::new(date, self.money(total));
        t.description = format!("{verb_text} {processor} PAYOUT {payout_id}").into();
        t.bank_code = Some(code.into());
        if !self.rng.chance(self.profile.text_only) {
            t.payee = Some(processor.into());
            t.reference = Some(payout_id.into());
            // Structured statements (CAMT TxDtls, lockbox files) often list what the credit holds.
            if self.rng.chance(0.5) {
                t.details = details.into();
            }
        }
        let b = self.push_bank(t);
        self.group(vec![b], recs, GroupKind::Batch, Decimal::ZERO);
    }

    /// One invoice paid in two or three instalments.
    fn split(&mut self, day: NaiveDate) {
        let side = self.customer_with(|c| c.channel == Channel::Transfer);
        let amount = self.amount_cents(side).max(10_000);
        let rec = self.invoice(day, side, amount);
        let parts = self.rng.range(2, 3) as usize;
        let style = self.cp(side).map(|c| c.reference_style).unwrap_or(ReferenceStyle::Exact);
        let reference = self.records.get(rec).and_then(|r| r.reference.clone()).unwrap_or_default();
        let mut left = amount;
        let mut date = add_business_days(day, self.lag(side));
        let mut lines = Vec::with_capacity(parts);
        for i in 0..parts {
            let part = if i + 1 == parts { left } else { (left * self.rng.range(30, 60) / 100 / 100).max(1) * 100 };
            let part = part.min(left);
            left -= part;
            // Later instalments land within the period; a matcher sees the whole invoice paid.
            let booked = date.min(self.end);
            lines.push(self.line(booked, part, side, Verb::CreditTransfer, style.apply(&reference), style.in_field()));
            date = add_business_days(date, self.rng.range(2, 8) as u32);
            if left == 0 {
                break;
            }
        }
        self.group(lines, vec![rec], GroupKind::Split, Decimal::ZERO);
    }

    /// A check written to a supplier; cashed a few days later, or still outstanding at period end.
    fn check(&mut self, day: NaiveDate) {
        let side = {
            let mut pick = self.supplier();
            for _ in 0..8 {
                if self.cp(pick).is_some_and(|c| c.channel == Channel::Check) {
                    break;
                }
                pick = self.supplier();
            }
            pick
        };
        let amount = self.amount_cents(side);
        let number = self.check_no.to_string();
        self.check_no += 1;
        let name = self.cp(side).map(|c| c.name.clone()).unwrap_or_default();
        let rec = self.push_record(Record {
            id: format!("CHK-{number}"),
            kind: RecordKind::Check,
            date: day,
            due_date: None,
            amount: self.money(-amount),
            counterparty: Some(name.clone()),
            reference: Some(number.clone()),
            description: Some(format!("Check {number} to {name}")),
        });
        let date = add_business_days(day, self.rng.range(2, i64::from(self.profile.lag_limit().max(2))) as u32);
        if !self.in_period(date) {
            return; // outstanding check
        }
        let (verb_text, code) = verb(self.business.style, Verb::Check);
        let mut t = BankTransaction::new(date, self.money(-amount));
        t.bank_code = Some(code.into());
        // Now and then the image reader fails and the bank books the check without its number.
        if self.rng.chance(self.profile.mangled_reference * 0.15) {
            t.description = verb_text.into();
        } else {
            t.description = format!("{verb_text} {number}").into();
            t.check_number = Some(number.into());
        }
        let b = self.push_bank(t);
        self.group(vec![b], vec![rec], GroupKind::Check, Decimal::ZERO);
    }

    /// Money moved to or from the business's savings account, booked as a journal entry.
    fn transfer(&mut self, day: NaiveDate) {
        let outgoing = self.rng.chance(0.6);
        let amount = self.rng.pick(ROUND_UNITS).copied().unwrap_or(1_000) * 1_000;
        let signed = if outgoing { -amount } else { amount };
        let id = format!("JE-{:05}", self.journal_no);
        self.journal_no += 1;
        let rec = self.push_record(Record {
            id,
            kind: RecordKind::Journal,
            date: day,
            due_date: None,
            amount: self.money(signed),
            counterparty: None,
            reference: None,
            description: Some(if outgoing { "Transfer to savings" } else { "Transfer from savings" }.into()),
        });
        let savings = self.business.savings_account.clone();
        let last4: String = savings.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        let (verb_text, code) =
            verb(self.business.style, if outgoing { Verb::OwnTransferOut } else { Verb::OwnTransferIn });
        let mut t = BankTransaction::new(day, self.money(signed));
        t.description = format!("{verb_text} XXXXXX{last4}").into();
        t.bank_code = Some(code.into());
        t.counterparty_account = Some(savings.into());
        let b = self.push_bank(t);
        self.group(vec![b], vec![rec], GroupKind::Transfer, Decimal::ZERO);
    }

    /// A record that has no bank line this period: an unpaid invoice, an outstanding check, an
    /// accrual.
    fn record_noise(&mut self, day: NaiveDate) {
        match self.rng.weighted(&[0.6, 0.2, 0.2]) {
            0 => {
                let side = self.customer();
                let amount = self.amount_cents(side);
                self.invoice(day, side, amount);
            }
            1 => {
                let side = self.supplier();
                let amount = self.amount_cents(side);
                let number = self.check_no.to_string();
                self.check_no += 1;
                let name = self.cp(side).map(|c| c.name.clone()).unwrap_or_default();
                self.push_record(Record {
                    id: format!("CHK-{number}"),
                    kind: RecordKind::Check,
                    date: day,
                    due_date: None,
                    amount: self.money(-amount),
                    counterparty: Some(name.clone()),
                    reference: Some(number.clone()),
                    description: Some(format!("Check {number} to {name}")),
                });
            }
            _ => {
                let id = format!("JE-{:05}", self.journal_no);
                self.journal_no += 1;
                let amount = self.rng.range(1_000, 500_000);
                self.push_record(Record {
                    id,
                    kind: RecordKind::Journal,
                    date: day,
                    due_date: None,
                    amount: self.money(-amount),
                    counterparty: None,
                    reference: None,
                    description: Some("Accrued expenses".into()),
                });
            }
        }
    }

    /// A bank line the books do not have: charges, interest, an unexplained credit, or a payment of
    /// an invoice from before this period.
    fn bank_noise(&mut self, day: NaiveDate) {
        let style = self.business.style;
        match self.rng.weighted(&[0.25, 0.2, 0.45, 0.1]) {
            0 => {
                // Per-item charges: incoming wire fees, returned-item fees, stop-payment fees.
                let (text, code) = verb(style, Verb::Fee);
                let (what, fee) = match self.rng.below(3) {
                    0 => ("WIRE FEE", 1_500),
                    1 => ("RETURNED ITEM FEE", 3_500),
                    _ => ("STOP PAYMENT FEE", 3_000),
                };
                self.simple_line(day, -fee, format!("{text} {what}"), code);
            }
            1 => {
                let (text, code) = verb(style, Verb::Deposit);
                let amount = self.rng.pick(ROUND_UNITS).copied().unwrap_or(100) * 100;
                self.simple_line(day, amount, text.to_string(), code);
            }
            2 if self.first_invoice > 1 => {
                // A payment of an invoice from an earlier period, which these books do not hold.
                let side = self.customer();
                let amount = self.amount_cents(side);
                let back = 1 + self.rng.below((self.first_invoice - 1).min(500));
                let reference = format!("INV-{:05}", self.first_invoice - back);
                let style = self.cp(side).map(|c| c.reference_style).unwrap_or(ReferenceStyle::Exact);
                self.line(day, amount, side, Verb::CreditTransfer, style.apply(&reference), style.in_field());
            }
            _ => {
                // A card payment disputed by the customer and pulled back by the processor.
                let processor = self.business.processor.clone();
                let (text, code) = verb(style, Verb::DirectDebit);
                let amount = self.rng.range(1_000, 50_000);
                self.simple_line(day, -amount, format!("{text} {processor} CHARGEBACK"), code);
            }
        }
    }

    /// The charges and interest a bank books once a month.
    fn monthly_lines(&mut self, day: NaiveDate) {
        let style = self.business.style;
        let (text, code) = verb(style, Verb::Fee);
        let fee = self.rng.pick(&[900_i64, 1_200, 1_500, 2_500]).copied().unwrap_or(1_500);
        self.simple_line(day, -fee, text.to_string(), code);
        if self.rng.chance(0.7) {
            let (text, code) = verb(style, Verb::Interest);
            let amount = self.rng.range(1, 20_000);
            self.simple_line(day, amount, text.to_string(), code);
        }
    }

    fn simple_line(&mut self, day: NaiveDate, amount: i64, description: String, code: &str) -> usize {
        let mut t = BankTransaction::new(day, self.money(amount));
        t.description = description.into();
        t.bank_code = Some(code.into());
        self.push_bank(t)
    }
}
