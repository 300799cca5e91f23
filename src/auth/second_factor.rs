//! The second factor: time-based one-time codes (RFC 6238 through `totp-rs`: HMAC-SHA1, six
//! digits, 30-second steps, one step of tolerance either way, what every authenticator app
//! understands) and single-use recovery codes. [`check_code`] uses a code up through
//! `db::second_factor`, which makes each one single-use; the rest are pure functions.

use qrcode::QrCode;
use qrcode::render::svg;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use sqlx::PgPool;

use crate::auth::{AuthError, AuthResult};
use crate::crypto::SecretBox;
use crate::db::second_factor as stored;
use crate::domain::role::Role;

/// Seconds per time step.
pub const STEP_SECONDS: u64 = 30;
/// Recovery codes made at enrolment (and at each regeneration).
pub const RECOVERY_CODES: usize = 10;
/// The name authenticator apps show beside the account.
const ISSUER: &str = "Portcullis";
/// 160-bit secrets, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Letters of recovery codes: digits and lowercase letters without i, l, o and u, so that
/// none is mistaken for another when copied from paper.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters of a recovery code: 16 of 32 letters, 80 random bits.
const RECOVERY_LEN: usize = 16;

/// Who must use a second factor to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecondFactorPolicy {
    /// Every account.
    Everyone,
    /// Administrators and approvers (named in some approval tier, directly or by group).
    Privileged,
    /// Nobody; users may turn it on for themselves.
    Optional,
}

/// Whether an account with this role must sign in with a second factor.
pub fn required(policy: SecondFactorPolicy, role: Role, is_approver: bool) -> bool {
    match policy {
        SecondFactorPolicy::Everyone => true,
        SecondFactorPolicy::Privileged => role == Role::Admin || is_approver,
        SecondFactorPolicy::Optional => false,
    }
}

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill(secret.as_mut_slice());
    secret
}

fn totp(secret: &[u8], username: &str) -> Result<TOTP, AuthError> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        username.replace(':', "_"),
    )
    .map_err(AuthError::internal)
}

/// What enrolment shows: the secret for typing in, and the QR code for scanning.
pub struct Enrolment {
    /// Base32, in groups of four.
    pub secret: String,
    /// An `<svg>` element (no XML prologue), to place in the page as it is.
    pub qr_svg: String,
}

/// The secret's base32 text and its `otpauth://` QR code.
pub fn enrolment(secret: &[u8], username: &str) -> Result<Enrolment, AuthError> {
    let totp = totp(secret, username)?;
    let base32 = totp.get_secret_base32();
    let grouped = base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let code = QrCode::new(totp.get_url().as_bytes()).map_err(AuthError::internal)?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let qr_svg = match image.find("<svg") {
        Some(start) => image[start..].to_owned(),
        None => return Err(AuthError::internal("the QR code renderer made no <svg>")),
    };
    Ok(Enrolment {
        secret: grouped,
        qr_svg,
    })
}

/// The secret as it is sealed for storage: base32 text.
pub fn encode_secret(secret: &[u8]) -> String {
    base32_text(secret)
}

/// The secret from its stored text.
pub fn decode_secret(text: &str) -> Result<Vec<u8>, AuthError> {
    totp_rs::Secret::Encoded(text.to_owned())
        .to_bytes()
        .map_err(|e| AuthError::internal(format!("a stored second-factor secret: {e:?}")))
}

fn base32_text(secret: &[u8]) -> String {
    totp_rs::Secret::Raw(secret.to_vec())
        .to_encoded()
        .to_string()
}

/// The current time step.
pub fn current_step() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() / STEP_SECONDS as i64
}

/// What someone typed on the code page, sorted out.
#[derive(Debug, PartialEq, Eq)]
pub enum Typed {
    /// Six digits (spaces ignored).
    Totp(String),
    /// Anything else that has the shape of a recovery code, normalised.
    Recovery(String),
    /// Neither.
    Malformed,
}

/// Reads the code field: spaces and dashes are ignored, letters compared in lower case.
pub fn parse(input: &str) -> Typed {
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if cleaned.len() == 6 && cleaned.bytes().all(|b| b.is_ascii_digit()) {
        Typed::Totp(cleaned)
    } else if cleaned.len() == RECOVERY_LEN && cleaned.bytes().all(|b| ALPHABET.contains(&b)) {
        Typed::Recovery(cleaned)
    } else {
        Typed::Malformed
    }
}

