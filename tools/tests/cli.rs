//! The command line run as a user would: the journal and replay commands on a data
//! directory written by the runner and on damaged ones; what `fincore client`, `stats`
//! and `hash-secret` print, against a `fincore serve` where they need one.

mod common;

use common::Server;
use fincore_engine::CommandBody;
use fincore_engine::testkit::{TradingMix, trading_workload};
use fincore_gateway::{Origin, Runner, RunnerConfig, journal_dir};
use std::path::Path;
use std::process::Command;

/// Writes a data directory with the standard universe and 5 000 commands; returns the
/// live state hash and last sequence.
fn data_dir(path: &Path) -> (u64, u64) {
    let workload =
        trading_workload(TradingMix { instruments: 1, traders: 4, commands: 5_000, seed: 2 });
    let setup: Vec<CommandBody> = workload.setup.iter().map(|c| c.body).collect();
    let (mut runner, _) = Runner::open(&RunnerConfig::new(path), &setup).unwrap();
    let mut events = Vec::new();
    for command in &workload.commands {
        events.clear();
        let origin = Origin { user: command.user, session: 5, peer: 77 };
        runner.submit(origin, command.time_ns, command.body, &mut events).unwrap();
    }
    let (hash, seq) = (runner.engine().state_hash(), runner.engine().last_seq());
    runner.close().unwrap();
    (hash, seq)
}

fn fincore(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_fincore")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

#[test]
fn replay_verify_and_dump_a_healthy_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (hash, seq) = data_dir(dir.path());

    let (ok, out, err) =
        fincore(&["replay", "--data", data, "--json", "--book", "COIN0-USD", "--account", "1"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("state_hash={hash:016x} seq={seq}")), "{out}");
    let json = out.lines().last().unwrap();
    assert!(json.contains(&format!("\"state_hash\":\"{hash:016x}\"")), "{json}");
    assert!(
        json.contains(&format!("\"records\":{seq}")) && json.contains("\"commands_per_sec\":"),
        "{json}"
    );
    assert!(out.contains("book COIN0-USD") && out.contains("account 1"), "{out}");

    let (ok, out, err) = fincore(&["replay", "--data", data, "--until-seq", "100", "--json"]);
    assert!(ok && out.contains("\"seq\":100,"), "{out}");
    assert!(err.is_empty(), "{err}");
    // Past the end: the state at the end, and a word that it is not the one asked for.
    let past = (seq + 1000).to_string();
    let (ok, out, err) = fincore(&["replay", "--data", data, "--until-seq", &past, "--json"]);
    assert!(ok && out.contains(&format!("\"seq\":{seq},")), "{out}");
    assert_eq!(err, format!("the journal ends at seq {seq} (asked for {past})\n"));

    let (ok, out, err) = fincore(&["journal", "verify", "--data", data]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("{seq} records ({seq} in format 1)")), "{out}");

    let (ok, out, _) =
        fincore(&["journal", "dump", "--data", data, "--from", "200", "--limit", "3", "--json"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("{\"seq\":200,")
            && lines[0].contains("\"session\":5")
            && lines[0].contains("\"payload_format\":1,"),
        "{}",
        lines[0]
    );
}

/// `journal dump` prints each command as its kind and named fields (in the journal's
/// integer units), and with `--json` as an object, never as the command's `Debug` text.
#[test]
fn journal_dump_prints_commands_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (_, seq) = data_dir(dir.path());
    let (ok, out, err) = fincore(&["journal", "dump", "--data", data]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count() as u64, seq);
    for line in out.lines() {
        let command = line.split(" format=1 ").nth(1).expect(line);
        let kind = command.split(' ').next().unwrap();
        assert!(kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{line}");
        assert!(!command.contains(['{', '(', ':']), "{line}");
    }
    let order = out.lines().find(|l| l.contains(" new_order ")).expect("an order");
    for field in [" account=", " side=", " price_ticks=", " qty_lots=", " time_in_force="] {
        assert!(order.contains(field), "{field}: {order}");
    }

    let (ok, out, err) = fincore(&["journal", "dump", "--data", data, "--json"]);
    assert!(ok, "{err}");
    for line in out.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect(line);
        assert!(record["command"]["kind"].is_string(), "{line}");
    }
    let order = out.lines().find(|l| l.contains("\"new_order\"")).expect("an order");
    let order: serde_json::Value = serde_json::from_str(order).unwrap();
    assert!(order["command"]["price_ticks"].is_i64(), "{order}");
    assert!(["buy", "sell"].contains(&order["command"]["side"].as_str().unwrap()), "{order}");
}

/// `replay --check-acks` names a mismatched command's kind and lists the lost sequence
/// numbers as plain numbers.
#[test]
fn check_acks_problems_are_readable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (_, seq) = data_dir(dir.path());
    let acks = dir.path().join("acks.log");
    let lost = [seq + 1, seq + 7].map(|s| format!("2 1 {s} accepted\n")).concat();
    std::fs::write(&acks, format!("999 1 200 accepted\n{lost}")).unwrap();
    let (ok, _, err) = fincore(&["replay", "--data", data, "--check-acks", acks.to_str().unwrap()]);
    assert!(!ok);
    let kind = err.split("the journal has account ").nth(1).expect(&err);
    let kind = kind.split(['(', ')']).nth(1).unwrap();
    assert!(kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{err}");
    let lost = format!("(it ends at seq {seq}): first {}, {}\n", seq + 1, seq + 7);
    assert!(err.contains(&lost), "{err}");
}

