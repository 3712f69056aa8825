//! Output formatting as Docker does it: sizes in SI units with three significant digits
//! (`4.26MB`), durations like `2 hours ago`, aligned tables, and the `--format` templates users
//! pipe into scripts (`table …`, `json`, `{{.Field}}`, `{{json .}}`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Docker's `units.HumanSizeWithPrecision(n, 3)`: `0B`, `999B`, `12.3kB`, `4.26MB`, `1.24GB`.
#[must_use]
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig3(v), UNITS[i])
}

/// Go's `%.3g` for values in [0, 1000): three significant digits, trailing zeros dropped.
fn sig3(v: f64) -> String {
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Docker's `units.HumanDuration`.
#[must_use]
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = (s + 1800) / 3600;
    match () {
        () if s < 1 => "Less than a second".into(),
        () if s == 1 => "1 second".into(),
        () if s < 60 => format!("{s} seconds"),
        () if minutes == 1 => "About a minute".into(),
        () if minutes < 60 => format!("{minutes} minutes"),
        () if hours == 1 => "About an hour".into(),
        () if hours < 48 => format!("{hours} hours"),
        () if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        () if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        () if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        () => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// `2 hours ago` for an RFC 3339 time, `N/A` when unknown.
#[must_use]
pub fn since(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return "N/A".into();
    };
    let secs = chrono::Utc::now().signed_duration_since(t).num_seconds();
    format!("{} ago", human_duration(secs))
}

/// One row of named values (the fields a template may use).
pub type Row = BTreeMap<&'static str, String>;

/// Renders rows as Docker does: a table with the given columns (3-space gutters), or a
/// `--format` template (`table TEMPLATE`, `json`, or `TEMPLATE` per row).
///
/// # Errors
/// When the template names a field that does not exist.
pub fn render(
    rows: &[Row],
    columns: &[(&'static str, &'static str)],
    format: Option<&str>,
) -> Result<String, String> {
    match format.map(str::trim) {
        None | Some("" | "table") => Ok(table(rows, columns)),
        Some("json") => Ok(rows.iter().map(|r| json_row(r) + "\n").collect()),
        Some(t) if t.starts_with("table ") => {
            let tpl = unescape(&t[6..]);
            let header = columns_header(&tpl, columns);
            let mut lines = vec![header];
            for r in rows {
                lines.push(apply(&tpl, r)?);
            }
            Ok(align(&lines))
        }
        Some(t) => {
            let tpl = unescape(t);
            let mut out = String::new();
            for r in rows {
                out.push_str(&apply(&tpl, r)?);
                out.push('\n');
            }
            Ok(out)
        }
    }
}

fn unescape(t: &str) -> String {
    t.replace("\\t", "\t").replace("\\n", "\n")
}

/// A row as a JSON object of strings.
fn row_value(r: &Row) -> serde_json::Value {
    serde_json::Value::Object(
        r.iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

fn json_row(r: &Row) -> String {
    row_value(r).to_string()
}

/// Replaces `{{.Field}}`, `{{json .}}` and `{{json .Field}}` (via [`render_value`] on the row).
fn apply(tpl: &str, r: &Row) -> Result<String, String> {
    render_value(tpl, &row_value(r))
}

fn columns_header(tpl: &str, columns: &[(&'static str, &'static str)]) -> String {
    let mut r = Row::new();
    for (field, title) in columns {
        r.insert(field, (*title).to_owned());
    }
    // Unknown fields in a header just print their name upper-cased.
    apply(tpl, &r).unwrap_or_else(|_| tpl.to_uppercase())
}

fn table(rows: &[Row], columns: &[(&'static str, &'static str)]) -> String {
    let mut lines = vec![columns
        .iter()
        .map(|(_, t)| *t)
        .collect::<Vec<_>>()
        .join("\t")];
    for r in rows {
        lines.push(
            columns
                .iter()
                .map(|(f, _)| r.get(f).map_or("", String::as_str))
                .collect::<Vec<_>>()
                .join("\t"),
        );
    }
    align(&lines)
}

/// Aligns tab-separated cells like Go's tabwriter with a 3-space gutter.
fn align(lines: &[String]) -> String {
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let ncol = cells.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0; ncol];
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 < row.len() {
                let _ = write!(line, "{c:<w$}   ", w = width[i]);
            } else {
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Renders a template against a JSON document (for `inspect --format`), with the part of Go's
/// `text/template` users type: `{{.A.B}}` prints the value at that path (strings raw, lists
/// Go-style `[a b]`), `{{json .A}}` prints it as JSON, `{{index .A "k"}}` looks a key up,
/// `{{range .A}}…{{.}}…{{end}}` and `{{range $k, $v := .A}}…{{$k}}…{{end}}` iterate a list or
/// an object (keys sorted), `{{if .A}}…{{else}}…{{end}}` tests a value (empty, `false`, `0`
/// and null are false), `{{println}}` and the `-` trim markers work.
///
/// # Errors
/// An unclosed action or block, an unknown action, or a path that is not an object field.
pub fn render_value(tpl: &str, doc: &serde_json::Value) -> Result<String, String> {
    let tpl = unescape(tpl);
    let tokens = tokenize(&tpl)?;
    let mut pos = 0;
    let nodes = parse_nodes(&tokens, &mut pos, &tpl)?;
    if pos != tokens.len() {
        return Err(format!(
            "template: unexpected {{{{end}}}} or {{{{else}}}} in `{tpl}`"
        ));
    }
    let mut out = String::new();
    let scope = Scope {
        dot: doc,
        vars: Vec::new(),
    };
    exec(&nodes, &scope, &mut out)?;
    Ok(out)
}

/// Text, or an action's content (trimmed, without its `{{`/`}}` and `-` markers).
#[derive(Debug)]
enum Token {
    Text(String),
    Action(String),
}

fn tokenize(tpl: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_owned();
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("template: unclosed action in `{tpl}`"))?;
        let mut action = &rest[start + 2..start + end];
        if let Some(a) = action.strip_prefix("- ") {
            text = text.trim_end().to_owned();
            action = a;
        }
        let trim_after = action.ends_with(" -");
        if trim_after {
            action = &action[..action.len() - 2];
        }
        tokens.push(Token::Text(text));
        tokens.push(Token::Action(action.trim().to_owned()));
        rest = &rest[start + end + 2..];
        if trim_after {
            rest = rest.trim_start();
        }
    }
    tokens.push(Token::Text(rest.to_owned()));
    Ok(tokens)
}

/// A parsed template.
#[derive(Debug)]
enum Node {
    Text(String),
    Print {
        json: bool,
        expr: String,
    },
    Range {
        key: Option<String>,
        value: Option<String>,
        expr: String,
        body: Vec<Node>,
    },
    If {
        expr: String,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// Parses nodes until `{{end}}`/`{{else}}` (left for the caller) or the end.
fn parse_nodes(tokens: &[Token], pos: &mut usize, tpl: &str) -> Result<Vec<Node>, String> {
    let mut nodes = Vec::new();
    while *pos < tokens.len() {
        match &tokens[*pos] {
            Token::Text(t) => {
                nodes.push(Node::Text(t.clone()));
                *pos += 1;
            }
            Token::Action(a) if a == "end" || a == "else" => return Ok(nodes),
            Token::Action(a) => {
                *pos += 1;
                if let Some(rest) = a.strip_prefix("range ") {
                    let (key, value, expr) = match rest.split_once(":=") {
                        Some((vars, expr)) => {
                            let vars: Vec<&str> = vars.split(',').map(str::trim).collect();
                            match vars.as_slice() {
                                [v] => (None, Some((*v).to_owned()), expr.trim().to_owned()),
                                [k, v] => (
                                    Some((*k).to_owned()),
                                    Some((*v).to_owned()),
                                    expr.trim().to_owned(),
                                ),
                                _ => return Err(format!("template: bad range `{a}`")),
                            }
                        }
                        None => (None, None, rest.trim().to_owned()),
                    };
                    let body = parse_nodes(tokens, pos, tpl)?;
                    expect_end(tokens, pos, tpl)?;
                    nodes.push(Node::Range {
                        key,
                        value,
                        expr,
                        body,
                    });
                } else if let Some(expr) = a.strip_prefix("if ") {
                    let then = parse_nodes(tokens, pos, tpl)?;
                    let otherwise = if matches!(tokens.get(*pos), Some(Token::Action(e)) if e == "else")
                    {
                        *pos += 1;
                        parse_nodes(tokens, pos, tpl)?
                    } else {
                        Vec::new()
                    };
                    expect_end(tokens, pos, tpl)?;
                    nodes.push(Node::If {
                        expr: expr.trim().to_owned(),
                        then,
                        otherwise,
                    });
                } else if a == "println" {
                    nodes.push(Node::Text("\n".into()));
                } else if let Some(expr) = a.strip_prefix("json ") {
                    nodes.push(Node::Print {
                        json: true,
                        expr: expr.trim().to_owned(),
                    });
                } else {
                    nodes.push(Node::Print {
                        json: false,
                        expr: a.clone(),
                    });
                }
            }
        }
    }
    Ok(nodes)
}

fn expect_end(tokens: &[Token], pos: &mut usize, tpl: &str) -> Result<(), String> {
    match tokens.get(*pos) {
        Some(Token::Action(e)) if e == "end" => {
            *pos += 1;
            Ok(())
        }
        _ => Err(format!("template: missing {{{{end}}}} in `{tpl}`")),
    }
}

/// What `.` and the `$variables` are.
struct Scope<'a> {
    dot: &'a serde_json::Value,
    vars: Vec<(String, serde_json::Value)>,
}

/// Evaluates `.`, `.A.B`, `$v`, `$v.A`, `index EXPR "key"…`, or a quoted string.
fn eval(expr: &str, scope: &Scope<'_>) -> Result<serde_json::Value, String> {
    let expr = expr.trim();
    if let Some(rest) = expr.strip_prefix("index ") {
        let mut parts = rest.split_whitespace();
        let base = parts.next().ok_or("template: index needs arguments")?;
        let mut v = eval(base, scope)?;
        for key in parts {
            let key = key.trim_matches('"');
            v = match &v {
                serde_json::Value::Array(a) => key
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get(i).cloned())
                    .ok_or_else(|| format!("template: index out of range: {key}"))?,
                serde_json::Value::Object(m) => {
                    m.get(key).cloned().unwrap_or(serde_json::Value::Null)
                }
                _ => serde_json::Value::Null,
            };
        }
        return Ok(v);
    }
    if expr.starts_with('"') && expr.ends_with('"') && expr.len() >= 2 {
        return Ok(serde_json::Value::String(
            expr[1..expr.len() - 1].to_owned(),
        ));
    }
    let (mut v, path) = if let Some(var) = expr.strip_prefix('$') {
        let (name, path) = var.split_once('.').unwrap_or((var, ""));
        let name = format!("${name}");
        let found = scope
            .vars
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("template: undefined variable {name}"))?;
        (found, path)
    } else if let Some(path) = expr.strip_prefix('.') {
        (scope.dot.clone(), path)
    } else {
        return Err(format!("template: unsupported action `{expr}`"));
    };
    for key in path.split('.').filter(|k| !k.is_empty()) {
        v = v
            .get(key)
            .cloned()
            .ok_or_else(|| format!("template: can't evaluate field {key}"))?;
    }
    Ok(v)
}

/// Go's truth: false, 0, "", empty list or map, and nil are false.
fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(m) => !m.is_empty(),
    }
}

