//! The server configuration: a TOML file (see `demo.toml`, the embedded demo, for a
//! commented example of every key).
//!
//! Loading is two steps. The text is deserialized into private `Raw*` structs that
//! refuse unknown keys, so a typo is an error rather than a silent default; then it is
//! validated into [`ServerConfig`], whose every check names the offending item, field
//! and value. Decimals are written as TOML strings (`"0.01"`) and parsed exactly with
//! `rust_decimal`, so no value ever passes through a binary float.
//!
//! A loaded configuration is known to build: [`ServerConfig::from_toml`] runs
//! [`ServerConfig::setup_commands`], which converts every decimal to the engine's
//! integer units and applies the engine's own definition rules, so a configuration the
//! engine would reject is refused at start-up with a readable message instead of as a
//! `Rejected` event at the head of a new journal.

use crate::RunnerConfig;
use crate::auth::{Authenticator, SecretHash};
use fincore_engine::units::{decimal_to_dec, decimal_to_minor, price_to_ticks, qty_to_lots};
use fincore_engine::{
    ASSETS_MAX, AccountId, AssetId, ClientPaymentId, CommandBody, Dec, EngineLimits,
    INSTRUMENTS_MAX, InstrumentId, InstrumentSpec, Price, Qty, RejectReason, Role, Symbol, UserId,
};
use fincore_journal::Durability;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The embedded demo configuration, what `fincore serve` runs without `--config`.
pub const DEMO_TOML: &str = include_str!("demo.toml");

/// The demo users' names and plaintext secrets, as (name, secret). They are public (the
/// README lists them) and `demo.toml` holds only their hashes.
pub const DEMO_SECRETS: &[(&str, &str)] = &[
    ("admin", "admin-secret"),
    ("alice", "alice-secret"),
    ("bob", "bob-secret"),
    ("carol", "carol-secret"),
    ("payops", "payops-secret"),
    ("load0", "load0-secret"),
    ("load1", "load1-secret"),
    ("load2", "load2-secret"),
    ("load3", "load3-secret"),
    ("load4", "load4-secret"),
    ("load5", "load5-secret"),
    ("load6", "load6-secret"),
    ("load7", "load7-secret"),
];

/// First client payment id of the setup deposits (see `ServerConfig::setup_commands`):
/// ids from 2^63 up are reserved for them.
pub const SETUP_DEPOSIT_ID_BASE: u64 = 1 << 63;

/// Default listen address: loopback only, so a demo server is not exposed by accident.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:7100";

/// Default data directory, relative to the working directory (DESIGN.md section 9).
pub const DATA_DIR_DEFAULT: &str = "./fincore-data";

/// Longest user name in bytes. Names are printable ASCII without spaces, so they can be
/// typed on a command line and carried in a fixed-width login field.
pub const USER_NAME_LEN_MAX: usize = 32;

/// Largest asset scale the engine accepts: 10^18 minor units still fit an i64.
const ASSET_SCALE_MAX: u8 = 18;

/// Widest price band the engine accepts (plus or minus 100 %).
const BAND_BPS_MAX: u32 = 10_000;

/// Largest fee or rebate the engine accepts (100 % of notional).
const FEE_BPS_MAX: i32 = 10_000;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    // The cause is part of the message rather than an error `source`, so that an
    // error chain printed in full (`anyhow`'s `{:#}`) does not say it twice.
    #[error("{}: {why}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        why: std::io::Error,
    },
    /// The file was read but its contents are not a valid configuration.
    #[error("{}: {why}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: Box<ConfigError>,
    },
    /// Not valid TOML, or a key that does not exist, or a value of the wrong type. The
    /// message gives the line and column.
    #[error("{0}")]
    Syntax(String),
    /// Well-formed, but a value is not acceptable. The message names the item, the field
    /// and the value.
    #[error("{0}")]
    Invalid(String),
}

/// The whole server configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// TCP address the gateway listens on (`listen`, default [`LISTEN_DEFAULT`]).
    pub listen: SocketAddr,
    /// Data directory: journal, snapshots, engine limits (`data_dir`, default
    /// [`DATA_DIR_DEFAULT`]).
    pub data_dir: PathBuf,
    /// Journal durability (`durability = "process" | "fsync"`, default `process`).
    pub durability: Durability,
    /// Engine capacities for a new data directory (`[limits]`, each key optional).
    pub limits: EngineLimits,
    /// Per-session limits of the gateway (`[session]`, each key optional).
    pub session: SessionLimits,
    /// `[[assets]]`, in file order (which is the order they are created in).
    pub assets: Vec<AssetConfig>,
    /// `[[instruments]]`, in file order.
    pub instruments: Vec<InstrumentConfig>,
    /// `[[users]]`, in file order.
    pub users: Vec<UserConfig>,
    /// `[[accounts]]`, in file order.
    pub accounts: Vec<AccountConfig>,
    /// `deny_list`: account ids on the compliance deny-list at setup (they can neither
    /// send nor receive payments).
    pub deny_list: Vec<u32>,
    /// Test aid, never read from the file (`fincore serve --synced-log`): see
    /// `JournalConfig::synced_log`.
    pub synced_log: Option<PathBuf>,
    /// Test aid, never read from the file: the journal's segment size (default
    /// `SEGMENT_SIZE_DEFAULT`), so that a test fills a segment quickly.
    pub segment_size: u64,
}

