//! `fincore client`: one-shot commands for a person at a terminal. Prices and
//! quantities are decimals, converted with the instrument's tick and lot; replies are
//! printed as readable lines in those units.

use crate::format;
use crate::names;
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use fincore_engine::units::minor_to_decimal;
use fincore_engine::{
    AccountId, AccountStatus, Amend, AssetId, Authorize, CancelReason, ClientPaymentId,
    CommandKind, EXTERNAL_ACCOUNT, Event, InstrumentId, InstrumentSpec, InstrumentStatus,
    LevelChanged, OrderId, OrderRef, PaymentAction, PaymentId, PaymentInfo, PaymentKind,
    PaymentRef, PaymentStatus, Query, RejectReason, Rejected, Side, TimeInForce, Trade, Transfer,
    UserId,
};
use fincore_gateway::client::{Client, ClientError, LoginOptions, Received, Reference};
use fincore_gateway::wire::{self, ClientMsg, ServerMsg};
use rust_decimal::Decimal;

/// Arguments of `fincore client`.
#[derive(Args)]
pub struct ClientArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7100")]
    addr: String,
    /// User name.
    #[arg(long, default_value = "alice")]
    user: String,
    /// Secret (default: `<user>-secret`, the demo configuration's convention).
    #[arg(long)]
    secret: Option<String>,
    /// Trading account (default: the account numbered like the user, as in the demo).
    #[arg(long)]
    account: Option<u32>,
    /// One JSON object per reply instead of text.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Clone, Copy, ValueEnum)]
enum SideArg {
    Buy,
    Sell,
}

#[derive(Clone, Copy, ValueEnum)]
enum TifArg {
    Gtc,
    Ioc,
    Fok,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Place an order: `order buy BTC-USD 0.01 60000` (price `market` for a market order).
    Order {
        side: SideArg,
        symbol: String,
        #[arg(value_parser = exact_decimal)]
        qty: Decimal,
        /// A decimal price, or `market`.
        #[arg(value_parser = price_arg)]
        price: PriceArg,
        /// Time in force (market orders default to IOC).
        #[arg(long)]
        tif: Option<TifArg>,
        /// Client order id (default: derived from the clock).
        #[arg(long)]
        id: Option<u64>,
        /// Refuse instead of trading on arrival.
        #[arg(long)]
        post_only: bool,
    },
    /// Cancel an order by its order id (or `--client` id).
    Cancel {
        order: u64,
        /// The number is a client order id.
        #[arg(long)]
        client: bool,
    },
    /// Change an order's quantity and price, given in that order as for `order`:
    /// `amend 1 0.005 60000` (the same price and less quantity keep time priority).
    Amend {
        order: u64,
        /// The new remaining quantity.
        #[arg(value_parser = exact_decimal)]
        qty: Decimal,
        /// The new price (the current one to keep it).
        #[arg(value_parser = exact_decimal)]
        price: Decimal,
    },
    /// Cancel all of the account's orders (optionally on one instrument).
    MassCancel { symbol: Option<String> },
    /// Show the account's balances.
    Balance,
    /// Show the account's open orders.
    Orders,
    /// Show an instrument's book.
    Depth {
        symbol: String,
        #[arg(long, default_value_t = 10)]
        levels: u16,
    },
    /// Show the assets and instruments.
    Reference,
    /// Pay from the account to another: `pay 3 USD 25.50 --id 7`.
    Pay {
        to: u32,
        asset: String,
        #[arg(value_parser = exact_decimal)]
        amount: Decimal,
        /// Client payment id, the idempotency key: resend with the same id to retry
        /// safely (default: derived from the clock, printed with the result).
        #[arg(long)]
        id: Option<u64>,
    },
    /// Hold money for another account until a capture, a void or the timeout:
    /// `authorize 3 USD 100 --timeout 600 --id 8`.
    Authorize {
        to: u32,
        asset: String,
        #[arg(value_parser = exact_decimal)]
        amount: Decimal,
        /// Seconds until the hold expires (0: never).
        #[arg(long, default_value_t = 0)]
        timeout: u32,
        /// Client payment id (see `pay`).
        #[arg(long)]
        id: Option<u64>,
    },
    /// Capture an authorization (all of it, or `--amount`): `capture 12`, or by the
    /// payer's client id: `capture 8 --client`.
    Capture {
        payment: u64,
        /// The number is the payer's client payment id (payer only).
        #[arg(long)]
        client: bool,
        /// Capture only this much; the rest is released.
        #[arg(long, value_parser = exact_decimal)]
        amount: Option<Decimal>,
    },
    /// Release an authorization without paying.
    Void {
        payment: u64,
        /// The number is the payer's client payment id (payer only).
        #[arg(long)]
        client: bool,
    },
    /// Show one payment of the account.
    Payment {
        payment: u64,
        /// The number is the account's client payment id.
        #[arg(long)]
        client: bool,
    },
    /// Show the account's payments, newest first.
    Payments {
        #[arg(long, default_value_t = 20)]
        limit: u16,
    },
    /// Admin or operator: deposit into an account: `deposit 2 USD 1000 --id 1`.
    Deposit {
        account: u32,
        asset: String,
        #[arg(value_parser = exact_decimal)]
        amount: Decimal,
        /// Client payment id (deposits share one namespace; default: from the clock).
        #[arg(long)]
        id: Option<u64>,
    },
    /// Admin or operator: withdraw from an account.
    Withdraw {
        account: u32,
        asset: String,
        #[arg(value_parser = exact_decimal)]
        amount: Decimal,
        /// Client payment id (the account's namespace; default: from the clock).
        #[arg(long)]
        id: Option<u64>,
    },
    /// Admin: set an asset's payment limits (both, each an amount or `none`):
    /// `payment-limits USD --transfer-max 250000 --daily-max none`.
    PaymentLimits {
        asset: String,
        /// Largest single transfer, authorization or withdrawal, or `none`.
        #[arg(long, value_parser = limit_arg)]
        transfer_max: Limit,
        /// Default rolling 24-hour outgoing limit of every account, or `none`.
        #[arg(long, value_parser = limit_arg)]
        daily_max: Limit,
    },
    /// Admin: an account's payment limits in one asset.
    AccountLimits {
        account: u32,
        asset: String,
        /// How far below zero payments may take the available balance (required: the
        /// command sets both limits at once, so 0 must be said explicitly).
        #[arg(long, value_parser = exact_decimal)]
        credit: Decimal,
        /// The account's own rolling 24-hour outgoing limit (omitted: the asset's default,
        /// which `payment-limits` sets; one account cannot be set to no limit).
        #[arg(long, value_parser = account_daily_max_arg)]
        daily_max: Option<Decimal>,
    },
    /// Admin: put an account on the compliance deny-list.
    Block { account: u32 },
    /// Admin: take an account off the deny-list.
    Unblock { account: u32 },
    /// Admin: create an account for a user, named by number: `create-account 61 3`.
    CreateAccount {
        /// The new account's number.
        account: u32,
        /// The owner's numeric user id: the `id` of its `[[users]]` entry in the server's
        /// configuration (in the demo, alice is 2 and bob 3).
        #[arg(value_parser = user_id_arg)]
        owner: u32,
    },
    /// Admin: freeze an account (new risk refused, cancels allowed).
    Freeze { account: u32 },
    /// Admin: unfreeze an account.
    Unfreeze { account: u32 },
    /// Admin: halt an instrument.
    Halt {
        symbol: String,
        /// Also cancel every resting order.
        #[arg(long)]
        cancel_resting: bool,
    },
    /// Admin: resume trading on an instrument.
    Resume { symbol: String },
    /// Admin: write a snapshot now.
    Snapshot,
    /// Stream an instrument's market data until interrupted.
    Watch { symbol: String },
}

