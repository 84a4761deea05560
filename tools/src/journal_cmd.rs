//! `fincore journal verify|dump`: check or print a data directory's journal.

use crate::names;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use fincore_engine::{AccountId, AssetId, ClientPaymentId, CommandBody, OrderRef, PaymentRef};
use fincore_gateway::{decode_record, journal_dir};
use fincore_journal::{JournalReader, list_segments};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum JournalCommand {
    /// Check every record's checksum, the checksum chain and sequence continuity, and
    /// that every payload is a command; exit non-zero on any problem.
    Verify {
        /// Data directory.
        #[arg(long, default_value = "./fincore-data")]
        data: PathBuf,
    },
    /// Print records: sequence, time, user, session, peer, payload format (docs/JOURNAL.md
    /// section 3a) and the decoded command (its kind, then its fields; prices,
    /// quantities and amounts in the journal's units: ticks, lots, minor units).
    Dump(DumpArgs),
}

#[derive(Args)]
pub struct DumpArgs {
    /// Data directory.
    #[arg(long, default_value = "./fincore-data")]
    data: PathBuf,
    /// First sequence to print.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Records to print at most.
    #[arg(long)]
    limit: Option<u64>,
    /// One JSON object per record.
    #[arg(long)]
    json: bool,
}

pub fn run(command: &JournalCommand) -> Result<()> {
    match command {
        JournalCommand::Verify { data } => verify(data),
        JournalCommand::Dump(args) => dump(args),
    }
}

/// The journal directory of data directory `data`, which must exist: a path that is not
/// there is named as the data directory or its journal, not as an OS error on a listing.
fn existing_journal(data: &Path) -> Result<PathBuf> {
    if !data.exists() {
        bail!("the data directory {} does not exist", data.display());
    }
    if !data.is_dir() {
        bail!("{} is not a data directory (not a directory)", data.display());
    }
    let dir = journal_dir(data);
    if !dir.is_dir() {
        bail!(
            "{} has no journal ({} does not exist): is it a fincore data directory?",
            data.display(),
            dir.display()
        );
    }
    Ok(dir)
}

