//! User secrets: how they are stored (hashed) and checked at login.
//!
//! A secret is stored as a salted SHA-256 digest, `SHA-256(salt || secret)` with a
//! random 16-byte salt, written `sha256:<32 hex salt>:<64 hex digest>` in the server
//! configuration. The engine never sees secrets (DESIGN.md section 4): only the
//! gateway checks them, at login.
//!
//! **Why salted SHA-256 and not a password hash (argon2, scrypt, bcrypt).** Logins are
//! checked on the gateway's event-loop thread, the same thread that serves every other
//! session. A memory-hard password hash is slow on purpose, tens of milliseconds per
//! check, and that time would stall every connected session at each login (and make a
//! login flood a denial of service). A password hash buys its slowness to protect
//! *guessable* human passwords; API secrets here are expected to be long random strings
//! (128 bits or more), for which brute force is hopeless whatever the hash, and one
//! SHA-256 costs well under a microsecond. The salt still keeps equal secrets from
//! having equal hashes and defeats precomputed tables. An operator who issues short
//! or human-chosen secrets gives that up; the comments of `demo.toml` (the template for
//! an operator's configuration) say so.
//!
//! **Timing.** Digests are compared with [`subtle::ConstantTimeEq`], so the time taken
//! does not tell how many leading bytes matched. An unknown user name is checked against
//! a fixed dummy hash, so it costs the same as a wrong secret and gives the same answer
//! (`None`): a client cannot tell which user names exist.

use fincore_engine::{Role, UserId};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// Salt length in bytes: 128 bits, enough that no two generated salts ever collide.
pub const SALT_LEN: usize = 16;

/// SHA-256 digest length in bytes.
pub const DIGEST_LEN: usize = 32;

/// The scheme tag at the start of the text form.
const SCHEME: &str = "sha256";

/// Why a secret hash could not be parsed or generated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The text is not `sha256:<32 hex salt>:<64 hex digest>`; says which part is wrong.
    #[error("secret hash {0} (expected sha256:<32 hex digit salt>:<64 hex digit digest>)")]
    Format(String),
    /// The operating system's random source failed while making a salt.
    #[error("cannot draw a random salt: {0}")]
    Random(getrandom::Error),
}

/// A stored secret: `SHA-256(salt || secret)` and its salt. Holding one reveals nothing
/// usable about the secret if the secret is long and random (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash {
    salt: [u8; SALT_LEN],
    digest: [u8; DIGEST_LEN],
}

impl SecretHash {
    /// Hashes `secret` with the given salt.
    pub fn new(secret: &[u8], salt: [u8; SALT_LEN]) -> SecretHash {
        SecretHash { salt, digest: digest(&salt, secret) }
    }

    /// Hashes `secret` with a fresh random salt from the operating system.
    pub fn generate(secret: &[u8]) -> Result<SecretHash, AuthError> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(AuthError::Random)?;
        Ok(SecretHash::new(secret, salt))
    }

    /// Parses the text form `sha256:<32 hex salt>:<64 hex digest>`.
    pub fn parse(text: &str) -> Result<SecretHash, AuthError> {
        let bad = |why: &str| AuthError::Format(why.to_string());
        let mut parts = text.trim().split(':');
        let (Some(scheme), Some(salt), Some(digest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("must have three parts separated by ':'"));
        };
        if scheme != SCHEME {
            let shown: String = scheme.chars().take(16).collect();
            return Err(AuthError::Format(format!("has unknown scheme {shown:?}")));
        }
        let salt = decode_hex::<SALT_LEN>(salt).ok_or_else(|| bad("has a malformed salt"))?;
        let digest =
            decode_hex::<DIGEST_LEN>(digest).ok_or_else(|| bad("has a malformed digest"))?;
        Ok(SecretHash { salt, digest })
    }

    /// True if `secret` is the one this hash was made from. The digests are compared in
    /// constant time.
    pub fn verify(&self, secret: &[u8]) -> bool {
        let candidate = digest(&self.salt, secret);
        bool::from(candidate.ct_eq(&self.digest))
    }
}

/// `SHA-256(salt || secret)`.
fn digest(salt: &[u8; SALT_LEN], secret: &[u8]) -> [u8; DIGEST_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret);
    hasher.finalize().into()
}

/// Exactly `2 * N` hex digits as `N` bytes.
fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

impl std::fmt::Display for SecretHash {
    /// The text form, `sha256:<32 hex salt>:<64 hex digest>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (salt, digest) = (hex::encode(self.salt), hex::encode(self.digest));
        write!(f, "{SCHEME}:{salt}:{digest}")
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretHash({self})")
    }
}

impl std::str::FromStr for SecretHash {
    type Err = AuthError;

    fn from_str(text: &str) -> Result<SecretHash, AuthError> {
        SecretHash::parse(text)
    }
}

