//! Password hashing (argon2id, PHC strings) and generation.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::LazyLock;

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted (hashing cost is bounded by it).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A password refused by policy, or a hash that could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    /// Too short.
    #[error("a password needs at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    /// Too long.
    #[error("a password may have at most {MAX_PASSWORD_LEN} characters")]
    TooLong,
    /// The hasher failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Checks a chosen password against the policy.
pub fn validate_password(password: &str) -> Result<(), PasswordError> {
    match password.chars().count() {
        n if n < MIN_PASSWORD_LEN => Err(PasswordError::TooShort),
        n if n > MAX_PASSWORD_LEN => Err(PasswordError::TooLong),
        _ => Ok(()),
    }
}

/// Hashes a password with argon2id (default parameters) and a random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    validate_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN * 4 {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the same work as a real verification, for unknown users, so that response time
/// does not tell which user names exist.
pub fn verify_against_nothing(password: &str) {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        hash_password("fleetdeck-dummy-password").expect("hashing a constant password")
    });
    let _ = verify_password(password, &DUMMY);
}

/// A random password: 20 characters from an alphabet without look-alikes (~115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        let mut byte = [0u8; 1];
        OsRng.fill_bytes(&mut byte);
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        if usize::from(byte[0]) < limit {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("", &hash));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert_ne!(a, b, "salts differ");
        assert!(verify_password("correct horse battery", &a));
        assert!(verify_password("correct horse battery", &b));
    }

    #[test]
    fn malformed_hashes_match_nothing() {
        assert!(!verify_password("anything at all", "not a phc string"));
        assert!(!verify_password("anything at all", ""));
    }

    #[test]
    fn the_policy_bounds_length() {
        assert_eq!(hash_password("short").unwrap_err(), PasswordError::TooShort);
        assert_eq!(
            validate_password(&"x".repeat(1025)),
            Err(PasswordError::TooLong)
        );
        assert_eq!(validate_password("twelve chars"), Ok(()));
    }

    #[test]
    fn generated_passwords_are_long_random_and_pass_the_policy() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(validate_password(&a).is_ok());
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"lIO01".contains(c)),
            "{a}"
        );
    }
}
