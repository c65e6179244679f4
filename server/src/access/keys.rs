//! Assistant API keys: generation, the digest the store keeps, and the prefix shown to tell
//! keys apart.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// What every generated key starts with, so that a leaked key is recognisable in logs and
/// by secret scanners.
pub const KEY_MARKER: &str = "fdk_";
/// Random characters after the marker: 40 base62 characters are about 238 bits.
pub const KEY_RANDOM_CHARS: usize = 40;
/// Characters of a key shown on the dashboard (the marker and six random ones).
pub const KEY_PREFIX_CHARS: usize = 10;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new random key: `fdk_` and 40 base62 characters from the operating system's RNG.
pub fn generate_key() -> String {
    // Bytes at or above this limit are rejected so that every character is equally likely.
    let limit = 256 - 256 % BASE62.len();
    let mut key = String::with_capacity(KEY_MARKER.len() + KEY_RANDOM_CHARS);
    key.push_str(KEY_MARKER);
    let mut buffer = [0u8; 64];
    while key.len() < KEY_MARKER.len() + KEY_RANDOM_CHARS {
        OsRng.fill_bytes(&mut buffer);
        for &byte in &buffer {
            if key.len() == KEY_MARKER.len() + KEY_RANDOM_CHARS {
                break;
            }
            if usize::from(byte) < limit {
                key.push(char::from(BASE62[usize::from(byte) % BASE62.len()]));
            }
        }
    }
    key
}

/// The lower-case hex SHA-256 of a key: what the store keeps instead of the key.
///
/// A fast digest is enough because keys carry far more entropy than any guessing could
/// cover; it keeps authentication of every call cheap.
pub fn key_digest(key: &str) -> String {
    format!("{:x}", Sha256::digest(key.as_bytes()))
}

/// What the dashboard shows of a key declared in the fleet file: a fingerprint of its
/// digest (`sha256:1a2b3c4d5e6f`), never its first characters (a declared key is chosen by
/// a person and may be short enough that a prefix gives much of it away). Derived from the
/// digest alone, so a stored key can be given one without knowing the key (migration 0009).
pub fn key_fingerprint(key: &str) -> String {
    fingerprint_of_digest(&key_digest(key))
}

/// [`key_fingerprint`] from a stored digest.
pub fn fingerprint_of_digest(digest: &str) -> String {
    format!("sha256:{}", digest.get(..12).unwrap_or(digest))
}

/// The first characters of a generated key (e.g. `fdk_a1B2c3`), shown to tell keys apart:
/// the marker and six of its 40 random characters, which leaves 200+ bits unknown.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(KEY_PREFIX_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_tells_nothing_of_the_key_itself() {
        let key = "my-declared-key-for-claude-desktop-0001";
        let fingerprint = key_fingerprint(key);
        assert_eq!(fingerprint, fingerprint_of_digest(&key_digest(key)));
        assert_eq!(fingerprint.len(), "sha256:".len() + 12);
        assert!(!fingerprint.contains("my-d"), "{fingerprint}");
        assert_ne!(
            fingerprint,
            key_fingerprint("my-declared-key-for-claude-desktop-0002")
        );
    }

    #[test]
    fn generated_keys_have_the_marker_and_40_base62_characters() {
        for _ in 0..50 {
            let key = generate_key();
            assert_eq!(key.len(), 44, "{key}");
            let random = key.strip_prefix("fdk_").expect("marker");
            assert!(random.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
        }
    }

    #[test]
    fn generated_keys_differ_and_use_the_whole_alphabet() {
        let keys: Vec<String> = (0..200).map(|_| generate_key()).collect();
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
        // 8000 random characters miss one of 62 symbols with negligible probability.
        let seen: std::collections::HashSet<u8> =
            keys.iter().flat_map(|k| k.bytes().skip(4)).collect();
        assert_eq!(seen.len(), 62);
    }

    #[test]
    fn digests_are_lower_hex_sha256_and_differ_per_key() {
        // The SHA-256 of "abc" (FIPS 180-2 test vector).
        assert_eq!(
            key_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(key_digest(&a), key_digest(&b));
        assert_eq!(key_digest(&a), key_digest(&a.clone()));
        assert_eq!(key_digest(&a).len(), 64);
    }

    #[test]
    fn the_prefix_is_the_first_ten_characters() {
        assert_eq!(
            key_prefix("fdk_a1B2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8"),
            "fdk_a1B2c3"
        );
        assert_eq!(key_prefix("short"), "short");
        // Characters, not bytes: a declared key with non-ASCII text does not panic.
        assert_eq!(key_prefix("ééééééééééééé"), "éééééééééé");
    }
}