pub fn run(args: &ClientArgs) -> anyhow::Result<()> {
    let secret = args.secret.clone().unwrap_or_else(|| format!("{}-secret", args.user));
    let connected =
        Client::connect(args.addr.as_str(), &args.user, &secret, LoginOptions::default());
    let mut client = connected.map_err(|error| {
        let doing = format!("logging in to {} as {}", args.addr, args.user);
        match error {
            // Something else on the port (the metrics endpoint, another service).
            ClientError::Protocol(_) => anyhow::Error::new(error).context(format!(
                "{doing}: {} did not answer in the fincore protocol; is it the server's \
                 --listen address?",
                args.addr
            )),
            // A fincore server answers a login, even a refused one, before it closes
            // (docs/PROTOCOL.md section 8); a bare close is most likely the metrics
            // endpoint, which drops a request that is not HTTP.
            ClientError::Closed => anyhow::anyhow!(
                "{doing}: {} closed the connection without answering the login; is it the \
                 server's --listen address (not its --metrics address)?",
                args.addr
            ),
            _ => anyhow::Error::new(error).context(doing),
        }
    })?;
    let account = AccountId(args.account.unwrap_or(client.session().user.0));
    let default = args.account.is_none().then_some(DefaultAccount { user: &args.user, account });
    let reference = client.reference()?.clone();
    let json = args.json;
    // The instrument of an order or amend, to say what it accepts if refused.
    let mut instrument = None;
    let message = match &args.command {
        ClientCommand::Order { side, symbol, qty, price, tif, id, post_only } => {
            let side = match side {
                SideArg::Buy => Side::Buy,
                SideArg::Sell => Side::Sell,
            };
            let price = match *price {
                PriceArg::Market => None,
                PriceArg::Limit(price) => Some(price),
            };
            let tif = match (tif, price) {
                (Some(TifArg::Gtc), _) | (None, Some(_)) => TimeInForce::Gtc,
                (Some(TifArg::Ioc), _) | (None, None) => TimeInForce::Ioc,
                (Some(TifArg::Fok), _) => TimeInForce::Fok,
            };
            let id = id.unwrap_or_else(clock_id);
            let spec = *reference.instrument(symbol)?;
            let price = price
                .map(|price| {
                    let ticks = client.ticks(&spec, price);
                    units(ticks, RejectReason::PriceOutsideBand, &spec, &reference)
                })
                .transpose()?;
            let qty =
                units(client.lots(&spec, *qty), RejectReason::QtyAboveMax, &spec, &reference)?;
            instrument = Some(spec);
            let mut order = Client::order_in_units(&spec, account, side, price, qty, tif, id);
            order.post_only = *post_only;
            ClientMsg::NewOrder(order)
        }
        ClientCommand::Cancel { order, client: by_client } => {
            let order = if *by_client {
                OrderRef::Client(fincore_engine::ClientOrderId(*order))
            } else {
                OrderRef::Id(OrderId(*order))
            };
            ClientMsg::Cancel(wire::Cancel { account, order })
        }
        ClientCommand::Amend { order, qty, price } => {
            let order = OrderRef::Id(OrderId(*order));
            let info = client.query(Query::Order { account, order })?;
            let Some(Event::OrderInfo(info)) = info.first() else {
                let refused = as_refusal_of(CommandKind::Amend, &info);
                print_events(&refused, &reference, json);
                return Err(query_refusal(&refused, "no such order", default));
            };
            let spec = *reference
                .instrument_by_id(info.instrument)
                .context("the order's instrument is unknown")?;
            let price = units(
                client.ticks(&spec, *price),
                RejectReason::PriceOutsideBand,
                &spec,
                &reference,
            )?;
            let qty =
                units(client.lots(&spec, *qty), RejectReason::QtyAboveMax, &spec, &reference)?;
            instrument = Some(spec);
            ClientMsg::Amend(Amend { account, order, price, qty })
        }
        ClientCommand::MassCancel { symbol } => {
            let instrument = match symbol {
                Some(symbol) => Some(reference.instrument(symbol)?.instrument),
                None => None,
            };
            ClientMsg::MassCancel(wire::MassCancel { account, instrument })
        }
        ClientCommand::Balance => {
            return query(client, Query::Balances { account }, &reference, json, default);
        }
        ClientCommand::Orders => {
            return query(client, Query::OpenOrders { account }, &reference, json, default);
        }
        ClientCommand::Depth { symbol, levels } => {
            let instrument = reference.instrument(symbol)?.instrument;
            return query(
                client,
                Query::Depth { instrument, levels: *levels },
                &reference,
                json,
                default,
            );
        }
        ClientCommand::Reference => {
            return query(client, Query::Reference, &reference, json, default);
        }
        ClientCommand::Deposit { account, asset, amount, id }
        | ClientCommand::Withdraw { account, asset, amount, id } => {
            let (asset, amount) = money(&reference, asset, *amount)?;
            let client_payment_id = ClientPaymentId(id.unwrap_or_else(clock_id));
            let payment = wire::ExternalPayment {
                account: AccountId(*account),
                asset,
                amount,
                client_payment_id,
            };
            if matches!(args.command, ClientCommand::Deposit { .. }) {
                ClientMsg::Deposit(payment)
            } else {
                ClientMsg::Withdraw(payment)
            }
        }
        ClientCommand::Pay { to, asset, amount, id } => {
            let (asset, amount) = money(&reference, asset, *amount)?;
            let client_payment_id = ClientPaymentId(id.unwrap_or_else(clock_id));
            let credit = AccountId(*to);
            ClientMsg::Transfer(Transfer {
                debit: account,
                credit,
                asset,
                amount,
                client_payment_id,
            })
        }
        ClientCommand::Authorize { to, asset, amount, timeout, id } => {
            let (asset, amount) = money(&reference, asset, *amount)?;
            ClientMsg::Authorize(Authorize {
                debit: account,
                credit: AccountId(*to),
                asset,
                amount,
                client_payment_id: ClientPaymentId(id.unwrap_or_else(clock_id)),
                timeout_s: *timeout,
            })
        }
        ClientCommand::Capture { payment, client: by_client, amount } => {
            let payment = payment_ref(*payment, *by_client);
            let amount = match amount {
                None => 0,
                // On the wire 0 means "all of it"; a person typing 0 means nothing.
                Some(amount) if *amount <= Decimal::ZERO => {
                    bail!("--amount must be positive (omit it to capture the whole authorization)")
                }
                // The amount is in the payment's asset: look the payment up first.
                Some(amount) => {
                    let info = client.query(Query::Payment { account, payment })?;
                    let Some(Event::PaymentInfo(info)) = info.first() else {
                        let refused = as_refusal_of(CommandKind::Capture, &info);
                        print_events(&refused, &reference, json);
                        return Err(query_refusal(&refused, "no such payment", default));
                    };
                    let (_, scale) = reference
                        .asset_by_id(info.asset)
                        .context("the payment's asset is unknown")?;
                    minor("--amount", *amount, scale)?
                }
            };
            ClientMsg::Capture(wire::Capture { account, payment, amount })
        }
        ClientCommand::Void { payment, client: by_client } => {
            ClientMsg::Void(wire::Void { account, payment: payment_ref(*payment, *by_client) })
        }
        ClientCommand::Payment { payment, client: by_client } => {
            let payment = payment_ref(*payment, *by_client);
            return query(client, Query::Payment { account, payment }, &reference, json, default);
        }
        ClientCommand::Payments { limit } => {
            return query(
                client,
                Query::Payments { account, limit: *limit },
                &reference,
                json,
                default,
            );
        }
        ClientCommand::PaymentLimits { asset, transfer_max, daily_max } => {
            let (asset, scale) = reference.asset(asset)?;
            let limit = |what, value: &Limit| value.0.map(|v| minor(what, v, scale)).transpose();
            ClientMsg::SetPaymentLimits(wire::SetPaymentLimits {
                asset,
                transfer_max: limit("--transfer-max", transfer_max)?,
                velocity_24h: limit("--daily-max", daily_max)?,
            })
        }
        ClientCommand::AccountLimits { account, asset, credit, daily_max } => {
            let (asset, scale) = reference.asset(asset)?;
            ClientMsg::SetAccountLimits(wire::SetAccountLimits {
                account: AccountId(*account),
                asset,
                credit_limit: minor("--credit", *credit, scale)?,
                velocity_24h: daily_max.map(|v| minor("--daily-max", v, scale)).transpose()?,
            })
        }
        ClientCommand::Block { account } | ClientCommand::Unblock { account } => {
            let blocked = matches!(args.command, ClientCommand::Block { .. });
            ClientMsg::SetAccountBlocked(wire::SetAccountBlocked {
                account: AccountId(*account),
                blocked,
            })
        }
        ClientCommand::CreateAccount { account, owner } => {
            ClientMsg::CreateAccount(wire::CreateAccount {
                account: AccountId(*account),
                owner: UserId(*owner),
            })
        }
        ClientCommand::Freeze { account } | ClientCommand::Unfreeze { account } => {
            let status = if matches!(args.command, ClientCommand::Freeze { .. }) {
                AccountStatus::Frozen
            } else {
                AccountStatus::Active
            };
            ClientMsg::SetAccountStatus(wire::SetAccountStatus {
                account: AccountId(*account),
                status,
            })
        }
        ClientCommand::Halt { symbol, cancel_resting } => {
            ClientMsg::SetInstrumentStatus(wire::SetInstrumentStatus {
                instrument: reference.instrument(symbol)?.instrument,
                status: InstrumentStatus::Halted,
                cancel_resting: *cancel_resting,
            })
        }
        ClientCommand::Resume { symbol } => {
            ClientMsg::SetInstrumentStatus(wire::SetInstrumentStatus {
                instrument: reference.instrument(symbol)?.instrument,
                status: InstrumentStatus::Trading,
                cancel_resting: false,
            })
        }
        ClientCommand::Snapshot => ClientMsg::TakeSnapshot,
        ClientCommand::Watch { symbol } => {
            let instrument = reference.instrument(symbol)?.instrument;
            return watch(&mut client, instrument, &reference, json);
        }
    };
    let replies = client.request(&message)?;
    let refusal = replies.iter().find_map(|reply| match (&reply.msg, reply.event()) {
        (ServerMsg::SessionReject(reject), _) => Some((reject.reason, None)),
        (_, Some(Event::Rejected(r))) => Some((u32::from(r.reason.code()), Some(r.account))),
        _ => None,
    });
    for reply in &replies {
        print_received(reply, &reference, json);
    }
    client.logout()?;
    let Some((reason, account)) = refusal else { return Ok(()) };
    // An engine refusal (one with an account), not a session one.
    let engine_reason = account.and(u16::try_from(reason).ok()).and_then(RejectReason::from_code);
    let limit =
        engine_reason.zip(instrument).and_then(|(reason, spec)| accepts(reason, &spec, &reference));
    match limit {
        Some(limit) => Err(anyhow::anyhow!("refused: {limit}")),
        None => Err(refused(reason, account, default)),
    }
}

