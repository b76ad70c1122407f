//! Usage reports over the ledger: totals grouped by key, team, model, deployment or UTC
//! day, rendered as a table, CSV or JSON. Money stays in integer micro-dollars until it
//! is printed, so no float ever rounds a bill.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::state::StateError;

/// What a report groups rows by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Key,
    Team,
    Model,
    Deployment,
    /// UTC calendar day of the request's start, `YYYY-MM-DD`.
    Day,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Key => "key",
            GroupBy::Team => "team",
            GroupBy::Model => "model",
            GroupBy::Deployment => "deployment",
            GroupBy::Day => "day",
        }
    }

    /// The SQL expression grouped on; fixed strings only, never user input.
    fn column(self) -> &'static str {
        match self {
            GroupBy::Key => "key_name",
            GroupBy::Team => "team",
            GroupBy::Model => "model",
            GroupBy::Deployment => "deployment",
            GroupBy::Day => "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')",
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<GroupBy, String> {
        match s {
            "key" => Ok(GroupBy::Key),
            "team" => Ok(GroupBy::Team),
            "model" => Ok(GroupBy::Model),
            "deployment" => Ok(GroupBy::Deployment),
            "day" => Ok(GroupBy::Day),
            _ => Err(format!(
                "cannot group by {s:?}: expected key, team, model, deployment or day"
            )),
        }
    }
}

/// Totals for one group of ledger rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageGroup {
    /// The group's value; `(none)` where the column is NULL (e.g. no key).
    pub group: String,
    pub requests: u64,
    /// Requests answered with status >= 400.
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    /// Rows whose tokens the gateway estimated because the provider reported none.
    pub estimated_rows: u64,
    pub cost_micros: i64,
}

/// A usage report: the groups, most expensive first (then by name), and their total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub since_ms: i64,
    pub by: GroupBy,
    pub groups: Vec<UsageGroup>,
    /// Computed by its own query, so it checks the grouping rather than echoing it.
    pub total: UsageGroup,
}

/// Shown for a NULL group value.
const NONE: &str = "(none)";
/// The total line's name in the table and CSV.
const TOTAL: &str = "TOTAL";

const SUMS: &str = "COUNT(*), COALESCE(SUM(status >= 400), 0), COALESCE(SUM(prompt_tokens), 0),
    COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cached_tokens), 0),
    COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(tokens_estimated != 0), 0),
    COALESCE(SUM(cost_micros), 0)";

