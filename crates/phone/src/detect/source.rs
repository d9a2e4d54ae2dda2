//! `phone.suspend-sip-auth-from-ip` (T6): on a surge judged fraudulent, is a source address very
//! probably the fraudster's? Only an address new to the lines it calls from, carrying a real
//! share of the fraud, or calling for several fraud lines at once; never a subscriber's own PBX
//! (that one is handled by suspending the line).

use crate::views::SourceView;

/// Is the address very probably a fraudster's?
pub fn is_fraudster(v: &SourceView) -> bool {
    v.new_for_lines && (v.fraud_lines >= 2 || v.share_of_fraud_charge >= 0.25)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(new: bool, lines: u32, share: f64) -> SourceView {
        SourceView {
            source_ip: "203.0.113.5".parse().unwrap(),
            countries: vec![],
            fraud_lines: lines,
            share_of_fraud_charge: share,
            new_for_lines: new,
        }
    }

    #[test]
    fn only_new_addresses_carrying_the_fraud() {
        assert!(is_fraudster(&view(true, 1, 0.9)));
        assert!(is_fraudster(&view(true, 3, 0.1)));
        assert!(!is_fraudster(&view(true, 1, 0.1)));
        assert!(!is_fraudster(&view(false, 5, 1.0)), "the subscriber's own PBX address");
    }
}