/// `replay --book` prints the book in names and decimals: the status, the last price
/// (or that there was no trade yet), and each level's side as bid or ask.
#[test]
fn replay_prints_the_book_readably() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    data_dir(dir.path());
    let (ok, out, err) = fincore(&["replay", "--data", data, "--book", "COIN0-USD"]);
    assert!(ok, "{err}");
    let book = out.lines().find(|l| l.starts_with("book ")).expect("a book line");
    let price = book.strip_prefix("book COIN0-USD (trading), last price ").expect(book);
    assert!(price.parse::<rust_decimal::Decimal>().is_ok(), "{book}");
    let levels: Vec<&str> = out.lines().filter(|l| l.starts_with("  bid ")).collect();
    assert!(!levels.is_empty(), "{out}");
    assert!(out.lines().any(|l| l.starts_with("  ask ")), "{out}");
    assert!(levels[0].ends_with(" orders)") && levels[0].contains(" x "), "{out}");
    // One order, one level: "(1 order)".
    let single = out.lines().filter(|l| l.ends_with(" (1 order)")).count();
    assert!(single > 0 && !out.contains("(1 orders)"), "{out}");
    assert!(!out.contains("Some(") && !out.contains("Buy") && !out.contains("Trading"), "{out}");

    // Before the first order: no trade yet.
    let workload =
        trading_workload(TradingMix { instruments: 1, traders: 4, commands: 5_000, seed: 2 });
    let setup = workload.setup.len().to_string();
    let args = ["replay", "--data", data, "--until-seq", &setup, "--book", "COIN0-USD"];
    let (ok, out, err) = fincore(&args);
    assert!(ok, "{err}");
    assert!(out.contains("book COIN0-USD (trading), last price none (no trade yet)\n"), "{out}");
}

#[test]
fn damaged_journals_and_bad_arguments_fail_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    data_dir(dir.path());
    // Flip a byte early in the first segment (inside the 10th record or so).
    let segment = fincore_journal::list_segments(&journal_dir(dir.path())).unwrap()[0].1.clone();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[64 + 1_500] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();

    let (ok, _, err) = fincore(&["journal", "verify", "--data", data]);
    assert!(!ok);
    assert!(
        err.contains(segment.file_name().unwrap().to_str().unwrap()) && err.contains("at byte"),
        "{err}"
    );
    let (ok, _, err) = fincore(&["replay", "--data", data]);
    assert!(!ok && err.contains("at byte"), "{err}");

    let (ok, _, err) = fincore(&["replay", "--data", "/nonexistent/fincore"]);
    assert!(!ok && err.contains("not a data directory"), "{err}");
    let (ok, _, _) = fincore(&["replay", "--until-seq", "minus-one"]);
    assert!(!ok);
}

#[test]
fn verify_refuses_a_journal_missing_its_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let workload =
        trading_workload(TradingMix { instruments: 1, traders: 4, commands: 5_000, seed: 2 });
    let setup: Vec<CommandBody> = workload.setup.iter().map(|c| c.body).collect();
    let config = RunnerConfig {
        segment_size: fincore_journal::SEGMENT_SIZE_MIN,
        ..RunnerConfig::new(dir.path())
    };
    let (mut runner, _) = Runner::open(&config, &setup).unwrap();
    let mut events = Vec::new();
    for command in &workload.commands {
        events.clear();
        let origin = Origin { user: command.user, session: 5, peer: 77 };
        runner.submit(origin, command.time_ns, command.body, &mut events).unwrap();
    }
    runner.close().unwrap();
    let segments = fincore_journal::list_segments(&journal_dir(dir.path())).unwrap();
    assert!(segments.len() > 2);
    let (ok, _, err) = fincore(&["journal", "verify", "--data", data]);
    assert!(ok, "{err}");
    std::fs::remove_file(&segments[0].1).unwrap();
    let (ok, _, err) = fincore(&["journal", "verify", "--data", data]);
    assert!(!ok && err.contains("earlier segments are missing"), "{err}");
}

/// Client amounts are taken exactly as typed: a number with more digits than a decimal
/// holds is refused, not rounded; and `payment-limits` must be given both limits (a
/// bare `payment-limits USD` used to lift them all).
#[test]
fn client_arguments_that_would_be_misread_are_refused() {
    let too_fine = "0.00000000000000000000000000001";
    let (ok, _, stderr) = fincore(&["client", "order", "buy", "BTC-USD", too_fine, "60000"]);
    assert!(!ok && stderr.contains("more than 28 decimal places"), "{stderr}");
    let (ok, _, stderr) = fincore(&["client", "--user", "admin", "payment-limits", "USD"]);
    assert!(!ok && stderr.contains("--transfer-max") && stderr.contains("--daily-max"), "{stderr}");
    let limits = ["--transfer-max", "lots", "--daily-max", "none"];
    let (ok, _, stderr) = fincore(&[&["client", "payment-limits", "USD"][..], &limits].concat());
    assert!(!ok && stderr.contains("lots"), "{stderr}");
}

