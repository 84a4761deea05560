//! The server configuration: the embedded demo builds a working venue, a custom file is
//! read as written (payment settings included), every validation names what is wrong,
//! and logins check secrets.

use fincore_engine::units::{dec_to_decimal, decimal_to_dec};
use fincore_engine::{
    AccountId, AssetId, ClientPaymentId, Command, CommandBody, Engine, EngineLimits, Event, Price,
    Qty, Role, SYSTEM_USER, Symbol, UserId,
};
use fincore_gateway::auth::SecretHash;
use fincore_gateway::config::{
    ConfigError, DEMO_SECRETS, DEMO_TOML, SETUP_DEPOSIT_ID_BASE, ServerConfig, SessionLimits,
};
use fincore_journal::Durability;
use rust_decimal::Decimal;
use std::str::FromStr;

/// Applies the setup to a fresh engine; returns every `Rejected` event, with its command.
fn rejects_of(setup: &[CommandBody]) -> Vec<(CommandBody, Event)> {
    let mut engine = Engine::new(EngineLimits::default());
    let mut rejects = Vec::new();
    for (seq, body) in (1..).zip(setup) {
        let mut events = Vec::new();
        let command = Command { seq, time_ns: 0, user: SYSTEM_USER, body: *body };
        engine.apply(&command, &mut events);
        assert!(!events.is_empty());
        let rejected = events.into_iter().filter(|e| matches!(e, Event::Rejected(_)));
        rejects.extend(rejected.map(|e| (*body, e)));
    }
    engine.check_invariants().unwrap();
    rejects
}

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

#[test]
fn demo_parses_and_its_setup_applies_without_a_reject() {
    let demo = ServerConfig::demo();
    assert_eq!(demo, ServerConfig::from_toml(DEMO_TOML).unwrap());
    assert_eq!(demo.listen.to_string(), "127.0.0.1:7100");
    assert_eq!(demo.data_dir.to_str(), Some("./fincore-data"));
    assert_eq!(demo.durability, Durability::Process);
    assert_eq!(demo.limits, EngineLimits::default());
    assert_eq!(demo.session, SessionLimits::default());
    let symbols: Vec<&str> = demo.assets.iter().map(|a| a.symbol.as_str()).collect();
    assert_eq!(symbols, ["USD", "BTC", "ETH"]);
    assert_eq!(demo.users.len(), 13);
    assert_eq!(demo.accounts.len(), 12);
    assert!(demo.deny_list.is_empty());
    let btc = demo.instrument_by_symbol("BTC-USD").unwrap();
    let spec = demo.instrument_spec(btc).unwrap();
    assert_eq!(spec.reference_price, Price(6_000_000));
    assert_eq!(spec.qty_max, Qty(1_000_000));
    assert_eq!(spec.notional_max, 10_000_000 * 1_000_000);
    assert_eq!(spec.fee_account, AccountId(1));
    assert_eq!(demo.user("admin").unwrap().role, Role::Admin);
    let payops = demo.user("payops").unwrap();
    assert_eq!((payops.id, payops.role), (5, Role::Operator));
    let usd = &demo.assets[0];
    assert_eq!((usd.transfer_max, usd.daily_outgoing_max), (Some(d("250000")), Some(d("1000000"))));
    assert!(
        demo.assets[1..].iter().all(|a| (a.transfer_max, a.daily_outgoing_max) == (None, None))
    );
    let carol = demo.accounts.iter().find(|a| a.id == 4).unwrap();
    assert_eq!(carol.credit_limits, [("USD".to_string(), d("5000"))]);
    assert!(demo.accounts.iter().all(|a| a.daily_outgoing_max.is_empty()));

    let setup = demo.setup_commands().unwrap();
    // 3 assets, 13 users, 12 accounts, 2 instruments, 11 funded accounts x 3 assets,
    // USD's payment limits and carol's credit limit.
    assert_eq!(setup.len(), 3 + 13 + 12 + 2 + 11 * 3 + 2);
    // The deposits carry client payment ids from 2^63 + 1 up, in order.
    let deposit_ids: Vec<u64> = setup
        .iter()
        .filter_map(|c| match c {
            CommandBody::Deposit { client_payment_id, .. } => Some(client_payment_id.0),
            _ => None,
        })
        .collect();
    let expected: Vec<u64> = (1..=33).map(|i| SETUP_DEPOSIT_ID_BASE + i).collect();
    assert_eq!(deposit_ids, expected);
    assert_eq!(SETUP_DEPOSIT_ID_BASE, 1 << 63);
    let usd_limits = CommandBody::SetPaymentLimits {
        asset: AssetId(0),
        transfer_max: Some(250_000 * 1_000_000),
        velocity_24h: Some(1_000_000 * 1_000_000),
    };
    let carol_credit = CommandBody::SetAccountLimits {
        account: AccountId(4),
        asset: AssetId(0),
        credit_limit: 5_000 * 1_000_000,
        velocity_24h: None,
    };
    assert_eq!(setup[setup.len() - 2..], [usd_limits, carol_credit]);
    assert_eq!(rejects_of(&setup), vec![]);
}