/// A price or quantity converted to ticks or lots; one too large for them is refused
/// with the instrument limit it breaks anyway (`beyond`), which says what is accepted.
fn units<T>(
    converted: Result<T, ClientError>,
    beyond: RejectReason,
    spec: &InstrumentSpec,
    reference: &Reference,
) -> anyhow::Result<T> {
    converted.map_err(|error| match (&error, accepts(beyond, spec, reference)) {
        (ClientError::Invalid(what, RejectReason::ArithmeticOverflow), Some(limit)) => {
            anyhow::anyhow!("{what} is out of range: {limit}")
        }
        _ => error.into(),
    })
}

/// What an instrument accepts, for a refusal that names one of its limits: the code
/// says which limit was broken, not where it lies.
fn accepts(reason: RejectReason, spec: &InstrumentSpec, reference: &Reference) -> Option<String> {
    let symbol = spec.symbol.as_str();
    match reason {
        RejectReason::QtyAboveMax => {
            Some(format!("{symbol} takes at most {} per order", qty_max(spec, reference)?))
        }
        RejectReason::NotionalAboveMax => Some(format!(
            "{symbol} takes at most {} of notional (price x quantity) per order",
            notional_max(spec, reference)?
        )),
        RejectReason::PriceOutsideBand => Some(format!(
            "{symbol} takes prices within {} % of the last trade price (of the reference \
             price {} before the first trade)",
            band_percent(spec),
            format::price(spec, spec.reference_price)
        )),
        _ => None,
    }
}

/// The largest quantity of one order, in the base asset (`100.0000 BTC`); none if the
/// asset is unknown.
fn qty_max(spec: &InstrumentSpec, reference: &Reference) -> Option<String> {
    let (base, _) = reference.asset_by_id(spec.base)?;
    Some(format!("{} {base}", format::qty(spec, spec.qty_max)))
}

/// The largest notional (price x quantity) of one order, in the quote asset
/// (`10000000.000000 USD`); none if the asset is unknown.
fn notional_max(spec: &InstrumentSpec, reference: &Reference) -> Option<String> {
    let (quote, scale) = reference.asset_by_id(spec.quote)?;
    Some(format!("{} {quote}", minor_to_decimal(spec.notional_max, scale)))
}

/// The half-width of the price band in percent (1000 bp: `10.00`).
fn band_percent(spec: &InstrumentSpec) -> Decimal {
    Decimal::new(i64::from(spec.band_bps), 2)
}

/// An instrument as `reference` lists it: its units, then what an order may be (each
/// limit a refusal can name, in the units [`accepts`] uses) and its fees.
fn describe_instrument(
    spec: &InstrumentSpec,
    status: InstrumentStatus,
    reference: &Reference,
) -> String {
    let dec = |d| fincore_engine::units::dec_to_decimal(d).unwrap_or_default();
    let unknown = || "? (asset unknown)".to_string();
    let fee = |bps: i32| if bps < 0 { format!("{bps} bp (a rebate)") } else { format!("{bps} bp") };
    format!(
        "instrument {} {} tick {} lot {} ({}): per order at most {} and {} notional, \
         prices within {} % of the last trade price (reference price {} before the first \
         trade); fees maker {}, taker {}",
        spec.instrument.0,
        spec.symbol,
        dec(spec.tick_size),
        dec(spec.lot_size),
        names::instrument_status(status),
        qty_max(spec, reference).unwrap_or_else(unknown),
        notional_max(spec, reference).unwrap_or_else(unknown),
        band_percent(spec),
        format::price(spec, spec.reference_price),
        fee(spec.maker_fee_bps),
        fee(spec.taker_fee_bps),
    )
}

/// The account the client picked because the command line named none: the user's
/// number, as in the demo. A refusal about it says so, or the number would be a puzzle.
#[derive(Clone, Copy)]
struct DefaultAccount<'a> {
    user: &'a str,
    account: AccountId,
}