/// A decimal argument that is not a plain decimal (`1e30`), or does not fit a decimal or
/// the asset's 64-bit minor units, is refused with a message naming the argument and
/// what it accepts, not the decimal library's own words.
#[test]
fn client_decimal_arguments_say_what_is_accepted() {
    let plain = "not a plain decimal number: write digits with an optional leading '-' or '+' \
                 and one '.', such as 0.01 or 60000 (no separators such as '_' or ',', no \
                 exponent such as 1e5)";
    let (ok, _, err) = fincore(&["client", "order", "buy", "BTC-USD", "1e30", "60000"]);
    assert!(!ok && err.contains(&format!("for '<QTY>': {plain}\n")), "{err}");
    // The price too is checked before connecting, with the same message (and `market`),
    // and the same exit status as a bad quantity; '_' is refused as the message says.
    let order = |qty: &str, price: &str| {
        let args = ["client", "order", "buy", "BTC-USD", qty, price];
        Command::new(env!("CARGO_BIN_EXE_fincore")).args(args).output().unwrap()
    };
    let bad_qty = order("0,01", "60000");
    for price in ["60,000", "60_000"] {
        let bad_price = order("0.01", price);
        let err = String::from_utf8(bad_price.stderr).unwrap();
        let why = format!("invalid value '{price}' for '<PRICE>': {plain}; or market for a market");
        assert!(err.contains(&why), "{err}");
        assert_eq!(bad_price.status.code(), bad_qty.status.code());
    }
    let err = String::from_utf8(order("0_01", "60000").stderr).unwrap();
    assert!(err.contains(&format!("for '<QTY>': {plain}\n")), "{err}");
    let (ok, _, err) = fincore(&["client", "pay", "3", "USD", "99999999999999999999999999999999"]);
    let large = "too large: a decimal argument is at most 79228162514264337593543950335";
    assert!(!ok && err.contains(&format!("for '<AMOUNT>': {large}\n")), "{err}");
    let limits = ["--transfer-max", "1e9", "--daily-max", "none"];
    let (ok, _, err) = fincore(&[&["client", "payment-limits", "USD"][..], &limits].concat());
    assert!(!ok && err.contains(&format!("'--transfer-max <TRANSFER_MAX>': {plain}; or none")));

    // Past the asset's range, which only the server's reference data tells.
    let server = Server::start();
    let client =
        |args: &[&str]| fincore(&[&["client", "--addr", server.addr.as_str()][..], args].concat());
    // A leading '+' is taken, as the message says.
    let (ok, out, err) = client(&["order", "buy", "BTC-USD", "+0.01", "+60000", "--id", "1"]);
    assert!(ok && out.starts_with("accepted: order 1 (client id 1) buy 0.0100"), "{out}{err}");
    let range = "is out of range: an asset with 6 decimals counts at most 9223372036854.775807 \
                 (a 64-bit number of minor units)";
    let (ok, _, err) = client(&["pay", "3", "USD", "100000000000000000"]);
    assert!(!ok && err == format!("fincore: amount 100000000000000000 {range}\n"), "{err}");
    let (ok, _, err) =
        client(&["--user", "admin", "account-limits", "2", "USD", "--credit", "1e3"]);
    assert!(!ok && err.contains(plain), "{err}");
    let args = ["--user", "admin", "account-limits", "2", "USD", "--credit", "0", "--daily-max"];
    let (ok, _, err) = client(&[&args[..], &["100000000000000000"]].concat());
    assert!(!ok && err == format!("fincore: --daily-max 100000000000000000 {range}\n"), "{err}");
    let (ok, _, err) = client(&["pay", "3", "USD", "1.0000001"]);
    let fine = "fincore: amount 1.0000001 has more decimal places than the asset's 6\n";
    assert!(!ok && err == fine, "{err}");
    server.stop();
}

/// An order or amend refused for one of the instrument's limits ends by saying where the
/// limit lies, and so does a price or quantity too large to convert to ticks or lots,
/// which the instrument would refuse anyway.
#[test]
fn client_refusals_for_an_instrument_limit_say_what_it_accepts() {
    let server = Server::start();
    let client =
        |args: &[&str]| fincore(&[&["client", "--addr", server.addr.as_str()][..], args].concat());
    let qty_max = "BTC-USD takes at most 100.0000 BTC per order\n";
    let band = "BTC-USD takes prices within 10.00 % of the last trade price (of the reference \
                price 60000.00 before the first trade)\n";

    let (ok, out, err) = client(&["order", "buy", "BTC-USD", "100.0001", "60000", "--id", "1"]);
    assert!(!ok && out.starts_with("rejected: QtyAboveMax (405)"), "{out}");
    assert_eq!(err, format!("fincore: refused: {qty_max}"));
    let (ok, out, err) = client(&["order", "buy", "BTC-USD", "0.01", "66000.01", "--id", "2"]);
    assert!(!ok && out.starts_with("rejected: PriceOutsideBand (406)"), "{out}");
    assert_eq!(err, format!("fincore: refused: {band}"));
    // Beyond 64-bit ticks or lots: refused before sending, with the same limits.
    let huge = "99999999999999999999";
    let (ok, out, err) = client(&["order", "buy", "BTC-USD", huge, "60000", "--id", "3"]);
    assert!(!ok && out.is_empty(), "{out}");
    assert_eq!(err, format!("fincore: quantity {huge} is out of range: {qty_max}"));
    let (ok, _, err) = client(&["order", "buy", "BTC-USD", "0.01", huge, "--id", "4"]);
    assert!(!ok && err == format!("fincore: price {huge} is out of range: {band}"), "{err}");

    // An amend names the same limits.
    let (ok, _, err) = client(&["order", "buy", "BTC-USD", "0.01", "60000", "--id", "5"]);
    assert!(ok, "{err}");
    let (ok, out, err) = client(&["amend", "1", "0.01", "50000"]);
    assert!(!ok && out.starts_with("rejected: PriceOutsideBand (406)"), "{out}");
    assert_eq!(err, format!("fincore: refused: {band}"));
    let (ok, _, err) = client(&["amend", "1", huge, "60000"]);
    assert!(!ok && err == format!("fincore: quantity {huge} is out of range: {qty_max}"), "{err}");
    // A refusal that is not about a limit stays as it was.
    let (ok, out, err) = client(&["order", "buy", "BTC-USD", "0.01", "60000", "--id", "5"]);
    assert!(!ok && out.starts_with("rejected: DuplicateClientOrderId (500)"), "{out}");
    assert_eq!(err, "fincore: refused\n");
    server.stop();
}