#[test]
fn demo_secrets_authenticate() {
    let demo = ServerConfig::demo();
    let auth = demo.authenticator();
    assert_eq!(DEMO_SECRETS.len(), demo.users.len());
    for &(name, secret) in DEMO_SECRETS {
        let user = demo.user(name).unwrap();
        assert_eq!(auth.authenticate(name, secret.as_bytes()), Some((UserId(user.id), user.role)));
    }
}

const MINIMAL: &str = r#"
listen = "0.0.0.0:9000"
data_dir = "/var/lib/venue"
durability = "fsync"

[limits]
users_max = 100
orders_max = 5000

[session]
rate_per_sec = 50
heartbeat_max_ms = 10000

[[assets]]
id = 3
symbol = "EUR"
scale = 2

[[assets]]
id = 4
symbol = "GOLD"
scale = 3

[[instruments]]
id = 7
symbol = "GOLD-EUR"
base = "GOLD"
quote = "EUR"
tick_size = "0.5"
lot_size = "0.1"
reference_price = "1800.5"
band_bps = 500
qty_max = 10
notional_max = "50000.00"
maker_fee_bps = -2
taker_fee_bps = 3
fee_account = 20

[[users]]
id = 9
name = "ops"
role = "admin"
secret_hash = "HASH_OPS"

[[users]]
id = 5
name = "dora"
role = "trader"
secret_hash = "HASH_DORA"

[[accounts]]
id = 20
owner = "ops"

[[accounts]]
id = 21
owner = "dora"
deposits = { GOLD = "12.5", EUR = "1000.25" }
"#;

const SALT: [u8; 16] = [7; 16];

fn minimal() -> String {
    let ops = SecretHash::new(b"ops-secret-0123456789", SALT).to_string();
    let dora = SecretHash::new(b"dora-secret-0123456789", SALT).to_string();
    MINIMAL.replace("HASH_OPS", &ops).replace("HASH_DORA", &dora)
}

#[test]
fn a_custom_config_is_read_as_written() {
    let config = ServerConfig::from_toml(&minimal()).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(config.data_dir.to_str(), Some("/var/lib/venue"));
    assert_eq!(config.durability, Durability::Fsync);
    let limits = EngineLimits { users_max: 100, orders_max: 5000, ..EngineLimits::default() };
    assert_eq!(config.limits, limits);
    let session =
        SessionLimits { rate_per_sec: 50, heartbeat_max_ms: 10_000, ..SessionLimits::default() };
    assert_eq!(config.session, session);
    let gold = config.instrument_by_symbol("GOLD-EUR").unwrap();
    assert_eq!((gold.tick_size, gold.qty_max, gold.maker_fee_bps), (d("0.5"), d("10"), -2));
    // Deposits come in the order of [[assets]], not of the inline table.
    let deposits = &config.accounts[1].deposits;
    assert_eq!(deposits, &[("EUR".to_string(), d("1000.25")), ("GOLD".to_string(), d("12.5"))]);
    let runner = config.runner_config();
    assert_eq!((runner.durability, runner.limits), (Durability::Fsync, limits));

    let setup = config.setup_commands().unwrap();
    let (eur, gold_asset) = (AssetId(3), AssetId(4));
    assert_eq!(setup.len(), 2 + 2 + 2 + 1 + 2);
    let symbol = Symbol::new("EUR").unwrap();
    assert_eq!(setup[0], CommandBody::CreateAsset { asset: eur, symbol, scale: 2 });
    assert_eq!(setup[2], CommandBody::CreateUser { user: UserId(9), role: Role::Admin });
    let dora_account = CommandBody::CreateAccount { account: AccountId(21), owner: UserId(5) };
    assert_eq!(setup[5], dora_account);
    let CommandBody::CreateInstrument(spec) = setup[6] else { panic!("{:?}", setup[6]) };
    assert_eq!(dec_to_decimal(spec.tick_size), Some(d("0.5")));
    assert_eq!(spec.lot_size, decimal_to_dec(d("0.1")).unwrap());
    assert_eq!((spec.reference_price, spec.qty_max), (Price(3601), Qty(100)));
    assert_eq!((spec.base, spec.quote, spec.notional_max), (gold_asset, eur, 5_000_000));
    let account = AccountId(21);
    let eur_deposit = CommandBody::Deposit {
        account,
        asset: eur,
        amount: 100_025,
        client_payment_id: ClientPaymentId(SETUP_DEPOSIT_ID_BASE + 1),
    };
    let gold_deposit = CommandBody::Deposit {
        account,
        asset: gold_asset,
        amount: 12_500,
        client_payment_id: ClientPaymentId(SETUP_DEPOSIT_ID_BASE + 2),
    };
    assert_eq!(setup[7..], [eur_deposit, gold_deposit]);
    assert_eq!(rejects_of(&setup), vec![]);
}

