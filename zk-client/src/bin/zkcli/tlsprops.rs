//! TLS from Java system properties, as zkCli.sh takes them: `-Dname=value` words in
//! the `CLIENT_JVMFLAGS` and `JVMFLAGS` environment variables (what zkCli.sh passes to
//! java) and, ours too, on the command line. `zookeeper.client.secure=true` turns TLS
//! on; the stores come from `zookeeper.ssl.keyStore.*` and `zookeeper.ssl.trustStore.*`
//! (`location`, `password`, `passwordPath`, `type`: JKS, PKCS12 or PEM, inferred from
//! the file name when not given); `zookeeper.ssl.hostnameVerification=false` checks
//! the chain but not the name; `zookeeper.ssl.protocol`, `enabledProtocols` and
//! `ciphersuites` as zk-server reads their `ssl.*` forms. `zookeeper.clientCnxnSocket` (Netty, which Java needs
//! for TLS) is accepted and not needed.

use zk_client::tls::StoreType;
use zk_client::TlsConfig;

/// The `-Dname=value` words of a JVM flags string, in order (other flags ignored).
pub fn from_jvm_flags(flags: &str) -> Vec<(String, String)> {
    flags.split_whitespace().filter_map(property).collect()
}

/// `-Dname=value` as a pair (`-Dname` alone is `name=""`, as Java sets it). Quotes
/// are kept: zkCli.sh expands `$CLIENT_JVMFLAGS` unquoted, so java gets them as text.
pub fn property(word: &str) -> Option<(String, String)> {
    let def = word.strip_prefix("-D")?;
    let (name, value) = def.split_once('=').unwrap_or((def, ""));
    (!name.is_empty()).then(|| (name.to_string(), value.to_string()))
}

/// The last value given for `name`.
fn get<'a>(props: &'a [(String, String)], name: &str) -> Option<&'a str> {
    props
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The TLS configuration the properties ask for: `None` unless
/// `zookeeper.client.secure=true`; an error naming the property (and file) otherwise.
pub fn tls_config(props: &[(String, String)]) -> Result<Option<TlsConfig>, String> {
    let secure = get(props, "zookeeper.client.secure").unwrap_or("false");
    if !secure.trim().eq_ignore_ascii_case("true") {
        return Ok(None);
    }
    let store = |kind: &str| -> Result<Option<(String, Option<StoreType>, String)>, String> {
        let prefix = format!("zookeeper.ssl.{kind}");
        let Some(location) = get(props, &format!("{prefix}.location")).filter(|l| !l.is_empty())
        else {
            return Ok(None);
        };
        let ty = match get(props, &format!("{prefix}.type")).map(str::trim) {
            None | Some("") => None,
            Some(t) => {
                Some(StoreType::from_property(t).map_err(|e| format!("{prefix}.type={t}: {e}"))?)
            }
        };
        let password = match get(props, &format!("{prefix}.passwordPath")).filter(|p| !p.is_empty())
        {
            Some(path) => std::fs::read(path)
                .map(|b| zk_proto_password(&b))
                .map_err(|e| format!("{prefix}.passwordPath={path}: cannot read: {e}"))?,
            None => get(props, &format!("{prefix}.password"))
                .unwrap_or("")
                .to_string(),
        };
        Ok(Some((location.to_string(), ty, password)))
    };
    let mut tls = TlsConfig::new();
    match store("trustStore")? {
        Some((location, ty, password)) => {
            tls = tls
                .trust_store_file(&location, ty, &password)
                .map_err(|e| format!("zookeeper.ssl.trustStore.location={location}: {e}"))?;
        }
        None => {
            return Err(
                "zookeeper.client.secure=true but zookeeper.ssl.trustStore.location is \
                        not set: zkcli has no default CA list (Java falls back to its cacerts)"
                    .into(),
            )
        }
    }
    if let Some((location, ty, password)) = store("keyStore")? {
        tls = tls
            .key_store_file(&location, ty, &password)
            .map_err(|e| format!("zookeeper.ssl.keyStore.location={location}: {e}"))?;
    }
    let (tls12, tls13) = versions(props)?;
    tls = tls
        .protocol_versions(tls12, tls13)
        .map_err(|e| format!("zookeeper.ssl.enabledProtocols: {e}"))?;
    if let Some(list) = get(props, "zookeeper.ssl.ciphersuites").filter(|l| !l.trim().is_empty()) {
        let names: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        tls = tls.cipher_suites(&names);
        // Checked now, so that an unusable list is reported naming the property.
        if let Err(e) = tls.validate() {
            return Err(format!("zookeeper.ssl.ciphersuites={list}: {e}"));
        }
    }
    if let Some(v) = get(props, "zookeeper.ssl.hostnameVerification") {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" => {}
            "false" => tls = tls.hostname_verification(false),
            _ => {
                return Err(format!(
                    "zookeeper.ssl.hostnameVerification={v}: expected true or false"
                ))
            }
        }
    }
    Ok(Some(tls))
}

