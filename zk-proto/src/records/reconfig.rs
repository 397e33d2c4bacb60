//! Dynamic reconfiguration.

use crate::jute::jute_record;

jute_record! {
    /// reconfig: an incremental change (joining/leaving) or a whole new member list.
    /// The reply is a [`crate::GetDataResponse`] with the new configuration.
    pub struct ReconfigRequest {
        /// Servers to add, comma separated `server.N=…` lines (`None` if none).
        pub joining_servers: Option<String>,
        /// Server ids to remove, comma separated (`None` if none).
        pub leaving_servers: Option<String>,
        /// A whole new membership (non-incremental), or `None`.
        pub new_members: Option<String>,
        /// Apply only if the current config version is this (-1 for any).
        pub cur_config_id: i64,
    }
}
