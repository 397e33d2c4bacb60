//! Java system properties, where Apache ZooKeeper's users put them: `-Dname=value`
//! arguments, and the `SERVER_JVMFLAGS` and `JVMFLAGS` environment variables that
//! `zkServer.sh` puts on the `java` command line.
//!
//! ZooKeeper reads much of its configuration from system properties
//! (`zookeeper.DigestAuthenticationProvider.superDigest`, `jute.maxbuffer`,
//! `java.security.auth.login.config`, `readonlymode.enabled`, every `zookeeper.*` key).
//! Those become settings here, with the same meaning as the zoo.cfg keys of the same
//! name; zoo.cfg wins where both name a key, as it does in ZooKeeper (which turns
//! zoo.cfg's unknown keys into `zookeeper.*` properties after the JVM has started).
//! Every other JVM flag (`-Xmx`, `-XX:…`, `-Dfile.encoding`, `-Dlog4j.*`, …) has no
//! meaning here and is ignored, with one warning naming them all.

/// The system properties this server takes, in the order they were given (later
/// wins), and the JVM flags it ignores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemProperties {
    /// `name=value` settings, each one a key [`super::ServerConfig::parse`] reads.
    pub settings: Vec<(String, String)>,
    /// Flags with no meaning here, as given (for one warning at start-up).
    pub ignored: Vec<String>,
}

/// Property names that configure ZooKeeper without the `zookeeper.` prefix.
const UNPREFIXED: &[&str] = &[
    "jute.maxbuffer",
    "readonlymode.enabled",
    "java.security.auth.login.config",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
];

impl SystemProperties {
    /// The properties of this process: `SERVER_JVMFLAGS`, then `JVMFLAGS` (the order
    /// `zkServer.sh` puts them on the command line), then the `-D` arguments.
    pub fn from_env_and_args(args: &[String]) -> SystemProperties {
        let mut props = SystemProperties::default();
        for var in ["SERVER_JVMFLAGS", "JVMFLAGS"] {
            if let Ok(flags) = std::env::var(var) {
                props.add_jvm_flags(&flags);
            }
        }
        for arg in args {
            props.add_property(arg);
        }
        props
    }

    /// Adds the flags of a `JVMFLAGS`-style string: split on whitespace, as the shell
    /// splits `$JVMFLAGS` in `zkServer.sh`; `-Dname=value` flags are properties, the
    /// rest is ignored.
    pub fn add_jvm_flags(&mut self, flags: &str) {
        for flag in flags.split_whitespace() {
            match flag.strip_prefix("-D") {
                Some(prop) => self.add_property(prop),
                None => self.ignored.push(flag.to_string()),
            }
        }
    }

    /// Adds one `name=value` property (the text after `-D`; a bare `name` is an empty
    /// value, as in Java). A property holding a line break is ignored (and named in the
    /// warning): as a zoo.cfg line it would read as several settings.
    pub fn add_property(&mut self, prop: &str) {
        let (name, value) = prop.split_once('=').unwrap_or((prop, ""));
        let (name, value) = (name.trim(), value.trim());
        if is_zookeeper_property(name) && !prop.contains(['\n', '\r']) {
            self.settings.push((name.to_string(), value.to_string()));
        } else {
            self.ignored.push(format!("-D{prop}"));
        }
    }

    /// The settings as zoo.cfg lines, for [`super::ServerConfig::parse`] to read before
    /// the file's own lines.
    pub fn as_cfg_lines(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.settings {
            text.push_str(name);
            text.push('=');
            text.push_str(value);
            text.push('\n');
        }
        text
    }

    /// Logs the ignored flags, once.
    pub fn log_ignored(&self) {
        if !self.ignored.is_empty() {
            tracing::warn!(
                flags = %self.ignored.join(" "),
                "JVM flags with no meaning for this server; ignored"
            );
        }
    }
}

/// Whether a system property configures ZooKeeper (rather than the JVM, logging or JMX).
fn is_zookeeper_property(name: &str) -> bool {
    const JVM_SIDE: &[&str] = &[
        "zookeeper.log.",
        "zookeeper.root.logger",
        "zookeeper.jmx.",
        "zookeeper.tracelog.",
        "zookeeper.console.threshold",
    ];
    if JVM_SIDE.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    name.starts_with("zookeeper.") || UNPREFIXED.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kazoo_harness_command_line() {
        let mut p = SystemProperties::default();
        for arg in [
            "file.encoding=UTF-8",
            "readonlymode.enabled=true",
            "zookeeper.log.dir=/tmp/x/log",
            "zookeeper.root.logger=INFO,CONSOLE",
            "log4j.configuration=file:/tmp/x/log4j.properties",
            "java.awt.headless=true",
            "java.security.auth.login.config=/tmp/x/jaas.conf",
            "zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
        ] {
            p.add_property(arg);
        }
        assert_eq!(
            p.settings,
            vec![
                ("readonlymode.enabled".into(), "true".into()),
                (
                    "java.security.auth.login.config".into(),
                    "/tmp/x/jaas.conf".into()
                ),
                (
                    "zookeeper.DigestAuthenticationProvider.superDigest".into(),
                    "super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into()
                ),
            ]
        );
        assert_eq!(p.ignored.len(), 5, "{:?}", p.ignored);
    }

    #[test]
    fn jvmflags_are_split_and_non_properties_ignored() {
        let mut p = SystemProperties::default();
        p.add_jvm_flags(
            "-Xmx1000m  -Djute.maxbuffer=4194304 -XX:+HeapDumpOnOutOfMemoryError -Dzookeeper.foo",
        );
        assert_eq!(
            p.settings,
            vec![
                ("jute.maxbuffer".into(), "4194304".into()),
                ("zookeeper.foo".into(), String::new()),
            ]
        );
        assert_eq!(
            p.ignored,
            vec!["-Xmx1000m", "-XX:+HeapDumpOnOutOfMemoryError"]
        );
        assert_eq!(p.as_cfg_lines(), "jute.maxbuffer=4194304\nzookeeper.foo=\n");
    }

    #[test]
    fn a_property_with_a_line_break_is_ignored_not_read_as_two_lines() {
        // Caught by the zoo_cfg fuzz target: `-Dzookeeper.maxClientCnxns=5<newline>
        // server.1=h:1:2` became two zoo.cfg lines, the second a setting of its own.
        let mut props = SystemProperties::default();
        props.add_property("zookeeper.maxClientCnxns=5\nserver.1=h:1:2");
        props.add_property("zookeeper.snapCount=7");
        assert_eq!(
            props.settings,
            vec![("zookeeper.snapCount".to_string(), "7".to_string())]
        );
        assert_eq!(props.as_cfg_lines(), "zookeeper.snapCount=7\n");
        assert_eq!(props.ignored.len(), 1);
    }
}