/// Reads columns 1.. of a `SUMS` row into a group named `group`.
fn group_from(group: String, r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageGroup> {
    let count =
        |i| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    Ok(UsageGroup {
        group,
        requests: count(1)?,
        errors: count(2)?,
        prompt_tokens: count(3)?,
        completion_tokens: count(4)?,
        cached_tokens: count(5)?,
        reasoning_tokens: count(6)?,
        estimated_rows: count(7)?,
        cost_micros: r.get(8)?,
    })
}

/// Usage of the requests started at or after `since_ms`, grouped `by`.
pub fn usage(conn: &Connection, since_ms: i64, by: GroupBy) -> Result<UsageReport, StateError> {
    let sql = format!(
        "SELECT {col}, {SUMS} FROM requests WHERE ts_ms >= ?1 AND shadow = 0 GROUP BY 1",
        col = by.column()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut groups = stmt
        .query_map([since_ms], |r| {
            let name: Option<String> = r.get(0)?;
            group_from(name.unwrap_or_else(|| NONE.to_owned()), r)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    groups.sort_by(|a, b| {
        b.cost_micros
            .cmp(&a.cost_micros)
            .then_with(|| a.group.cmp(&b.group))
    });
    let total = conn.query_row(
        &format!("SELECT NULL, {SUMS} FROM requests WHERE ts_ms >= ?1 AND shadow = 0"),
        [since_ms],
        |r| group_from(TOTAL.to_owned(), r),
    )?;
    Ok(UsageReport {
        since_ms,
        by,
        groups,
        total,
    })
}

/// Reads a `--since`: a duration back from `now_ms` (`30m`, `24h`, `7d`), a UTC date
/// (`2026-11-01`, its midnight) or an RFC 3339 timestamp. Returns unix milliseconds.
pub fn parse_since(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(date) = time::Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Ok(instant_ms(date.midnight().assume_utc()));
    }
    if let Ok(at) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(instant_ms(at));
    }
    if let Ok(ago) = humantime::parse_duration(s) {
        return Ok(now_ms.saturating_sub(duration_ms(ago)));
    }
    Err(format!(
        "cannot read {s:?} as a time: expected a duration back from now (30m, 24h, 7d), \
         a UTC date (2026-11-01) or an RFC 3339 timestamp (2026-11-01T12:00:00Z)"
    ))
}

fn instant_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Spend in micro-dollars since `since_ms` of one key, one team, or (given both) that key
/// within that team; of everything given neither. Seeds budgets at start-up.
pub fn spend_since(
    conn: &Connection,
    key: Option<&str>,
    team: Option<&str>,
    since_ms: i64,
) -> Result<i64, StateError> {
    // One fixed statement per case, so each can use its index.
    // Shadow calls are the operator's experiment, not the caller's spend.
    const SUM: &str =
        "SELECT COALESCE(SUM(cost_micros), 0) FROM requests WHERE ts_ms >= ?1 AND shadow = 0";
    let spent = match (key, team) {
        (Some(key), Some(team)) => conn.query_row(
            &format!("{SUM} AND key_name = ?2 AND team = ?3"),
            (since_ms, key, team),
            |r| r.get(0),
        ),
        (Some(key), None) => {
            conn.query_row(&format!("{SUM} AND key_name = ?2"), (since_ms, key), |r| {
                r.get(0)
            })
        }
        (None, Some(team)) => {
            conn.query_row(&format!("{SUM} AND team = ?2"), (since_ms, team), |r| {
                r.get(0)
            })
        }
        (None, None) => conn.query_row(SUM, [since_ms], |r| r.get(0)),
    }?;
    Ok(spent)
}

/// Micro-dollars as dollars with six decimals, by integer arithmetic.
pub fn usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

/// A group's cells in column order, as the table and CSV print them.
fn cells(g: &UsageGroup) -> [String; 9] {
    [
        g.group.clone(),
        g.requests.to_string(),
        g.errors.to_string(),
        g.prompt_tokens.to_string(),
        g.completion_tokens.to_string(),
        g.cached_tokens.to_string(),
        g.reasoning_tokens.to_string(),
        g.estimated_rows.to_string(),
        usd(g.cost_micros),
    ]
}

/// The report as aligned columns: names left, numbers right, a TOTAL line last.
pub fn render_table(r: &UsageReport) -> String {
    let header = [
        r.by.as_str().to_uppercase(),
        "REQUESTS".into(),
        "ERRORS".into(),
        "PROMPT".into(),
        "COMPLETION".into(),
        "CACHED".into(),
        "REASONING".into(),
        "ESTIMATED".into(),
        "COST_USD".into(),
    ];
    let mut lines = vec![header];
    lines.extend(r.groups.iter().map(cells));
    lines.push(cells(&r.total));
    let mut widths = [0; 9];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            if i == 0 {
                text.push_str(&format!("{cell:<w$}"));
            } else {
                text.push_str(&format!("  {cell:>w$}"));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The report as CSV: a header, one line per group, then the `TOTAL` line. Costs appear
/// both as `cost_micros` and as `cost_usd`.
pub fn render_csv(r: &UsageReport) -> String {
    let mut out = String::from(
        "group,requests,errors,prompt_tokens,completion_tokens,cached_tokens,\
         reasoning_tokens,estimated_rows,cost_micros,cost_usd\n",
    );
    for g in r.groups.iter().chain([&r.total]) {
        let [name, rest @ ..] = cells(g);
        out.push_str(&csv_field(&name));
        for (i, cell) in rest.iter().enumerate() {
            out.push(',');
            // Before the dollars, the exact micros.
            if i == rest.len() - 1 {
                out.push_str(&g.cost_micros.to_string());
                out.push(',');
            }
            out.push_str(cell);
        }
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting: only fields with a comma, quote or line break are quoted.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[derive(Serialize)]
struct JsonGroup<'a> {
    #[serde(flatten)]
    group: &'a UsageGroup,
    cost_usd: String,
}

impl<'a> JsonGroup<'a> {
    fn new(group: &'a UsageGroup) -> JsonGroup<'a> {
        JsonGroup {
            group,
            cost_usd: usd(group.cost_micros),
        }
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    since: String,
    by: GroupBy,
    groups: Vec<JsonGroup<'a>>,
    total: JsonGroup<'a>,
}

/// The report as JSON:
/// `{"since", "by", "groups": [...], "total": {...}}` where `since` is RFC 3339 (UTC),
/// `by` the grouping, and each group (and `total`, named `TOTAL`) has `group`,
/// `requests`, `errors` (status >= 400), `prompt_tokens`, `completion_tokens`,
/// `cached_tokens`, `reasoning_tokens`, `estimated_rows` (rows with estimated tokens),
/// `cost_micros` (integer micro-dollars) and `cost_usd` (the same as a decimal string,
/// exact, for consumers that would otherwise divide in floating point).
pub fn render_json(r: &UsageReport) -> String {
    let since = OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.since_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| r.since_ms.to_string());
    let report = JsonReport {
        since,
        by: r.by,
        groups: r.groups.iter().map(JsonGroup::new).collect(),
        total: JsonGroup::new(&r.total),
    };
    // Plain strings and integers always serialize.
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state;

    /// 2026-11-01T00:00:00Z.
    const NOV_1: i64 = 1_793_491_200_000;
    const DAY: i64 = 86_400_000;

    struct Fixture {
        _dir: tempfile::TempDir,
        conn: Connection,
    }

    fn insert(
        conn: &Connection,
        ts_ms: i64,
        key: Option<&str>,
        team: Option<&str>,
        model: &str,
        status: u16,
        cost: i64,
    ) {
        conn.execute(
            "INSERT INTO requests (ts_ms, request_id, key_name, team, model, deployment, stream,
               prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
               tokens_estimated, cost_micros, latency_us, status)
             VALUES (?1, 'r', ?2, ?3, ?4, ?5, 0, 10, 20, 3, 4, ?6, ?7, 1000, ?8)",
            (
                ts_ms,
                key,
                team,
                model,
                format!("{model}-east"),
                status >= 500,
                cost,
                status,
            ),
        )
        .expect("insert");
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = state::open(&dir.path().join("state.db")).expect("open");
        // Before the report window.
        insert(
            &conn,
            NOV_1 - 1,
            Some("alice"),
            Some("red"),
            "gpt",
            200,
            1_000_000,
        );
        insert(
            &conn,
            NOV_1,
            Some("alice"),
            Some("red"),
            "gpt",
            200,
            1_500_000,
        );
        insert(
            &conn,
            NOV_1 + 10,
            Some("alice"),
            Some("red"),
            "claude",
            429,
            0,
        );
        insert(
            &conn,
            NOV_1 + DAY,
            Some("bob"),
            Some("blue"),
            "gpt",
            200,
            2_000_001,
        );
        insert(&conn, NOV_1 + DAY + 5, Some("a,\"b\""), None, "gpt", 502, 7);
        insert(&conn, NOV_1 + 2 * DAY, None, None, "claude", 200, 250);
        Fixture { _dir: dir, conn }
    }

    fn sum(groups: &[UsageGroup]) -> UsageGroup {
        let mut t = UsageGroup {
            group: TOTAL.into(),
            ..UsageGroup::default()
        };
        for g in groups {
            t.requests += g.requests;
            t.errors += g.errors;
            t.prompt_tokens += g.prompt_tokens;
            t.completion_tokens += g.completion_tokens;
            t.cached_tokens += g.cached_tokens;
            t.reasoning_tokens += g.reasoning_tokens;
            t.estimated_rows += g.estimated_rows;
            t.cost_micros += g.cost_micros;
        }
        t
    }

    fn names(r: &UsageReport) -> Vec<&str> {
        r.groups.iter().map(|g| g.group.as_str()).collect()
    }

    #[test]
    fn every_grouping_agrees_with_the_total() {
        let f = fixture();
        for by in [
            GroupBy::Key,
            GroupBy::Team,
            GroupBy::Model,
            GroupBy::Deployment,
            GroupBy::Day,
        ] {
            let r = usage(&f.conn, NOV_1, by).expect("report");
            assert_eq!(r.total, sum(&r.groups), "{by}");
            assert_eq!(r.total.requests, 5, "{by}");
            assert_eq!(r.total.errors, 2, "{by}");
            assert_eq!(r.total.estimated_rows, 1, "{by}");
            assert_eq!(r.total.cost_micros, 3_500_258, "{by}");
        }
    }

    #[test]
    fn groups_are_named_and_sorted_by_cost_then_name() {
        let f = fixture();
        let by = |b| usage(&f.conn, NOV_1, b).expect("report");
        assert_eq!(
            names(&by(GroupBy::Key)),
            ["bob", "alice", "(none)", "a,\"b\""]
        );
        assert_eq!(names(&by(GroupBy::Team)), ["blue", "red", "(none)"]);
        assert_eq!(names(&by(GroupBy::Model)), ["gpt", "claude"]);
        assert_eq!(names(&by(GroupBy::Deployment)), ["gpt-east", "claude-east"]);
        assert_eq!(
            names(&by(GroupBy::Day)),
            ["2026-11-02", "2026-11-01", "2026-11-03"]
        );
        let alice = by(GroupBy::Key)
            .groups
            .into_iter()
            .find(|g| g.group == "alice")
            .expect("alice");
        assert_eq!(
            alice,
            UsageGroup {
                group: "alice".into(),
                requests: 2,
                errors: 1,
                prompt_tokens: 20,
                completion_tokens: 40,
                cached_tokens: 6,
                reasoning_tokens: 8,
                estimated_rows: 0,
                cost_micros: 1_500_000,
            }
        );
    }

    #[test]
    fn an_empty_window_reports_zeroes() {
        let f = fixture();
        let r = usage(&f.conn, NOV_1 + 10 * DAY, GroupBy::Key).expect("report");
        assert!(r.groups.is_empty());
        assert_eq!(r.total, sum(&[]));
        assert!(render_table(&r).contains("TOTAL"));
    }

    #[test]
    fn renderings_quote_align_and_total() {
        let f = fixture();
        let r = usage(&f.conn, NOV_1, GroupBy::Key).expect("report");

        let csv = render_csv(&r);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "group,requests,errors,prompt_tokens,completion_tokens,cached_tokens,\
             reasoning_tokens,estimated_rows,cost_micros,cost_usd"
        );
        assert_eq!(lines[1], "bob,1,0,10,20,3,4,0,2000001,2.000001");
        assert_eq!(lines[4], "\"a,\"\"b\"\"\",1,1,10,20,3,4,1,7,0.000007");
        assert_eq!(lines[5], "TOTAL,5,2,50,100,15,20,1,3500258,3.500258");

        let table = render_table(&r);
        let rows: Vec<&str> = table.lines().collect();
        assert!(rows[0].starts_with("KEY"));
        assert!(rows[5].starts_with("TOTAL"));
        assert!(rows[5].ends_with("3.500258"));
        // Right-aligned cost column: every line ends at the same width.
        let width = rows[0].len();
        assert!(rows.iter().all(|l| l.chars().count() == width), "{table}");

        let json: serde_json::Value = serde_json::from_str(&render_json(&r)).expect("valid json");
        assert_eq!(json["since"], "2026-11-01T00:00:00Z");
        assert_eq!(json["by"], "key");
        assert_eq!(json["groups"][0]["group"], "bob");
        assert_eq!(json["groups"][0]["cost_usd"], "2.000001");
        assert_eq!(json["total"]["cost_micros"], 3_500_258);
        assert_eq!(json["total"]["requests"], 5);
    }

    #[test]
    fn dollars_use_integer_math() {
        assert_eq!(usd(0), "0.000000");
        assert_eq!(usd(1), "0.000001");
        assert_eq!(usd(12_345_678), "12.345678");
        assert_eq!(usd(-1_500_000), "-1.500000");
    }

    #[test]
    fn since_accepts_durations_dates_and_timestamps() {
        let now = NOV_1 + 10 * DAY;
        assert_eq!(parse_since("24h", now), Ok(now - DAY));
        assert_eq!(parse_since("7d", now), Ok(now - 7 * DAY));
        assert_eq!(parse_since("30m", now), Ok(now - 30 * 60_000));
        assert_eq!(parse_since("2026-11-01", now), Ok(NOV_1));
        assert_eq!(parse_since("2026-11-01T01:00:00+01:00", now), Ok(NOV_1));
        for bad in ["yesterday", "", "24", "2026-13-01"] {
            let err = parse_since(bad, now).expect_err(bad);
            assert!(err.contains("24h") && err.contains("RFC 3339"), "{err}");
        }
    }

    #[test]
    fn group_by_names_its_choices() {
        assert_eq!("day".parse(), Ok(GroupBy::Day));
        let err = "week".parse::<GroupBy>().expect_err("week");
        assert!(err.contains("key, team, model, deployment or day"), "{err}");
    }

    #[test]
    fn spend_counts_only_that_key_or_team_since() {
        let f = fixture();
        let spend = |k, t, since| spend_since(&f.conn, k, t, since).expect("spend");
        assert_eq!(spend(Some("alice"), None, NOV_1), 1_500_000);
        assert_eq!(spend(Some("alice"), None, NOV_1 - 1), 2_500_000);
        assert_eq!(spend(None, Some("red"), NOV_1), 1_500_000);
        assert_eq!(spend(None, Some("blue"), NOV_1), 2_000_001);
        assert_eq!(spend(Some("alice"), Some("blue"), NOV_1), 0);
        assert_eq!(spend(Some("nobody"), None, 0), 0);
        assert_eq!(spend(None, None, NOV_1), 3_500_258);
    }
}