/// The minimal config with payment settings: an operator, asset and account limits, a
/// deny-list, a payment capacity.
fn with_payments() -> String {
    let payops = SecretHash::new(b"payops-secret-0123456789", SALT).to_string();
    minimal()
        .replace("durability = \"fsync\"", "durability = \"fsync\"\ndeny_list = [20]")
        .replace("orders_max = 5000", "orders_max = 5000\npayments_max = 1000")
        .replace("scale = 2", "scale = 2\ntransfer_max = \"100.50\"\ndaily_outgoing_max = \"1000\"")
        .replace(
            "deposits = { GOLD = \"12.5\", EUR = \"1000.25\" }",
            "deposits = { GOLD = \"12.5\", EUR = \"1000.25\" }\n\
             credit_limits = { EUR = \"50\" }\n\
             daily_outgoing_max = { GOLD = \"1.5\", EUR = \"200\" }",
        )
        .replace(
            "[[accounts]]\nid = 20",
            &format!(
                "[[users]]\nid = 7\nname = \"payops\"\nrole = \"operator\"\n\
                 secret_hash = \"{payops}\"\n\n[[accounts]]\nid = 20"
            ),
        )
}

#[test]
fn payment_settings_become_setup_commands_after_the_deposits() {
    let text = with_payments();
    let config = ServerConfig::from_toml(&text).unwrap();
    assert_eq!(config.limits.payments_max, 1000);
    assert_eq!(config.deny_list, [20]);
    assert_eq!(config.user("payops").unwrap().role, Role::Operator);
    let eur = &config.assets[0];
    assert_eq!((eur.transfer_max, eur.daily_outgoing_max), (Some(d("100.50")), Some(d("1000"))));
    let dora = &config.accounts[1];
    assert_eq!(dora.credit_limits, [("EUR".to_string(), d("50"))]);
    // In the order of [[assets]], like the deposits.
    let daily = [("EUR".to_string(), d("200")), ("GOLD".to_string(), d("1.5"))];
    assert_eq!(dora.daily_outgoing_max, daily);

    let setup = config.setup_commands().unwrap();
    let (eur, gold) = (AssetId(3), AssetId(4));
    assert_eq!(setup[2], CommandBody::CreateUser { user: UserId(9), role: Role::Admin });
    assert_eq!(setup[4], CommandBody::CreateUser { user: UserId(7), role: Role::Operator });
    // Deposits, then limits (asset, then account by account and asset), then the
    // deny-list last, so that a listed account still gets its setup deposits.
    assert!(matches!(setup[setup.len() - 5], CommandBody::Deposit { asset, .. } if asset == gold));
    let tail = [
        CommandBody::SetPaymentLimits {
            asset: eur,
            transfer_max: Some(10_050),
            velocity_24h: Some(100_000),
        },
        CommandBody::SetAccountLimits {
            account: AccountId(21),
            asset: eur,
            credit_limit: 5_000,
            velocity_24h: Some(20_000),
        },
        CommandBody::SetAccountLimits {
            account: AccountId(21),
            asset: gold,
            credit_limit: 0,
            velocity_24h: Some(1_500),
        },
        CommandBody::SetAccountBlocked { account: AccountId(20), blocked: true },
    ];
    assert_eq!(setup[setup.len() - 4..], tail);
    assert_eq!(rejects_of(&setup), vec![]);
    let auth = config.authenticator();
    assert_eq!(
        auth.authenticate("payops", b"payops-secret-0123456789"),
        Some((UserId(7), Role::Operator))
    );
}

