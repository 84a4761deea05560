//! Starting a server for a test: the demo configuration on an ephemeral port of
//! 127.0.0.1, data in a temporary directory.
#![allow(dead_code)]

use fincore_gateway::client::{Client, LoginOptions};
use fincore_gateway::config::ServerConfig;
use fincore_gateway::server::{self, ServerHandle, ServerOptions};
use std::net::SocketAddr;
use std::path::Path;

/// The demo configuration, listening on an ephemeral port, with data in `dir`.
pub fn config(dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::demo();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.to_path_buf();
    config
}

/// Starts `config`.
pub fn start(config: &ServerConfig) -> ServerHandle {
    server::start(config, ServerOptions::default()).expect("server starts").0
}

/// Logs in as a demo user (secret `<name>-secret`).
pub fn login(addr: SocketAddr, user: &str) -> Client {
    Client::connect(addr, user, &format!("{user}-secret"), LoginOptions::default())
        .unwrap_or_else(|e| panic!("{user} logs in: {e}"))
}
