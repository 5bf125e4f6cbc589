//! Chaos and conformance harness for Kafka consumer-group rebalancing.
//!
//! Data flows one way: scenario -> cluster + network + producer + drivers -> history -> check ->
//! report. README.md and docs/ describe the contract (docs/driver-protocol.md for drivers).

pub mod chaos;
pub mod check;
pub mod client;
pub mod cluster;
pub mod driver_check;
pub mod fault;
pub mod gate;
pub mod history;
pub mod images;
pub mod matrix;
pub mod network;
pub mod produce;
pub mod proxy;
pub mod report;
pub mod run;
pub mod scenario;