/// The error that ends a refused command or query. The reason's name and code were
/// printed with the answer, so it only says "refused"; unless the refusal is that the
/// account the client picked by default is not the user's: then it says how to name
/// another.
fn refused(
    reason: u32,
    account: Option<AccountId>,
    default: Option<DefaultAccount>,
) -> anyhow::Error {
    let not_theirs = [RejectReason::UnknownAccount, RejectReason::AccountNotOwned]
        .iter()
        .any(|r| u32::from(r.code()) == reason);
    match default {
        Some(DefaultAccount { user, account: picked }) if not_theirs && account == Some(picked) => {
            anyhow::anyhow!(
                "refused: {user} owns no account {} (with no --account, the client uses the \
                 account numbered like the user); pass --account",
                picked.0
            )
        }
        _ => anyhow::anyhow!("refused"),
    }
}

/// The answer to a lookup the client makes before sending a command of `kind` (the
/// order an amend changes, for its instrument; the payment a partial capture takes, for
/// its asset), with its refusal shown as the command's: the user asked for the command,
/// not the lookup, and the lookup is refused for the same reasons the command would be
/// (unknown account, account not owned, unknown order or payment).
fn as_refusal_of(kind: CommandKind, answer: &[Event]) -> Vec<Event> {
    let relabel = |event: &Event| match *event {
        Event::Rejected(rejected) => Event::Rejected(Rejected { kind, ..rejected }),
        other => other,
    };
    answer.iter().map(relabel).collect()
}

/// The error for a lookup whose answer is not the item asked for: its refusal, if it was
/// refused, else `missing`.
fn query_refusal(items: &[Event], missing: &str, default: Option<DefaultAccount>) -> anyhow::Error {
    match items.first() {
        Some(Event::Rejected(r)) => refused(u32::from(r.reason.code()), Some(r.account), default),
        _ => anyhow::anyhow!("{missing}"),
    }
}

/// An amount (the `AMOUNT` argument) of an asset named by symbol, in its minor units.
fn money(reference: &Reference, asset: &str, amount: Decimal) -> anyhow::Result<(AssetId, i64)> {
    let (asset, scale) = reference.asset(asset)?;
    Ok((asset, minor("amount", amount, scale)?))
}

/// A decimal exactly as written: a number with more digits than a decimal holds is
/// refused, never rounded to one that was not typed. The message says what is accepted
/// (the caller, or clap, names the argument).
///
/// The syntax is the one the message states: digits with an optional leading sign and at
/// most one '.'. The decimal library alone would also take '_' between digits (`60_000`),
/// which the message would not admit to; a leading '+' is taken, and said to be.
fn exact_decimal(text: &str) -> Result<Decimal, String> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = || whole.chars().chain(fraction.chars());
    if digits().next().is_none() || !digits().all(|c| c.is_ascii_digit()) {
        return Err(NOT_PLAIN.to_string());
    }
    Decimal::from_str_exact(text).map_err(|error| match error {
        rust_decimal::Error::Underflow => {
            "more than 28 decimal places (it would have to be rounded)".to_string()
        }
        // rust_decimal says "overflow" in these messages and nowhere else; should that
        // change, the message below is still true, only less precise.
        rust_decimal::Error::ErrorString(why) if why.contains("overflow") => {
            format!("too large: a decimal argument is at most {}", Decimal::MAX)
        }
        _ => NOT_PLAIN.to_string(),
    })
}

/// What [`exact_decimal`] accepts, said when it refuses.
const NOT_PLAIN: &str = "not a plain decimal number: write digits with an optional leading \
                         '-' or '+' and one '.', such as 0.01 or 60000 (no separators such \
                         as '_' or ',', no exponent such as 1e5)";

/// An order's price: a decimal, or a market order.
#[derive(Clone, Copy, Debug)]
enum PriceArg {
    Market,
    Limit(Decimal),
}

fn price_arg(text: &str) -> Result<PriceArg, String> {
    match text {
        "market" => Ok(PriceArg::Market),
        _ => exact_decimal(text)
            .map(PriceArg::Limit)
            .map_err(|why| format!("{why}; or market for a market order")),
    }
}

/// A payment limit: an amount, or no limit.
#[derive(Clone, Copy, Debug)]
struct Limit(Option<Decimal>);

fn limit_arg(text: &str) -> Result<Limit, String> {
    match text {
        "none" => Ok(Limit(None)),
        _ => exact_decimal(text)
            .map(|amount| Limit(Some(amount)))
            .map_err(|why| format!("{why}; or none for no limit")),
    }
}

/// An account's own daily limit: an amount only. The protocol has no "no limit" for one
/// account (no amount means the asset's default), so `none`, which `payment-limits`
/// takes, is refused with what to do instead.
fn account_daily_max_arg(text: &str) -> Result<Decimal, String> {
    match text {
        "none" => Err("one account cannot be set to no limit: omit --daily-max to use the \
                       asset's default (set by payment-limits, where none means no limit)"
            .to_string()),
        _ => exact_decimal(text),
    }
}

/// A user id, which the protocol knows by number only (no message looks a name up or
/// lists users): anything else is refused with where the number is found.
fn user_id_arg(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| {
        format!(
            "the owner is a user's numeric id (at most {}), not a name: the `id` of its \
             [[users]] entry in the server's configuration (in the demo, alice is 2 and bob 3)",
            u32::MAX
        )
    })
}

/// `amount`, the argument `what`, in minor units of an asset with `scale` decimals.
fn minor(what: &str, amount: Decimal, scale: u8) -> anyhow::Result<i64> {
    fincore_engine::units::decimal_to_minor(amount, scale).map_err(|reason| match reason {
        fincore_engine::RejectReason::ArithmeticOverflow => anyhow::anyhow!(
            "{what} {amount} is out of range: an asset with {scale} decimals counts at most {} \
             (a 64-bit number of minor units)",
            minor_to_decimal(i64::MAX, scale)
        ),
        _ => anyhow::anyhow!("{what} {amount} has more decimal places than the asset's {scale}"),
    })
}

fn payment_ref(number: u64, by_client: bool) -> PaymentRef {
    if by_client {
        PaymentRef::Client(ClientPaymentId(number))
    } else {
        PaymentRef::Id(PaymentId(number))
    }
}

/// A client order id from the clock, for people who do not pick one.
fn clock_id() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(1, |d| d.as_micros() as u64)
}

/// Asks, prints the answer, logs out (the reject, if any, is printed with the answer).
fn query(
    mut client: Client,
    query: Query,
    reference: &Reference,
    json: bool,
    default: Option<DefaultAccount>,
) -> anyhow::Result<()> {
    let items = client.query(query)?;
    if items.is_empty() && !json {
        println!("(none)");
    }
    print_events(&items, reference, json);
    client.logout()?;
    match items.first() {
        Some(Event::Rejected(_)) => Err(query_refusal(&items, "refused", default)),
        _ => Ok(()),
    }
}

fn watch(
    client: &mut Client,
    instrument: InstrumentId,
    reference: &Reference,
    json: bool,
) -> anyhow::Result<()> {
    client.send(&ClientMsg::Subscribe(instrument))?;
    loop {
        let received = client.recv()?;
        if received.msg != ServerMsg::Heartbeat {
            print_received(&received, reference, json);
        }
    }
}

fn print_events(events: &[Event], reference: &Reference, json: bool) {
    for event in events {
        if json {
            println!("{}", event_json(event, reference));
        } else {
            println!("{}", describe(event, reference));
        }
    }
}