/// The versions `zookeeper.ssl.enabledProtocols` (or else `zookeeper.ssl.protocol`)
/// enable, as zk-server reads `ssl.*`: TLSv1.2, TLSv1.3, TLS (both); TLSv1, TLSv1.1
/// and SSLv3 in a list are skipped; neither property: both.
fn versions(props: &[(String, String)]) -> Result<(bool, bool), String> {
    let one = |name: &str| match name {
        "TLSv1.2" => Some((true, false)),
        "TLSv1.3" => Some((false, true)),
        "TLS" => Some((true, true)),
        _ => None,
    };
    if let Some(list) =
        get(props, "zookeeper.ssl.enabledProtocols").filter(|l| !l.trim().is_empty())
    {
        let mut v = (false, false);
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match one(name) {
                Some((a, b)) => v = (v.0 || a, v.1 || b),
                None if ["TLSv1", "TLSv1.1", "SSLv3", "SSLv2Hello"].contains(&name) => {}
                None => {
                    return Err(format!(
                        "zookeeper.ssl.enabledProtocols={list}: unknown protocol {name:?} \
                         (TLSv1.2, TLSv1.3, TLS)"
                    ))
                }
            }
        }
        if v == (false, false) {
            return Err(format!(
                "zookeeper.ssl.enabledProtocols={list}: no protocol left (TLSv1.2, TLSv1.3)"
            ));
        }
        return Ok(v);
    }
    match get(props, "zookeeper.ssl.protocol")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => Ok((true, true)),
        Some(p) => one(p).ok_or_else(|| {
            format!("zookeeper.ssl.protocol={p}: not supported (TLSv1.2, TLSv1.3, TLS)")
        }),
    }
}

/// A `passwordPath` file's password, as ZooKeeper reads it (one trailing newline off).
fn zk_proto_password(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jvm_flags_give_their_system_properties() {
        let p = from_jvm_flags(
            "-Xmx256m -Dzookeeper.client.secure=true  -Dzookeeper.ssl.keyStore.password=\"a b\" -Dflag",
        );
        assert_eq!(
            p,
            vec![
                ("zookeeper.client.secure".into(), "true".into()),
                ("zookeeper.ssl.keyStore.password".into(), "\"a".into()),
                ("flag".into(), "".into()),
            ]
        );
        assert_eq!(property("-Dk='v'"), Some(("k".into(), "'v'".into())));
        assert_eq!(property("-D"), None);
        assert_eq!(property("-server"), None);
    }

    #[test]
    fn tls_needs_secure_and_a_trust_store() {
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(tls_config(&p(&[])).unwrap().is_none());
        assert!(tls_config(&p(&[("zookeeper.client.secure", "false")]))
            .unwrap()
            .is_none());
        let e = tls_config(&p(&[("zookeeper.client.secure", "true")])).unwrap_err();
        assert!(
            e.contains("zookeeper.ssl.trustStore.location is not set"),
            "{e}"
        );
        let e = tls_config(&p(&[
            ("zookeeper.client.secure", "true"),
            ("zookeeper.ssl.trustStore.location", "/t.jks"),
            ("zookeeper.ssl.trustStore.type", "PFX"),
        ]))
        .unwrap_err();
        assert!(e.starts_with("zookeeper.ssl.trustStore.type=PFX"), "{e}");
        let e = tls_config(&p(&[
            ("zookeeper.client.secure", "true"),
            ("zookeeper.ssl.trustStore.location", "/nonexistent/t.jks"),
        ]))
        .unwrap_err();
        assert!(
            e.starts_with("zookeeper.ssl.trustStore.location=/nonexistent/t.jks")
                && e.contains("cannot read"),
            "{e}"
        );
    }
}