/// Per-session limits of the gateway: the `[session]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Sessions open at once; further connections are refused.
    pub max_connections: usize,
    /// Token-bucket refill rate: messages per second one session may sustain.
    pub rate_per_sec: u32,
    /// Token-bucket size: messages one session may send in a burst.
    pub burst: u32,
    /// Bytes queued to one session before it is disconnected as a slow consumer.
    pub outbound_buffer_max: usize,
    /// Shortest heartbeat interval a client may ask for, in milliseconds.
    pub heartbeat_min_ms: u32,
    /// Longest heartbeat interval a client may ask for, in milliseconds.
    pub heartbeat_max_ms: u32,
    /// A connection that has not logged in within this many milliseconds is closed.
    pub login_timeout_ms: u32,
    /// Malformed or refused messages a session may send before it is disconnected.
    pub error_budget: u32,
    /// Failed logins (each within `login_lockout_ms` of the one before) after which a
    /// user name, or a peer address, is locked out (`auth::LoginThrottle`).
    pub login_failures_max: u32,
    /// How long a lockout lasts, and how far apart failures may be and still count
    /// together, in milliseconds.
    pub login_lockout_ms: u32,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            // Far more than a venue's member firms need, few enough that the per-session
            // buffers (up to `outbound_buffer_max` each) stay within memory.
            max_connections: 256,
            // Above what one session can push through the engine, so the bucket only
            // stops runaway clients, not fast ones.
            rate_per_sec: 100_000,
            burst: 10_000,
            // About 100 000 execution reports: seconds of backlog for a live client.
            outbound_buffer_max: 8 << 20,
            heartbeat_min_ms: 100,
            heartbeat_max_ms: 60_000,
            login_timeout_ms: 5_000,
            error_budget: 10,
            // At most 5 guesses per name and per address every 30 s (about 14 000 a
            // day), while a user who mistypes a secret a few times is not locked out;
            // and a locked-out user waits half a minute, not a call to the operator.
            login_failures_max: 5,
            login_lockout_ms: 30_000,
        }
    }
}

/// An asset: `[[assets]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetConfig {
    /// Asset id, below [`ASSETS_MAX`].
    pub id: u16,
    /// Symbol, e.g. `USD` (printable ASCII, at most [`Symbol::LEN`] bytes).
    pub symbol: String,
    /// Decimals of one minor unit: 6 for micro-dollars, 8 for satoshis (at most 18).
    pub scale: u8,
    /// Largest single transfer, authorization or withdrawal (`transfer_max`), if any.
    pub transfer_max: Option<Decimal>,
    /// Default rolling 24-hour outgoing payment limit of every account
    /// (`daily_outgoing_max`), if any.
    pub daily_outgoing_max: Option<Decimal>,
}

/// A user: `[[users]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserConfig {
    /// User id, at least 1 (0 is the built-in system admin that runs the setup).
    pub id: u32,
    /// Login name, unique.
    pub name: String,
    /// `"trader"`, `"admin"` or `"operator"` (payment operator: deposits and
    /// withdrawals, reads every account).
    pub role: Role,
    /// Hash of the login secret (`sha256:<salt>:<digest>`).
    pub secret_hash: SecretHash,
}

/// An account: `[[accounts]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountConfig {
    /// Account id.
    pub id: u32,
    /// Name of the owning user.
    pub owner: String,
    /// Deposits made at setup, as (asset symbol, amount in that asset), in the order of
    /// `[[assets]]`. Written `deposits = { USD = "1000000", BTC = "10" }`.
    pub deposits: Vec<(String, Decimal)>,
    /// Credit limits by asset symbol (`credit_limits = { USD = "5000" }`): how far
    /// below zero payments may take the available balance.
    pub credit_limits: Vec<(String, Decimal)>,
    /// The account's own rolling 24-hour outgoing limits by asset symbol
    /// (`daily_outgoing_max = { USD = "20000" }`), overriding the asset's default.
    pub daily_outgoing_max: Vec<(String, Decimal)>,
}

/// An instrument: `[[instruments]]`. Decimals are as people write them; the engine's
/// integer units are derived by [`ServerConfig::instrument_spec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentConfig {
    /// Instrument id, below [`INSTRUMENTS_MAX`].
    pub id: u16,
    /// Ticker, e.g. `BTC-USD`.
    pub symbol: String,
    /// Symbol of the base asset (what is bought and sold).
    pub base: String,
    /// Symbol of the quote asset (what it is paid with).
    pub quote: String,
    /// Smallest price step, in quote per one base.
    pub tick_size: Decimal,
    /// Smallest quantity step, in base.
    pub lot_size: Decimal,
    /// Price the band is centred on before the first trade, in quote per base; a
    /// multiple of `tick_size`.
    pub reference_price: Decimal,
    /// Half-width of the accepted price band, in basis points (1 to 10 000).
    pub band_bps: u32,
    /// Largest quantity of one order, in base; a multiple of `lot_size`.
    pub qty_max: Decimal,
    /// Largest notional of one order, in quote; whole minor units.
    pub notional_max: Decimal,
    /// Fee of the resting side in basis points of notional; negative is a rebate.
    pub maker_fee_bps: i32,
    /// Fee of the incoming side in basis points of notional.
    pub taker_fee_bps: i32,
    /// Account (listed in `[[accounts]]`) that collects the fees, in the quote asset.
    pub fee_account: u32,
}