/// One received message; in JSON with the frame's outbound sequence number as `seq`
/// (so no message's own fields may be named `seq`).
fn print_received(received: &Received, reference: &Reference, json: bool) {
    if json {
        let mut object = message_json(&received.msg, reference);
        debug_assert!(object.get("seq").is_none(), "a message field would hide the frame's seq");
        object["seq"] = received.seq.into();
        println!("{object}");
    } else {
        println!("{}", describe_message(&received.msg, reference));
    }
}

/// One server message as a line of text, in decimals.
fn describe_message(msg: &ServerMsg, reference: &Reference) -> String {
    match msg {
        ServerMsg::ExecReport(report) => describe(&report.event, reference),
        ServerMsg::SessionReject(reject) => {
            format!("refused: {}", wire::reason_name(reject.reason))
        }
        // The newest snapshot, written now or already at this sequence (the reply does
        // not say which; the server's log and metrics do).
        ServerMsg::SnapshotTaken(taken) => {
            format!("snapshot at seq {} (state_hash={:016x})", taken.seq, taken.state_hash)
        }
        ServerMsg::LoginAccepted(a) => format!(
            "logged in: session {} as user {}{}, heartbeat {} ms",
            a.session_id,
            a.user.0,
            if a.admin { " (admin)" } else { "" },
            a.heartbeat_ms
        ),
        ServerMsg::LoginRejected(reason) => {
            format!("login refused: {}", wire::reason_name(*reason))
        }
        ServerMsg::Logout(reason) => format!("logged out: {}", wire::reason_name(*reason)),
        ServerMsg::Heartbeat => "heartbeat".to_string(),
        ServerMsg::MdSnapshotLevel(_) | ServerMsg::MdTrade(_) | ServerMsg::MdLevel(_) => {
            let (event, md_seq) = market_data_event(msg).expect("a market data update");
            match md_seq {
                Some(md_seq) => format!("#{md_seq:<6} {}", describe(&event, reference)),
                None => format!("book  {}", describe(&event, reference)),
            }
        }
        ServerMsg::MdSnapshotEnd(end) => {
            format!("--- snapshot: {} levels, md_seq {} ---", end.levels, end.md_seq)
        }
        ServerMsg::MdUnsubscribed(instrument) => format!(
            "unsubscribed from {}",
            reference
                .instrument_by_id(*instrument)
                .map_or(format!("instrument {}", instrument.0), |s| s.symbol.to_string())
        ),
    }
}

/// One server message as a JSON object (engine events as [`event_json`] has them).
fn message_json(msg: &ServerMsg, reference: &Reference) -> serde_json::Value {
    use serde_json::json;
    match msg {
        ServerMsg::ExecReport(report) => {
            let mut object = event_json(&report.event, reference);
            debug_assert!(
                object.get("journal_seq").is_none() && object.get("request_id").is_none()
            );
            object["journal_seq"] = report.journal_seq.into();
            object["request_id"] = report.request_id.into();
            object
        }
        ServerMsg::SessionReject(reject) => json!({
            "type": "session_reject",
            "reason": reject.reason,
            "reason_name": wire::reason_name(reject.reason),
            "ref_type": reject.ref_type,
            "ref_request_id": reject.ref_request_id,
        }),
        // `seq` is the frame's own number (see `print_received`): the sequence of the last
        // command in the snapshot is `snapshot_seq`, as in `fincore replay --json`.
        ServerMsg::SnapshotTaken(taken) => json!({
            "type": "snapshot_taken",
            "snapshot_seq": taken.seq,
            "state_hash": format!("{:016x}", taken.state_hash),
        }),
        ServerMsg::LoginAccepted(a) => json!({
            "type": "login_accepted", "session_id": a.session_id, "user": a.user.0,
            "admin": a.admin, "heartbeat_ms": a.heartbeat_ms,
        }),
        ServerMsg::LoginRejected(reason) | ServerMsg::Logout(reason) => json!({
            "type": if matches!(msg, ServerMsg::Logout(_)) { "logout" } else { "login_rejected" },
            "reason": reason, "reason_name": wire::reason_name(*reason),
        }),
        ServerMsg::Heartbeat => json!({ "type": "heartbeat" }),
        ServerMsg::MdSnapshotLevel(_) | ServerMsg::MdTrade(_) | ServerMsg::MdLevel(_) => {
            let (event, md_seq) = market_data_event(msg).expect("a market data update");
            let mut object = event_json(&event, reference);
            object["type"] = match md_seq {
                Some(_) if matches!(msg, ServerMsg::MdTrade(_)) => "md_trade",
                Some(_) => "md_level",
                None => "md_snapshot_level",
            }
            .into();
            if let Some(md_seq) = md_seq {
                object["md_seq"] = md_seq.into();
            }
            object
        }
        ServerMsg::MdSnapshotEnd(end) => json!({
            "type": "md_snapshot_end",
            "instrument": reference.instrument_by_id(end.instrument).map(|s| s.symbol.to_string()),
            "md_seq": end.md_seq, "levels": end.levels,
        }),
        ServerMsg::MdUnsubscribed(instrument) => json!({
            "type": "md_unsubscribed",
            "instrument": reference.instrument_by_id(*instrument).map(|s| s.symbol.to_string()),
        }),
    }
}

/// A market data update as the engine event it reports (a snapshot level as a depth
/// level), with its market data sequence (none for a snapshot level), so that it prints
/// as that event does.
fn market_data_event(msg: &ServerMsg) -> Option<(Event, Option<u64>)> {
    match *msg {
        ServerMsg::MdSnapshotLevel(l) => {
            let (instrument, side, price, qty, orders) =
                (l.instrument, l.side, l.price, l.qty, l.orders);
            Some((Event::DepthLevel(LevelChanged { instrument, side, price, qty, orders }), None))
        }
        ServerMsg::MdLevel(l) => {
            let (instrument, side, price, qty, orders) =
                (l.instrument, l.side, l.price, l.qty, l.orders);
            Some((
                Event::Level(LevelChanged { instrument, side, price, qty, orders }),
                Some(l.md_seq),
            ))
        }
        ServerMsg::MdTrade(t) => {
            let (instrument, trade_id, price, qty) = (t.instrument, t.trade_id, t.price, t.qty);
            let trade = Trade { instrument, trade_id, price, qty, taker_side: t.taker_side };
            Some((Event::Trade(trade), Some(t.md_seq)))
        }
        _ => None,
    }
}