/// Checks login attempts against the configured users.
#[derive(Clone, Debug)]
pub struct Authenticator {
    users: HashMap<String, (UserId, Role, SecretHash)>,
    /// Checked when the name is unknown, so that costs what a wrong secret costs.
    dummy: SecretHash,
}

impl Authenticator {
    /// An authenticator for these users, given as (name, id, role, secret hash). A name
    /// given twice keeps its last entry (the configuration refuses duplicates).
    pub fn new(users: impl IntoIterator<Item = (String, UserId, Role, SecretHash)>) -> Self {
        let users =
            users.into_iter().map(|(name, id, role, hash)| (name, (id, role, hash))).collect();
        // Any fixed hash will do: nobody knows a secret for it that could matter, since a
        // match on it is discarded anyway.
        let dummy = SecretHash::new(b"fincore: no such user", [0x5a; SALT_LEN]);
        Authenticator { users, dummy }
    }

    /// The user id and role for a correct name and secret; `None` for a wrong secret or
    /// an unknown name, which take the same time.
    pub fn authenticate(&self, name: &str, secret: &[u8]) -> Option<(UserId, Role)> {
        match self.users.get(name) {
            Some(&(user, role, hash)) => hash.verify(secret).then_some((user, role)),
            None => {
                // Do the same work as for a known user; the result cannot matter.
                std::hint::black_box(self.dummy.verify(secret));
                None
            }
        }
    }

    /// Number of users known.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True if no user can log in.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; SALT_LEN] = *b"0123456789abcdef";

    #[test]
    fn digest_is_sha256_of_salt_then_secret() {
        // Reference value: python3 -c "import hashlib;
        //   print(hashlib.sha256(b'0123456789abcdef' + b'abc').hexdigest())"
        let hash = SecretHash::new(b"abc", SALT);
        let text = hash.to_string();
        assert!(text.starts_with("sha256:30313233343536373839616263646566:"));
        assert_eq!(
            text.rsplit(':').next().unwrap(),
            "ac3897f0ee12bf2590264376fd11d08e1248218af61f5a1fb08ed0fcd8a66557"
        );
    }

    #[test]
    fn text_form_round_trips() {
        let hash = SecretHash::new(b"s3cret", SALT);
        let text = hash.to_string();
        assert_eq!(text.len(), 6 + 1 + 32 + 1 + 64);
        assert_eq!(SecretHash::parse(&text).unwrap(), hash);
        assert_eq!(text.parse::<SecretHash>().unwrap(), hash);
        let upper = text.to_uppercase().replace("SHA256", "sha256");
        assert_eq!(SecretHash::parse(&upper).unwrap(), hash);
        let generated = SecretHash::generate(b"s3cret").unwrap();
        assert_eq!(SecretHash::parse(&generated.to_string()).unwrap(), generated);
        assert_ne!(generated, SecretHash::generate(b"s3cret").unwrap(), "salts differ");
    }

    #[test]
    fn verify_accepts_the_secret_only() {
        let hash = SecretHash::generate(b"right horse battery staple").unwrap();
        assert!(hash.verify(b"right horse battery staple"));
        assert!(!hash.verify(b"right horse battery stapl"));
        assert!(!hash.verify(b"right horse battery staple "));
        assert!(!hash.verify(b""));
        assert!(SecretHash::new(b"", SALT).verify(b""));
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let good = SecretHash::new(b"x", SALT).to_string();
        let message = |text: &str| SecretHash::parse(text).unwrap_err().to_string();
        assert!(message("").contains("three parts"));
        assert!(message("sha256:00").contains("three parts"));
        assert!(message(&format!("{good}:00")).contains("three parts"));
        assert!(message(&good.replace("sha256", "md5")).contains("unknown scheme \"md5\""));
        assert!(message(&good.replacen(":3031", ":303", 1)).contains("malformed salt"));
        assert!(message(&good.replacen(":3031", ":zz31", 1)).contains("malformed salt"));
        let short_digest = &good[..good.len() - 2];
        assert!(message(short_digest).contains("malformed digest"));
        assert!(message("sha256::").contains("expected sha256:<32 hex digit salt>"));
    }

    #[test]
    fn authenticator_answers_the_same_for_wrong_secret_and_unknown_user() {
        let users = [
            ("alice".to_string(), UserId(2), Role::Trader, SecretHash::new(b"a", SALT)),
            ("root".to_string(), UserId(1), Role::Admin, SecretHash::new(b"r", SALT)),
        ];
        let auth = Authenticator::new(users);
        assert_eq!(auth.len(), 2);
        assert_eq!(auth.authenticate("alice", b"a"), Some((UserId(2), Role::Trader)));
        assert_eq!(auth.authenticate("root", b"r"), Some((UserId(1), Role::Admin)));
        assert_eq!(auth.authenticate("alice", b"r"), None);
        assert_eq!(auth.authenticate("nobody", b"a"), None);
        assert_eq!(auth.authenticate("nobody", b"fincore: no such user"), None);
    }
}
