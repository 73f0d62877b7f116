//! The check-digit algorithms the carriers' numbers use. Every function takes ASCII bytes that the
//! caller has already checked for shape (digits where digits are due) and returns the expected
//! check digit, so a caller compares it with the number's last character.

/// The numeric value of a digit or, in a UPS 1Z number, of a letter: letters count as
/// `(ASCII code - 63) mod 10`, so `A` = 2, `B` = 3, … `H` = 9, `I` = 0, `J` = 1, …
fn ups_value(byte: u8) -> u32 {
    if byte.is_ascii_digit() {
        u32::from(byte - b'0')
    } else {
        u32::from(byte.wrapping_sub(63)) % 10
    }
}

/// The weighted modulo-10 check digit used by GS1 (SSCC-18), USPS IMpb and the 20-digit USPS
/// numbers, Canada Post's 16-digit numbers and FedEx Ground: starting from the rightmost data
/// digit, weights alternate `rightmost`, `next`, `rightmost`, …; the check digit is
/// `(10 - sum mod 10) mod 10`. `implied` is a prefix that counts as if it were printed in front of
/// `data` (USPS and FedEx SmartPost leave the application identifier 91/92 off shorter forms).
pub(crate) fn mod10(implied: &[u8], data: &[u8], rightmost: u32, next: u32) -> u8 {
    let sum: u32 = implied
        .iter()
        .chain(data)
        .rev()
        .enumerate()
        .map(|(i, &b)| u32::from(b - b'0') * if i % 2 == 0 { rightmost } else { next })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// UPS (1Z numbers and waybills) and OnTrac: weights 1, 2 alternating from the leftmost data
/// character, letters valued as in [`ups_value`]; the check digit is `(10 - sum mod 10) mod 10`.
/// UPS's data (15 or 9 characters) has weight 1 at both ends; OnTrac's (its letter, valued C = 4
/// and D = 5, and 13 digits) ends on weight 2.
pub(crate) fn ups(data: &[u8]) -> u8 {
    let sum: u32 = data
        .iter()
        .enumerate()
        .map(|(i, &b)| ups_value(b) * if i % 2 == 0 { 1 } else { 2 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// FedEx Express (12 and 34 digits) and FedEx Ground GSN: weights 1, 3, 7 repeating from the
/// rightmost data digit; the check digit is `(sum mod 11) mod 10`.
pub(crate) fn fedex_mod11(data: &[u8]) -> u8 {
    const WEIGHTS: [u32; 3] = [1, 3, 7];
    let sum: u32 = data
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| u32::from(b - b'0') * WEIGHTS[i % 3])
        .sum();
    (sum % 11 % 10) as u8
}

/// DHL Express waybills: the data digits read as one number, modulo 7. `None` when the digits do
/// not fit a `u64` (they never do at the 9 or 10 digits DHL uses).
pub(crate) fn mod7(data: &[u8]) -> Option<u8> {
    let mut value: u64 = 0;
    for &b in data {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((value % 7) as u8)
}

/// Luhn (Old Dominion PRO numbers, Purolator's 12 digits): from the rightmost data digit every
/// other digit is doubled (and reduced by 9 when above 9); the check digit is
/// `(10 - sum mod 10) mod 10`.
pub(crate) fn luhn(data: &[u8]) -> u8 {
    let sum: u32 = data
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b - b'0');
            match (i % 2, d * 2) {
                (0, doubled) if doubled > 9 => doubled - 9,
                (0, doubled) => doubled,
                _ => d,
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// DPD parcel numbers: ISO/IEC 7064 MOD 37,36 over digits and letters (valued 0–9, A = 10 …
/// Z = 35). Starting from 36, each character is added modulo 36 (0 counting as 36), the result
/// doubled modulo 37; the check character is the one valued `(37 - last) mod 36`. Returns the
/// check character as an ASCII byte. `None` for a byte outside `0-9 A-Z`.
pub(crate) fn mod37_36(data: &[u8]) -> Option<u8> {
    const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut product: u32 = 36;
    for &b in data {
        let value = ALPHABET.iter().position(|&a| a == b)?;
        let mut sum = (product + value as u32) % 36;
        if sum == 0 {
            sum = 36;
        }
        product = sum * 2 % 37;
    }
    ALPHABET.get(((37 - product) % 36) as usize).copied()
}

/// UPU S10 (international postal items): the eight serial digits weighted 8, 6, 4, 2, 3, 5, 9, 7;
/// `c = 11 - sum mod 11`, and then 10 becomes 0 and 11 becomes 5.
pub(crate) fn s10(serial: &[u8; 8]) -> u8 {
    const WEIGHTS: [u32; 8] = [8, 6, 4, 2, 3, 5, 9, 7];
    let sum: u32 = serial
        .iter()
        .zip(WEIGHTS)
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    match 11 - sum % 11 {
        10 => 0,
        11 => 5,
        c => c as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_take_ups_values() {
        assert_eq!(ups_value(b'A'), 2);
        assert_eq!(ups_value(b'H'), 9);
        assert_eq!(ups_value(b'I'), 0);
        assert_eq!(ups_value(b'Z'), 7);
        assert_eq!(ups_value(b'7'), 7);
    }

    #[test]
    fn gs1_check_digits() {
        // SSCC (00) 1 0614141 123456789 7 and GTIN-13 629104150021 3.
        assert_eq!(mod10(b"", b"10614141123456789", 3, 1), 7);
        assert_eq!(mod10(b"", b"629104150021", 3, 1), 3);
    }

    #[test]
    fn implied_prefix_counts_as_printed() {
        assert_eq!(
            mod10(b"91", b"1234567890123456789", 3, 1),
            mod10(b"", b"911234567890123456789", 3, 1)
        );
    }

    #[test]
    fn s10_maps_ten_and_eleven() {
        // RB 12345678 5: 8+12+12+8+15+30+63+56 = 204, 204 mod 11 = 6, 11 - 6 = 5.
        assert_eq!(s10(b"12345678"), 5);
        // Sum divisible by 11 gives 11 -> 5; sum ≡ 1 gives 10 -> 0.
        assert_eq!(s10(b"00000000"), 5);
        // 1 at weight 3 plus 1 at weight 9 = 12 ≡ 1 (mod 11).
        assert_eq!(s10(b"00001010"), 0);
    }

    #[test]
    fn ups_weights_run_from_the_left() {
        // OnTrac C11031500001879: C valued 4, then 1103150000187 and check digit 9.
        assert_eq!(ups(b"C1103150000187"), 9);
        // UPS 1Z5R89390357567127: the 15 characters after 1Z, check digit 7.
        assert_eq!(ups(b"5R8939035756712"), 7);
    }

    #[test]
    fn luhn_check_digits() {
        // The textbook example 7992739871 + 3.
        assert_eq!(luhn(b"7992739871"), 3);
        assert_eq!(luhn(b"0720956276"), 3);
    }

    #[test]
    fn iso_7064_mod_37_36() {
        assert_eq!(mod37_36(b"09980000020033"), Some(b'F'));
        assert_eq!(mod37_36(b"008182709980000020033350276"), Some(b'C'));
        assert_eq!(mod37_36(b"0998-"), None);
    }

    #[test]
    fn mod7_rejects_overflow() {
        assert_eq!(mod7(b"331881002"), Some((331_881_002_u64 % 7) as u8));
        assert_eq!(mod7(b"99999999999999999999999"), None);
    }
}