/// One event as a line of text, in decimals.
fn describe(event: &Event, reference: &Reference) -> String {
    let instrument = |id: InstrumentId| reference.instrument_by_id(id);
    let symbol =
        |id: InstrumentId| instrument(id).map_or(format!("#{}", id.0), |s| s.symbol.to_string());
    let price = |id, p: fincore_engine::Price| {
        instrument(id).map_or(Decimal::from(p.0), |s| format::price(s, p))
    };
    let qty = |id, q: fincore_engine::Qty| {
        instrument(id).map_or(Decimal::from(q.0), |s| format::qty(s, q))
    };
    let money = |asset, amount| match reference.asset_by_id(asset) {
        Some((symbol, scale)) => format!("{} {symbol}", minor_to_decimal(amount, scale)),
        None => format!("{amount} (asset {})", asset.0),
    };
    let quote = |id: InstrumentId| instrument(id).map_or(fincore_engine::AssetId(0), |s| s.quote);
    match *event {
        Event::Accepted(a) => format!(
            "accepted: order {} (client id {}) {} {} {} @ {}, holding {}",
            a.order_id.0,
            a.client_order_id.0,
            names::side(a.side),
            qty(a.instrument, a.qty),
            symbol(a.instrument),
            price(a.instrument, a.price),
            money(
                if a.side == Side::Buy {
                    quote(a.instrument)
                } else {
                    base(reference, a.instrument)
                },
                a.hold
            )
        ),
        Event::Fill(f) => {
            // A trader's copy of a fill zeroes the other side (order ids start at 1).
            let side = |role: &str, order: OrderId, account: AccountId, fee: i64| match order.0 {
                0 => format!("{role} not shown"),
                _ => format!(
                    "{role} order {} account {}, fee {}",
                    order.0,
                    account.0,
                    money(quote(f.instrument), fee)
                ),
            };
            format!(
                "fill: trade {} {} {} @ {} ({}; {})",
                f.trade_id.0,
                qty(f.instrument, f.qty),
                symbol(f.instrument),
                price(f.instrument, f.price),
                side("maker", f.maker_order, f.maker_account, f.maker_fee),
                side("taker", f.taker_order, f.taker_account, f.taker_fee),
            )
        }
        Event::Cancelled(c) => format!(
            "cancelled: order {} (client id {}) {} {} ({})",
            c.order_id.0,
            c.client_order_id.0,
            qty(c.instrument, c.qty_cancelled),
            symbol(c.instrument),
            cancel_reason(c.reason)
        ),
        Event::Amended(a) => format!(
            "amended: order {} now {} @ {} ({})",
            a.order_id.0,
            qty(a.instrument, a.qty),
            price(a.instrument, a.price),
            if a.priority_kept { "priority kept" } else { "priority lost" }
        ),
        Event::Balance(b) | Event::BalanceInfo(b) => format!(
            "balance: account {} available {} held {} pending {}",
            b.account.0,
            money(b.asset, b.available),
            money(b.asset, b.held),
            money(b.asset, b.pending)
        ),
        Event::Payment { action, info } => {
            format!("{}: {}", payment_action(action), describe_payment(&info, reference))
        }
        Event::PaymentInfo(info) => describe_payment(&info, reference),
        Event::PaymentLimitsSet { asset, transfer_max, velocity_24h } => format!(
            "payment limits of {}: per payment {}, per account per 24 hours {}",
            reference
                .asset_by_id(asset)
                .map_or(format!("asset {}", asset.0), |(s, _)| s.to_string()),
            transfer_max.map_or("unlimited".to_string(), |v| money(asset, v)),
            velocity_24h.map_or("unlimited".to_string(), |v| money(asset, v)),
        ),
        Event::AccountLimitsSet { account, asset, credit_limit, velocity_24h } => format!(
            "account {} limits: credit {}, per 24 hours {}",
            account.0,
            money(asset, credit_limit),
            velocity_24h.map_or("the asset's default".to_string(), |v| money(asset, v)),
        ),
        Event::AccountBlocked { account, blocked } => format!(
            "account {} {} the deny-list",
            account.0,
            if blocked { "is on" } else { "is off" }
        ),
        Event::OrderInfo(o) => format!(
            "order {} (client id {}) {} {} {} @ {}, filled {}",
            o.order_id.0,
            o.client_order_id.0,
            names::side(o.side),
            qty(o.instrument, o.remaining),
            symbol(o.instrument),
            price(o.instrument, o.price),
            qty(o.instrument, o.filled)
        ),
        Event::DepthLevel(l) => format!(
            "{:<4} {:>14} x {:<14} ({})",
            names::book_side(l.side),
            price(l.instrument, l.price),
            qty(l.instrument, l.qty),
            format::count(l.orders, "order")
        ),
        Event::Rejected(r) => {
            let (account, client_id) = rejected_subject(&r);
            format!(
                "rejected: {} (command {}{}{})",
                wire::reason_name(u32::from(r.reason.code())),
                r.kind.name(),
                account.map_or(String::new(), |account| format!(", account {}", account.0)),
                client_id.map_or(String::new(), |id| format!(", client id {id}")),
            )
        }
        Event::MassCancelled { account, count } => {
            format!(
                "mass cancel: account {} cancelled {}",
                account.0,
                format::count(count, "order")
            )
        }
        Event::AssetInfo { asset, symbol, scale } => {
            format!("asset {} {symbol} ({scale} decimals)", asset.0)
        }
        Event::InstrumentInfo { spec, status } => describe_instrument(&spec, status, reference),
        Event::AccountCreated { account, owner } => {
            format!("account {} created, owned by user {}", account.0, owner.0)
        }
        Event::AccountStatusChanged { account, status } => {
            format!("account {} is now {}", account.0, names::account_status(status))
        }
        Event::InstrumentStatusChanged { instrument, status } => {
            format!("instrument {} is now {}", symbol(instrument), names::instrument_status(status))
        }
        Event::UserCreated { user, role } => {
            format!("user {} created ({})", user.0, names::role(role))
        }
        Event::AssetCreated { asset, scale } => {
            format!("asset {} created ({scale} decimals)", asset.0)
        }
        Event::InstrumentCreated { instrument } => {
            format!("instrument {} created", symbol(instrument))
        }
        Event::Trade(t) => format!(
            "trade {} {} {} @ {} (aggressor {})",
            t.trade_id.0,
            qty(t.instrument, t.qty),
            symbol(t.instrument),
            price(t.instrument, t.price),
            names::side(t.taker_side)
        ),
        Event::Level(l) => format!(
            "level {} {} {} -> {} ({})",
            symbol(l.instrument),
            names::book_side(l.side),
            price(l.instrument, l.price),
            qty(l.instrument, l.qty),
            format::count(l.orders, "order")
        ),
        Event::QueryDone { items } => format!("end of answer ({})", format::count(items, "item")),
        Event::Ticked { time_ns } => format!("tick: engine time {time_ns} ns"),
    }
}

/// The account and the client order or payment id of a refused command, for the kinds of
/// command that have them: the `Rejected` event says 0 where the command has none, which
/// printed would read as account 0 or client id 0.
///
/// A cancel, amend, capture, void or lookup has a client id only when it names its order
/// or payment by one (else 0); and a lookup has an account unless it is of the book or the
/// reference data (else 0). For these a 0 is taken as none: a cancel by client id 0, or a
/// refused lookup of account 0, prints without it.
fn rejected_subject(r: &Rejected) -> (Option<AccountId>, Option<u64>) {
    let nonzero = |id: u64| (id != 0).then_some(id);
    let account = Some(r.account);
    match r.kind {
        CommandKind::NewOrder
        | CommandKind::Transfer
        | CommandKind::Authorize
        | CommandKind::Deposit
        | CommandKind::Withdraw => (account, Some(r.client_id)),
        CommandKind::Cancel | CommandKind::Amend | CommandKind::Capture | CommandKind::Void => {
            (account, nonzero(r.client_id))
        }
        CommandKind::MassCancel
        | CommandKind::CreateAccount
        | CommandKind::SetAccountStatus
        | CommandKind::SetAccountLimits
        | CommandKind::SetAccountBlocked => (account, None),
        CommandKind::Query => (account.filter(|a| a.0 != 0), nonzero(r.client_id)),
        CommandKind::CreateUser
        | CommandKind::CreateAsset
        | CommandKind::CreateInstrument
        | CommandKind::SetInstrumentStatus
        | CommandKind::SetPaymentLimits
        | CommandKind::Tick => (None, None),
    }
}

fn payment_action(action: PaymentAction) -> &'static str {
    match action {
        PaymentAction::Created => "payment",
        PaymentAction::Captured => "captured",
        PaymentAction::Voided => "voided",
        PaymentAction::Expired => "expired",
        PaymentAction::Duplicate => "duplicate (already done, nothing moved)",
    }
}

