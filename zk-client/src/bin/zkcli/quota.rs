//! `setquota`, `listquota`, `delquota`: done on the client, as zkCli.sh 3.8 does them,
//! by writing `zookeeper_limits` and `zookeeper_stats` nodes under `/zookeeper/quota`
//! in `StatsTrack`'s text form (`count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1`).

use std::collections::BTreeMap;
use std::fmt;

use zk_client::{Client, Error, ErrorCode};

use crate::cli_error::{check_path, keeper, CliError};
use crate::java_num::{java_int, java_long};
use crate::run::Run;
use crate::subtree::visit;

/// Where quotas live.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
const LIMIT_NODE: &str = "zookeeper_limits";
const STAT_NODE: &str = "zookeeper_stats";

/// `StatsTrack`: `key=value` pairs; `count` and `bytes` first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses the text form (pairs separated by `,` or `;`, an empty value read as -1).
    pub fn parse(text: &str) -> Result<StatsTrack, String> {
        let mut stats = BTreeMap::new();
        if text.is_empty() {
            return Ok(StatsTrack { stats });
        }
        let mut pairs: Vec<&str> = text.split([',', ';']).collect();
        // Java's Pattern.split on `[,;]+`: runs of separators are one, trailing empties go.
        let leading_empty = pairs.first() == Some(&"");
        pairs.retain(|p| !p.is_empty());
        if leading_empty {
            pairs.insert(0, "");
        }
        for pair in pairs {
            let kv = crate::format::java_split(pair, '=');
            let (Some(key), Some(value)) = (kv.first(), kv.get(1)) else {
                return Err(format!("invalid quota data {text:?}"));
            };
            let value = if value.is_empty() { "-1" } else { value };
            let value: i64 = value
                .parse()
                .map_err(|_| format!("invalid quota data {text:?}"))?;
            stats.insert(key.to_string(), value);
        }
        Ok(StatsTrack { stats })
    }

    fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    fn set(&mut self, key: &str, value: i64) {
        self.stats.insert(key.to_string(), value);
    }
}

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD: &str = "countHardLimit";
const BYTES_HARD: &str = "byteHardLimit";

