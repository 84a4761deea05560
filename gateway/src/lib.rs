//! # fincore-gateway
//!
//! The server around the engine: mio TCP gateway, sessions, the disruptor ring to the
//! engine thread, and the client library. Not built yet: see issue "Gateway, binary TCP
//! protocol, and the running server".
