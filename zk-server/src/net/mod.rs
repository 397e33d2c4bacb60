//! The client port: accepting connections (`listener`, with TLS configured by
//! [`crate::tls`], which also gives a TLS client's `x509` identity); per connection,
//! its handshake and session setup (`handshake`), its I/O loops (`connection`), the
//! dispatch of its requests (`dispatch`), its SASL exchange and `enforce.auth`
//! (`sasl`); and the four-letter words;
//! the operator HTTP endpoints (`admin`: AdminServer's `/commands/…`; `http`: the
//! HTTP/1.1 server under them and `/metrics`, on hyper).

pub mod admin;
pub mod connection;
pub(crate) mod dispatch;
pub mod four_letter;
pub(crate) mod handshake;
pub mod http;
pub mod listener;
pub mod sasl;
