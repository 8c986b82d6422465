//! Writers that turn generated data into the files people and parsers see: a statement as CSV,
//! OFX or CAMT.053, and records as CSV. Used for demo data and for the parser benchmarks.
//!
//! The OFX and CAMT writers stream: a caller writes the header, then any number of lines, then the
//! footer, so a million-line statement never has to be held as one string.

use std::io::{self, Write};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::domain::{BankTransaction, Currency, Record};

/// Writes `bank` as CSV with the header `id,date,amount,currency,description,payee,reference`.
pub fn statement_csv<W: Write>(out: W, bank: &[BankTransaction]) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["id", "date", "amount", "currency", "description", "payee", "reference"])?;
    for t in bank {
        w.write_record([
            t.id.as_ref(),
            &t.booking_date.to_string(),
            &t.amount.to_fixed(),
            t.amount.currency().code(),
            &t.description,
            t.payee.as_deref().unwrap_or(""),
            t.reference.as_deref().or(t.check_number.as_deref()).unwrap_or(""),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Writes `records` as CSV with the header
/// `id,kind,date,amount,currency,counterparty,reference,description` (what `read_records` reads).
pub fn records_csv<W: Write>(out: W, records: &[Record]) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["id", "kind", "date", "amount", "currency", "counterparty", "reference", "description"])?;
    for r in records {
        w.write_record([
            r.id.as_str(),
            r.kind.as_str(),
            &r.date.to_string(),
            &r.amount.to_fixed(),
            r.amount.currency().code(),
            r.counterparty.as_deref().unwrap_or(""),
            r.reference.as_deref().unwrap_or(""),
            r.description.as_deref().unwrap_or(""),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Escapes text for XML content and attribute values.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// What a statement file says about itself besides its lines.
#[derive(Debug, Clone)]
pub struct StatementHeader {
    /// Account number or IBAN.
    pub account: String,
    /// The account's currency.
    pub currency: Currency,
    /// First day covered.
    pub start: NaiveDate,
    /// Last day covered.
    pub end: NaiveDate,
    /// Opening booked balance.
    pub opening: Decimal,
    /// Closing booked balance (opening plus the lines, for a statement that balances).
    pub closing: Decimal,
}

impl StatementHeader {
    /// The header for `bank` on `account`, opening at `opening`.
    pub fn for_lines(account: &str, currency: Currency, bank: &[BankTransaction], opening: Decimal) -> Self {
        let start = bank.iter().map(|t| t.booking_date).min().unwrap_or_default();
        let end = bank.iter().map(|t| t.booking_date).max().unwrap_or(start);
        let closing = opening + bank.iter().map(|t| t.amount.amount()).sum::<Decimal>();
        StatementHeader { account: account.to_string(), currency, start, end, opening, closing }
    }
}

fn fixed(amount: Decimal, currency: Currency) -> String {
    crate::domain::money::fixed(amount, currency.minor_units())
}

/// Streams an OFX 2 (XML) bank statement.
pub struct OfxWriter<W: Write> {
    out: W,
    header: StatementHeader,
}

impl<W: Write> OfxWriter<W> {
    /// Writes the OFX header and opens the transaction list.
    pub fn start(mut out: W, header: StatementHeader) -> io::Result<Self> {
        let d = |d: NaiveDate| d.format("%Y%m%d").to_string();
        write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n\
             <?OFX OFXHEADER=\"200\" VERSION=\"220\" SECURITY=\"NONE\" OLDFILEUID=\"NONE\" NEWFILEUID=\"NONE\"?>\n\
             <OFX>\n<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>\
             <DTSERVER>{end}</DTSERVER><LANGUAGE>ENG</LANGUAGE></SONRS></SIGNONMSGSRSV1>\n\
             <BANKMSGSRSV1><STMTTRNRS><TRNUID>1</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>\n\
             <STMTRS><CURDEF>{cur}</CURDEF>\n\
             <BANKACCTFROM><BANKID>000000000</BANKID><ACCTID>{acct}</ACCTID><ACCTTYPE>CHECKING</ACCTTYPE></BANKACCTFROM>\n\
             <BANKTRANLIST><DTSTART>{start}</DTSTART><DTEND>{end}</DTEND>\n",
            end = d(header.end),
            start = d(header.start),
            cur = header.currency,
            acct = xml(&header.account),
        )?;
        Ok(OfxWriter { out, header })
    }

    /// Writes one `STMTTRN`.
    pub fn line(&mut self, t: &BankTransaction) -> io::Result<()> {
        let kind =
            t.bank_code.as_deref().unwrap_or(if t.amount.amount().is_sign_negative() { "DEBIT" } else { "CREDIT" });
        write!(
            self.out,
            "<STMTTRN><TRNTYPE>{kind}</TRNTYPE><DTPOSTED>{date}</DTPOSTED><TRNAMT>{amount}</TRNAMT><FITID>{id}</FITID>",
            date = t.booking_date.format("%Y%m%d"),
            amount = fixed(t.amount.amount(), self.header.currency),
            id = xml(&t.id),
        )?;
        if let Some(n) = &t.check_number {
            write!(self.out, "<CHECKNUM>{}</CHECKNUM>", xml(n))?;
        }
        let name: String = t.payee.as_deref().unwrap_or(&t.description).chars().take(32).collect();
        if !name.is_empty() {
            write!(self.out, "<NAME>{}</NAME>", xml(&name))?;
        }
        let mut memo = t.description.to_string();
        if let Some(r) = &t.reference {
            memo.push_str(" REF ");
            memo.push_str(r);
        }
        writeln!(self.out, "<MEMO>{}</MEMO></STMTTRN>", xml(&memo))
    }

    /// Closes the list, writes the ledger balance and closes the document.
    pub fn finish(mut self) -> io::Result<W> {
        writeln!(
            self.out,
            "</BANKTRANLIST>\n<LEDGERBAL><BALAMT>{bal}</BALAMT><DTASOF>{end}</DTASOF></LEDGERBAL>\n\
             </STMTRS></STMTTRNRS></BANKMSGSRSV1>\n</OFX>",
            bal = fixed(self.header.closing, self.header.currency),
            end = self.header.end.format("%Y%m%d"),
        )?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Streams an ISO 20022 CAMT.053.001.02 bank-to-customer statement.
pub struct CamtWriter<W: Write> {
    out: W,
    header: StatementHeader,
}

impl<W: Write> CamtWriter<W> {
    /// Writes the group header, the account and both balances (so the closing balance must be
    /// known before the lines: see [`StatementHeader::for_lines`]).
    pub fn start(mut out: W, header: StatementHeader) -> io::Result<Self> {
        let cur = header.currency;
        let bal = |code: &str, amount: Decimal, date: NaiveDate| {
            format!(
                "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"{cur}\">{}</Amt><CdtDbtInd>{}</CdtDbtInd><Dt><Dt>{date}</Dt></Dt></Bal>\n",
                fixed(amount.abs(), cur),
                if amount.is_sign_negative() { "DBIT" } else { "CRDT" },
            )
        };
        let account = if header.account.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            format!("<IBAN>{}</IBAN>", xml(&header.account))
        } else {
            format!("<Othr><Id>{}</Id></Othr>", xml(&header.account))
        };
        write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\">\n<BkToCstmrStmt>\n\
             <GrpHdr><MsgId>BANKREC-{start}</MsgId><CreDtTm>{end}T23:59:59</CreDtTm></GrpHdr>\n\
             <Stmt><Id>STMT-{start}</Id><CreDtTm>{end}T23:59:59</CreDtTm>\
             <FrToDt><FrDtTm>{start}T00:00:00</FrDtTm><ToDtTm>{end}T23:59:59</ToDtTm></FrToDt>\n\
             <Acct><Id>{account}</Id><Ccy>{cur}</Ccy></Acct>\n{open}{close}",
            start = header.start,
            end = header.end,
            open = bal("OPBD", header.opening, header.start),
            close = bal("CLBD", header.closing, header.end),
        )?;
        Ok(CamtWriter { out, header })
    }

    /// Writes one `Ntry`, with a `TxDtls` per batch part (or one for an ordinary line).
    pub fn line(&mut self, t: &BankTransaction) -> io::Result<()> {
        let cur = self.header.currency;
        let amount = t.amount.amount();
        let credit = !amount.is_sign_negative();
        write!(
            self.out,
            "<Ntry><NtryRef>{id}</NtryRef><Amt Ccy=\"{cur}\">{amt}</Amt><CdtDbtInd>{ind}</CdtDbtInd><Sts>BOOK</Sts>\
             <BookgDt><Dt>{date}</Dt></BookgDt><ValDt><Dt>{value}</Dt></ValDt><AcctSvcrRef>{id}</AcctSvcrRef>\
             <BkTxCd><Prtry><Cd>{code}</Cd></Prtry></BkTxCd><NtryDtls>",
            id = xml(&t.id),
            amt = fixed(amount.abs(), cur),
            ind = if credit { "CRDT" } else { "DBIT" },
            date = t.booking_date,
            value = t.value_date.unwrap_or(t.booking_date),
            code = xml(t.bank_code.as_deref().unwrap_or("NTRF")),
        )?;
        let party = if credit { "Dbtr" } else { "Cdtr" };
        let party_acct = if credit { "DbtrAcct" } else { "CdtrAcct" };
        if t.details.is_empty() {
            write!(self.out, "<TxDtls>")?;
            if let Some(r) = &t.reference {
                write!(self.out, "<Refs><EndToEndId>{}</EndToEndId></Refs>", xml(r))?;
            }
            if let Some(n) = &t.check_number {
                write!(self.out, "<Refs><ChqNb>{}</ChqNb></Refs>", xml(n))?;
            }
            if t.payee.is_some() || t.counterparty_account.is_some() {
                write!(self.out, "<RltdPties>")?;
                if let Some(p) = &t.payee {
                    write!(self.out, "<{party}><Nm>{}</Nm></{party}>", xml(p))?;
                }
                if let Some(a) = &t.counterparty_account {
                    write!(self.out, "<{party_acct}><Id><Othr><Id>{}</Id></Othr></Id></{party_acct}>", xml(a))?;
                }
                write!(self.out, "</RltdPties>")?;
            }
            write!(self.out, "<RmtInf><Ustrd>{}</Ustrd></RmtInf></TxDtls>", xml(&t.description))?;
        } else {
            for d in &t.details {
                write!(self.out, "<TxDtls>")?;
                if let Some(r) = &d.reference {
                    write!(self.out, "<Refs><EndToEndId>{}</EndToEndId></Refs>", xml(r))?;
                }
                if let Some(a) = &d.amount {
                    write!(
                        self.out,
                        "<AmtDtls><TxAmt><Amt Ccy=\"{cur}\">{}</Amt></TxAmt></AmtDtls>",
                        fixed(a.amount().abs(), cur)
                    )?;
                }
                if let Some(p) = &d.payee {
                    write!(self.out, "<RltdPties><{party}><Nm>{}</Nm></{party}></RltdPties>", xml(p))?;
                }
                write!(self.out, "<RmtInf><Ustrd>{}</Ustrd></RmtInf></TxDtls>", xml(&t.description))?;
            }
        }
        writeln!(self.out, "</NtryDtls><AddtlNtryInf>{}</AddtlNtryInf></Ntry>", xml(&t.description))
    }

    /// Closes the statement and the document.
    pub fn finish(mut self) -> io::Result<W> {
        writeln!(self.out, "</Stmt>\n</BkToCstmrStmt>\n</Document>")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::read_records;
    use crate::workload::{generate, Profile};

    fn sample() -> crate::workload::Workload {
        generate(&Profile::hard().with_records(300), 17, 1)
    }

    #[test]
    fn written_records_read_back_unchanged() {
        let w = sample();
        let mut buf = Vec::new();
        records_csv(&mut buf, &w.records).unwrap();
        let back = read_records("records.csv", &buf).unwrap();
        assert_eq!(back, w.records);
    }

    #[test]
    fn the_csv_statement_has_the_documented_header_and_one_row_per_line() {
        let w = sample();
        let mut buf = Vec::new();
        statement_csv(&mut buf, &w.bank).unwrap();
        let mut reader = csv::Reader::from_reader(buf.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
        assert_eq!(header, ["id", "date", "amount", "currency", "description", "payee", "reference"]);
        let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), w.bank.len());
        assert_eq!(rows[0].get(0), Some(w.bank[0].id.as_ref()));
        assert_eq!(rows[0].get(2), Some(w.bank[0].amount.to_fixed().as_str()));
    }

    fn well_formed(bytes: &[u8]) -> usize {
        let mut reader = quick_xml::Reader::from_reader(bytes);
        let mut buf = Vec::new();
        let mut depth: i64 = 0;
        let mut elements = 0;
        loop {
            match reader.read_event_into(&mut buf).unwrap() {
                quick_xml::events::Event::Start(_) => {
                    depth += 1;
                    elements += 1;
                }
                quick_xml::events::Event::End(_) => depth -= 1,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        assert_eq!(depth, 0);
        elements
    }

    #[test]
    fn ofx_and_camt_output_is_well_formed_xml_that_format_detection_recognises() {
        let w = sample();
        let header = StatementHeader::for_lines(&w.account, w.currency, &w.bank, Decimal::new(1_000_000, 2));
        let mut ofx = OfxWriter::start(Vec::new(), header.clone()).unwrap();
        let mut camt = CamtWriter::start(Vec::new(), header).unwrap();
        for t in &w.bank {
            ofx.line(t).unwrap();
            camt.line(t).unwrap();
        }
        let ofx = ofx.finish().unwrap();
        let camt = camt.finish().unwrap();
        assert!(well_formed(&ofx) > w.bank.len());
        assert!(well_formed(&camt) > w.bank.len());
        assert_eq!(crate::parse::detect(&ofx), Some(crate::parse::Format::Ofx));
        assert_eq!(crate::parse::detect(&camt), Some(crate::parse::Format::Camt053));
        let text = String::from_utf8(camt).unwrap();
        assert_eq!(text.matches("<Ntry>").count(), w.bank.len());
    }

    #[test]
    fn xml_special_characters_are_escaped() {
        assert_eq!(xml("A & B <C> \"D\" 'E'"), "A &amp; B &lt;C&gt; &quot;D&quot; &apos;E&apos;");
    }
}