/// `bench floor` echoes every message it sends, in both shapes, and its percentiles are
/// in order; bad arguments are refused.
#[test]
fn bench_floor_echoes_every_message() {
    let args = ["bench", "floor", "--stall-secs", "0.05", "--rate", "20000", "--duration", "0.1"];
    let (ok, stdout, stderr) = fincore(&[&args[..], &["--json"]].concat());
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(json["messages"], 2000, "{stdout}");
    for shape in ["echo", "handoff"] {
        let at = |p: &str| json[format!("{shape}_{p}")].as_f64().unwrap();
        assert!(at("p50_us") > 0.0, "{stdout}");
        assert!(at("p50_us") <= at("p99_us") && at("p99_us") <= at("max_us"), "{stdout}");
    }
    assert!(json["stall_lost_percent"].as_f64().unwrap() <= 100.0, "{stdout}");
    let (ok, _, stderr) = fincore(&["bench", "floor", "--rate", "0"]);
    assert!(!ok && stderr.contains("--rate positive"), "{stderr}");
}

/// `bench pipeline` ends by replaying the journal its engine thread wrote into a fresh
/// engine, and fails unless the replay applies every record and reaches the live state
/// (sequence and state hash); its report says so and how many records it replayed.
#[test]
fn bench_pipeline_checks_its_state_against_a_replay_of_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().to_str().unwrap();
    for mix in ["trading", "payments"] {
        let args = ["bench", "pipeline", "--mix", mix, "--ops", "3000", "--dir", scratch, "--json"];
        let (ok, stdout, stderr) = fincore(&args);
        assert!(ok, "{mix}: {stderr}");
        assert!(stdout.contains("the replay of the journal agrees"), "{mix}: {stdout}");
        let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(json["mix"], mix);
        assert_eq!(json["ops"], 3000);
        assert_eq!(json["wait"], "adaptive");
        assert!(stdout.contains(" wait=adaptive "), "{mix}: {stdout}");
        // The whole journal: the setup commands, then every command of the run.
        assert!(json["replay_records"].as_u64().unwrap() > 3000, "{mix}: {stdout}");
        assert!(json["events"].as_u64().unwrap() >= 3000, "{mix}: every command answered");
        assert_eq!(json["state_hash"].as_str().unwrap().len(), 16);
    }
}

/// `fincore client` as the admin user against `server`.
fn admin(server: &Server, args: &[&str]) -> (bool, String, String) {
    fincore(&[&["client", "--addr", server.addr.as_str(), "--user", "admin"][..], args].concat())
}

/// Text an internal type's `Debug` would print: it must never reach the user.
fn assert_no_debug(printed: &str) {
    for debug in ["Id(", "Some(", "None", " { ", "\"debug\"", "\"other\""] {
        assert!(!printed.contains(debug), "{debug:?} printed:\n{printed}");
    }
}