#[test]
fn payment_settings_are_checked() {
    let refused_payments = |from: &str, to: &str, needles: &[&str]| {
        let text = with_payments();
        assert!(text.contains(from), "{from:?} is not in the config");
        let message = match ServerConfig::from_toml(&text.replacen(from, to, 1)) {
            Ok(_) => panic!("accepted with {from:?} -> {to:?}"),
            Err(error) => error.to_string(),
        };
        for needle in needles {
            assert!(message.contains(needle), "{from:?} -> {to:?}: {message:?} lacks {needle:?}");
        }
    };
    refused_payments("deny_list = [20]", "deny_list = [99]", &["deny_list", "99"]);
    refused_payments("deny_list = [20]", "deny_list = [20, 21, 20]", &["deny_list", "20", "twice"]);
    refused_payments("payments_max = 1000", "payments_max = 0", &["limits.payments_max"]);
    refused_payments("\"100.50\"", "\"0\"", &["EUR", "transfer_max", "positive"]);
    refused_payments("\"100.50\"", "\"100.505\"", &["EUR", "transfer_max", "minor unit"]);
    refused_payments("\"100.50\"", "\"lots\"", &["EUR", "transfer_max", "not a decimal"]);
    refused_payments("= \"1000\"", "= \"-1\"", &["EUR", "daily_outgoing_max", "positive"]);
    refused_payments("EUR = \"50\"", "SILVER = \"50\"", &["account 21", "credit_limits.SILVER"]);
    refused_payments("EUR = \"50\"", "EUR = \"0.001\"", &["account 21", "credit_limits.EUR"]);
    refused_payments("GOLD = \"1.5\"", "GOLD = \"1.5001\"", &["daily_outgoing_max.GOLD"]);
    refused_payments("role = \"operator\"", "role = \"auditor\"", &["payops", "\"operator\""]);
}

#[test]
fn an_empty_file_is_the_defaults() {
    let config = ServerConfig::from_toml("").unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:7100");
    assert_eq!(config.data_dir.to_str(), Some("./fincore-data"));
    assert_eq!(config.durability, Durability::Process);
    assert!(config.setup_commands().unwrap().is_empty());
}

/// The error of the minimal config with `from` replaced by `to` (which must occur).
fn error_with(from: &str, to: &str) -> String {
    let text = minimal();
    assert!(text.contains(from), "{from:?} is not in the minimal config");
    match ServerConfig::from_toml(&text.replacen(from, to, 1)) {
        Ok(_) => panic!("accepted with {from:?} -> {to:?}"),
        Err(error) => error.to_string(),
    }
}

