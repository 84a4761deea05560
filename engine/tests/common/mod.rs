//! Helpers shared by the engine's integration tests. Each test file that needs them
//! says `mod common;`; keep one concept per module.

pub mod reference;
pub mod scenario;