fn payment_kind(kind: PaymentKind) -> &'static str {
    match kind {
        PaymentKind::Transfer => "transfer",
        PaymentKind::Authorization => "authorization",
        PaymentKind::Deposit => "deposit",
        PaymentKind::Withdrawal => "withdrawal",
    }
}

fn payment_status(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Pending => "pending",
        PaymentStatus::Completed => "completed",
        PaymentStatus::Voided => "voided",
        PaymentStatus::Expired => "expired",
    }
}

fn party(account: AccountId) -> String {
    if account == EXTERNAL_ACCOUNT {
        "external".to_string()
    } else {
        format!("account {}", account.0)
    }
}

fn describe_payment(p: &PaymentInfo, reference: &Reference) -> String {
    let money = |amount| match reference.asset_by_id(p.asset) {
        Some((symbol, scale)) => format!("{} {symbol}", minor_to_decimal(amount, scale)),
        None => format!("{amount} (asset {})", p.asset.0),
    };
    let captured = match (p.kind, p.status) {
        (PaymentKind::Authorization, PaymentStatus::Completed) => {
            format!(", captured {}", money(p.captured))
        }
        _ => String::new(),
    };
    format!(
        "payment {} (client id {}) {} {} {} -> {}: {}{captured}",
        p.payment_id.0,
        p.client_payment_id.0,
        payment_kind(p.kind),
        money(p.amount),
        party(p.debit),
        party(p.credit),
        payment_status(p.status),
    )
}

fn payment_json(p: &PaymentInfo, reference: &Reference) -> serde_json::Value {
    let money = |amount: i64| {
        reference.asset_by_id(p.asset).map(|(_, scale)| minor_to_decimal(amount, scale).to_string())
    };
    let account = |a: AccountId| if a == EXTERNAL_ACCOUNT { None } else { Some(a.0) };
    serde_json::json!({
        "payment_id": p.payment_id.0, "client_payment_id": p.client_payment_id.0,
        "kind": payment_kind(p.kind), "debit": account(p.debit), "credit": account(p.credit),
        "asset": reference.asset_by_id(p.asset).map(|(s, _)| s.to_string()),
        "amount": money(p.amount), "captured": money(p.captured),
        "amount_raw": p.amount, "captured_raw": p.captured,
        "status": payment_status(p.status), "created_ns": p.created_ns,
        "deadline_ns": p.deadline_ns, "resolved_ns": p.resolved_ns,
    })
}

fn base(reference: &Reference, id: InstrumentId) -> fincore_engine::AssetId {
    reference.instrument_by_id(id).map_or(fincore_engine::AssetId(0), |s| s.base)
}

fn cancel_reason(reason: CancelReason) -> &'static str {
    match reason {
        CancelReason::User => "by request",
        CancelReason::IocRemainder => "IOC remainder",
        CancelReason::FokUnfilled => "FOK could not fill",
        CancelReason::SelfTrade => "self-trade prevention",
        CancelReason::MassCancel => "mass cancel",
        CancelReason::Halt => "instrument halted",
    }
}