/// Every admin command answers with a readable line, and with `--json` with real fields
/// (names for enums, decimals for amounts): no `Debug` text of the engine's types.
#[test]
fn client_admin_replies_are_readable_in_text_and_json() {
    let server = Server::start();
    let cases: [(&[&str], &str); 10] = [
        (&["create-account", "50", "2"], "account 50 created, owned by user 2"),
        (&["freeze", "50"], "account 50 is now frozen"),
        (&["unfreeze", "50"], "account 50 is now active"),
        (&["halt", "ETH-USD"], "instrument ETH-USD is now halted"),
        (&["resume", "ETH-USD"], "instrument ETH-USD is now trading"),
        (&["block", "4"], "account 4 is on the deny-list"),
        (&["unblock", "4"], "account 4 is off the deny-list"),
        (
            &["payment-limits", "USD", "--transfer-max", "250000", "--daily-max", "none"],
            "payment limits of USD: per payment 250000.000000 USD, per account per 24 hours \
             unlimited",
        ),
        (
            &["account-limits", "2", "USD", "--credit", "5"],
            "account 2 limits: credit 5.000000 USD, per 24 hours the asset's default",
        ),
        (
            &["create-account", "50", "2"],
            "rejected: AlreadyExists (800) (command create_account, account 50)",
        ),
    ];
    for (args, line) in cases {
        let (ok, out, err) = admin(&server, args);
        assert_eq!(ok, !line.starts_with("rejected"), "{args:?}: {out}{err}");
        assert_eq!(out.lines().next(), Some(line), "{args:?}");
        assert_no_debug(&out);
    }

    let json = |args: &[&str]| {
        let (_, out, err) = admin(&server, &[&["--json"][..], args].concat());
        assert_no_debug(&out);
        let first = out.lines().next().unwrap_or_else(|| panic!("{args:?}: {err}"));
        serde_json::from_str::<serde_json::Value>(first).unwrap()
    };
    let created = json(&["create-account", "51", "2"]);
    assert_eq!(
        (&created["type"], &created["account"], &created["owner"]),
        (&"account_created".into(), &51.into(), &2.into())
    );
    let frozen = json(&["freeze", "51"]);
    assert_eq!((&frozen["type"], &frozen["status"]), (&"account_status".into(), &"frozen".into()));
    let halted = json(&["halt", "ETH-USD"]);
    assert_eq!(halted["type"], "instrument_status");
    assert_eq!((&halted["instrument"], &halted["status"]), (&"ETH-USD".into(), &"halted".into()));
    let limits = json(&["account-limits", "2", "USD", "--credit", "5", "--daily-max", "100"]);
    assert_eq!(limits["type"], "account_limits");
    assert_eq!(
        (&limits["credit"], &limits["daily_max"]),
        (&"5.000000".into(), &"100.000000".into())
    );
    let limits = json(&["payment-limits", "USD", "--transfer-max", "9", "--daily-max", "none"]);
    assert_eq!(limits["type"], "payment_limits");
    assert_eq!(
        (&limits["transfer_max"], &limits["daily_max"]),
        (&"9.000000".into(), &serde_json::Value::Null)
    );
    let blocked = json(&["block", "3"]);
    assert_eq!((&blocked["type"], &blocked["blocked"]), (&"account_blocked".into(), &true.into()));
    let refused = json(&["create-account", "51", "2"]);
    assert_eq!(
        (&refused["type"], &refused["kind"]),
        (&"rejected".into(), &"create_account".into())
    );
    let instrument = json(&["reference"]);
    assert_eq!(instrument["type"], "asset");
    server.stop();
}

/// `fincore client watch` prints market data as lines of decimals and names, and as JSON
/// objects with `--json`.
#[test]
fn client_watch_prints_market_data_readably() {
    use std::io::{BufRead, BufReader};
    let server = Server::start();
    let watch = |json: bool| {
        let mut args = vec!["client", "--addr", server.addr.as_str()];
        args.extend(if json { &["--json", "watch", "BTC-USD"][..] } else { &["watch", "BTC-USD"] });
        let mut child = Command::new(common::BIN)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        (child, lines)
    };
    let next = |lines: &std::sync::mpsc::Receiver<String>| {
        lines.recv_timeout(std::time::Duration::from_secs(30)).expect("a line from watch")
    };
    let (mut text, text_lines) = watch(false);
    let (mut json, json_lines) = watch(true);
    assert_eq!(next(&text_lines), "--- snapshot: 0 levels, md_seq 0 ---");
    let end: serde_json::Value = serde_json::from_str(&next(&json_lines)).unwrap();
    assert_eq!((&end["type"], &end["instrument"]), (&"md_snapshot_end".into(), &"BTC-USD".into()));

    // Bob's order: the watchers (alice) see only its market data.
    let order = ["client", "--addr", &server.addr, "--user", "bob", "order", "buy", "BTC-USD"];
    let order = [&order[..], &["0.01", "60000"]].concat();
    assert!(fincore(&order).0);
    assert_eq!(next(&text_lines), "#1      level BTC-USD bid 60000.00 -> 0.0100 (1 order)");
    let level: serde_json::Value = serde_json::from_str(&next(&json_lines)).unwrap();
    assert_eq!((&level["type"], &level["side"]), (&"md_level".into(), &"buy".into()));
    assert_eq!(
        (&level["price"], &level["qty"], &level["md_seq"]),
        (&"60000.00".into(), &"0.0100".into(), &1.into())
    );
    text.kill().unwrap();
    json.kill().unwrap();
    let _ = (text.wait(), json.wait());
    server.stop();
}

/// `fincore stats` pointed at something that is not a metrics endpoint (the trading
/// port; a port that closes at once) says so, instead of an OS error about a pipe.
#[test]
fn stats_at_a_port_that_is_not_http_says_so() {
    let server = Server::start();
    let (ok, _, err) = fincore(&["stats", "--once", "--addr", &server.addr]);
    let expected =
        format!("fincore: {} did not answer HTTP; is it the --metrics address?", server.addr);
    assert!(!ok && err.starts_with(&expected), "{err}");

    let closing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closing.local_addr().unwrap().to_string();
    let closer = std::thread::spawn(move || drop(closing.accept().unwrap()));
    let (ok, _, err) = fincore(&["stats", "--once", "--addr", &addr]);
    closer.join().unwrap();
    let expected = format!("fincore: {addr} did not answer HTTP; is it the --metrics address?");
    assert!(!ok && err.starts_with(&expected), "{err}");
    server.stop();
}

/// A login refused because of earlier failed logins (918) says what happened and for how
/// long by default: the refusal itself carries no more than its code.
#[test]
fn client_login_throttled_says_why_and_for_how_long() {
    let server = Server::start();
    let login = || fincore(&["client", "--addr", &server.addr, "--secret", "wrong", "balance"]);
    for _ in 0..5 {
        let (ok, _, err) = login();
        assert!(!ok && err.contains("login refused: LoginFailed (906)\n"), "{err}");
    }
    let (ok, _, err) = login();
    let throttled = "login refused: LoginThrottled (918): too many failed logins; try again \
                     later (the lock lasts 30000 ms by default)\n";
    assert!(!ok && err.contains(throttled), "{err}");
    server.stop();
}

