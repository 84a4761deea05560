//! `fincore journal verify|dump`: check or print a data directory's journal.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use fincore_gateway::{decode_record, journal_dir};
use fincore_journal::{JournalReader, list_segments};
use std::path::PathBuf;

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
    /// section 3a) and the decoded command.
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

fn verify(data: &std::path::Path) -> Result<()> {
    let dir = journal_dir(data);
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
    let mut reader = JournalReader::open(&journal_dir(&args.data), args.from)?;
    let mut printed = 0;
    while let Some(record) = reader.next()? {
        if args.limit.is_some_and(|limit| printed >= limit) {
            break;
        }
        let m = record.meta;
        let format = record.payload_format.expect("a reader knows the record's segment");
        let command = decode_record(&record)?;
        if args.json {
            let body = format!("{:?}", command.body).replace('\\', "\\\\").replace('"', "\\\"");
            println!(
                "{{\"seq\":{},\"time_ns\":{},\"user\":{},\"session\":{},\"peer\":\"{:016x}\",\"payload_format\":{format},\"command\":\"{body}\"}}",
                m.seq, m.time_ns, m.user, m.session, m.peer
            );
        } else {
            println!(
                "{:>10} t={} user={} session={} peer={:016x} format={format} {:?}",
                m.seq, m.time_ns, m.user, m.session, m.peer, command.body
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
    Ok(())
}