/// One event as a JSON object: ids as numbers, prices, quantities and amounts as
/// decimal strings in the instrument's or asset's units (raw integers as `*_raw`).
fn event_json(event: &Event, reference: &Reference) -> serde_json::Value {
    use serde_json::json;
    let spec = |id: InstrumentId| reference.instrument_by_id(id);
    let symbol = |id: InstrumentId| spec(id).map(|s| s.symbol.to_string());
    let price = |id, p: fincore_engine::Price| spec(id).map(|s| format::price(s, p).to_string());
    let qty = |id, q: fincore_engine::Qty| spec(id).map(|s| format::qty(s, q).to_string());
    let money = |asset: fincore_engine::AssetId, amount: i64| {
        reference.asset_by_id(asset).map(|(_, scale)| minor_to_decimal(amount, scale).to_string())
    };
    let asset_symbol = |asset: fincore_engine::AssetId| {
        reference.asset_by_id(asset).map(|(symbol, _)| symbol.to_string())
    };
    let side = names::side;
    match *event {
        Event::Accepted(a) => json!({
            "type": "accepted", "order_id": a.order_id.0, "account": a.account.0,
            "instrument": symbol(a.instrument), "client_order_id": a.client_order_id.0,
            "side": side(a.side), "price": price(a.instrument, a.price), "qty": qty(a.instrument, a.qty),
            "price_raw": a.price.0, "qty_raw": a.qty.0, "hold_raw": a.hold,
        }),
        Event::Fill(f) => json!({
            "type": "fill", "instrument": symbol(f.instrument), "trade_id": f.trade_id.0,
            "price": price(f.instrument, f.price), "qty": qty(f.instrument, f.qty),
            "taker_side": side(f.taker_side),
            "maker_order": f.maker_order.0, "taker_order": f.taker_order.0,
            "maker_account": f.maker_account.0, "taker_account": f.taker_account.0,
            "maker_client_id": f.maker_client_id.0, "taker_client_id": f.taker_client_id.0,
            "maker_fee_raw": f.maker_fee, "taker_fee_raw": f.taker_fee,
            "maker_remaining": qty(f.instrument, f.maker_remaining),
            "taker_remaining": qty(f.instrument, f.taker_remaining),
        }),
        Event::Cancelled(c) => json!({
            "type": "cancelled", "order_id": c.order_id.0, "account": c.account.0,
            "instrument": symbol(c.instrument), "client_order_id": c.client_order_id.0,
            "qty_cancelled": qty(c.instrument, c.qty_cancelled), "reason": cancel_reason(c.reason),
        }),
        Event::Amended(a) => json!({
            "type": "amended", "order_id": a.order_id.0, "account": a.account.0,
            "instrument": symbol(a.instrument), "client_order_id": a.client_order_id.0,
            "price": price(a.instrument, a.price), "qty": qty(a.instrument, a.qty),
            "priority_kept": a.priority_kept,
        }),
        Event::Balance(b) | Event::BalanceInfo(b) => json!({
            "type": if matches!(event, Event::Balance(_)) { "balance" } else { "balance_info" },
            "account": b.account.0, "asset": asset_symbol(b.asset),
            "available": money(b.asset, b.available), "held": money(b.asset, b.held),
            "pending": money(b.asset, b.pending),
        }),
        Event::Payment { action, info } => {
            let mut object = payment_json(&info, reference);
            object["type"] = "payment".into();
            object["action"] = names::payment_action(action).into();
            object
        }
        Event::PaymentInfo(info) => {
            let mut object = payment_json(&info, reference);
            object["type"] = "payment_info".into();
            object
        }
        Event::OrderInfo(o) => json!({
            "type": "order", "order_id": o.order_id.0, "account": o.account.0,
            "instrument": symbol(o.instrument), "client_order_id": o.client_order_id.0,
            "side": side(o.side), "price": price(o.instrument, o.price),
            "remaining": qty(o.instrument, o.remaining), "filled": qty(o.instrument, o.filled),
        }),
        Event::DepthLevel(l) => json!({
            "type": "depth_level", "instrument": symbol(l.instrument), "side": side(l.side),
            "price": price(l.instrument, l.price), "qty": qty(l.instrument, l.qty), "orders": l.orders,
        }),
        // No account or client id (null) for a command that has none, as in the text.
        Event::Rejected(r) => {
            let (account, client_id) = rejected_subject(&r);
            json!({
                "type": "rejected", "kind": r.kind.name(), "account": account.map(|a| a.0),
                "client_id": client_id, "reason": r.reason.code(),
                "reason_name": wire::reason_name(u32::from(r.reason.code())),
            })
        }
        Event::MassCancelled { account, count } => {
            json!({ "type": "mass_cancelled", "account": account.0, "count": count })
        }
        Event::AssetInfo { asset, symbol, scale } => {
            json!({ "type": "asset", "asset": asset.0, "symbol": symbol.to_string(), "scale": scale })
        }
        // The limits as `reference` prints them: quantities in the base asset, notional
        // in the quote asset (both named), the band in basis points and percent.
        Event::InstrumentInfo { spec, status } => json!({
            "type": "instrument", "instrument": spec.instrument.0, "symbol": spec.symbol.to_string(),
            "base": asset_symbol(spec.base), "quote": asset_symbol(spec.quote),
            "tick_size": fincore_engine::units::dec_to_decimal(spec.tick_size).map(|d| d.to_string()),
            "lot_size": fincore_engine::units::dec_to_decimal(spec.lot_size).map(|d| d.to_string()),
            "status": names::instrument_status(status),
            "qty_max": format::qty(&spec, spec.qty_max).to_string(),
            "notional_max": money(spec.quote, spec.notional_max),
            "band_bps": spec.band_bps, "band_percent": band_percent(&spec).to_string(),
            "reference_price": format::price(&spec, spec.reference_price).to_string(),
            "maker_fee_bps": spec.maker_fee_bps, "taker_fee_bps": spec.taker_fee_bps,
            "qty_max_raw": spec.qty_max.0, "notional_max_raw": spec.notional_max,
            "reference_price_raw": spec.reference_price.0,
        }),
        Event::PaymentLimitsSet { asset, transfer_max, velocity_24h } => json!({
            "type": "payment_limits", "asset": asset_symbol(asset),
            "transfer_max": transfer_max.and_then(|v| money(asset, v)),
            "daily_max": velocity_24h.and_then(|v| money(asset, v)),
            "transfer_max_raw": transfer_max, "daily_max_raw": velocity_24h,
        }),
        Event::AccountLimitsSet { account, asset, credit_limit, velocity_24h } => json!({
            "type": "account_limits", "account": account.0, "asset": asset_symbol(asset),
            "credit": money(asset, credit_limit),
            "daily_max": velocity_24h.and_then(|v| money(asset, v)),
            "credit_raw": credit_limit, "daily_max_raw": velocity_24h,
        }),
        Event::AccountBlocked { account, blocked } => {
            json!({ "type": "account_blocked", "account": account.0, "blocked": blocked })
        }
        Event::AccountCreated { account, owner } => {
            json!({ "type": "account_created", "account": account.0, "owner": owner.0 })
        }
        Event::AccountStatusChanged { account, status } => json!({
            "type": "account_status", "account": account.0,
            "status": names::account_status(status),
        }),
        Event::InstrumentStatusChanged { instrument, status } => json!({
            "type": "instrument_status", "instrument": symbol(instrument),
            "instrument_id": instrument.0, "status": names::instrument_status(status),
        }),
        Event::UserCreated { user, role } => {
            json!({ "type": "user_created", "user": user.0, "role": names::role(role) })
        }
        Event::AssetCreated { asset, scale } => {
            json!({ "type": "asset_created", "asset": asset.0, "scale": scale })
        }
        Event::InstrumentCreated { instrument } => json!({
            "type": "instrument_created", "instrument": symbol(instrument),
            "instrument_id": instrument.0,
        }),
        Event::Trade(t) => json!({
            "type": "trade", "instrument": symbol(t.instrument), "trade_id": t.trade_id.0,
            "price": price(t.instrument, t.price), "qty": qty(t.instrument, t.qty),
            "taker_side": side(t.taker_side),
        }),
        Event::Level(l) => json!({
            "type": "level", "instrument": symbol(l.instrument), "side": side(l.side),
            "price": price(l.instrument, l.price), "qty": qty(l.instrument, l.qty),
            "orders": l.orders,
        }),
        Event::QueryDone { items } => json!({ "type": "query_done", "items": items }),
        Event::Ticked { time_ns } => json!({ "type": "ticked", "time_ns": time_ns }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fincore_engine::{Dec, Price, Qty, Symbol};

    /// A decimal argument is taken when it has the syntax the refusal states (digits, an
    /// optional leading sign, at most one '.'), and only then.
    #[test]
    fn exact_decimal_takes_what_its_message_says() {
        let taken = [
            ("0.01", "0.01"),
            ("60000", "60000"),
            ("+60000", "60000"),
            ("-2.5", "-2.5"),
            ("5.", "5"),
            (".5", "0.5"),
        ];
        for (text, value) in taken {
            assert_eq!(exact_decimal(text), Ok(value.parse().unwrap()), "{text}");
        }
        let refused = ["60_000", "6_0000", "60,000", "1e5", "", "-", "+", ".", "+-5", "1.2.3"];
        for text in refused.into_iter().chain([" 5", "5 ", "0x10", "NaN", "inf"]) {
            assert_eq!(exact_decimal(text), Err(NOT_PLAIN.to_string()), "{text}");
        }
    }

    /// The limits a refusal names, each in the instrument's own units; none for a
    /// refusal that is not about a limit, or an instrument whose asset is unknown.
    #[test]
    fn accepts_names_each_limit_in_the_instrument_units() {
        let symbol = |text| Symbol::new(text).unwrap();
        let spec = InstrumentSpec {
            instrument: InstrumentId(3),
            symbol: symbol("SOL-EUR"),
            base: AssetId(5),
            quote: AssetId(6),
            tick_size: Dec { mantissa: 5, scale: 3 },
            lot_size: Dec { mantissa: 1, scale: 1 },
            reference_price: Price(30_000),
            band_bps: 250,
            qty_max: Qty(12_345),
            notional_max: 987_654_321,
            maker_fee_bps: 0,
            taker_fee_bps: 0,
            fee_account: AccountId(1),
        };
        let mut reference = Reference {
            assets: vec![(AssetId(5), symbol("SOL"), 9), (AssetId(6), symbol("EUR"), 2)],
            instruments: vec![(spec, InstrumentStatus::Trading)],
        };
        let accepts = |reason, reference: &Reference| accepts(reason, &spec, reference);
        assert_eq!(
            accepts(RejectReason::QtyAboveMax, &reference).unwrap(),
            "SOL-EUR takes at most 1234.5 SOL per order"
        );
        assert_eq!(
            accepts(RejectReason::NotionalAboveMax, &reference).unwrap(),
            "SOL-EUR takes at most 9876543.21 EUR of notional (price x quantity) per order"
        );
        assert_eq!(
            accepts(RejectReason::PriceOutsideBand, &reference).unwrap(),
            "SOL-EUR takes prices within 2.50 % of the last trade price (of the reference \
             price 150.000 before the first trade)"
        );
        assert_eq!(accepts(RejectReason::InsufficientBalance, &reference), None);
        // `reference` names the same limits, and the fees (a negative one is a rebate).
        let spec = InstrumentSpec { maker_fee_bps: -2, taker_fee_bps: 7, ..spec };
        assert_eq!(
            describe_instrument(&spec, InstrumentStatus::Halted, &reference),
            "instrument 3 SOL-EUR tick 0.005 lot 0.1 (halted): per order at most 1234.5 SOL \
             and 9876543.21 EUR notional, prices within 2.50 % of the last trade price \
             (reference price 150.000 before the first trade); fees maker -2 bp (a rebate), \
             taker 7 bp"
        );
        reference.assets.clear();
        assert_eq!(accepts(RejectReason::NotionalAboveMax, &reference), None);
        assert!(
            describe_instrument(&spec, InstrumentStatus::Halted, &reference)
                .contains("per order at most ? (asset unknown) and ? (asset unknown) notional")
        );
    }
}