/// A refusal about the account the client picked by default (the user's number: payops,
/// the payment operator, owns no account) says so and how to name one; other refusals
/// print the reason with the answer and end with "refused".
#[test]
fn client_refusal_of_the_default_account_says_to_pass_one() {
    let server = Server::start();
    let payops = |args: &[&str]| {
        fincore(
            &[&["client", "--addr", server.addr.as_str(), "--user", "payops"][..], args].concat(),
        )
    };
    let hint = "fincore: refused: payops owns no account 5 (with no --account, the client uses \
                the account numbered like the user); pass --account\n";
    let (ok, out, err) = payops(&["balance"]);
    assert!(!ok && out == "rejected: UnknownAccount (200) (command query, account 5)\n");
    assert_eq!(err, hint);
    // A command that looks up its payment first.
    let (ok, _, err) = payops(&["capture", "1", "--amount", "1"]);
    assert!(!ok && err == hint, "{err}");
    // A command refused by the engine.
    let (ok, _, err) = payops(&["pay", "3", "USD", "1", "--id", "1"]);
    assert!(!ok && err == hint, "{err}");
    let (ok, _, err) = payops(&["--account", "2", "balance"]);
    assert!(ok, "{err}");

    // An account named on the command line: the reason, and no hint.
    let args = ["client", "--addr", &server.addr, "--user", "bob", "--account", "2", "balance"];
    let (ok, out, err) = fincore(&args);
    assert!(!ok && out.starts_with("rejected: AccountNotOwned (202)"), "{out}");
    assert_eq!(err, "fincore: refused\n");
    server.stop();
}

/// `amend ORDER QTY PRICE` takes the quantity then the price, as `order` does.
#[test]
fn client_amend_takes_quantity_then_price_like_order() {
    let server = Server::start();
    let client =
        |args: &[&str]| fincore(&[&["client", "--addr", server.addr.as_str()][..], args].concat());
    let (ok, _, err) = client(&["order", "buy", "BTC-USD", "0.01", "60000", "--id", "1"]);
    assert!(ok, "{err}");
    let (ok, out, err) = client(&["amend", "1", "0.005", "59000"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("amended: order 1 now 0.0050 @ 59000.00 (priority lost)\n"), "{out}");
    let (ok, out, _) = client(&["orders"]);
    assert!(ok && out.contains("buy 0.0050 BTC-USD @ 59000.00"), "{out}");
    let (_, help, _) = client(&["amend", "--help"]);
    assert!(help.contains("<ORDER> <QTY> <PRICE>"), "{help}");
    server.stop();
}

/// `hash-secret` refuses a secret no configuration should hold: an empty one (anyone's),
/// and one longer than a login carries (no login could match its hash).
#[test]
fn hash_secret_refuses_empty_and_overlong_secrets() {
    let (ok, out, err) = fincore(&["hash-secret", ""]);
    assert!(!ok && out.is_empty(), "{out}");
    assert_eq!(err, "fincore: the secret is empty: give the user a secret to log in with\n");
    let (ok, out, err) = fincore(&["hash-secret", &"s".repeat(65)]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("65 bytes long: a login carries at most 64"), "{err}");
    let (ok, out, err) = fincore(&["hash-secret", &"s".repeat(64)]);
    assert!(ok && out.starts_with("secret_hash = \"sha256:"), "{out}{err}");
}

/// `fincore client` pointed at something that does not speak the protocol says so, and
/// shows the header it could not follow in words, not as a Rust structure.
#[test]
fn client_at_a_port_that_is_not_fincore_says_so() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let talker = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.read(&mut [0; 256]);
        let _ = stream.write_all(b"hello there, this is not fincore\n");
    });
    let (ok, _, err) = fincore(&["client", "--addr", &addr, "balance"]);
    talker.join().unwrap();
    let expected = format!(
        "fincore: logging in to {addr} as alice: {addr} did not answer in the fincore \
         protocol; is it the server's --listen address?: protocol error: bad frame header \
         (body length "
    );
    assert!(!ok && err.starts_with(&expected), "{err}");
    assert!(!err.contains("Header {"), "{err}");

    // A port that closes without a word, as the metrics endpoint does with a login.
    let closing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closing.local_addr().unwrap().to_string();
    let closer = std::thread::spawn(move || {
        let (mut stream, _) = closing.accept().unwrap();
        let _ = stream.read(&mut [0; 256]);
    });
    let (ok, _, err) = fincore(&["client", "--addr", &addr, "balance"]);
    closer.join().unwrap();
    let expected = format!(
        "fincore: logging in to {addr} as alice: {addr} closed the connection without \
         answering the login; is it the server's --listen address (not its --metrics \
         address)?\n"
    );
    assert!(!ok && err == expected, "{err}");
}