/// Asserts the error after the replacement mentions every one of `needles`.
#[track_caller]
fn refused(from: &str, to: &str, needles: &[&str]) {
    let message = error_with(from, to);
    for needle in needles {
        assert!(message.contains(needle), "{from:?} -> {to:?}: {message:?} lacks {needle:?}");
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_refused() {
    refused("durability = \"fsync\"", "durability = \"fsync\"\nlisten_port = 1", &["listen_port"]);
    refused("scale = 2", "scale = 2\nname = \"euro\"", &["unknown field", "name"]);
    refused("rate_per_sec = 50", "rate_per_sec = 50\nrate = 1", &["unknown field", "rate"]);
    refused("users_max = 100", "user_max = 100", &["unknown field", "user_max"]);
    refused("tick_size = \"0.5\"", "tick_size = 0.5", &["tick_size", "written as strings"]);
    refused("id = 3", "id = 70000", &["70000"]);
    refused("[[accounts]]\nid = 20", "[[accounts]]\nid = -1", &["-1"]);
    refused("owner = \"ops\"\n", "", &["missing field", "owner"]);
    refused("listen = \"0.0.0.0:9000\"", "listen = [", &["line"]);
}

#[test]
fn top_level_values_are_checked() {
    refused("\"0.0.0.0:9000\"", "\"localhost:9000\"", &["listen", "localhost:9000"]);
    refused("\"fsync\"", "\"sometimes\"", &["durability", "sometimes"]);
    refused("\"/var/lib/venue\"", "\"\"", &["data_dir"]);
    refused("users_max = 100", "users_max = 0", &["limits.users_max"]);
    refused("orders_max = 5000", "levels_per_side_max = 0", &["limits.levels_per_side_max"]);
    // Above the ceiling every engine is held to (it could not load its own snapshots,
    // or would try an allocation of hundreds of GiB): refused up front.
    let huge = &["limits.orders_max 4000000000 is above 16777216"];
    refused("orders_max = 5000", "orders_max = 4000000000", huge);
    refused("rate_per_sec = 50", "burst = 0", &["session.burst"]);
    refused("heartbeat_max_ms = 10000", "heartbeat_max_ms = 50", &["heartbeat_min_ms 100"]);
}

#[test]
fn assets_are_checked() {
    refused("id = 4", "id = 3", &["GOLD", "duplicate asset id 3"]);
    refused("symbol = \"GOLD\"", "symbol = \"EUR\"", &["duplicate asset symbol \"EUR\""]);
    refused("id = 4", "id = 32", &["GOLD", "id 32"]);
    refused("symbol = \"EUR\"", "symbol = \"EURO ZONE\"", &["\"EURO ZONE\"", "symbol"]);
    refused("scale = 2", "scale = 19", &["EUR", "scale 19"]);
}

#[test]
fn users_are_checked() {
    refused("id = 5", "id = 0", &["\"dora\"", "id 0", "system admin"]);
    refused("id = 5", "id = 9", &["\"dora\"", "duplicate user id 9"]);
    refused("id = 5", "id = 100", &["\"dora\"", "limits.users_max"]);
    refused("name = \"dora\"", "name = \"ops\"", &["duplicate user name \"ops\""]);
    refused("name = \"dora\"", "name = \"do ra\"", &["name \"do ra\""]);
    refused("role = \"trader\"", "role = \"boss\"", &["\"dora\"", "role \"boss\""]);
    refused("\"sha256:", "\"md5:", &["\"ops\"", "secret_hash", "unknown scheme \"md5\""]);
    refused(":07070707", ":0707070", &["\"ops\"", "secret_hash", "malformed salt"]);
    let dora = SecretHash::new(b"dora-secret-0123456789", SALT).to_string();
    let empty = SecretHash::new(b"", SALT).to_string();
    refused(&dora, &empty, &["\"dora\"", "secret_hash", "empty secret"]);
}

#[test]
fn accounts_are_checked() {
    refused("id = 21", "id = 20", &["account 20", "duplicate account id 20"]);
    refused("owner = \"dora\"", "owner = \"dorothy\"", &["account 21", "owner \"dorothy\""]);
    refused("GOLD = \"12.5\"", "SILVER = \"12.5\"", &["account 21", "deposits.SILVER"]);
    refused("\"12.5\"", "\"twelve\"", &["account 21", "deposits.GOLD", "\"twelve\""]);
    refused("\"12.5\"", "\"0\"", &["account 21", "deposits.GOLD", "positive"]);
    refused("\"12.5\"", "\"-1\"", &["deposits.GOLD", "\"-1\"", "positive"]);
    refused("\"1000.25\"", "\"1000.255\"", &["deposits.EUR", "1000.255", "minor unit"]);
    let huge = "\"100000000000000000\"";
    refused("\"1000.25\"", huge, &["deposits.EUR", "100000000000000000", "too large"]);
    // Two deposits that fit alone but not together overflow the asset's supply.
    let half = "\"50000000000000000\"";
    let twice = format!("owner = \"ops\"\ndeposits = {{ EUR = {half} }}");
    let text = minimal().replacen("owner = \"ops\"", &twice, 1).replacen("\"1000.25\"", half, 1);
    let message = ServerConfig::from_toml(&text).unwrap_err().to_string();
    assert!(message.contains("deposits.EUR") && message.contains("overflow"), "{message}");
}

#[test]
fn instruments_are_checked() {
    let gold = "instrument \"GOLD-EUR\" (id 7)";
    refused("id = 7", "id = 1024", &["instrument \"GOLD-EUR\" (id 1024)", "id 1024 is not"]);
    refused("base = \"GOLD\"", "base = \"SILVER\"", &[gold, "base \"SILVER\""]);
    refused("quote = \"EUR\"", "quote = \"USD\"", &[gold, "quote \"USD\""]);
    refused("quote = \"EUR\"", "quote = \"GOLD\"", &[gold, "base and quote"]);
    refused("symbol = \"GOLD-EUR\"", "symbol = \"GOLD/EUR SPOT\"", &["symbol \"GOLD/EUR SPOT\""]);
    refused("tick_size = \"0.5\"", "tick_size = \"0\"", &[gold, "tick_size \"0\"", "positive"]);
    refused("lot_size = \"0.1\"", "lot_size = \"-0.01\"", &[gold, "lot_size \"-0.01\""]);
    refused("\"0.5\"", "\"half\"", &[gold, "tick_size \"half\"", "not a decimal"]);
    refused("lot_size = \"0.1\"", "lot_size = \"0.0001\"", &[gold, "lot_size", "GOLD minor"]);
    refused("\"0.5\"", "\"0.05\"", &[gold, "tick_size x lot_size", "EUR minor units"]);
    refused("\"1800.5\"", "\"1800.25\"", &[gold, "reference_price \"1800.25\"", "tick_size"]);
    refused("\"1800.5\"", "\"0\"", &[gold, "reference_price \"0\"", "positive"]);
    refused("qty_max = 10", "qty_max = \"10.05\"", &[gold, "qty_max \"10.05\"", "lot_size"]);
    refused("\"50000.00\"", "\"50000.001\"", &[gold, "notional_max \"50000.001\""]);
    refused("\"50000.00\"", "\"-5\"", &[gold, "notional_max \"-5\"", "positive"]);
    refused("band_bps = 500", "band_bps = 0", &[gold, "band_bps 0"]);
    refused("band_bps = 500", "band_bps = 10001", &[gold, "band_bps 10001"]);
    refused("taker_fee_bps = 3", "taker_fee_bps = -3", &[gold, "taker_fee_bps -3"]);
    refused("maker_fee_bps = -2", "maker_fee_bps = -4", &[gold, "maker_fee_bps -4", "rebates"]);
    refused("maker_fee_bps = -2", "maker_fee_bps = 20000", &[gold, "maker_fee_bps 20000"]);
    refused("fee_account = 20", "fee_account = 99", &[gold, "fee_account 99"]);
    let second = "[[users]]\nid = 9";
    let twin = format!(
        "[[instruments]]\nid = 7\nsymbol = \"X\"\nbase = \"GOLD\"\nquote = \"EUR\"\n\
         tick_size = \"1\"\nlot_size = \"1\"\nreference_price = \"1\"\nband_bps = 1\n\
         qty_max = \"1\"\nnotional_max = \"1\"\nmaker_fee_bps = 0\ntaker_fee_bps = 0\n\
         fee_account = 20\n\n{second}"
    );
    refused(second, &twin, &["duplicate instrument id 7"]);
    refused(
        second,
        &twin.replace("id = 7", "id = 8").replace("\"X\"", "\"GOLD-EUR\""),
        &["duplicate instrument symbol \"GOLD-EUR\""],
    );
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("venue.toml");
    let missing = ServerConfig::load(&path).unwrap_err();
    assert!(matches!(missing, ConfigError::Read { .. }));
    assert!(missing.to_string().contains("venue.toml"), "{missing}");
    std::fs::write(&path, minimal().replace("\"fsync\"", "\"never\"")).unwrap();
    let message = ServerConfig::load(&path).unwrap_err().to_string();
    assert!(message.contains("venue.toml") && message.contains("\"never\""), "{message}");
    std::fs::write(&path, minimal()).unwrap();
    assert_eq!(ServerConfig::load(&path).unwrap(), ServerConfig::from_toml(&minimal()).unwrap());
}

#[test]
fn authenticator_checks_secrets() {
    let config = ServerConfig::from_toml(&minimal()).unwrap();
    let auth = config.authenticator();
    assert_eq!(auth.authenticate("ops", b"ops-secret-0123456789"), Some((UserId(9), Role::Admin)));
    assert_eq!(
        auth.authenticate("dora", b"dora-secret-0123456789"),
        Some((UserId(5), Role::Trader))
    );
    assert_eq!(auth.authenticate("dora", b"ops-secret-0123456789"), None);
    assert_eq!(auth.authenticate("dora", b""), None);
    assert_eq!(auth.authenticate("nobody", b"dora-secret-0123456789"), None);
    assert_eq!(auth.authenticate("", b""), None);
}
