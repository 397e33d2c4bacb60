//! Java's `Date.toString()` (`EEE MMM dd HH:mm:ss zzz yyyy`) in the local time zone,
//! as zkCli.sh prints `ctime` and `mtime`: the zone comes from `TZ`, else
//! `/etc/timezone`, else `/etc/localtime`, read from the system's TZif files
//! (transitions, then the footer's POSIX rule for later times).

use std::sync::OnceLock;

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A local time type: offset from UTC in seconds, and its abbreviation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalType {
    offset: i64,
    abbr: String,
}

/// A POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PosixTz {
    std: LocalType,
    dst: Option<(LocalType, RuleDate, i64, RuleDate, i64)>,
}

/// When a DST rule switches, within a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleDate {
    /// `Jn`: day 1..=365, February 29 never counted.
    Julian1(i64),
    /// `n`: day 0..=365, February 29 counted.
    Julian0(i64),
    /// `Mm.w.d`: the `w`th (5 = last) weekday `d` (0 = Sunday) of month `m`.
    Month(i64, i64, i64),
}

/// A time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    transitions: Vec<(i64, usize)>,
    types: Vec<LocalType>,
    footer: Option<PosixTz>,
}

impl Zone {
    /// UTC, named as Java names it.
    fn fixed(abbr: &str) -> Zone {
        Zone {
            transitions: Vec::new(),
            types: vec![LocalType {
                offset: 0,
                abbr: abbr.into(),
            }],
            footer: None,
        }
    }

    /// The process's local zone.
    pub fn local() -> &'static Zone {
        static LOCAL: OnceLock<Zone> = OnceLock::new();
        LOCAL.get_or_init(|| {
            let tz = std::env::var("TZ")
                .ok()
                .filter(|t| !t.is_empty())
                .or_else(|| {
                    std::fs::read_to_string("/etc/timezone")
                        .ok()
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                });
            match tz {
                Some(name) => Zone::named(&name),
                None => std::fs::read("/etc/localtime")
                    .ok()
                    .and_then(|b| Zone::from_tzif(&b))
                    .unwrap_or_else(|| Zone::fixed("UTC")),
            }
        })
    }

    /// The zone `name` names (a zoneinfo name, a file, or a POSIX TZ string); GMT if
    /// none, as Java falls back.
    pub fn named(name: &str) -> Zone {
        let name = name.strip_prefix(':').unwrap_or(name);
        let file = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/usr/share/zoneinfo/{name}")
        };
        if !name.contains("..") {
            if let Some(z) = std::fs::read(&file).ok().and_then(|b| Zone::from_tzif(&b)) {
                return z;
            }
        }
        match parse_posix(name) {
            Some(rule) => Zone {
                transitions: Vec::new(),
                types: vec![rule.std.clone()],
                footer: Some(rule),
            },
            None => Zone::fixed("GMT"),
        }
    }

    /// Parses a TZif file (RFC 8536), version 1 or later.
    fn from_tzif(b: &[u8]) -> Option<Zone> {
        let header = |at: usize| -> Option<(u8, [usize; 6])> {
            if b.get(at..at + 4)? != b"TZif" {
                return None;
            }
            let version = *b.get(at + 4)?;
            let mut counts = [0usize; 6];
            for (i, c) in counts.iter_mut().enumerate() {
                let o = at + 20 + 4 * i;
                *c = u32::from_be_bytes(b.get(o..o + 4)?.try_into().ok()?) as usize;
            }
            Some((version, counts))
        };
        let (version, counts) = header(0)?;
        let block_len = |c: [usize; 6], time: usize| {
            let [isut, isstd, leap, timecnt, typecnt, charcnt] = c;
            timecnt * time + timecnt + typecnt * 6 + charcnt + leap * (time + 4) + isstd + isut
        };
        let (at, counts, time) = if version >= b'2' {
            let second = 44 + block_len(counts, 4);
            let (_, c2) = header(second)?;
            (second + 44, c2, 8)
        } else {
            (44, counts, 4)
        };
        let [_, _, _, timecnt, typecnt, charcnt] = counts;
        let mut p = at;
        let mut times = Vec::with_capacity(timecnt);
        for _ in 0..timecnt {
            let raw = b.get(p..p + time)?;
            times.push(if time == 8 {
                i64::from_be_bytes(raw.try_into().ok()?)
            } else {
                i64::from(i32::from_be_bytes(raw.try_into().ok()?))
            });
            p += time;
        }
        let indices = b.get(p..p + timecnt)?.to_vec();
        p += timecnt;
        let mut raw_types = Vec::with_capacity(typecnt);
        for _ in 0..typecnt {
            let t = b.get(p..p + 6)?;
            let offset = i64::from(i32::from_be_bytes(t[0..4].try_into().ok()?));
            raw_types.push((offset, usize::from(t[5])));
            p += 6;
        }
        let chars = b.get(p..p + charcnt)?;
        let types = raw_types
            .into_iter()
            .map(|(offset, ai)| {
                let s = chars.get(ai..).unwrap_or_default();
                let end = s.iter().position(|c| *c == 0).unwrap_or(s.len());
                LocalType {
                    offset,
                    abbr: String::from_utf8_lossy(&s[..end]).into_owned(),
                }
            })
            .collect::<Vec<_>>();
        if types.is_empty() {
            return None;
        }
        let transitions = times
            .into_iter()
            .zip(indices)
            .map(|(t, i)| (t, usize::from(i).min(types.len() - 1)))
            .collect();
        let footer = if version >= b'2' {
            let end = at + block_len(counts, 8);
            b.get(end..).and_then(|rest| {
                let text = std::str::from_utf8(rest).ok()?;
                let line = text.strip_prefix('\n')?.split('\n').next()?;
                parse_posix(line)
            })
        } else {
            None
        };
        Some(Zone {
            transitions,
            types,
            footer,
        })
    }

    /// The local type in force at `t` (seconds since the epoch, UTC).
    fn at(&self, t: i64) -> LocalType {
        match self.transitions.last() {
            Some(&(last, _)) if t >= last => {
                if let Some(rule) = &self.footer {
                    return rule.at(t);
                }
            }
            None => {
                if let Some(rule) = &self.footer {
                    return rule.at(t);
                }
            }
            _ => {}
        }
        let idx = self.transitions.partition_point(|&(start, _)| start <= t);
        let ty = if idx == 0 {
            0
        } else {
            self.transitions[idx - 1].1
        };
        self.types[ty].clone()
    }
}

