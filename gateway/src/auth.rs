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
//!
//! **Throttling.** [`LoginThrottle`] bounds online guessing: after `failures_max` failed
//! logins for one user name, or from one peer address, each less than `lockout` after
//! the one before, further attempts for that name or from that address are refused for
//! `lockout` without their secret being checked (so no guess can succeed meanwhile).
//! Names are tracked whether or not they exist, so a lockout tells nothing about which
//! names are real. Both tables are bounded ([`LOGIN_FAILURE_ENTRIES_MAX`]): an attacker
//! cycling names or addresses pushes out the entries that failed least recently instead
//! of growing memory.

use fincore_engine::{Role, UserId};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};
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

/// Entries each failure table (user names, peer addresses) holds at most. Every address
/// may fail only `failures_max` times per lockout period, so keeping this many entries
/// live at once takes hundreds of addresses failing together; entries go stale (and are
/// dropped) one lockout period after their last failure. About 150 bytes an entry with
/// its index: well under a megabyte a table.
pub const LOGIN_FAILURE_ENTRIES_MAX: usize = 4096;

/// Bytes of a user name the throttle tells apart: the wire's user name field.
const NAME_KEY_LEN: usize = 32;

/// Which limit refuses a login attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locked {
    /// The peer address had too many failures.
    Address,
    /// The user name had too many failures.
    User,
}

/// What a failed attempt locked, if anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewLocks {
    /// The attempt's peer address is now locked.
    pub address: bool,
    /// The attempt's user name is now locked.
    pub user: bool,
}

/// Failed-login counting per user name and per peer address (see the module doc). The
/// caller supplies the time: the gateway's clock (the engine has none).
#[derive(Debug)]
pub struct LoginThrottle {
    failures_max: u32,
    lockout: Duration,
    users: FailureTable<[u8; NAME_KEY_LEN]>,
    peers: FailureTable<IpAddr>,
}

impl LoginThrottle {
    /// A throttle locking a name or an address for `lockout` at its `failures_max`-th
    /// failure in a run (each less than `lockout` after the one before), keeping at most
    /// `entries_max` names and as many addresses.
    pub fn new(failures_max: u32, lockout: Duration, entries_max: usize) -> LoginThrottle {
        assert!(failures_max >= 1, "at least one failure before a lockout");
        assert!(entries_max >= 1, "the tables hold at least one entry");
        LoginThrottle {
            failures_max,
            lockout,
            users: FailureTable::new(entries_max),
            peers: FailureTable::new(entries_max),
        }
    }

    /// Whether an attempt for `name` from `peer` at `now` must be refused without its
    /// secret being checked, and by which limit (the address's is checked first).
    pub fn locked(&self, name: &[u8], peer: IpAddr, now: Instant) -> Option<Locked> {
        if self.peers.locked(&peer_key(peer), now) {
            Some(Locked::Address)
        } else if self.users.locked(&name_key(name), now) {
            Some(Locked::User)
        } else {
            None
        }
    }

    /// Records a failed attempt (unknown name or wrong secret) and says what it locked.
    pub fn failed(&mut self, name: &[u8], peer: IpAddr, now: Instant) -> NewLocks {
        let (max, lockout) = (self.failures_max, self.lockout);
        let address = self.peers.fail(peer_key(peer), now, max, lockout);
        let user = self.users.fail(name_key(name), now, max, lockout);
        NewLocks { address, user }
    }

    /// Records a successful login: the name's failures are forgotten, unless it is
    /// locked (a lockout in progress always runs its course). The address's failures
    /// are kept: a correct login for one user does not excuse guesses at other users
    /// from the same address.
    pub fn succeeded(&mut self, name: &[u8], now: Instant) {
        self.users.forgive(&name_key(name), now);
    }

    /// Entries held: (user names, addresses). Each is at most the `entries_max` given
    /// to [`LoginThrottle::new`].
    pub fn entries(&self) -> (usize, usize) {
        (self.users.entries.len(), self.peers.entries.len())
    }
}

/// The table key of a user name: the zero-padded wire field. Longer names cannot come
/// over the wire; they would share the key of their first 32 bytes.
fn name_key(name: &[u8]) -> [u8; NAME_KEY_LEN] {
    let mut key = [0u8; NAME_KEY_LEN];
    let len = name.len().min(NAME_KEY_LEN);
    key[..len].copy_from_slice(&name[..len]);
    key
}

/// The table key of a peer address: IPv4 as is (an IPv4-mapped IPv6 address as its
/// IPv4 address), IPv6 by its /64 prefix, since one host usually holds a whole /64 and
/// could otherwise count as 2^64 addresses.
fn peer_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Failure runs by key, bounded. `std`'s `HashMap` keeps its keyed (SipHash) hasher on
/// purpose: the keys are chosen by clients.
#[derive(Debug)]
struct FailureTable<K> {
    entries: HashMap<K, Failures>,
    /// The keys of `entries` by the stamp of their last failure, least recent first.
    by_recency: BTreeMap<u64, K>,
    next_stamp: u64,
    entries_max: usize,
}

