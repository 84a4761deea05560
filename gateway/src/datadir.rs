//! The layout of a data directory:
//!
//! ```text
//! DIR/journal/<first seq>.journal   segment files (fincore-journal)
//! DIR/snapshots/snapshot-<seq>.snap snapshot files (fincore-journal)
//! DIR/engine-limits                 the EngineLimits the journal was written with
//! ```
//!
//! The limits file exists because capacities decide which commands are rejected, so a
//! replay must use the ones the live engine used, whatever configuration is in hand. It
//! is written once, when the directory is created, as `name = value` lines.

use crate::RunnerError;
use fincore_engine::EngineLimits;
use std::path::{Path, PathBuf};

/// Where the journal segments live.
pub fn journal_dir(data: &Path) -> PathBuf {
    data.join("journal")
}

/// Where the snapshots live.
pub fn snapshot_dir(data: &Path) -> PathBuf {
    data.join("snapshots")
}

/// Lines the limits file must have.
const LIMIT_FIELDS: usize = 8;

fn limits_path(data: &Path) -> PathBuf {
    data.join("engine-limits")
}

/// Writes the limits file (only for a new directory).
pub fn write_limits(data: &Path, limits: &EngineLimits) -> Result<(), RunnerError> {
    let text = format!(
        "users_max = {}\naccounts_max = {}\norders_max = {}\nlevels_per_side_max = {}\n\
         open_orders_per_account_max = {}\npayments_max = {}\npayments_expected = {}\n\
         orders_expected = {}\n",
        limits.users_max,
        limits.accounts_max,
        limits.orders_max,
        limits.levels_per_side_max,
        limits.open_orders_per_account_max,
        limits.payments_max,
        limits.payments_expected,
        limits.orders_expected
    );
    // Temporary file, fsync, rename, fsync the directory: the file is either absent or
    // complete, never half written.
    let path = limits_path(data);
    let temporary = data.join(".engine-limits.tmp");
    let io = |p: &Path, e| RunnerError::Io(p.display().to_string(), e);
    let mut file = std::fs::File::create(&temporary).map_err(|e| io(&temporary, e))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| io(&temporary, e))?;
    file.sync_all().map_err(|e| io(&temporary, e))?;
    std::fs::rename(&temporary, &path).map_err(|e| io(&path, e))?;
    std::fs::File::open(data).and_then(|d| d.sync_all()).map_err(|e| io(data, e))
}

/// Reads the limits file; `None` if the directory has none (a new directory).
pub fn read_limits(data: &Path) -> Result<Option<EngineLimits>, RunnerError> {
    let path = limits_path(data);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RunnerError::Io(path.display().to_string(), e)),
    };
    let mut limits = EngineLimits::default();
    let mut seen: Vec<&str> = Vec::with_capacity(LIMIT_FIELDS);
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = || {
            RunnerError::Data(format!(
                "{}:{}: expected `name = number`",
                path.display(),
                number + 1
            ))
        };
        let (name, value) = line.split_once('=').ok_or_else(bad)?;
        let value: u32 = value.trim().parse().map_err(|_| bad())?;
        let name = name.trim();
        if seen.contains(&name) {
            let why = format!("{}:{}: {name} is given twice", path.display(), number + 1);
            return Err(RunnerError::Data(why));
        }
        let field = match name {
            "users_max" => &mut limits.users_max,
            "accounts_max" => &mut limits.accounts_max,
            "orders_max" => &mut limits.orders_max,
            "levels_per_side_max" => &mut limits.levels_per_side_max,
            "open_orders_per_account_max" => &mut limits.open_orders_per_account_max,
            "payments_max" => &mut limits.payments_max,
            "payments_expected" => &mut limits.payments_expected,
            "orders_expected" => &mut limits.orders_expected,
            _ => return Err(bad()),
        };
        *field = value;
        seen.push(name);
    }
    if seen.len() != LIMIT_FIELDS {
        let found = seen.len();
        let why = format!("{}: expected all {LIMIT_FIELDS} limits, found {found}", path.display());
        return Err(RunnerError::Data(why));
    }
    // The same checks as the configuration's: a damaged or edited file must not ask
    // for an engine that cannot be built (or allocate without bound).
    limits.check().map_err(|why| RunnerError::Data(format!("{}: {why}", path.display())))?;
    Ok(Some(limits))
}
