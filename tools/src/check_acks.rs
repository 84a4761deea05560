//! `fincore replay --check-acks FILE`: proves from the journal alone that nothing a
//! client was told is lost or changed. The file is `fincore load --ack-log` output, one
//! line per acknowledged command: `<account> <client id> <journal seq> <outcome>`.
//!
//! Checks, replaying the whole journal (no snapshot, so that every command's outcome is
//! seen):
//! 1. every acknowledged sequence number is in the journal (nothing acknowledged was
//!    lost), and the command there names the acknowledged account and client id;
//! 2. replaying that command gives the acknowledged outcome (`accepted`, or
//!    `rejected:<code>`; `error:<code>` acks were refused before the journal and have
//!    sequence 0);
//! 3. no creating command (order, transfer, authorization, deposit, withdrawal) was
//!    acknowledged twice for one (account, client id) at two sequence numbers;
//! 4. the replayed state passes every engine invariant (per-asset conservation among
//!    them).

use anyhow::{Context, Result, bail};
use fincore_engine::{Command, CommandBody, Event};
use fincore_gateway::{ReplayBounds, replay_observed};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One acknowledged command.
struct Ack {
    account: u32,
    client_id: u64,
    outcome: String,
    line: usize,
}

/// What the check found.
pub struct AckReport {
    /// Acknowledgements read.
    pub acks: usize,
    /// Of which refused before reaching the journal (`error:` outcomes).
    pub session_refusals: usize,
    /// The replayed state's hash and sequence.
    pub state_hash: u64,
    /// Last sequence in the journal.
    pub seq: u64,
}

pub fn check(data: &Path, acks_path: &Path) -> Result<AckReport> {
    let text = std::fs::read_to_string(acks_path)
        .with_context(|| format!("reading {}", acks_path.display()))?;
    let mut acks: HashMap<u64, Ack> = HashMap::new();
    let mut session_refusals = 0;
    let mut total = 0;
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = || {
            anyhow::anyhow!(
                "{}:{}: not `<account> <client id> <seq> <outcome>`",
                acks_path.display(),
                number + 1
            )
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [account, client_id, seq, outcome] = fields[..] else { return Err(bad()) };
        let (account, client_id, seq): (u32, u64, u64) = (
            account.parse().map_err(|_| bad())?,
            client_id.parse().map_err(|_| bad())?,
            seq.parse().map_err(|_| bad())?,
        );
        total += 1;
        if outcome.starts_with("error:") {
            session_refusals += 1;
            continue;
        }
        let ack = Ack { account, client_id, outcome: outcome.to_string(), line: number + 1 };
        if let Some(first) = acks.insert(seq, ack) {
            bail!("sequence {seq} acknowledged twice (lines {} and {})", first.line, number + 1);
        }
    }

    let mut problems = Vec::new();
    let mut created: BTreeMap<(u32, u64), u64> = BTreeMap::new();
    let mut seen = 0usize;
    let bounds = ReplayBounds { no_snapshot: true, ..ReplayBounds::default() };
    let replayed = replay_observed(data, bounds, |command: &Command, events: &[Event]| {
        let Some(ack) = acks.get(&command.seq) else { return };
        seen += 1;
        let (account, client_id) = command.body.reject_context();
        if (account.0, client_id) != (ack.account, ack.client_id) {
            problems.push(format!(
                "line {}: seq {} was acknowledged for account {} client id {}, the journal has account {} client id {} ({})",
                ack.line, command.seq, ack.account, ack.client_id, account.0, client_id, command.body.kind().name()
            ));
        }
        let outcome = match events.iter().find_map(|e| match e {
            Event::Rejected(r) => Some(r.reason.code()),
            _ => None,
        }) {
            Some(code) => format!("rejected:{code}"),
            None => "accepted".to_string(),
        };
        if outcome != ack.outcome {
            problems.push(format!(
                "line {}: seq {} was acknowledged as {}, replay gives {outcome}",
                ack.line, command.seq, ack.outcome
            ));
        }
        let creates = matches!(
            command.body,
            CommandBody::NewOrder(_)
                | CommandBody::Transfer(_)
                | CommandBody::Authorize(_)
                | CommandBody::Deposit { .. }
                | CommandBody::Withdraw { .. }
        );
        if creates
            && outcome == "accepted"
            && let Some(earlier) = created.insert((account.0, client_id), command.seq)
        {
            problems.push(format!(
                "account {} client id {client_id} was accepted twice: seq {earlier} and seq {}",
                account.0, command.seq
            ));
        }
    })
    .with_context(|| format!("replaying {}", data.display()))?;
    let engine = &replayed.engine;
    if seen < acks.len() {
        let mut lost: Vec<u64> =
            acks.keys().copied().filter(|&seq| seq > engine.last_seq()).collect();
        lost.sort_unstable();
        let first: Vec<String> = lost.iter().take(10).map(u64::to_string).collect();
        problems.push(format!(
            "{} acknowledged command(s) are not in the journal (it ends at seq {}): first {}",
            acks.len() - seen,
            engine.last_seq(),
            first.join(", ")
        ));
    }
    if let Err(why) = engine.check_invariants() {
        problems.push(format!("the replayed state breaks an invariant: {why}"));
    }
    if !problems.is_empty() {
        let shown: Vec<&String> = problems.iter().take(20).collect();
        bail!(
            "{} problem(s):\n{}",
            problems.len(),
            shown.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
        );
    }
    Ok(AckReport {
        acks: total,
        session_refusals,
        state_hash: engine.state_hash(),
        seq: engine.last_seq(),
    })
}