/// One key's current run of failures.
#[derive(Clone, Copy, Debug)]
struct Failures {
    /// Failures in the run, each less than the lockout after the one before.
    count: u32,
    /// When the last one happened.
    last: Instant,
    /// Its position in `by_recency`.
    stamp: u64,
    /// Attempts are refused unchecked until then.
    locked_until: Option<Instant>,
}

impl<K: Copy + Eq + Hash> FailureTable<K> {
    fn new(entries_max: usize) -> FailureTable<K> {
        FailureTable {
            entries: HashMap::new(),
            by_recency: BTreeMap::new(),
            next_stamp: 0,
            entries_max,
        }
    }

    fn locked(&self, key: &K, now: Instant) -> bool {
        let until = self.entries.get(key).and_then(|f| f.locked_until);
        until.is_some_and(|until| now < until)
    }

    /// Counts a failure of `key`; true if it starts a lockout.
    fn fail(&mut self, key: K, now: Instant, failures_max: u32, lockout: Duration) -> bool {
        self.drop_stale(now, lockout);
        let fresh = Failures { count: 0, last: now, stamp: 0, locked_until: None };
        let mut failures = match self.entries.get(&key) {
            Some(&failures) => {
                self.by_recency.remove(&failures.stamp);
                failures
            }
            None => {
                if self.entries.len() >= self.entries_max {
                    self.evict_least_recent();
                }
                fresh
            }
        };
        if now.saturating_duration_since(failures.last) >= lockout {
            // The run is broken (or its lockout is over): start a new one.
            failures = fresh;
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        failures.stamp = self.next_stamp;
        self.next_stamp += 1;
        let locks = failures.count >= failures_max;
        let starts = locks && failures.locked_until.is_none_or(|until| now >= until);
        if locks {
            // The lockout is at most u32::MAX ms (the configuration's type): no overflow.
            failures.locked_until = Some(now + lockout);
        }
        self.by_recency.insert(failures.stamp, key);
        self.entries.insert(key, failures);
        assert!(self.entries.len() <= self.entries_max, "the table stays bounded");
        debug_assert_eq!(self.entries.len(), self.by_recency.len());
        starts
    }

    /// Forgets `key`'s failures unless it is locked.
    fn forgive(&mut self, key: &K, now: Instant) {
        if self.locked(key, now) {
            return;
        }
        if let Some(failures) = self.entries.remove(key) {
            self.by_recency.remove(&failures.stamp);
        }
        debug_assert_eq!(self.entries.len(), self.by_recency.len());
    }

    /// Drops the entries whose last failure is `lockout` or more ago: their run is over
    /// and so is any lockout. They are the least recent, so this stops at the first live
    /// one (amortized constant time a failure).
    fn drop_stale(&mut self, now: Instant, lockout: Duration) {
        while let Some((_, key)) = self.by_recency.first_key_value() {
            let last = self.entries.get(key).map(|f| f.last);
            if last.is_some_and(|last| now.saturating_duration_since(last) < lockout) {
                break;
            }
            self.evict_least_recent();
        }
    }

    fn evict_least_recent(&mut self) {
        if let Some((_, key)) = self.by_recency.pop_first() {
            self.entries.remove(&key);
        }
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

    const LOCKOUT: Duration = Duration::from_secs(30);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_name_locks_at_its_fifth_failure_from_any_address_and_unlocks_after_the_lockout() {
        let mut throttle = LoginThrottle::new(5, LOCKOUT, 100);
        let t0 = Instant::now();
        for i in 0..4u8 {
            let peer = ip(&format!("10.0.0.{i}"));
            assert_eq!(throttle.locked(b"alice", peer, t0), None);
            assert_eq!(throttle.failed(b"alice", peer, t0 + ms(u64::from(i))), NewLocks::default());
        }
        let fifth = throttle.failed(b"alice", ip("10.0.0.9"), t0 + ms(10));
        assert_eq!(fifth, NewLocks { address: false, user: true });
        let until = t0 + ms(10) + LOCKOUT;
        for peer in ["10.0.0.1", "192.168.1.1", "::1"] {
            assert_eq!(throttle.locked(b"alice", ip(peer), until - ms(1)), Some(Locked::User));
        }
        assert_eq!(throttle.locked(b"bob", ip("10.0.0.1"), t0 + ms(20)), None);
        assert_eq!(throttle.locked(b"alice", ip("10.0.0.1"), until), None, "lockout over");
        // A new run starts from scratch.
        assert_eq!(throttle.failed(b"alice", ip("10.0.0.1"), until), NewLocks::default());
        assert_eq!(throttle.locked(b"alice", ip("10.0.0.2"), until), None);
    }

    #[test]
    fn an_address_locks_at_its_fifth_failure_whatever_the_names() {
        let mut throttle = LoginThrottle::new(5, LOCKOUT, 100);
        let (t0, attacker) = (Instant::now(), ip("10.1.1.1"));
        for name in ["a", "b", "c", "d"] {
            assert!(!throttle.failed(name.as_bytes(), attacker, t0).address);
        }
        assert_eq!(throttle.failed(b"e", attacker, t0), NewLocks { address: true, user: false });
        // Right or wrong, nothing from that address is checked now, for any name.
        assert_eq!(throttle.locked(b"alice", attacker, t0 + ms(1)), Some(Locked::Address));
        assert_eq!(throttle.locked(b"a", attacker, t0 + LOCKOUT - ms(1)), Some(Locked::Address));
        // Other addresses are not affected, not even for the names it tried.
        assert_eq!(throttle.locked(b"a", ip("10.1.1.2"), t0 + ms(1)), None);
        assert_eq!(throttle.locked(b"a", attacker, t0 + LOCKOUT), None);
    }

    #[test]
    fn failures_further_apart_than_the_lockout_never_lock() {
        let mut throttle = LoginThrottle::new(3, LOCKOUT, 100);
        let t0 = Instant::now();
        for i in 0..10u32 {
            let at = t0 + LOCKOUT * i;
            assert_eq!(throttle.failed(b"alice", ip("10.0.0.1"), at), NewLocks::default());
            assert_eq!(throttle.locked(b"alice", ip("10.0.0.1"), at), None);
        }
        // Less than the lockout apart, failures continue the run.
        let late = t0 + LOCKOUT * 9 + LOCKOUT - ms(1);
        let locks = throttle.failed(b"alice", ip("10.0.0.1"), late);
        assert_eq!(locks, NewLocks { address: false, user: false });
        let locks = throttle.failed(b"alice", ip("10.0.0.1"), late + LOCKOUT - ms(1));
        assert_eq!(locks, NewLocks { address: true, user: true });
    }

    #[test]
    fn success_forgets_the_names_failures_but_not_a_lockout_or_the_addresss() {
        let mut throttle = LoginThrottle::new(3, LOCKOUT, 100);
        let (t0, home) = (Instant::now(), ip("10.0.0.1"));
        throttle.failed(b"alice", home, t0);
        throttle.failed(b"alice", ip("10.0.0.2"), t0);
        throttle.succeeded(b"alice", t0);
        // Two more for alice do not lock her: her count restarted.
        throttle.failed(b"alice", ip("10.0.0.3"), t0);
        assert_eq!(throttle.failed(b"alice", ip("10.0.0.4"), t0), NewLocks::default());
        // The address kept its failure: two more lock it.
        throttle.failed(b"bob", home, t0);
        assert!(throttle.failed(b"carol", home, t0).address);
        // A lockout in progress is not lifted by a success (the server refuses the
        // attempt before checking it anyway).
        assert!(throttle.failed(b"alice", ip("10.0.0.5"), t0).user);
        throttle.succeeded(b"alice", t0 + ms(1));
        assert_eq!(throttle.locked(b"alice", ip("10.9.9.9"), t0 + ms(2)), Some(Locked::User));
    }

    #[test]
    fn the_tables_stay_bounded_keeping_the_most_recent_failures() {
        let cap = 64;
        let mut throttle = LoginThrottle::new(5, LOCKOUT, cap);
        let t0 = Instant::now();
        // A fresh name and address at every attempt, as fast as possible.
        for i in 0..10 * cap as u32 {
            let peer = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            throttle.failed(format!("user{i}").as_bytes(), peer, t0 + ms(u64::from(i)));
            let (users, peers) = throttle.entries();
            assert!(users <= cap && peers <= cap, "{users} names, {peers} addresses");
        }
        assert_eq!(throttle.entries(), (cap, cap));
        // The newest are kept: four more failures lock the last name; the first is gone.
        let last = format!("user{}", 10 * cap - 1);
        let now = t0 + ms(10 * cap as u64);
        for i in 0..4u8 {
            throttle.failed(last.as_bytes(), ip(&format!("172.16.0.{i}")), now);
        }
        assert_eq!(throttle.locked(last.as_bytes(), ip("172.16.1.1"), now), Some(Locked::User));
        // Stale entries are dropped at the next failure once the lockout has passed.
        throttle.failed(b"late", ip("192.0.2.1"), now + LOCKOUT + LOCKOUT);
        assert_eq!(throttle.entries(), (1, 1));
    }

    #[test]
    fn ipv6_peers_count_by_their_64_bit_prefix() {
        let mut throttle = LoginThrottle::new(2, LOCKOUT, 100);
        let t0 = Instant::now();
        throttle.failed(b"a", ip("2001:db8:1:2::1"), t0);
        assert!(throttle.failed(b"b", ip("2001:db8:1:2:ffff::9"), t0).address);
        assert_eq!(throttle.locked(b"c", ip("2001:db8:1:2::77"), t0), Some(Locked::Address));
        assert_eq!(throttle.locked(b"c", ip("2001:db8:1:3::1"), t0), None);
        // An IPv4-mapped address is its IPv4 address.
        throttle.failed(b"a", ip("::ffff:10.0.0.1"), t0);
        assert!(throttle.failed(b"b", ip("10.0.0.1"), t0).address);
    }
}