fn exec(nodes: &[Node], scope: &Scope<'_>, out: &mut String) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Print { json, expr } => {
                let v = eval(expr, scope)?;
                out.push_str(&if *json { v.to_string() } else { go_value(&v) });
            }
            Node::If {
                expr,
                then,
                otherwise,
            } => {
                let branch = if truthy(&eval(expr, scope)?) {
                    then
                } else {
                    otherwise
                };
                exec(branch, scope, out)?;
            }
            Node::Range {
                key,
                value,
                expr,
                body,
            } => {
                let v = eval(expr, scope)?;
                let items: Vec<(serde_json::Value, serde_json::Value)> = match v {
                    serde_json::Value::Array(a) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, x)| (serde_json::Value::from(i), x))
                        .collect(),
                    serde_json::Value::Object(m) => {
                        let mut m: Vec<_> = m.into_iter().collect();
                        m.sort_by(|a, b| a.0.cmp(&b.0));
                        m.into_iter()
                            .map(|(k, x)| (serde_json::Value::String(k), x))
                            .collect()
                    }
                    serde_json::Value::Null => Vec::new(),
                    other => return Err(format!("template: range can't iterate over {other}")),
                };
                for (k, item) in items {
                    let mut vars = scope.vars.clone();
                    if let Some(kn) = key {
                        vars.push((kn.clone(), k));
                    }
                    if let Some(vn) = value {
                        vars.push((vn.clone(), item.clone()));
                    }
                    let inner = Scope { dot: &item, vars };
                    exec(body, &inner, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Go's default formatting of a decoded JSON value.
fn go_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "<nil>".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => {
            format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" "))
        }
        serde_json::Value::Object(m) => {
            format!(
                "map[{}]",
                m.iter()
                    .map(|(k, v)| format!("{k}:{}", go_value(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        other => other.to_string(),
    }
}

/// Docker's `RAMInBytes` (go-units): a decimal number, an optional `b`/`k`/`m`/`g`/`t`/`p`
/// (any case, powers of 1024) and an optional `b`/`ib` suffix, e.g. `64m`, `1.5GB`, `512KiB`;
/// `None` for anything else. Docker reads `--memory`, `--shm-size` and the log driver's
/// `max-size` with it.
#[must_use]
pub fn ram_in_bytes(value: &str) -> Option<i64> {
    let end = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(end);
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let valid_number = !number.is_empty()
        && !number.starts_with('.')
        && !number.ends_with('.')
        && !number.contains("..");
    if !valid_number {
        return None;
    }
    let (prefix, suffix) = match unit.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => (Some(c), &unit[1..]),
        _ => (None, unit.as_str()),
    };
    if !matches!(suffix, "" | "b" | "i" | "ib") {
        return None;
    }
    let shift = match prefix {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some(_) => 50,
    };
    let n: f64 = number.parse().ok()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    Some((n * (1u64 << shift) as f64) as i64)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(0, "0B")]
    #[case(999, "999B")]
    #[case(1000, "1kB")]
    #[case(12_345, "12.3kB")]
    #[case(4_261_234, "4.26MB")]
    #[case(1_240_000_000, "1.24GB")]
    #[case(100_000_000, "100MB")]
    fn sizes(#[case] n: u64, #[case] s: &str) {
        assert_eq!(human_size(n), s);
    }

    #[rstest]
    #[case(0, "Less than a second")]
    #[case(1, "1 second")]
    #[case(59, "59 seconds")]
    #[case(60, "About a minute")]
    #[case(150, "2 minutes")]
    #[case(3600, "About an hour")]
    #[case(7200, "2 hours")]
    #[case(3 * 86400, "3 days")]
    #[case(20 * 86400, "2 weeks")]
    #[case(90 * 86400, "3 months")]
    #[case(800 * 86400, "2 years")]
    fn durations(#[case] secs: i64, #[case] s: &str) {
        assert_eq!(human_duration(secs), s);
    }

    fn rows() -> Vec<Row> {
        let mut a = Row::new();
        a.insert("Repository", "busybox".into());
        a.insert("Tag", "latest".into());
        let mut b = Row::new();
        b.insert("Repository", "127.0.0.1:5000/team/app".into());
        b.insert("Tag", "v1".into());
        vec![a, b]
    }

    #[test]
    fn value_templates() {
        let doc = serde_json::json!({"Id": "sha256:ab", "Config": {"Cmd": ["sh", "-c"], "Env": null}, "Size": 12});
        assert_eq!(
            render_value("{{.Id}} {{.Size}}", &doc).unwrap(),
            "sha256:ab 12"
        );
        assert_eq!(render_value("{{.Config.Cmd}}", &doc).unwrap(), "[sh -c]");
        assert_eq!(
            render_value("{{json .Config.Cmd}}", &doc).unwrap(),
            "[\"sh\",\"-c\"]"
        );
        assert_eq!(render_value("{{.Config.Env}}", &doc).unwrap(), "<nil>");
        assert!(render_value("{{.Nope}}", &doc).is_err());
    }

    #[test]
    fn range_if_and_index_like_go_templates() {
        let doc = serde_json::json!({
            "Env": ["A=1", "B=2"],
            "Labels": {"b": "2", "a": "1"},
            "Ports": {"80/tcp": [{"HostPort": "8080"}]},
            "Empty": [],
        });
        assert_eq!(
            render_value("{{range .Env}}{{.}};{{end}}", &doc).unwrap(),
            "A=1;B=2;"
        );
        assert_eq!(
            render_value("{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}", &doc).unwrap(),
            "a=1 b=2 "
        );
        assert!(
            render_value(
                "{{range $p, $conf := .Ports}}{{$p}} -> {{(index $conf 0).HostPort}}{{end}}",
                &doc
            )
            .map_err(|e| e.contains("unsupported"))
            .unwrap_err(),
            "parenthesised pipelines are not supported"
        );
        assert_eq!(
            render_value("{{range $p, $conf := .Ports}}{{$p}}{{end}}", &doc).unwrap(),
            "80/tcp"
        );
        assert_eq!(render_value("{{index .Labels \"a\"}}", &doc).unwrap(), "1");
        assert_eq!(
            render_value(
                "{{if .Empty}}yes{{else}}no{{end}} {{if .Env}}yes{{end}}",
                &doc
            )
            .unwrap(),
            "no yes"
        );
        assert_eq!(
            render_value("{{range .Env -}} {{.}}{{end}}", &doc).unwrap(),
            "A=1B=2"
        );
        assert!(render_value("{{range .Env}}x", &doc).is_err());
        assert!(render_value("{{end}}", &doc).is_err());
    }

    #[test]
    fn tables_align_with_three_space_gutters() {
        let out = render(
            &rows(),
            &[("Repository", "REPOSITORY"), ("Tag", "TAG")],
            None,
        )
        .unwrap();
        assert_eq!(
            out,
            "REPOSITORY                TAG\nbusybox                   latest\n127.0.0.1:5000/team/app   v1\n"
        );
    }

    #[test]
    fn templates() {
        let cols = [("Repository", "REPOSITORY"), ("Tag", "TAG")];
        assert_eq!(
            render(&rows(), &cols, Some("{{.Repository}}:{{.Tag}}")).unwrap(),
            "busybox:latest\n127.0.0.1:5000/team/app:v1\n"
        );
        assert_eq!(
            render(&rows()[..1], &cols, Some("{{json .}}")).unwrap(),
            "{\"Repository\":\"busybox\",\"Tag\":\"latest\"}\n"
        );
        assert_eq!(
            render(&rows()[..1], &cols, Some("json")).unwrap(),
            "{\"Repository\":\"busybox\",\"Tag\":\"latest\"}\n"
        );
        assert_eq!(
            render(
                &rows()[..1],
                &cols,
                Some("table {{.Tag}}\\t{{.Repository}}")
            )
            .unwrap(),
            "TAG      REPOSITORY\nlatest   busybox\n"
        );
        assert!(render(&rows(), &cols, Some("{{.Nope}}"))
            .unwrap_err()
            .contains("Nope"));
    }
}