impl ServerConfig {
    /// Parses and validates a configuration.
    pub fn from_toml(text: &str) -> Result<ServerConfig, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let config = raw.into_config()?;
        // Building the setup is the complete check: every conversion the engine needs.
        config.setup_commands()?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<ServerConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|why| ConfigError::Read { path: path.to_path_buf(), why })?;
        ServerConfig::from_toml(&text)
            .map_err(|e| ConfigError::File { path: path.to_path_buf(), why: Box::new(e) })
    }

    /// The embedded demo configuration ([`DEMO_TOML`]).
    pub fn demo() -> ServerConfig {
        ServerConfig::from_toml(DEMO_TOML).expect("the embedded demo configuration is valid")
    }

    /// The user with this login name.
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The asset with this symbol.
    pub fn asset_by_symbol(&self, symbol: &str) -> Option<&AssetConfig> {
        self.assets.iter().find(|a| a.symbol == symbol)
    }

    /// The instrument with this symbol.
    pub fn instrument_by_symbol(&self, symbol: &str) -> Option<&InstrumentConfig> {
        self.instruments.iter().find(|i| i.symbol == symbol)
    }

    /// Checks logins against the configured users.
    pub fn authenticator(&self) -> Authenticator {
        Authenticator::new(
            self.users.iter().map(|u| (u.name.clone(), UserId(u.id), u.role, u.secret_hash)),
        )
    }

    /// How the runner should open the data directory.
    pub fn runner_config(&self) -> RunnerConfig {
        RunnerConfig {
            durability: self.durability,
            limits: self.limits,
            synced_log: self.synced_log.clone(),
            segment_size: self.segment_size,
            ..RunnerConfig::new(&self.data_dir)
        }
    }

    /// The engine commands that build this configuration in a fresh engine, to be run
    /// as the system user in this order: assets, users, accounts, instruments (whose fee
    /// accounts must exist first), deposits, payment limits, then the deny-list (last,
    /// so that listed accounts still receive their setup deposits).
    pub fn setup_commands(&self) -> Result<Vec<CommandBody>, ConfigError> {
        self.validate()?;
        let mut setup = Vec::new();
        for asset in &self.assets {
            let symbol = Symbol::new(&asset.symbol).expect("validated");
            let asset_id = AssetId(asset.id);
            setup.push(CommandBody::CreateAsset { asset: asset_id, symbol, scale: asset.scale });
        }
        for user in &self.users {
            setup.push(CommandBody::CreateUser { user: UserId(user.id), role: user.role });
        }
        for account in &self.accounts {
            let owner = UserId(self.user(&account.owner).expect("validated").id);
            setup.push(CommandBody::CreateAccount { account: AccountId(account.id), owner });
        }
        for instrument in &self.instruments {
            setup.push(CommandBody::CreateInstrument(self.instrument_spec(instrument)?));
        }
        self.push_deposits(&mut setup)?;
        self.push_payment_limits(&mut setup)?;
        for &account in &self.deny_list {
            setup.push(CommandBody::SetAccountBlocked {
                account: AccountId(account),
                blocked: true,
            });
        }
        Ok(setup)
    }

    /// Asset payment policies, then account limits (one command per account and asset).
    fn push_payment_limits(&self, setup: &mut Vec<CommandBody>) -> Result<(), ConfigError> {
        let amount = |label: &str, value: Option<Decimal>, asset: &AssetConfig| {
            value
                .map(|v| minor_units("amount", v, asset))
                .transpose()
                .map_err(|what| invalid(format!("{label}: {what}")))
        };
        for asset in &self.assets {
            let label = format!("asset {}", asset.symbol);
            let transfer_max =
                amount(&format!("{label}: transfer_max"), asset.transfer_max, asset)?;
            let velocity_24h =
                amount(&format!("{label}: daily_outgoing_max"), asset.daily_outgoing_max, asset)?;
            if transfer_max.is_some() || velocity_24h.is_some() {
                let asset = AssetId(asset.id);
                setup.push(CommandBody::SetPaymentLimits { asset, transfer_max, velocity_24h });
            }
        }
        for account in &self.accounts {
            for asset in &self.assets {
                let find = |list: &[(String, Decimal)]| {
                    list.iter().find(|(symbol, _)| *symbol == asset.symbol).map(|(_, v)| *v)
                };
                let (credit, daily) =
                    (find(&account.credit_limits), find(&account.daily_outgoing_max));
                if credit.is_none() && daily.is_none() {
                    continue;
                }
                let label = format!("account {}", account.id);
                let credit_label = format!("{label}: credit_limits.{}", asset.symbol);
                let credit_limit = amount(&credit_label, credit, asset)?.unwrap_or(0);
                let daily_label = format!("{label}: daily_outgoing_max.{}", asset.symbol);
                let velocity_24h = amount(&daily_label, daily, asset)?;
                setup.push(CommandBody::SetAccountLimits {
                    account: AccountId(account.id),
                    asset: AssetId(asset.id),
                    credit_limit,
                    velocity_24h,
                });
            }
        }
        Ok(())
    }

    /// The engine's definition of an instrument: decimals converted to ticks, lots and
    /// minor units, and checked against the engine's rules.
    pub fn instrument_spec(&self, i: &InstrumentConfig) -> Result<InstrumentSpec, ConfigError> {
        let invalid = |what: String| invalid(format!("{}: {what}", i.label()));
        let asset = |field: &str, symbol: &str| {
            let found = self.asset_by_symbol(symbol);
            found.ok_or_else(|| invalid(format!("{field} {symbol:?} is not a listed asset")))
        };
        let (base, quote) = (asset("base", &i.base)?, asset("quote", &i.quote)?);
        let symbol = Symbol::new(&i.symbol).ok_or_else(|| invalid(symbol_problem(&i.symbol)))?;
        let tick_size = step("tick_size", i.tick_size).map_err(invalid)?;
        let lot_size = step("lot_size", i.lot_size).map_err(invalid)?;
        check_settlement(i, base, quote).map_err(invalid)?;
        let mut spec = InstrumentSpec {
            instrument: InstrumentId(i.id),
            symbol,
            base: AssetId(base.id),
            quote: AssetId(quote.id),
            tick_size,
            lot_size,
            reference_price: Price(0),
            band_bps: i.band_bps,
            qty_max: Qty(0),
            notional_max: 0,
            maker_fee_bps: i.maker_fee_bps,
            taker_fee_bps: i.taker_fee_bps,
            fee_account: AccountId(i.fee_account),
        };
        let (reference, tick) = (i.reference_price, i.tick_size);
        spec.reference_price = price_to_ticks(&spec, reference).map_err(|r| {
            invalid(unit_problem("reference_price", reference, "tick_size", tick, r))
        })?;
        spec.qty_max = qty_to_lots(&spec, i.qty_max)
            .map_err(|r| invalid(unit_problem("qty_max", i.qty_max, "lot_size", i.lot_size, r)))?;
        spec.notional_max = minor_units("notional_max", i.notional_max, quote).map_err(invalid)?;
        Ok(spec)
    }

    /// Deposit commands, account by account; checks that no asset's total supply
    /// overflows the engine's i64. Setup deposits carry client payment ids
    /// [`SETUP_DEPOSIT_ID_BASE`] + 1, + 2, ... in order: the top half of the id space is
    /// reserved for them, so an operator's own deposit ids (below 2^63) never collide.
    fn push_deposits(&self, setup: &mut Vec<CommandBody>) -> Result<(), ConfigError> {
        let mut supply: BTreeMap<u16, i64> = BTreeMap::new();
        let mut setup_deposits = 1;
        for account in &self.accounts {
            for (symbol, amount) in &account.deposits {
                let label = format!("account {}: deposits.{symbol}", account.id);
                let asset = self.asset_by_symbol(symbol);
                let asset = asset.ok_or_else(|| invalid(format!("{label}: not a listed asset")))?;
                let amount = minor_units("amount", *amount, asset)
                    .map_err(|what| invalid(format!("{label}: {what}")))?;
                let total = supply.entry(asset.id).or_insert(0);
                *total = total.checked_add(amount).ok_or_else(|| {
                    invalid(format!("{label}: total deposits of {symbol} overflow the engine"))
                })?;
                let (account, asset) = (AccountId(account.id), AssetId(asset.id));
                let client_payment_id = ClientPaymentId(SETUP_DEPOSIT_ID_BASE + setup_deposits);
                setup_deposits += 1;
                setup.push(CommandBody::Deposit { account, asset, amount, client_payment_id });
            }
        }
        Ok(())
    }

    /// Every check that needs no unit conversion: ranges, uniqueness, references.
    fn validate(&self) -> Result<(), ConfigError> {
        check_limits(&self.limits)?;
        check_session(&self.session)?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir must not be empty".to_string()));
        }
        self.check_assets()?;
        self.check_users()?;
        self.check_accounts()?;
        self.check_instruments()
    }

    fn check_assets(&self) -> Result<(), ConfigError> {
        let (mut ids, mut symbols) = (BTreeSet::new(), BTreeSet::new());
        for asset in &self.assets {
            let label = format!("asset {:?} (id {})", asset.symbol, asset.id);
            let problem = if usize::from(asset.id) >= ASSETS_MAX {
                format!("id {} is not below {ASSETS_MAX}", asset.id)
            } else if !ids.insert(asset.id) {
                format!("duplicate asset id {}", asset.id)
            } else if !symbols.insert(asset.symbol.as_str()) {
                format!("duplicate asset symbol {:?}", asset.symbol)
            } else if Symbol::new(&asset.symbol).is_none() {
                symbol_problem(&asset.symbol)
            } else if asset.scale > ASSET_SCALE_MAX {
                format!("scale {} is above {ASSET_SCALE_MAX}", asset.scale)
            } else {
                continue;
            };
            return Err(invalid(format!("{label}: {problem}")));
        }
        Ok(())
    }

    fn check_users(&self) -> Result<(), ConfigError> {
        let (mut ids, mut names) = (BTreeSet::new(), BTreeSet::new());
        for user in &self.users {
            let label = format!("user {:?} (id {})", user.name, user.id);
            let problem = if user.id == 0 {
                "id 0 is the built-in system admin; user ids start at 1".to_string()
            } else if user.id >= self.limits.users_max {
                format!("id {} is not below limits.users_max {}", user.id, self.limits.users_max)
            } else if !ids.insert(user.id) {
                format!("duplicate user id {}", user.id)
            } else if !names.insert(user.name.as_str()) {
                format!("duplicate user name {:?}", user.name)
            } else if !valid_name(&user.name) {
                format!(
                    "name {:?} must be 1 to {USER_NAME_LEN_MAX} printable ASCII characters \
                     without spaces",
                    user.name
                )
            } else if user.secret_hash.verify(b"") {
                "secret_hash is the hash of an empty secret, which anyone could log in with"
                    .to_string()
            } else {
                continue;
            };
            return Err(invalid(format!("{label}: {problem}")));
        }
        Ok(())
    }

    fn check_accounts(&self) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        let accounts_max = self.limits.accounts_max;
        for account in &self.accounts {
            let problem = if account.id >= accounts_max {
                format!("id {} is not below limits.accounts_max {accounts_max}", account.id)
            } else if !ids.insert(account.id) {
                format!("duplicate account id {}", account.id)
            } else if self.user(&account.owner).is_none() {
                format!("owner {:?} is not a user listed under [[users]]", account.owner)
            } else if let Some((field, symbol)) = [
                ("deposits", &account.deposits),
                ("credit_limits", &account.credit_limits),
                ("daily_outgoing_max", &account.daily_outgoing_max),
            ]
            .into_iter()
            .find_map(|(field, list)| {
                list.iter()
                    .find(|(s, _)| self.asset_by_symbol(s).is_none())
                    .map(|(s, _)| (field, s))
            }) {
                format!("{field}.{symbol}: {symbol:?} is not a listed asset")
            } else {
                continue;
            };
            return Err(invalid(format!("account {}: {problem}", account.id)));
        }
        let mut listed = BTreeSet::new();
        for &id in &self.deny_list {
            if !ids.contains(&id) {
                return Err(invalid(format!(
                    "deny_list: {id} is not an account under [[accounts]]"
                )));
            }
            if !listed.insert(id) {
                return Err(invalid(format!("deny_list: account {id} is listed twice")));
            }
        }
        Ok(())
    }

    fn check_instruments(&self) -> Result<(), ConfigError> {
        let (mut ids, mut symbols) = (BTreeSet::new(), BTreeSet::new());
        for i in &self.instruments {
            let problem = if usize::from(i.id) >= INSTRUMENTS_MAX {
                format!("id {} is not below {INSTRUMENTS_MAX}", i.id)
            } else if !ids.insert(i.id) {
                format!("duplicate instrument id {}", i.id)
            } else if !symbols.insert(i.symbol.as_str()) {
                format!("duplicate instrument symbol {:?}", i.symbol)
            } else if i.base == i.quote {
                format!("base and quote are both {:?}", i.base)
            } else if !self.accounts.iter().any(|a| a.id == i.fee_account) {
                format!("fee_account {} is not an account listed under [[accounts]]", i.fee_account)
            } else if i.band_bps == 0 || i.band_bps > BAND_BPS_MAX {
                format!("band_bps {} is not between 1 and {BAND_BPS_MAX}", i.band_bps)
            } else if let Some(problem) = fee_problem(i.maker_fee_bps, i.taker_fee_bps) {
                problem
            } else {
                continue;
            };
            return Err(invalid(format!("{}: {problem}", i.label())));
        }
        Ok(())
    }
}

