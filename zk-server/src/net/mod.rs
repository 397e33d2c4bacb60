//! The client port: accepting connections, the per-connection protocol, and the
//! four-letter words.

pub mod connection;
pub mod four_letter;
pub mod listener;
