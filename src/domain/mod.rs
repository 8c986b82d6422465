//! The domain: money, bank statements and their transactions, and the books' records.

pub mod money;
pub mod record;
pub mod statement;

pub use money::{Currency, Money, MoneyError};
pub use record::{read_records, Record, RecordKind, RecordsError};
pub use statement::{AccountIdent, BalanceCheck, BankTransaction, IdSource, Statement, TransactionDetail};
