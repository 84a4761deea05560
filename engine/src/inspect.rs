//! Read-only views of the state for operators' reports (`fincore replay`, the server's
//! shutdown line): which assets, accounts and instruments exist. Nothing here is on the
//! hot path, and none of it can change state.

use crate::engine::{Engine, Instrument};
use crate::event::PaymentAction;
use crate::ledger::{Account, Asset};
use crate::types::*;

/// Per-asset totals: what exists and where it sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssetTotals {
    /// The asset.
    pub asset: AssetId,
    /// Its symbol.
    pub symbol: Symbol,
    /// Decimals of its minor unit.
    pub scale: u8,
    /// Deposits minus withdrawals.
    pub supply: i64,
    /// Sum of available balances.
    pub available: i128,
    /// Sum of held balances.
    pub held: i128,
    /// Sum of pending balances (held for outgoing authorizations).
    pub pending: i128,
}

impl Engine {
    /// Every asset, with the sums of all balances (conservation: available + held +
    /// pending == supply).
    pub fn asset_totals(&self) -> Vec<AssetTotals> {
        let mut totals: Vec<AssetTotals> = self
            .assets
            .iter()
            .enumerate()
            .filter_map(|(id, asset)| asset.map(|a| totals_of(AssetId(id as u16), a)))
            .collect();
        for account in self.accounts.iter().flatten() {
            for total in &mut totals {
                let balance = account.balance(total.asset);
                total.available += i128::from(balance.available);
                total.held += i128::from(balance.held);
                total.pending += i128::from(balance.pending);
            }
        }
        totals
    }

    /// Existing accounts in id order.
    pub fn accounts(&self) -> impl Iterator<Item = (AccountId, &Account)> {
        self.accounts
            .iter()
            .enumerate()
            .filter_map(|(id, a)| a.as_ref().map(|a| (AccountId(id as u32), a)))
    }

    /// Trades executed since the journal began (each fill is one trade).
    pub fn trades(&self) -> u64 {
        self.next_trade_id - 1
    }

    /// Payment events emitted since this engine value was built, by
    /// `[kind.index()][action.index()]` (a statistic, not state: see
    /// `Instrument::traded_lots`).
    pub fn payment_events(&self) -> &[[u64; PaymentAction::COUNT]; PaymentKind::COUNT] {
        &self.payments.events
    }

    /// Existing instruments in id order.
    pub fn instruments(&self) -> impl Iterator<Item = &Instrument> {
        self.instruments.iter().flatten()
    }

    /// The instrument with this symbol, if any.
    pub fn instrument_by_symbol(&self, symbol: &str) -> Option<&Instrument> {
        self.instruments().find(|i| i.spec.symbol.as_str() == symbol)
    }

    /// The role of a user, if it exists.
    pub fn user_role(&self, user: UserId) -> Option<Role> {
        self.role(user).ok()
    }

    /// The definition of an asset, if it exists.
    pub fn asset_info(&self, asset: AssetId) -> Option<Asset> {
        self.assets.get(asset.0 as usize).copied().flatten()
    }
}

fn totals_of(asset: AssetId, a: Asset) -> AssetTotals {
    let (available, held, pending) = (0, 0, 0);
    AssetTotals {
        asset,
        symbol: a.symbol,
        scale: a.scale,
        supply: a.supply,
        available,
        held,
        pending,
    }
}
