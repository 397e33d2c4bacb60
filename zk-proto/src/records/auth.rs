//! Authentication (auth packet, SASL tokens) and whoAmI.

use bytes::Bytes;

use crate::jute::{jute_record, read_non_null_buffer};

jute_record! {
    /// addAuth (xid -4): present credentials in a scheme, e.g. `digest` + `user:password`.
    pub struct AuthPacket {
        /// Always 0.
        pub auth_type: i32,
        /// The scheme.
        pub scheme: String,
        /// The credentials, in the scheme's format. Null is refused on input: ZooKeeper
        /// fails a null digest (AUTHFAILED) but accepts empty bytes.
        pub auth: Bytes => read_non_null_buffer,
    }
}

jute_record! {
    /// A SASL token from the client (opcode sasl).
    pub struct GetSaslRequest {
        /// The token.
        pub token: Bytes,
    }
}

jute_record! {
    /// A SASL token from the server.
    pub struct SetSaslResponse {
        /// The token (`None`: a null buffer, what ZooKeeper 3.8 answers when it has no
        /// SASL provider).
        pub token: Option<Bytes>,
    }
}

jute_record! {
    /// One identity the session holds.
    pub struct ClientInfo {
        /// The scheme (ip, digest, super, …).
        pub auth_scheme: String,
        /// The identity within the scheme.
        pub user: String,
    }
}

jute_record! {
    /// Reply to whoAmI.
    pub struct WhoAmIResponse {
        /// The session's identities.
        pub client_info: Vec<ClientInfo>,
    }
}