impl PosixTz {
    fn at(&self, t: i64) -> LocalType {
        let Some((dst, start, start_time, end, end_time)) = &self.dst else {
            return self.std.clone();
        };
        let year = civil(days_floor(t + self.std.offset)).0;
        let begin = rule_day(*start, year) * 86400 + start_time - self.std.offset;
        let finish = rule_day(*end, year) * 86400 + end_time - dst.offset;
        let in_dst = if begin < finish {
            t >= begin && t < finish
        } else {
            !(t >= finish && t < begin)
        };
        if in_dst {
            dst.clone()
        } else {
            self.std.clone()
        }
    }
}

/// Parses a POSIX TZ string.
fn parse_posix(s: &str) -> Option<PosixTz> {
    let mut p = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let std_name = p.name()?;
    let std_offset = -p.offset()?;
    let std = LocalType {
        offset: std_offset,
        abbr: std_name,
    };
    if p.done() {
        return Some(PosixTz { std, dst: None });
    }
    let dst_name = p.name()?;
    let dst_offset = if p.peek() != Some(b',') && !p.done() {
        -p.offset()?
    } else {
        std_offset + 3600
    };
    let dst = LocalType {
        offset: dst_offset,
        abbr: dst_name,
    };
    // Without a rule, POSIX leaves it to the implementation: use the US rules.
    let (start, start_time, end, end_time) = if p.done() {
        (
            RuleDate::Month(3, 2, 0),
            7200,
            RuleDate::Month(11, 1, 0),
            7200,
        )
    } else {
        p.expect(b',')?;
        let start = p.rule_date()?;
        let start_time = p.rule_time()?;
        p.expect(b',')?;
        let end = p.rule_date()?;
        let end_time = p.rule_time()?;
        (start, start_time, end, end_time)
    };
    p.done().then_some(PosixTz {
        std,
        dst: Some((dst, start, start_time, end, end_time)),
    })
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn name(&mut self) -> Option<String> {
        let start = self.i;
        if self.peek()? == b'<' {
            let close = self.s[start..].iter().position(|c| *c == b'>')?;
            self.i = start + close + 1;
            return Some(String::from_utf8_lossy(&self.s[start + 1..start + close]).into_owned());
        }
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
        (self.i - start >= 3).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn number(&mut self) -> Option<i64> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    /// `[+-]hh[:mm[:ss]]` in seconds.
    fn offset(&mut self) -> Option<i64> {
        let sign = match self.peek()? {
            b'-' => {
                self.i += 1;
                -1
            }
            b'+' => {
                self.i += 1;
                1
            }
            _ => 1,
        };
        let mut secs = self.number()? * 3600;
        if self.peek() == Some(b':') {
            self.i += 1;
            secs += self.number()? * 60;
            if self.peek() == Some(b':') {
                self.i += 1;
                secs += self.number()?;
            }
        }
        Some(sign * secs)
    }

    fn rule_date(&mut self) -> Option<RuleDate> {
        match self.peek()? {
            b'J' => {
                self.i += 1;
                Some(RuleDate::Julian1(self.number()?))
            }
            b'M' => {
                self.i += 1;
                let m = self.number()?;
                self.expect(b'.')?;
                let w = self.number()?;
                self.expect(b'.')?;
                let d = self.number()?;
                Some(RuleDate::Month(m, w, d))
            }
            _ => Some(RuleDate::Julian0(self.number()?)),
        }
    }

    fn rule_time(&mut self) -> Option<i64> {
        if self.peek() == Some(b'/') {
            self.i += 1;
            self.offset()
        } else {
            Some(7200)
        }
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn month_len(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since the epoch of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of a day since the epoch.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_floor(secs: i64) -> i64 {
    secs.div_euclid(86400)
}

/// The day (since the epoch) a rule date falls on in `year`.
fn rule_day(date: RuleDate, year: i64) -> i64 {
    let jan1 = days_from_civil(year, 1, 1);
    match date {
        RuleDate::Julian1(n) => {
            let n = n.clamp(1, 365);
            jan1 + n - 1 + i64::from(is_leap(year) && n >= 60)
        }
        RuleDate::Julian0(n) => jan1 + n,
        RuleDate::Month(m, w, d) => {
            let m = m.clamp(1, 12);
            let first = days_from_civil(year, m, 1);
            let first_wday = (first + 4).rem_euclid(7);
            let mut day = 1 + (d - first_wday).rem_euclid(7) + (w.clamp(1, 5) - 1) * 7;
            while day > month_len(year, m) {
                day -= 7;
            }
            first + day - 1
        }
    }
}

/// `new Date(millis).toString()` in `zone`.
pub fn java_date_in(millis: i64, zone: &Zone) -> String {
    let secs = millis.div_euclid(1000);
    let local = zone.at(secs);
    let t = secs + local.offset;
    let days = days_floor(t);
    let (y, m, d) = civil(days);
    let sod = t.rem_euclid(86400);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} {} {}",
        DAYS[(days + 4).rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        local.abbr,
        y
    )
}

/// `new Date(millis).toString()` in the local zone.
pub fn java_date(millis: i64) -> String {
    java_date_in(millis, Zone::local())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_java_in_utc() {
        let utc = Zone::fixed("UTC");
        assert_eq!(java_date_in(0, &utc), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(
            java_date_in(1_795_955_355_123, &utc),
            "Sun Nov 29 12:29:15 UTC 2026"
        );
        assert_eq!(java_date_in(-1, &utc), "Wed Dec 31 23:59:59 UTC 1969");
        assert_eq!(
            java_date_in(951_782_400_000, &utc),
            "Tue Feb 29 00:00:00 UTC 2000"
        );
    }

    #[test]
    fn posix_rules_switch_at_the_right_instants() {
        let z = Zone::named("CET-1CEST,M3.5.0,M10.5.0/3");
        // 2026-03-29 01:00 UTC: clocks go from 02:00 CET to 03:00 CEST.
        assert_eq!(
            java_date_in(1_774_745_999_000, &z),
            "Sun Mar 29 01:59:59 CET 2026"
        );
        assert_eq!(
            java_date_in(1_774_746_000_000, &z),
            "Sun Mar 29 03:00:00 CEST 2026"
        );
        // 2026-10-25 01:00 UTC: back from 03:00 CEST to 02:00 CET.
        assert_eq!(
            java_date_in(1_792_890_000_000, &z),
            "Sun Oct 25 02:00:00 CET 2026"
        );
        let ny = Zone::named("EST5EDT,M3.2.0,M11.1.0");
        assert_eq!(java_date_in(0, &ny), "Wed Dec 31 19:00:00 EST 1969");
        let fixed = Zone::named("<+04>-4");
        assert_eq!(java_date_in(0, &fixed), "Thu Jan 01 04:00:00 +04 1970");
        assert_eq!(
            java_date_in(0, &Zone::named("No/Such_Zone")),
            "Thu Jan 01 00:00:00 GMT 1970"
        );
    }

    #[test]
    fn reads_the_systems_tzif_files() {
        if !std::path::Path::new("/usr/share/zoneinfo/America/New_York").exists() {
            return;
        }
        let ny = Zone::named("America/New_York");
        // 1990: from the transitions; 2100: from the footer rule.
        assert_eq!(
            java_date_in(646_790_400_000, &ny),
            "Sat Jun 30 20:00:00 EDT 1990"
        );
        assert_eq!(
            java_date_in(4_102_444_800_000, &ny),
            "Thu Dec 31 19:00:00 EST 2099"
        );
        assert_eq!(
            java_date_in(0, &Zone::named("UTC")),
            "Thu Jan 01 00:00:00 UTC 1970"
        );
    }
}
