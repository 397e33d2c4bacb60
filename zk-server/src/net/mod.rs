//! The client port: accepting connections (`listener`, with TLS configured by
//! [`crate::tls`], which also gives a TLS client's `x509` identity), the
//! per-connection protocol, its SASL exchange and `enforce.auth` (`sasl`), and the
//! four-letter words;
//! the operator HTTP endpoints (`admin`: AdminServer's `/commands/…`; `http`: the
//! small HTTP server under them and `/metrics`).

pub mod admin;
pub mod connection;
pub mod four_letter;
pub mod http;
pub mod listener;
pub mod sasl;
