//! The pipeline on a file system that fills up: the command whose record needs a new
//! segment that does not fit is answered `JournalFailure` (916) and not applied, every
//! later command gets the same answer, and the data directory opens again with exactly
//! the commands that were answered as applied, in the state the same commands give when
//! applied directly.
//!
//! Over TCP the same failure stops the server: the client gets 916 for the command that
//! failed, then `Logout` 915, and the server reports that it stopped because the
//! journal failed, at the sequence of the last command it answered.
//!
//! The file system is a small tmpfs mounted by the test (`fincore_journal::testing`),
//! which needs root or `CAP_SYS_ADMIN`; where it cannot mount, the test prints why and
//! returns (docs/TESTING.md, "full file system").

mod common;

use common::BTC_USD;
use fincore_engine::testkit::{self, TradingMix};
use fincore_engine::{CommandBody, Side, TimeInForce};
use fincore_gateway::client::{ClientError, Received};
use fincore_gateway::metrics::Trace;
use fincore_gateway::pipeline::{Inbound, InboundBody, OutboundBody, Pipeline, PipelineConfig};
use fincore_gateway::wire::{ClientMsg, ServerMsg, SessionReason};
use fincore_gateway::{Origin, Runner, RunnerConfig};
use fincore_journal::SEGMENT_SIZE_MIN;
use fincore_journal::testing::Tmpfs;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The commands answered before the journal failed, at most.
const COMMANDS_MAX: usize = 19_990;

/// A tmpfs with room for two smallest segments, the limits file and the directories,
/// on a temporary directory (dropped after the mount); `None` where this cannot mount
/// (the test then returns).
fn small_file_system() -> Option<(tempfile::TempDir, Tmpfs)> {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(dir.path(), 2 * SEGMENT_SIZE_MIN + 64 * 1024)?;
    Some((dir, fs))
}

/// Sends command `i` and waits until something for it has come out; `answers` gets
/// every item, by request id (a command's items may come out in more than one drain).
fn send(
    pipeline: &mut Pipeline,
    answers: &mut Vec<Vec<OutboundBody>>,
    i: usize,
    command: &fincore_engine::Command,
) {
    let mut pending = VecDeque::from([Inbound {
        session: 1,
        user: command.user,
        request_id: i as u64,
        time_ns: command.time_ns,
        peer: 0,
        body: InboundBody::Command(command.body),
        trace: Trace::NONE,
    }]);
    answers.push(Vec::new());
    let began = Instant::now();
    while !pending.is_empty() {
        pipeline.publish(&mut pending);
    }
    while answers[i].is_empty() {
        assert!(began.elapsed() < Duration::from_secs(30), "no answer to command {i}");
        pipeline.drain_with(usize::MAX, |item| answers[item.request_id as usize].push(item.body));
    }
}