impl InstrumentConfig {
    fn label(&self) -> String {
        format!("instrument {:?} (id {})", self.symbol, self.id)
    }
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

fn valid_name(name: &str) -> bool {
    let printable = name.bytes().all(|b| b.is_ascii_graphic());
    !name.is_empty() && name.len() <= USER_NAME_LEN_MAX && printable
}

fn symbol_problem(symbol: &str) -> String {
    format!(
        "symbol {symbol:?} must be 1 to {} printable ASCII characters without spaces",
        Symbol::LEN
    )
}

/// The engine's fee rules, as a message if broken.
fn fee_problem(maker: i32, taker: i32) -> Option<String> {
    if !(0..=FEE_BPS_MAX).contains(&taker) {
        Some(format!("taker_fee_bps {taker} is not between 0 and {FEE_BPS_MAX}"))
    } else if maker.abs() > FEE_BPS_MAX {
        Some(format!("maker_fee_bps {maker} is not between -{FEE_BPS_MAX} and {FEE_BPS_MAX}"))
    } else if taker + maker < 0 {
        // A maker rebate is paid out of the taker fee of the same fill.
        Some(format!("maker_fee_bps {maker} rebates more than taker_fee_bps {taker} collects"))
    } else {
        None
    }
}

/// A tick or lot size as the engine's exact [`Dec`].
fn step(field: &str, value: Decimal) -> Result<Dec, String> {
    if value <= Decimal::ZERO {
        return Err(format!("{field} \"{value}\" must be positive"));
    }
    decimal_to_dec(value).ok_or_else(|| format!("{field} \"{value}\" has too many digits"))
}

/// The engine settles in whole minor units: one lot must be a whole number of base
/// minor units and one tick times one lot a whole number of quote minor units.
fn check_settlement(
    i: &InstrumentConfig,
    base: &AssetConfig,
    quote: &AssetConfig,
) -> Result<(), String> {
    if decimal_to_minor(i.lot_size, base.scale).is_err() {
        return Err(format!(
            "lot_size \"{}\" is not a whole number of {} minor units (scale {})",
            i.lot_size, base.symbol, base.scale
        ));
    }
    let tick_lot = i.tick_size.checked_mul(i.lot_size);
    if tick_lot.is_none_or(|v| decimal_to_minor(v, quote.scale).is_err()) {
        return Err(format!(
            "tick_size x lot_size = \"{}\" x \"{}\" is not a whole number of {} minor units \
             (scale {})",
            i.tick_size, i.lot_size, quote.symbol, quote.scale
        ));
    }
    Ok(())
}

/// A positive amount of `asset` in whole minor units.
fn minor_units(field: &str, value: Decimal, asset: &AssetConfig) -> Result<i64, String> {
    if value <= Decimal::ZERO {
        return Err(format!("{field} \"{value}\" must be positive"));
    }
    decimal_to_minor(value, asset.scale).map_err(|reason| match reason {
        RejectReason::ArithmeticOverflow => format!("{field} \"{value}\" is too large"),
        _ => format!(
            "{field} \"{value}\" is finer than one {} minor unit (scale {})",
            asset.symbol, asset.scale
        ),
    })
}

/// Why a price or quantity did not convert to ticks or lots.
fn unit_problem(
    field: &str,
    value: Decimal,
    step_field: &str,
    step: Decimal,
    reason: RejectReason,
) -> String {
    match reason {
        RejectReason::PriceNotPositive | RejectReason::QtyNotPositive => {
            format!("{field} \"{value}\" must be positive")
        }
        RejectReason::PriceOffTick | RejectReason::QtyOffLot => {
            format!("{field} \"{value}\" is not a multiple of {step_field} \"{step}\"")
        }
        RejectReason::ArithmeticOverflow => format!("{field} \"{value}\" is too large"),
        other => format!("{field} \"{value}\" cannot be converted ({other:?})"),
    }
}

fn check_limits(limits: &EngineLimits) -> Result<(), ConfigError> {
    limits.check().map_err(|why| invalid(format!("limits.{why}")))
}

fn check_session(session: &SessionLimits) -> Result<(), ConfigError> {
    let required = [
        ("max_connections", session.max_connections),
        ("rate_per_sec", session.rate_per_sec as usize),
        ("burst", session.burst as usize),
        ("outbound_buffer_max", session.outbound_buffer_max),
        ("heartbeat_min_ms", session.heartbeat_min_ms as usize),
        ("login_timeout_ms", session.login_timeout_ms as usize),
        ("login_failures_max", session.login_failures_max as usize),
        ("login_lockout_ms", session.login_lockout_ms as usize),
    ];
    if let Some((name, _)) = required.iter().find(|(_, value)| *value == 0) {
        return Err(invalid(format!("session.{name} must be at least 1")));
    }
    if session.heartbeat_min_ms > session.heartbeat_max_ms {
        return Err(invalid(format!(
            "session.heartbeat_min_ms {} is above session.heartbeat_max_ms {}",
            session.heartbeat_min_ms, session.heartbeat_max_ms
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The file as written: unknown keys refused, values not yet checked.
// ---------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<String>,
    durability: Option<String>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    session: RawSession,
    #[serde(default)]
    assets: Vec<RawAsset>,
    #[serde(default)]
    instruments: Vec<RawInstrument>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    #[serde(default)]
    deny_list: Vec<u32>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    users_max: Option<u32>,
    accounts_max: Option<u32>,
    orders_max: Option<u32>,
    levels_per_side_max: Option<u32>,
    open_orders_per_account_max: Option<u32>,
    payments_max: Option<u32>,
    payments_expected: Option<u32>,
    orders_expected: Option<u32>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    max_connections: Option<usize>,
    rate_per_sec: Option<u32>,
    burst: Option<u32>,
    outbound_buffer_max: Option<usize>,
    heartbeat_min_ms: Option<u32>,
    heartbeat_max_ms: Option<u32>,
    login_timeout_ms: Option<u32>,
    error_budget: Option<u32>,
    login_failures_max: Option<u32>,
    login_lockout_ms: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsset {
    id: u16,
    symbol: String,
    scale: u8,
    transfer_max: Option<DecimalText>,
    daily_outgoing_max: Option<DecimalText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    id: u32,
    name: String,
    role: String,
    secret_hash: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    id: u32,
    owner: String,
    #[serde(default)]
    deposits: BTreeMap<String, DecimalText>,
    #[serde(default)]
    credit_limits: BTreeMap<String, DecimalText>,
    #[serde(default)]
    daily_outgoing_max: BTreeMap<String, DecimalText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstrument {
    id: u16,
    symbol: String,
    base: String,
    quote: String,
    tick_size: DecimalText,
    lot_size: DecimalText,
    reference_price: DecimalText,
    band_bps: u32,
    qty_max: DecimalText,
    notional_max: DecimalText,
    maker_fee_bps: i32,
    taker_fee_bps: i32,
    fee_account: u32,
}

/// A decimal as written: a string, or a TOML integer (exact too). A TOML float is
/// refused, since it may already have been rounded to binary.
struct DecimalText(String);

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DecimalVisitor)
    }
}

struct DecimalVisitor;

impl serde::de::Visitor<'_> for DecimalVisitor {
    type Value = DecimalText;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a decimal number written as a string, e.g. \"0.01\"")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DecimalText, E> {
        Ok(DecimalText(text.to_string()))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<DecimalText, E> {
        Ok(DecimalText(value.to_string()))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<DecimalText, E> {
        Ok(DecimalText(value.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<DecimalText, E> {
        Err(E::custom(format!(
            "decimals are written as strings (\"{value}\"), so no binary float rounds them"
        )))
    }
}

impl DecimalText {
    /// The exact decimal; the error names the field.
    fn parse(&self, label: &str, field: &str) -> Result<Decimal, ConfigError> {
        Decimal::from_str_exact(self.0.trim()).map_err(|e| {
            invalid(format!("{label}: {field} {:?} is not a decimal number ({e})", self.0))
        })
    }
}

impl RawConfig {
    fn into_config(self) -> Result<ServerConfig, ConfigError> {
        let listen_text = self.listen.as_deref().unwrap_or(LISTEN_DEFAULT);
        let listen = listen_text.parse::<SocketAddr>().map_err(|_| {
            invalid(format!(
                "listen {listen_text:?} is not an IP address and port, e.g. \"{LISTEN_DEFAULT}\""
            ))
        })?;
        let durability = match self.durability.as_deref() {
            None | Some("process") => Durability::Process,
            Some("fsync") => Durability::Fsync,
            Some(other) => {
                let message = format!("durability {other:?} is not \"process\" or \"fsync\"");
                return Err(invalid(message));
            }
        };
        let asset_order: Vec<String> = self.assets.iter().map(|a| a.symbol.clone()).collect();
        Ok(ServerConfig {
            listen,
            data_dir: PathBuf::from(self.data_dir.as_deref().unwrap_or(DATA_DIR_DEFAULT)),
            durability,
            limits: self.limits.into_limits(),
            session: self.session.into_session(),
            assets: self.assets.into_iter().map(RawAsset::into_asset).collect::<Result<_, _>>()?,
            instruments: (self.instruments.into_iter().map(RawInstrument::into_instrument))
                .collect::<Result<_, _>>()?,
            users: self.users.into_iter().map(RawUser::into_user).collect::<Result<_, _>>()?,
            accounts: (self.accounts.into_iter().map(|a| a.into_account(&asset_order)))
                .collect::<Result<_, _>>()?,
            deny_list: self.deny_list,
            synced_log: None,
            segment_size: fincore_journal::SEGMENT_SIZE_DEFAULT,
        })
    }
}

impl RawLimits {
    fn into_limits(self) -> EngineLimits {
        let default = EngineLimits::default();
        EngineLimits {
            users_max: self.users_max.unwrap_or(default.users_max),
            accounts_max: self.accounts_max.unwrap_or(default.accounts_max),
            orders_max: self.orders_max.unwrap_or(default.orders_max),
            levels_per_side_max: self.levels_per_side_max.unwrap_or(default.levels_per_side_max),
            open_orders_per_account_max: self
                .open_orders_per_account_max
                .unwrap_or(default.open_orders_per_account_max),
            payments_max: self.payments_max.unwrap_or(default.payments_max),
            payments_expected: self.payments_expected.unwrap_or(default.payments_expected),
            orders_expected: self.orders_expected.unwrap_or(default.orders_expected),
        }
    }
}

impl RawSession {
    fn into_session(self) -> SessionLimits {
        let default = SessionLimits::default();
        SessionLimits {
            max_connections: self.max_connections.unwrap_or(default.max_connections),
            rate_per_sec: self.rate_per_sec.unwrap_or(default.rate_per_sec),
            burst: self.burst.unwrap_or(default.burst),
            outbound_buffer_max: self.outbound_buffer_max.unwrap_or(default.outbound_buffer_max),
            heartbeat_min_ms: self.heartbeat_min_ms.unwrap_or(default.heartbeat_min_ms),
            heartbeat_max_ms: self.heartbeat_max_ms.unwrap_or(default.heartbeat_max_ms),
            login_timeout_ms: self.login_timeout_ms.unwrap_or(default.login_timeout_ms),
            error_budget: self.error_budget.unwrap_or(default.error_budget),
            login_failures_max: self.login_failures_max.unwrap_or(default.login_failures_max),
            login_lockout_ms: self.login_lockout_ms.unwrap_or(default.login_lockout_ms),
        }
    }
}

impl RawAsset {
    fn into_asset(self) -> Result<AssetConfig, ConfigError> {
        let label = format!("asset {:?} (id {})", self.symbol, self.id);
        let optional = |text: &Option<DecimalText>, field: &str| {
            text.as_ref().map(|t| t.parse(&label, field)).transpose()
        };
        Ok(AssetConfig {
            transfer_max: optional(&self.transfer_max, "transfer_max")?,
            daily_outgoing_max: optional(&self.daily_outgoing_max, "daily_outgoing_max")?,
            id: self.id,
            symbol: self.symbol,
            scale: self.scale,
        })
    }
}

impl RawUser {
    fn into_user(self) -> Result<UserConfig, ConfigError> {
        let label = format!("user {:?} (id {})", self.name, self.id);
        let role = match self.role.as_str() {
            "trader" => Role::Trader,
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            other => {
                let message =
                    format!("{label}: role {other:?} is not \"trader\", \"admin\" or \"operator\"");
                return Err(invalid(message));
            }
        };
        let secret_hash = SecretHash::parse(&self.secret_hash)
            .map_err(|e| invalid(format!("{label}: secret_hash: {e}")))?;
        Ok(UserConfig { id: self.id, name: self.name, role, secret_hash })
    }
}

impl RawAccount {
    /// Deposits are put in the order of `[[assets]]` (unknown symbols last, refused
    /// later), so the setup does not depend on how the table was written.
    fn into_account(self, asset_order: &[String]) -> Result<AccountConfig, ConfigError> {
        let label = format!("account {}", self.id);
        let by_asset = |table: &BTreeMap<String, DecimalText>, field: &str| {
            let mut list = Vec::with_capacity(table.len());
            for (symbol, amount) in table {
                let amount = amount.parse(&label, &format!("{field}.{symbol}"))?;
                list.push((symbol.clone(), amount));
            }
            let rank = |symbol: &str| asset_order.iter().position(|s| s == symbol);
            list.sort_by_key(|(symbol, _)| rank(symbol).unwrap_or(usize::MAX));
            Ok::<_, ConfigError>(list)
        };
        Ok(AccountConfig {
            deposits: by_asset(&self.deposits, "deposits")?,
            credit_limits: by_asset(&self.credit_limits, "credit_limits")?,
            daily_outgoing_max: by_asset(&self.daily_outgoing_max, "daily_outgoing_max")?,
            id: self.id,
            owner: self.owner,
        })
    }
}

impl RawInstrument {
    fn into_instrument(self) -> Result<InstrumentConfig, ConfigError> {
        let label = format!("instrument {:?} (id {})", self.symbol, self.id);
        let decimal = |text: &DecimalText, field: &str| text.parse(&label, field);
        Ok(InstrumentConfig {
            tick_size: decimal(&self.tick_size, "tick_size")?,
            lot_size: decimal(&self.lot_size, "lot_size")?,
            reference_price: decimal(&self.reference_price, "reference_price")?,
            qty_max: decimal(&self.qty_max, "qty_max")?,
            notional_max: decimal(&self.notional_max, "notional_max")?,
            id: self.id,
            symbol: self.symbol,
            base: self.base,
            quote: self.quote,
            band_bps: self.band_bps,
            maker_fee_bps: self.maker_fee_bps,
            taker_fee_bps: self.taker_fee_bps,
            fee_account: self.fee_account,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo configuration with `keys` added to its `[session]` table.
    fn demo_with_session(keys: &str) -> Result<ServerConfig, ConfigError> {
        let text = DEMO_TOML.replacen("[session]\n", &format!("[session]\n{keys}\n"), 1);
        assert_ne!(text, DEMO_TOML, "the demo has a [session] table");
        ServerConfig::from_toml(&text)
    }

    #[test]
    fn login_throttling_keys_are_read_and_checked() {
        let defaults = SessionLimits::default();
        assert_eq!((defaults.login_failures_max, defaults.login_lockout_ms), (5, 30_000));
        let config = demo_with_session("login_failures_max = 3\nlogin_lockout_ms = 1500").unwrap();
        assert_eq!(
            (config.session.login_failures_max, config.session.login_lockout_ms),
            (3, 1_500)
        );
        for key in ["login_failures_max", "login_lockout_ms"] {
            let message = demo_with_session(&format!("{key} = 0")).unwrap_err().to_string();
            assert!(message.contains(&format!("session.{key} must be at least 1")), "{message}");
        }
    }
}
