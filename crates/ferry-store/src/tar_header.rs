//! The one tar fact both tar readers of the store need by hand: whether a 512-byte header
//! block's stored checksum matches its bytes. The bundle reader uses it to tell a tar from
//! anything else; the archive scanner, reading raw entries, to refuse a corrupt header.

/// True when the block's stored checksum matches its bytes (the checksum field counted as
/// spaces), as every tar reader checks.
pub fn checksum_ok(block: &[u8; 512]) -> bool {
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| (b'0'..=b'7').contains(&b))
        .map(|&b| char::from(b))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    stored == sum
}
