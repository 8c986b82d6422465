//! Investment actions (`N` in `!Type:Invst`): which way each one moves money.
//!
//! Investment records write their amount unsigned; the action says whether money came in (a sale,
//! a dividend, a transfer in) or went out (a purchase, a fee, a transfer out). Actions that move
//! shares only (`ShrsIn`, `StkSplit`, reinvestments) book no money at all.

/// How an action moves money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CashFlow {
    /// Money into the account: the amount is positive.
    In,
    /// Money out of the account: the amount is negative.
    Out,
    /// `Cash` and unnamed actions: the amount's own sign.
    AsWritten,
    /// Shares only, no money.
    NoCash,
}

const IN: &[&str] = &[
    "sell", "sellx", "div", "divx", "intinc", "intincx", "cglong", "cglongx", "cgmid", "cgmidx", "cgshort", "cgshortx",
    "xin", "miscinc", "miscincx", "rtrncap", "rtrncapx", "shtsell", "shtsellx", "contribx",
];
const OUT: &[&str] =
    &["buy", "buyx", "xout", "miscexp", "miscexpx", "margint", "margintx", "cvrshrt", "cvrshrtx", "withdrwx"];
const NO_CASH: &[&str] = &[
    "shrsin", "shrsout", "stksplit", "reinvdiv", "reinvint", "reinvlg", "reinvmd", "reinvsh", "reminder", "grant",
    "vest", "exercise", "expire",
];

/// The cash flow of an action as written (case and surrounding blanks ignored); `None` for an
/// action Quicken does not define.
pub(super) fn cash_flow(action: &str) -> Option<CashFlow> {
    let action = action.trim();
    let is = |list: &[&str]| list.iter().any(|a| a.eq_ignore_ascii_case(action));
    if action.is_empty() || action.eq_ignore_ascii_case("cash") {
        Some(CashFlow::AsWritten)
    } else if is(IN) {
        Some(CashFlow::In)
    } else if is(OUT) {
        Some(CashFlow::Out)
    } else if is(NO_CASH) {
        Some(CashFlow::NoCash)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_read_whatever_their_case_and_padding() {
        assert_eq!(cash_flow("Buy     "), Some(CashFlow::Out));
        assert_eq!(cash_flow("SELLX"), Some(CashFlow::In));
        assert_eq!(cash_flow("Div"), Some(CashFlow::In));
        assert_eq!(cash_flow("XOut"), Some(CashFlow::Out));
        assert_eq!(cash_flow("ReinvDiv"), Some(CashFlow::NoCash));
        assert_eq!(cash_flow("Cash"), Some(CashFlow::AsWritten));
        assert_eq!(cash_flow(""), Some(CashFlow::AsWritten));
        assert_eq!(cash_flow("Teleport"), None);
    }
}