impl fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "count={},bytes={}", self.get(COUNT), self.get(BYTES))?;
        let others: Vec<_> = self
            .stats
            .iter()
            .filter(|(k, _)| *k != COUNT && *k != BYTES)
            .collect();
        if !others.is_empty() {
            // The extra `=` makes old parsers ignore the rest (StatsTrack's trick).
            f.write_str("=")?;
            for (k, v) in others {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// A failed request in the middle of a quota command, or a path refused.
enum QuotaError {
    /// IllegalArgumentException: printed as is.
    Illegal(String),
    /// A KeeperException, on the path of the request that failed.
    Keeper(Error, String),
}

impl From<CliError> for QuotaError {
    fn from(e: CliError) -> QuotaError {
        QuotaError::Illegal(e.message)
    }
}

type QResult<T> = Result<T, QuotaError>;

fn ke(path: &str) -> impl FnOnce(Error) -> QuotaError + '_ {
    move |e| QuotaError::Keeper(e, path.to_string())
}

async fn exists(zk: &Client, path: &str) -> QResult<bool> {
    check_path(path)?;
    Ok(zk.exists(path).await.map_err(ke(path))?.is_some())
}

async fn get_text(zk: &Client, path: &str) -> QResult<String> {
    check_path(path)?;
    let (data, _) = zk.get_data(path).await.map_err(ke(path))?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

async fn read_track(zk: &Client, path: &str) -> QResult<StatsTrack> {
    let text = get_text(zk, path).await?;
    StatsTrack::parse(&text).map_err(QuotaError::Illegal)
}

async fn children(zk: &Client, path: &str) -> QResult<Vec<String>> {
    check_path(path)?;
    zk.get_children(path).await.map_err(ke(path))
}

async fn create(zk: &Client, path: &str, data: Option<&[u8]>) -> QResult<()> {
    check_path(path)?;
    let create = zk.create(path);
    match data {
        Some(data) => create.data(data).await,
        None => create.null_data().await,
    }
    .map(|_| ())
    .map_err(ke(path))
}

fn is_code(e: &QuotaError, code: ErrorCode) -> bool {
    matches!(e, QuotaError::Keeper(err, _) if err.code() == Some(code))
}

fn trim_quota_path(p: &str) -> &str {
    p.strip_prefix(QUOTA_ROOT).unwrap_or(p)
}

/// `checkIfChildQuota`: no quota below `path`.
async fn check_child_quota(zk: &Client, path: &str) -> QResult<()> {
    let real = format!("{QUOTA_ROOT}{path}");
    check_path(&real)?;
    let nodes = match visit(zk, &real, false, &mut Vec::new()).await {
        Ok(n) => n,
        Err((e, _)) if e.code() == Some(ErrorCode::NoNode) => return Ok(()),
        Err((e, p)) => return Err(QuotaError::Keeper(e, p)),
    };
    for (node, children) in nodes {
        if node != real && children.iter().any(|c| c == LIMIT_NODE) {
            return Err(QuotaError::Illegal(format!(
                "{path} has a child {} which has a quota",
                trim_quota_path(&node)
            )));
        }
    }
    Ok(())
}

/// `checkIfParentQuota`: no quota above `path`.
async fn check_parent_quota(zk: &Client, path: &str) -> QResult<()> {
    let parts = crate::format::java_split(path, '/');
    let mut quota_path = QUOTA_ROOT.to_string();
    for part in parts.iter().take(parts.len().saturating_sub(1)).skip(1) {
        quota_path = format!("{quota_path}/{part}");
        let kids = match children(zk, &quota_path).await {
            Ok(k) => k,
            Err(e) if is_code(&e, ErrorCode::NoNode) => return Ok(()),
            Err(e) => return Err(e),
        };
        if kids.is_empty() {
            return Ok(());
        }
        if quota_path != format!("{QUOTA_ROOT}{path}") && kids.iter().any(|c| c == LIMIT_NODE) {
            return Err(QuotaError::Illegal(format!(
                "{path} has a parent {} which has a quota",
                trim_quota_path(&quota_path)
            )));
        }
    }
    Ok(())
}

/// `[Warning]` lines (on stdout) when the existing usage is over the new quota.
fn check_quota(run: &mut Run, quota: &StatsTrack, stats: &StatsTrack) {
    let over = |limit: i64, used: i64| limit > -1 && limit < used;
    if over(quota.get(COUNT), stats.get(COUNT)) || over(quota.get(COUNT_HARD), stats.get(COUNT)) {
        run.outln(format!(
            "[Warning]: the count quota you create is less than the existing count:{}",
            stats.get(COUNT)
        ));
    }
    if over(quota.get(BYTES), stats.get(BYTES)) || over(quota.get(BYTES_HARD), stats.get(BYTES)) {
        run.outln(format!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{}",
            stats.get(BYTES)
        ));
    }
}

/// `SetQuotaCommand.createQuota`.
async fn create_quota(zk: &Client, run: &mut Run, path: &str, quota: &StatsTrack) -> QResult<()> {
    check_path(path)?;
    if !exists(zk, path).await? {
        return Err(QuotaError::Illegal(format!("{path} does not exist.")));
    }
    check_child_quota(zk, path).await?;
    check_parent_quota(zk, path).await?;
    if !exists(zk, QUOTA_ROOT).await? {
        let made = async {
            create(zk, "/zookeeper", None).await?;
            create(zk, QUOTA_ROOT, None).await
        }
        .await;
        match made {
            Err(e) if is_code(&e, ErrorCode::NodeExists) => {}
            other => other?,
        }
    }
    let mut quota_path = QUOTA_ROOT.to_string();
    for part in crate::format::java_split(path, '/').iter().skip(1) {
        quota_path = format!("{quota_path}/{part}");
        if !exists(zk, &quota_path).await? {
            match create(zk, &quota_path, None).await {
                Err(e) if is_code(&e, ErrorCode::NodeExists) => {}
                other => other?,
            }
        }
    }
    let stat_path = format!("{quota_path}/{STAT_NODE}");
    let limit_path = format!("{quota_path}/{LIMIT_NODE}");
    if !exists(zk, &limit_path).await? {
        create(zk, &limit_path, Some(quota.to_string().as_bytes())).await?;
        let mut stats = StatsTrack::default();
        stats.set(COUNT, 0);
        stats.set(BYTES, 0);
        create(zk, &stat_path, Some(stats.to_string().as_bytes())).await?;
        let limits = read_track(zk, &limit_path).await?;
        let stats = read_track(zk, &stat_path).await?;
        check_quota(run, &limits, &stats);
    } else {
        let mut limits = read_track(zk, &limit_path).await?;
        for key in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
            if quota.get(key) > -1 {
                limits.set(key, quota.get(key));
            }
        }
        let stats = read_track(zk, &stat_path).await?;
        check_quota(run, &limits, &stats);
        check_path(&limit_path)?;
        zk.set_data(&limit_path, limits.to_string().as_bytes(), None)
            .await
            .map_err(ke(&limit_path))?;
    }
    Ok(())
}

fn to_cli(e: QuotaError) -> CliError {
    match e {
        QuotaError::Illegal(m) => CliError::new(m),
        QuotaError::Keeper(e, p) => keeper(&e, &p),
    }
}