fn verify(data: &Path) -> Result<()> {
    let dir = existing_journal(data)?;
    let segments = list_segments(&dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut reader = JournalReader::open_strict(&dir)?;
    let (mut records, mut first, mut last) = (0u64, None, 0u64);
    // Records per payload format, in the order the formats first appear.
    let mut formats: Vec<(u32, u64)> = Vec::new();
    while let Some(record) = reader.next()? {
        decode_record(&record)?;
        first.get_or_insert(record.meta.seq);
        last = record.meta.seq;
        records += 1;
        let format = record.payload_format.expect("a reader knows the record's segment");
        match formats.iter_mut().find(|(f, _)| *f == format) {
            Some((_, count)) => *count += 1,
            None => formats.push((format, 1)),
        }
    }
    if let Some(torn) = reader.torn_tail() {
        bail!(
            "{} at byte {}: torn last record ({}); the server cuts it when it next opens the journal",
            torn.path.display(),
            torn.offset,
            torn.reason
        );
    }
    let range = first.map_or("none".to_string(), |f| format!("{f}..={last}"));
    let formats: Vec<String> =
        formats.iter().map(|(format, count)| format!("{count} in format {format}")).collect();
    let formats =
        if formats.is_empty() { String::new() } else { format!(" ({})", formats.join(", ")) };
    println!(
        "ok: {records} records{formats} in {} segment(s), sequences {range}, chain intact",
        segments.len()
    );
    Ok(())
}

fn dump(args: &DumpArgs) -> Result<()> {
    let mut reader = JournalReader::open(&existing_journal(&args.data)?, args.from)?;
    let mut printed = 0;
    while let Some(record) = reader.next()? {
        if args.limit.is_some_and(|limit| printed >= limit) {
            return Ok(());
        }
        let m = record.meta;
        let format = record.payload_format.expect("a reader knows the record's segment");
        let command = decode_record(&record)?;
        let (kind, fields) = command_fields(&command.body);
        if args.json {
            let mut body = serde_json::Map::new();
            body.insert("kind".into(), kind.into());
            body.extend(fields.into_iter().map(|(name, value)| (name.to_string(), value)));
            println!(
                "{{\"seq\":{},\"time_ns\":{},\"user\":{},\"session\":{},\"peer\":\"{:016x}\",\"payload_format\":{format},\"command\":{}}}",
                m.seq,
                m.time_ns,
                m.user,
                m.session,
                m.peer,
                serde_json::Value::Object(body)
            );
        } else {
            let fields: String =
                fields.iter().map(|(name, value)| format!(" {name}={}", text(value))).collect();
            println!(
                "{:>10} t={} user={} session={} peer={:016x} format={format} {kind}{fields}",
                m.seq, m.time_ns, m.user, m.session, m.peer
            );
        }
        printed += 1;
    }
    if let Some(torn) = reader.torn_tail() {
        eprintln!(
            "(stopped at a torn last record: {} at byte {})",
            torn.path.display(),
            torn.offset
        );
    }
    // Nothing printed because --from is past the end: say so (on stderr, as `replay
    // --until-seq` does), or an empty output reads as an empty journal.
    let last = reader.next_seq().map_or(0, |next| next - 1);
    if printed == 0 && last == 0 {
        eprintln!("the journal is empty");
    } else if printed == 0 && args.from > last {
        eprintln!("the journal ends at seq {last} (asked for records from {})", args.from);
    }
    Ok(())
}

/// A value of a dumped field as text: strings without quotes, `none` for no value.
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

/// A command's kind (as in the metrics: `new_order`) and its fields, in the order the
/// command declares them. Amounts are in the integer units the journal stores (ticks,
/// lots, minor units), named so: a record alone does not carry the asset and instrument
/// definitions that would scale them.
fn command_fields(body: &CommandBody) -> (&'static str, Vec<(&'static str, serde_json::Value)>) {
    use serde_json::Value;
    let order = |order: OrderRef| match order {
        OrderRef::Id(id) => ("order_id", Value::from(id.0)),
        OrderRef::Client(id) => ("client_order_id", Value::from(id.0)),
    };
    let payment = |payment: PaymentRef| match payment {
        PaymentRef::Id(id) => ("payment_id", Value::from(id.0)),
        PaymentRef::Client(id) => ("client_payment_id", Value::from(id.0)),
    };
    let fields = match *body {
        CommandBody::CreateUser { user, role } => {
            vec![("user", user.0.into()), ("role", names::role(role).into())]
        }
        CommandBody::CreateAsset { asset, symbol, scale } => vec![
            ("asset", asset.0.into()),
            ("symbol", symbol.to_string().into()),
            ("scale", scale.into()),
        ],
        CommandBody::CreateInstrument(spec) => {
            let dec = |d| fincore_engine::units::dec_to_decimal(d).map(|d| d.to_string());
            vec![
                ("instrument", spec.instrument.0.into()),
                ("symbol", spec.symbol.to_string().into()),
                ("base", spec.base.0.into()),
                ("quote", spec.quote.0.into()),
                ("tick_size", dec(spec.tick_size).into()),
                ("lot_size", dec(spec.lot_size).into()),
                ("reference_price_ticks", spec.reference_price.0.into()),
                ("band_bps", spec.band_bps.into()),
                ("qty_max_lots", spec.qty_max.0.into()),
                ("notional_max_minor", spec.notional_max.into()),
                ("maker_fee_bps", spec.maker_fee_bps.into()),
                ("taker_fee_bps", spec.taker_fee_bps.into()),
                ("fee_account", spec.fee_account.0.into()),
            ]
        }
        CommandBody::CreateAccount { account, owner } => {
            vec![("account", account.0.into()), ("owner", owner.0.into())]
        }
        CommandBody::Deposit { account, asset, amount, client_payment_id }
        | CommandBody::Withdraw { account, asset, amount, client_payment_id } => vec![
            ("account", account.0.into()),
            ("asset", asset.0.into()),
            ("amount_minor", amount.into()),
            ("client_payment_id", client_payment_id.0.into()),
        ],
        CommandBody::SetAccountStatus { account, status } => {
            vec![("account", account.0.into()), ("status", names::account_status(status).into())]
        }
        CommandBody::SetInstrumentStatus { instrument, status, cancel_resting } => vec![
            ("instrument", instrument.0.into()),
            ("status", names::instrument_status(status).into()),
            ("cancel_resting", cancel_resting.into()),
        ],
        CommandBody::NewOrder(o) => vec![
            ("account", o.account.0.into()),
            ("instrument", o.instrument.0.into()),
            ("client_order_id", o.client_order_id.0.into()),
            ("side", names::side(o.side).into()),
            ("type", names::order_type(o.order_type).into()),
            ("time_in_force", names::time_in_force(o.time_in_force).into()),
            ("price_ticks", o.price.0.into()),
            ("qty_lots", o.qty.0.into()),
            ("stp_mode", names::stp_mode(o.stp_mode).into()),
            ("stp_scope", names::stp_scope(o.stp_scope).into()),
            ("post_only", o.post_only.into()),
        ],
        CommandBody::Cancel { account, order: named } => {
            vec![("account", account.0.into()), order(named)]
        }
        CommandBody::Amend(a) => vec![
            ("account", a.account.0.into()),
            order(a.order),
            ("price_ticks", a.price.0.into()),
            ("qty_lots", a.qty.0.into()),
        ],
        // No instrument: every instrument's orders.
        CommandBody::MassCancel { account, instrument } => {
            let mut fields = vec![("account", account.0.into())];
            fields.extend(instrument.map(|i| ("instrument", i.0.into())));
            fields
        }
        CommandBody::Transfer(t) => {
            payment_fields(t.debit, t.credit, t.asset, t.amount, t.client_payment_id)
        }
        CommandBody::Authorize(a) => {
            let mut fields =
                payment_fields(a.debit, a.credit, a.asset, a.amount, a.client_payment_id);
            fields.push(("timeout_s", a.timeout_s.into()));
            fields
        }
        // An amount of 0 captures the whole authorization.
        CommandBody::Capture { account, payment: named, amount } => {
            vec![("account", account.0.into()), payment(named), ("amount_minor", amount.into())]
        }
        CommandBody::Void { account, payment: named } => {
            vec![("account", account.0.into()), payment(named)]
        }
        // No limit: none (null).
        CommandBody::SetPaymentLimits { asset, transfer_max, velocity_24h } => vec![
            ("asset", asset.0.into()),
            ("transfer_max_minor", transfer_max.into()),
            ("daily_max_minor", velocity_24h.into()),
        ],
        // No daily limit: the asset's default.
        CommandBody::SetAccountLimits { account, asset, credit_limit, velocity_24h } => vec![
            ("account", account.0.into()),
            ("asset", asset.0.into()),
            ("credit_limit_minor", credit_limit.into()),
            ("daily_max_minor", velocity_24h.into()),
        ],
        CommandBody::SetAccountBlocked { account, blocked } => {
            vec![("account", account.0.into()), ("blocked", blocked.into())]
        }
        CommandBody::Tick => Vec::new(),
    };
    (body.kind().name(), fields)
}

/// The fields a transfer and an authorization share.
fn payment_fields(
    debit: AccountId,
    credit: AccountId,
    asset: AssetId,
    amount: i64,
    client_payment_id: ClientPaymentId,
) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("debit", debit.0.into()),
        ("credit", credit.0.into()),
        ("asset", asset.0.into()),
        ("amount_minor", amount.into()),
        ("client_payment_id", client_payment_id.0.into()),
    ]
}
