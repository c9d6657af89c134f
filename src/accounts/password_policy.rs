//! What a new password must satisfy (OWASP ASVS 2.1: at least 12 characters, long passphrases
//! allowed, no composition rules, not the account's own email).

pub const MIN_CHARS: usize = 12;
/// Upper bound on bytes, so hashing cost cannot be driven up by absurd inputs.
pub const MAX_BYTES: usize = 256;

pub fn check_new_password(password: &str, email: &str) -> Result<(), String> {
    if password.chars().count() < MIN_CHARS {
        return Err(format!("use at least {MIN_CHARS} characters"));
    }
    if password.len() > MAX_BYTES {
        return Err(format!("use at most {MAX_BYTES} bytes"));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err("must not be your email address".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        assert!(check_new_password("short", "a@b.c").is_err());
        assert!(check_new_password("correct horse battery", "a@b.c").is_ok());
        assert!(check_new_password("dana@example.com", "dana@example.com").is_err());
        assert!(check_new_password(&"x".repeat(300), "a@b.c").is_err());
        assert!(
            check_new_password("ééééééééééé", "a@b.c").is_err(),
            "11 characters"
        );
        assert!(
            check_new_password("éééééééééééé", "a@b.c").is_ok(),
            "12 characters"
        );
    }
}