#[test]
fn a_full_file_system_fails_the_command_that_needs_a_segment_and_loses_nothing_answered() {
    let Some((_dir, fs)) = small_file_system() else { return };
    let root = fs.root();
    let data = root.join("data");
    let config = RunnerConfig { segment_size: SEGMENT_SIZE_MIN, ..RunnerConfig::new(&data) };
    let workload = testkit::trading_workload(TradingMix {
        instruments: 2,
        traders: 8,
        commands: 20_000,
        seed: 29,
    });
    let setup: Vec<CommandBody> = workload.setup.iter().map(|c| c.body).collect();
    let (runner, _) = Runner::open(&config, &setup).expect("open");
    let first_seq = runner.engine().last_seq() + 1;
    let pipeline_config = PipelineConfig { snapshot_on_stop: false, ..PipelineConfig::default() };
    let mut pipeline = Pipeline::start(runner, pipeline_config, || {}).expect("pipeline");

    let journal_failure = OutboundBody::Failed(SessionReason::JournalFailure);
    let mut answers = Vec::new();
    let mut applied = 0;
    let mut commands = workload.commands.iter().enumerate().take(COMMANDS_MAX);
    for (i, command) in commands.by_ref() {
        send(&mut pipeline, &mut answers, i, command);
        if answers[i] == [journal_failure] {
            break;
        }
        applied += 1;
    }
    assert!(applied > 100, "the journal failed after {applied} commands");
    assert!(applied < COMMANDS_MAX, "two smallest segments held {COMMANDS_MAX} commands");
    // Once failed, always failed: no later command slips into the journal.
    for (i, command) in commands.take(10) {
        send(&mut pipeline, &mut answers, i, command);
    }
    let exit = pipeline.shutdown().expect("stops");
    for (i, items) in answers.iter().enumerate() {
        if i < applied {
            assert!(items.iter().all(|a| matches!(a, OutboundBody::Event(_))), "{i}: {items:?}");
        } else {
            assert_eq!(*items, [journal_failure], "command {i}, at or after the failure");
        }
    }
    assert_eq!(exit.seq, first_seq + applied as u64 - 1, "the last applied sequence");

    // What was answered as applied is exactly what the directory holds.
    let (reopened, report) = Runner::open(&config, &setup).expect("opens again");
    assert_eq!(report.recovery.torn_tail, None);
    assert_eq!(reopened.engine().last_seq(), exit.seq);
    assert_eq!(reopened.engine().state_hash(), exit.state_hash);
    let direct_dir = tempfile::tempdir().unwrap();
    let (mut direct, _) = Runner::open(&RunnerConfig::new(direct_dir.path()), &setup).unwrap();
    let mut events = Vec::new();
    for command in &workload.commands[..applied] {
        let origin = Origin { user: command.user, session: 1, peer: 0 };
        let time_ns = command.time_ns.max(direct.engine().time_ns());
        direct.submit(origin, time_ns, command.body, &mut events).expect("journaled");
    }
    assert_eq!(direct.engine().state_hash(), exit.state_hash, "the state of the applied commands");
}

#[test]
fn over_tcp_a_full_file_system_answers_916_and_stops_the_server() {
    let Some((_dir, fs)) = small_file_system() else { return };
    let root = fs.root();
    let mut config = common::config(&root.join("data"));
    config.segment_size = SEGMENT_SIZE_MIN;
    let server = common::start(&config);
    let mut alice = common::login(server.local_addr(), "alice");

    // Immediate-or-cancel bids far below the market: each is journaled, none rests.
    let mut answered_seq = 0;
    let failed_request = 'sending: loop {
        let mut order = common::limit(2, BTC_USD, Side::Buy, 5_500_000, 1, answered_seq + 1);
        order.time_in_force = TimeInForce::Ioc;
        let id = alice.send(&ClientMsg::NewOrder(order)).expect("send");
        loop {
            match common::next(&mut alice) {
                // Events of this order, or the rest of an earlier order's.
                Received { msg: ServerMsg::ExecReport(report), .. } if report.request_id <= id => {
                    answered_seq = answered_seq.max(report.journal_seq);
                    if report.request_id == id {
                        continue 'sending;
                    }
                }
                Received { msg: ServerMsg::SessionReject(reject), .. } => {
                    assert_eq!(reject.reason, SessionReason::JournalFailure.code());
                    assert_eq!(reject.ref_request_id, id);
                    break 'sending id;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    assert!(failed_request > 100, "the journal failed after {failed_request} orders");
    let logout = loop {
        match alice.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(Received { msg: ServerMsg::Heartbeat, .. })) => {}
            other => break other,
        }
    };
    let shutdown = SessionReason::ServerShutdown.code();
    assert!(matches!(logout, Err(ClientError::LoggedOut(code)) if code == shutdown), "{logout:?}");
    let exit = server.wait().expect("the server stops by itself");
    assert!(exit.journal_failed);
    assert_eq!(exit.engine.seq, answered_seq, "the last sequence answered is the last one");
    assert_eq!(exit.engine.snapshot, None, "no stop snapshot after a journal failure");
}