/// `setquota -n|-b|-N|-B val path`.
pub async fn setquota(zk: &Client, run: &mut Run, p: &crate::opts::Parsed) -> Result<(), CliError> {
    let path = &p.args[1];
    if path.starts_with(QUOTA_ROOT) {
        run.errln(format!("cannot set a quota under the path: {QUOTA_ROOT}"));
        return Ok(());
    }
    let mut quota = StatsTrack::default();
    for key in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
        quota.set(key, -1);
    }
    for (flag, key, positive) in [
        ("n", COUNT, true),
        ("b", BYTES, false),
        ("N", COUNT_HARD, true),
        ("B", BYTES_HARD, false),
    ] {
        let Some(v) = p.value(flag) else { continue };
        // -n and -N are Java ints, -b and -B longs.
        let parsed = if positive {
            java_int(v).map(i64::from)
        } else {
            java_long(v)
        };
        let Some(value) = parsed else {
            run.errln("NumberFormatException happens when parsing the option value");
            return Ok(());
        };
        match (positive, value) {
            (true, v) if v > 0 => quota.set(key, v),
            (false, v) if v >= 0 => quota.set(key, v),
            (true, _) => {
                run.errln("the num quota must be greater than zero");
                return Ok(());
            }
            (false, _) => {
                run.errln("the bytes quota must be greater than or equal to zero");
                return Ok(());
            }
        }
    }
    create_quota(zk, run, path, &quota).await.map_err(to_cli)
}

/// `listquota path`.
pub async fn listquota(zk: &Client, run: &mut Run, path: &str) -> Result<(), CliError> {
    let limit_path = format!("{QUOTA_ROOT}{path}/{LIMIT_NODE}");
    run.errln(format!("absolute path is {limit_path}"));
    let read = async {
        let limits = read_track(zk, &limit_path).await?;
        let stats = read_track(zk, &format!("{QUOTA_ROOT}{path}/{STAT_NODE}")).await?;
        Ok::<_, QuotaError>((limits, stats))
    };
    match read.await {
        Ok((limits, stats)) => {
            run.outln(format!("Output quota for {path} {limits}"));
            run.outln(format!("Output stat for {path} {stats}"));
            Ok(())
        }
        Err(e) if is_code(&e, ErrorCode::NoNode) => {
            run.errln(format!("quota for {path} does not exist."));
            Ok(())
        }
        Err(e) => Err(to_cli(e)),
    }
}

/// `delquota [-n|-b|-N|-B] path`.
pub async fn delquota(zk: &Client, run: &mut Run, p: &crate::opts::Parsed) -> Result<(), CliError> {
    let path = &p.args[1];
    let flags: Vec<&str> = [
        ("n", COUNT),
        ("b", BYTES),
        ("N", COUNT_HARD),
        ("B", BYTES_HARD),
    ]
    .iter()
    .filter(|(f, _)| p.has(f))
    .map(|(_, k)| *k)
    .collect();
    let parent = format!("{QUOTA_ROOT}{path}");
    let limit_path = format!("{parent}/{LIMIT_NODE}");
    let result = async {
        if !exists(zk, &limit_path).await? {
            run.outln(format!("Quota does not exist for {path}"));
            return Ok(());
        }
        let mut limits = read_track(zk, &limit_path).await?;
        if flags.is_empty() {
            for child in children(zk, &parent).await? {
                let p = format!("{parent}/{child}");
                check_path(&p)?;
                zk.delete(&p, None).await.map_err(ke(&p))?;
            }
            trim(zk, &parent).await
        } else {
            for key in flags {
                limits.set(key, -1);
            }
            zk.set_data(&limit_path, limits.to_string().as_bytes(), None)
                .await
                .map(|_| ())
                .map_err(ke(&limit_path))
        }
    };
    match result.await {
        Ok(()) => Ok(()),
        Err(e) if is_code(&e, ErrorCode::NoNode) => {
            run.errln(format!("quota for {path} does not exist."));
            Ok(())
        }
        Err(e) => Err(to_cli(e)),
    }
}

/// `trimProcQuotas`: removes empty quota nodes upwards.
async fn trim(zk: &Client, start: &str) -> QResult<()> {
    let mut path = start.to_string();
    while path != QUOTA_ROOT {
        if !children(zk, &path).await?.is_empty() {
            break;
        }
        zk.delete(&path, None).await.map_err(ke(&path))?;
        path = match path.rfind('/') {
            Some(i) => path[..i].to_string(),
            None => break,
        };
        if path.is_empty() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_reads_and_writes_as_zookeeper() {
        let mut q = StatsTrack::default();
        for k in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
            q.set(k, -1);
        }
        q.set(COUNT, 5);
        assert_eq!(
            q.to_string(),
            "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
        );
        let back = StatsTrack::parse(&q.to_string()).unwrap();
        assert_eq!(back, q);
        let s = StatsTrack::parse("count=2,bytes=4").unwrap();
        assert_eq!(s.to_string(), "count=2,bytes=4");
        assert_eq!(
            StatsTrack::parse("").unwrap().to_string(),
            "count=-1,bytes=-1"
        );
        assert!(StatsTrack::parse("count").is_err());
        assert!(StatsTrack::parse(",count=1").is_err());
    }
}