/// `snapshot --json` shows both numbers: the frame's outbound sequence as `seq`, as every
/// `--json` reply has it, and the journal sequence the snapshot is at as `snapshot_seq`
/// (the text form's "snapshot at seq N"); the first used to overwrite the second.
#[test]
fn client_snapshot_json_keeps_the_snapshot_sequence() {
    let server = Server::start();
    let (ok, out, err) = admin(&server, &["snapshot"]);
    assert!(ok, "{err}");
    let at = out.strip_prefix("snapshot at seq ").and_then(|rest| rest.split(' ').next());
    let at: u64 = at.unwrap_or_else(|| panic!("{out}")).parse().unwrap();
    // Nothing happened since: the same snapshot is the answer.
    let (ok, out, err) = admin(&server, &["--json", "snapshot"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(json["type"], "snapshot_taken");
    assert_eq!(json["snapshot_seq"], at, "{out}");
    assert!(json["seq"].is_u64(), "{out}");
    server.stop();
}

/// `replay` shows pending authorizations: per account beside available and held, and in
/// the per-asset summary, where available + held + pending make up the supply.
#[test]
fn replay_shows_pending_so_that_the_summary_adds_up() {
    use rust_decimal::Decimal;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let alice = ["client", "--addr", server.addr.as_str(), "authorize", "3", "USD", "100"];
    let (ok, _, err) = fincore(&[&alice[..], &["--timeout", "600", "--id", "8"]].concat());
    assert!(ok, "{err}");
    server.stop();

    let (ok, out, err) =
        fincore(&["replay", "--data", dir.path().to_str().unwrap(), "--account", "2"]);
    assert!(ok, "{err}");
    let line = |start: &str| {
        let found = out.lines().find(|line| line.trim_start().starts_with(start));
        found.unwrap_or_else(|| panic!("no line {start}: {out}")).to_string()
    };
    let account = line("USD      available");
    assert!(account.ends_with("  pending 100.000000"), "{out}");
    let supply = line("USD      supply");
    // "USD supply X available Y held Z pending P": the numbers by name.
    let words: Vec<&str> = supply.split_whitespace().collect();
    let amount = |name: &str| {
        let at = words.iter().position(|w| *w == name).unwrap_or_else(|| panic!("{supply}"));
        words[at + 1].parse::<Decimal>().unwrap()
    };
    assert_eq!(amount("pending"), Decimal::from(100), "{supply}");
    assert_eq!(amount("available") + amount("held") + amount("pending"), amount("supply"));
}

/// An amend, or a partial capture, looks its order or payment up first (for the
/// instrument's or asset's units); a refusal of that lookup is shown as the refusal of
/// the command the user typed, not of a query the user never asked for.
#[test]
fn client_lookup_before_a_command_is_refused_as_that_command() {
    let server = Server::start();
    let client =
        |args: &[&str]| fincore(&[&["client", "--addr", server.addr.as_str()][..], args].concat());
    let (ok, out, err) = client(&["amend", "99999", "0.001", "60000"]);
    assert!(!ok && out.starts_with("rejected: UnknownOrder (700) (command amend, account 2"));
    assert!(!out.contains("query"), "{out}");
    assert_eq!(err, "fincore: refused\n");
    let (ok, out, _) = client(&["--json", "amend", "99999", "0.001", "60000"]);
    let json: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert!(!ok && json["kind"] == "amend" && json["reason"] == 700, "{out}");
    let (ok, out, _) = client(&["capture", "99999", "--amount", "1"]);
    assert!(!ok && out.starts_with("rejected: UnknownPayment (1008) (command capture, "), "{out}");
    server.stop();
}

/// `reference` shows, beside tick and lot, what an order may be (each limit a refusal
/// can name, in the units the refusal uses) and the fees, in text and in JSON.
#[test]
fn client_reference_shows_each_instrument_limit_and_fee() {
    let server = Server::start();
    let client =
        |args: &[&str]| fincore(&[&["client", "--addr", server.addr.as_str()][..], args].concat());
    let (ok, out, err) = client(&["reference"]);
    assert!(ok, "{err}");
    let btc = "instrument 0 BTC-USD tick 0.01 lot 0.0001 (trading): per order at most 100.0000 \
               BTC and 10000000.000000 USD notional, prices within 10.00 % of the last trade \
               price (reference price 60000.00 before the first trade); fees maker 1 bp, taker \
               5 bp";
    assert!(out.lines().any(|line| line == btc), "{out}");

    let (ok, out, err) = client(&["--json", "reference"]);
    assert!(ok, "{err}");
    let instrument = out
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|json| json["symbol"] == "BTC-USD")
        .unwrap_or_else(|| panic!("{out}"));
    let expected = serde_json::json!({
        "type": "instrument", "instrument": 0, "symbol": "BTC-USD", "base": "BTC",
        "quote": "USD", "tick_size": "0.01", "lot_size": "0.0001", "status": "trading",
        "qty_max": "100.0000", "notional_max": "10000000.000000", "band_bps": 1000,
        "band_percent": "10.00", "reference_price": "60000.00", "maker_fee_bps": 1,
        "taker_fee_bps": 5, "qty_max_raw": 1_000_000, "notional_max_raw": 10_000_000_000_000i64,
        "reference_price_raw": 6_000_000,
    });
    assert_eq!(instrument, expected);
    server.stop();
}

/// `account-limits --daily-max none` is refused with what to do: the protocol has no
/// "no limit" for one account (no amount means the asset's default).
#[test]
fn client_account_daily_max_none_says_to_omit_it() {
    let args = ["client", "--user", "admin", "account-limits", "4", "USD", "--credit", "5000"];
    let (ok, _, err) = fincore(&[&args[..], &["--daily-max", "none"]].concat());
    let why = "invalid value 'none' for '--daily-max <DAILY_MAX>': one account cannot be set \
               to no limit: omit --daily-max to use the asset's default (set by \
               payment-limits, where none means no limit)\n";
    assert!(!ok && err.contains(why), "{err}");
}

/// `create-account`'s owner is a numeric user id (the protocol has no lookup by name):
/// the help says so, and so does the refusal of a name.
#[test]
fn client_create_account_owner_is_a_numeric_user_id() {
    let (ok, _, err) = fincore(&["client", "--user", "admin", "create-account", "61", "bob"]);
    let why = "invalid value 'bob' for '<OWNER>': the owner is a user's numeric id (at most \
               4294967295), not a name: the `id` of its [[users]] entry in the server's \
               configuration (in the demo, alice is 2 and bob 3)\n";
    assert!(!ok && err.contains(why), "{err}");
    let (ok, help, _) = fincore(&["client", "create-account", "--help"]);
    assert!(
        ok && help.contains("<OWNER>    The owner's numeric user id: the `id` of its"),
        "{help}"
    );
}

/// A refusal names the account only for a command that has one, and the client id only
/// when the command carries one (always for a new order or payment; for a cancel, amend,
/// capture or void only when it names its order or payment by client id): not "account 0,
/// client id 0" for a command about an instrument or an asset.
#[test]
fn client_refusals_name_only_the_account_and_client_id_a_command_has() {
    let server = Server::start();
    let client =
        |args: &[&str]| fincore(&[&["client", "--addr", server.addr.as_str()][..], args].concat());
    let refused = |args: &[&str], line: &str| {
        let (ok, out, err) = client(args);
        assert!(!ok && err == "fincore: refused\n", "{args:?}: {err}");
        assert_eq!(out, format!("{line}\n"), "{args:?}");
    };
    assert!(admin(&server, &["halt", "BTC-USD"]).0);
    let halt = ["--user", "admin", "halt", "BTC-USD"];
    refused(&halt, "rejected: StatusUnchanged (805) (command set_instrument_status)");
    let limits =
        ["--user", "admin", "payment-limits", "USD", "--transfer-max", "0", "--daily-max", "none"];
    refused(&limits, "rejected: InvalidDefinition (802) (command set_payment_limits)");
    let freeze = ["--user", "admin", "freeze", "999"];
    refused(&freeze, "rejected: UnknownAccount (200) (command set_account_status, account 999)");
    refused(&["cancel", "77"], "rejected: UnknownOrder (700) (command cancel, account 2)");
    refused(
        &["cancel", "77", "--client"],
        "rejected: UnknownOrder (700) (command cancel, account 2, client id 77)",
    );
    let order = ["order", "buy", "BTC-USD", "0.01", "60000", "--id", "0"];
    refused(&order, "rejected: InstrumentHalted (301) (command new_order, account 2, client id 0)");

    let (_, out, _) = client(&[&["--json"][..], &halt].concat());
    let json: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(json["kind"], "set_instrument_status");
    assert!(json["account"].is_null() && json["client_id"].is_null(), "{out}");
    server.stop();
}

/// `depth` says "1 order", not "1 orders"; `orders` prints what has filled in the
/// instrument's quantity format, as the quantity beside it (`0.0000`, not `0`).
#[test]
fn client_depth_and_orders_print_counts_and_quantities_alike() {
    let server = Server::start();
    let client =
        |args: &[&str]| fincore(&[&["client", "--addr", server.addr.as_str()][..], args].concat());
    let (ok, _, err) = client(&["order", "buy", "BTC-USD", "0.01", "60000", "--id", "1"]);
    assert!(ok, "{err}");
    let (ok, out, err) = client(&["depth", "BTC-USD"]);
    assert!(ok, "{err}");
    assert_eq!(out, "bid        60000.00 x 0.0100         (1 order)\n");
    let (ok, out, err) = client(&["orders"]);
    assert!(ok, "{err}");
    assert_eq!(out, "order 1 (client id 1) buy 0.0100 BTC-USD @ 60000.00, filled 0.0000\n");
    let (_, out, _) = client(&["--json", "orders"]);
    let json: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!((&json["remaining"], &json["filled"]), (&"0.0100".into(), &"0.0000".into()));
    server.stop();
}

/// `journal dump --from` past the end says where the journal ends (on stderr, as `replay
/// --until-seq` does) instead of printing nothing; `journal verify` and `dump` of a
/// directory that is not there say so, not "listing ...: No such file or directory".
#[test]
fn journal_commands_say_where_the_journal_ends_or_that_it_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (_, seq) = data_dir(dir.path());
    let past = (seq + 10).to_string();
    let (ok, out, err) = fincore(&["journal", "dump", "--data", data, "--from", &past]);
    assert!(ok && out.is_empty(), "{out}");
    assert_eq!(err, format!("the journal ends at seq {seq} (asked for records from {past})\n"));
    let last = seq.to_string();
    let (ok, out, err) = fincore(&["journal", "dump", "--data", data, "--from", &last]);
    assert!(ok && out.lines().count() == 1 && err.is_empty(), "{out}{err}");

    let missing = dir.path().join("nonexistent");
    let missing = missing.to_str().unwrap();
    for command in ["verify", "dump"] {
        let (ok, _, err) = fincore(&["journal", command, "--data", missing]);
        assert_eq!(err, format!("fincore: the data directory {missing} does not exist\n"));
        assert!(!ok);
    }
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap();
    let (ok, _, err) = fincore(&["journal", "verify", "--data", empty]);
    let no_journal = format!(
        "fincore: {empty} has no journal ({empty}/journal does not exist): is it a fincore \
         data directory?\n"
    );
    assert!(!ok && err == no_journal, "{err}");
}