/// The time step, within one of `now_step`, whose code is `code` (the latest if several):
/// the caller still has to make sure that step was not used before.
pub fn matching_step(secret: &[u8], code: &str, now_step: i64) -> Result<Option<i64>, AuthError> {
    // The account name is only for the QR code.
    let totp = totp(secret, "-")?;
    let mut found = None;
    // Every candidate is computed and compared in constant time, whatever matches.
    for step in [now_step - 1, now_step, now_step + 1] {
        let Ok(at) = u64::try_from(step) else {
            continue;
        };
        let expected = totp.generate(at * STEP_SECONDS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    Ok(found)
}

/// Ten new recovery codes, as shown to the user (`xxxx-xxxx-xxxx-xxxx`).
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw: Vec<u8> = (0..RECOVERY_LEN)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
                .collect();
            raw.chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What is stored of a recovery code: SHA-256 of the user id and the normalised code. The
/// codes carry 80 random bits, so a fast hash cannot be reversed by guessing (argon2 would
/// only slow down sign-ins); the user id keeps equal codes of two users apart.
pub fn recovery_hash(user: Uuid, normalised: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(b"portcullis/recovery-code/v1");
    hasher.update(user.as_bytes());
    hasher.update(normalised.as_bytes());
    hasher.finalize().to_vec()
}

/// The sealed secret, opened (the user id is the associated data, so a secret copied to
/// another user's row does not open).
pub fn open_secret(secrets: &SecretBox, user: Uuid, sealed: &[u8]) -> AuthResult<Vec<u8>> {
    let text = secrets.open(user, sealed).map_err(AuthError::internal)?;
    decode_secret(&text)
}

/// Checks a code of a user whose second factor is on, using it up when it is right: a TOTP
/// code is accepted only for a step after the last one accepted, a recovery code only once.
pub async fn check_code(
    pool: &PgPool,
    secrets: &SecretBox,
    user: Uuid,
    input: &str,
) -> AuthResult<bool> {
    match parse(input) {
        Typed::Totp(code) => {
            let Some(factor) = stored::get(pool, user).await? else {
                return Ok(false);
            };
            if !factor.confirmed {
                return Ok(false);
            }
            let secret = open_secret(secrets, user, &factor.secret_sealed)?;
            match matching_step(&secret, &code, current_step())? {
                Some(step) => Ok(stored::accept_step(pool, user, step).await?),
                None => Ok(false),
            }
        }
        Typed::Recovery(code) => {
            Ok(stored::use_recovery_code(pool, user, &recovery_hash(user, &code)).await?)
        }
        Typed::Malformed => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_the_step_before_and_after_match_but_not_two_away() {
        let secret = new_secret();
        let t = totp(&secret, "alice").unwrap();
        let now = 1_000_000;
        let code = |step: i64| t.generate(step as u64 * STEP_SECONDS);
        assert_eq!(matching_step(&secret, &code(now), now).unwrap(), Some(now));
        assert_eq!(
            matching_step(&secret, &code(now - 1), now).unwrap(),
            Some(now - 1)
        );
        assert_eq!(
            matching_step(&secret, &code(now + 1), now).unwrap(),
            Some(now + 1)
        );
        for far in [now - 2, now + 2] {
            let c = code(far);
            // A code of another step may by chance equal one in the window (one in 10^6).
            if [now - 1, now, now + 1].iter().all(|s| code(*s) != c) {
                assert_eq!(matching_step(&secret, &c, now).unwrap(), None);
            }
        }
    }

    #[test]
    fn typed_codes_are_told_apart_and_normalised() {
        assert_eq!(parse(" 123 456 "), Typed::Totp("123456".into()));
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let upper = codes[0].to_uppercase();
        assert_eq!(parse(&upper), Typed::Recovery(codes[0].replace('-', "")));
        assert_eq!(parse("12345"), Typed::Malformed);
        assert_eq!(parse("iiii-iiii-iiii-iiii"), Typed::Malformed);
    }

    #[test]
    fn recovery_hashes_differ_by_user() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(recovery_hash(a, "x"), recovery_hash(a, "x"));
        assert_ne!(recovery_hash(a, "x"), recovery_hash(b, "x"));
    }

    #[test]
    fn the_qr_code_is_an_svg_element_and_the_secret_reads_back() {
        let secret = new_secret();
        let e = enrolment(&secret, "alice").unwrap();
        assert!(e.qr_svg.starts_with("<svg"));
        assert!(e.qr_svg.ends_with("</svg>"));
        let typed = totp_rs::Secret::Encoded(e.secret.replace(' ', ""))
            .to_bytes()
            .unwrap();
        assert_eq!(typed, secret);
    }

    #[test]
    fn policies_name_who_needs_a_second_factor() {
        use SecondFactorPolicy::*;
        assert!(required(Everyone, Role::User, false));
        assert!(required(Privileged, Role::Admin, false));
        assert!(required(Privileged, Role::User, true));
        assert!(!required(Privileged, Role::User, false));
        assert!(!required(Privileged, Role::Auditor, false));
        assert!(!required(Optional, Role::Admin, true));
    }
}
