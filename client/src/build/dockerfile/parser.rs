//! Logical lines → instructions: keywords, `--flags`, exec/shell forms, `key=value` lists,
//! stage structure (`FROM ... AS name`, pre-`FROM` `ARG`s). Values stay unexpanded.

use super::expand::split_words;
use super::lexer::{lex, LogicalLine};
use super::{
    CommandForm, Copy, Dockerfile, Healthcheck, Instruction, Kind, Mount, MountType, ParseError,
    Run, Stage,
};

/// Parses a Dockerfile.
///
/// # Errors
/// The first syntax error, with its line and column.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let (directives, lines) = lex(text)?;
    let escape = directives.escape;
    let mut file = Dockerfile {
        escape,
        syntax: directives.syntax,
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for line in lines {
        let upper = line.keyword.to_ascii_uppercase();
        if upper == "FROM" {
            let stage = parse_from(&line, escape)?;
            if let Some(name) = &stage.name {
                if file.stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                    return Err(err_at(&line, format!("duplicate stage name \"{name}\"")));
                }
            }
            file.stages.push(stage);
            continue;
        }
        let instruction = parse_instruction(&line, escape)?;
        match file.stages.last_mut() {
            Some(stage) => stage.instructions.push(instruction),
            None if matches!(instruction.kind, Kind::Arg(_)) => file.meta_args.push(instruction),
            None => {
                return Err(err_at(
                    &line,
                    format!("no build stage in current context: {upper} before the first FROM"),
                ))
            }
        }
    }
    if file.stages.is_empty() {
        return Err(ParseError::new(
            1,
            1,
            "the Dockerfile has no FROM instruction (file with no instructions)",
        ));
    }
    Ok(file)
}

fn err_at(line: &LogicalLine, message: impl Into<String>) -> ParseError {
    ParseError::new(line.line, line.column, message)
}

fn err_args(line: &LogicalLine, message: impl Into<String>) -> ParseError {
    ParseError::new(line.line, line.args_column, message)
}

/// `--name=value` words at the start of the arguments; returns them and the rest.
fn take_flags(args: &str, escape: char) -> (Vec<(String, Option<String>)>, String) {
    let mut flags = Vec::new();
    let mut rest = args.trim_start();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let word = &after[..end];
        if word.is_empty() {
            break;
        }
        // Quotes inside a flag's value (`--mount=type=cache,target="/a b"`) are kept whole.
        let words = split_words(after, escape);
        let first = words.first().cloned().unwrap_or_default();
        let taken = if first.len() > word.len() {
            &first
        } else {
            word
        };
        match taken.split_once('=') {
            Some((k, v)) => flags.push((k.to_owned(), Some(v.to_owned()))),
            None => flags.push((taken.to_owned(), None)),
        }
        rest = after[taken.len().min(after.len())..].trim_start();
    }
    (flags, rest.to_owned())
}

fn check_flags(
    line: &LogicalLine,
    flags: &[(String, Option<String>)],
    allowed: &[&str],
) -> Result<(), ParseError> {
    for (k, _) in flags {
        if !allowed.contains(&k.as_str()) {
            return Err(err_args(line, format!("unknown flag: --{k}")));
        }
    }
    Ok(())
}

fn flag_value(
    line: &LogicalLine,
    flags: &[(String, Option<String>)],
    name: &str,
) -> Result<Option<String>, ParseError> {
    match flags.iter().rev().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, Some(v))) => Ok(Some(v.clone())),
        Some((_, None)) => Err(err_args(line, format!("missing a value on flag: --{name}"))),
    }
}

fn bool_flag(flags: &[(String, Option<String>)], name: &str) -> bool {
    flags
        .iter()
        .any(|(k, v)| k == name && v.as_deref().is_none_or(|v| v == "true"))
}

fn parse_from(line: &LogicalLine, escape: char) -> Result<Stage, ParseError> {
    let (flags, rest) = take_flags(&line.args, escape);
    check_flags(line, &flags, &["platform"])?;
    let platform = flag_value(line, &flags, "platform")?;
    let words = split_words(&rest, escape);
    let (base, name) = match words.as_slice() {
        [base] => (base.clone(), None),
        [base, kw, name] if kw.eq_ignore_ascii_case("as") => {
            let name = name.to_ascii_lowercase();
            let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(err_args(
                    line,
                    format!("invalid name for build stage: \"{name}\", name can't start with a number or contain symbols"),
                ));
            }
            (base.clone(), Some(name))
        }
        [] => {
            return Err(err_args(
                line,
                "FROM requires either one or three arguments",
            ))
        }
        _ => {
            return Err(err_args(
                line,
                "FROM requires either one or three arguments",
            ))
        }
    };
    Ok(Stage {
        from: Instruction {
            line: line.line,
            column: line.column,
            original: original(line),
            kind: Kind::From,
        },
        base,
        name,
        platform,
        instructions: Vec::new(),
    })
}

fn original(line: &LogicalLine) -> String {
    if line.args.is_empty() {
        line.keyword.to_ascii_uppercase()
    } else {
        format!("{} {}", line.keyword.to_ascii_uppercase(), line.args)
    }
}

/// A JSON array of strings, if `s` is one.
fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command_form(s: &str) -> CommandForm {
    json_array(s).map_or_else(|| CommandForm::Shell(s.to_owned()), CommandForm::Exec)
}

/// `k=v k2="v 2"` pairs, or the legacy `k v` single pair (ENV, LABEL).
fn name_values(
    line: &LogicalLine,
    args: &str,
    escape: char,
    what: &str,
) -> Result<Vec<(String, String)>, ParseError> {
    let words = split_words(args, escape);
    if words.is_empty() {
        return Err(err_args(
            line,
            format!("{what} requires at least one argument"),
        ));
    }
    if !words[0].contains('=') {
        if what == "LABEL" {
            return Err(err_args(line, "LABEL requires an equals sign: key=value"));
        }
        // Legacy `ENV key value with spaces`: the rest of the line, verbatim.
        let key = words[0].clone();
        let value = args.trim_start()[key.len()..].trim().to_owned();
        if value.is_empty() {
            return Err(err_args(line, format!("{what} must have two arguments")));
        }
        return Ok(vec![(key, value)]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(err_args(line, format!("{what} names can not be blank"))),
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => Err(err_args(
                line,
                format!("Syntax error - can't find = in \"{w}\". Must be of the form: name=value"),
            )),
        })
        .collect()
}

/// Go's `time.ParseDuration` for the units Docker users write (`ns`..`h`), in nanoseconds.
fn duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .filter(|e| *e > 0)?;
        let n: f64 = rest[..end].parse().ok()?;
        let unit_end = rest[end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |u| end + u);
        let scale = match &rest[end..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    #[allow(clippy::cast_possible_truncation)]
    Some(total as i64)
}

fn parse_mount(line: &LogicalLine, value: &str) -> Result<Mount, ParseError> {
    let mut m = Mount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        readonly: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size: None,
    };
    let number = |k: &str, v: &str, radix: u32| {
        u32::from_str_radix(v, radix)
            .map_err(|_| err_args(line, format!("invalid value for {k} in --mount: \"{v}\"")))
    };
    for field in value.split(',') {
        let field = field.trim().trim_matches('"');
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k.to_ascii_lowercase().as_str() {
            "type" => {
                m.kind = match v {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "secret" => MountType::Secret,
                    "tmpfs" => MountType::Tmpfs,
                    other => {
                        return Err(err_args(
                            line,
                            format!("unsupported mount type \"{other}\""),
                        ))
                    }
                };
            }
            "target" | "dst" | "destination" => m.target = Some(v.to_owned()),
            "source" | "src" => m.source = Some(v.to_owned()),
            "from" => m.from = Some(v.to_owned()),
            "id" => m.id = Some(v.to_owned()),
            "ro" | "readonly" => m.readonly = Some(v.is_empty() || v == "true"),
            "rw" | "readwrite" => m.readonly = Some(!(v.is_empty() || v == "true")),
            "sharing" => {
                if !matches!(v, "shared" | "private" | "locked") {
                    return Err(err_args(line, format!("unsupported sharing value \"{v}\"")));
                }
                m.sharing = Some(v.to_owned());
            }
            "mode" => m.mode = Some(number(k, v, 8)?),
            "uid" => m.uid = Some(number(k, v, 10)?),
            "gid" => m.gid = Some(number(k, v, 10)?),
            "required" => m.required = v.is_empty() || v == "true",
            "size" => m.size = Some(v.to_owned()),
            _ => return Err(err_args(line, format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if m.kind != MountType::Secret && m.target.is_none() {
        return Err(err_args(line, "mount destination (target=) is required"));
    }
    Ok(m)
}

fn parse_copy(
    line: &LogicalLine,
    escape: char,
    add: bool,
    flags: &[(String, Option<String>)],
    rest: &str,
) -> Result<Copy, ParseError> {
    let allowed: &[&str] = if add {
        &["chown", "chmod", "link", "checksum", "keep-git-dir"]
    } else {
        &["from", "chown", "chmod", "link", "parents", "exclude"]
    };
    check_flags(line, flags, allowed)?;
    let words = json_array(rest).unwrap_or_else(|| split_words(rest, escape));
    let keyword = if add { "ADD" } else { "COPY" };
    if words.len() < 2 {
        return Err(err_args(
            line,
            format!("{keyword} requires at least two arguments, but only one was provided. Destination could not be determined"),
        ));
    }
    let (dest, sources) = words.split_last().expect("two words");
    Ok(Copy {
        sources: sources.to_vec(),
        dest: dest.clone(),
        from: flag_value(line, flags, "from")?,
        chown: flag_value(line, flags, "chown")?,
        chmod: flag_value(line, flags, "chmod")?,
        link: bool_flag(flags, "link"),
        checksum: flag_value(line, flags, "checksum")?,
        heredocs: line.heredocs.clone(),
    })
}

fn parse_healthcheck(
    line: &LogicalLine,
    escape: char,
    flags: &[(String, Option<String>)],
    rest: &str,
) -> Result<Healthcheck, ParseError> {
    check_flags(
        line,
        flags,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
    )?;
    let _ = escape;
    let (first, cmd) = rest
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((rest.trim(), ""));
    match first.to_ascii_uppercase().as_str() {
        "NONE" if cmd.trim().is_empty() && flags.is_empty() => Ok(Healthcheck::None),
        "NONE" => Err(err_args(line, "HEALTHCHECK NONE takes no arguments")),
        "CMD" => {
            let cmd = cmd.trim();
            if cmd.is_empty() {
                return Err(err_args(line, "Missing command after HEALTHCHECK CMD"));
            }
            let dur = |name: &str| -> Result<Option<i64>, ParseError> {
                flag_value(line, flags, name)?
                    .map(|v| {
                        duration(&v).filter(|d| *d >= 0).ok_or_else(|| {
                            err_args(line, format!("invalid duration for --{name}: \"{v}\""))
                        })
                    })
                    .transpose()
            };
            let retries = flag_value(line, flags, "retries")?
                .map(|v| {
                    v.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
                        err_args(
                            line,
                            format!("--retries must be a non-negative integer, not \"{v}\""),
                        )
                    })
                })
                .transpose()?;
            Ok(Healthcheck::Check {
                command: command_form(cmd),
                interval: dur("interval")?,
                timeout: dur("timeout")?,
                start_period: dur("start-period")?,
                start_interval: dur("start-interval")?,
                retries,
            })
        }
        _ => Err(err_args(
            line,
            format!("Unknown type \"{first}\" in HEALTHCHECK (try CMD)"),
        )),
    }
}

/// One non-`FROM` instruction.
fn parse_instruction(line: &LogicalLine, escape: char) -> Result<Instruction, ParseError> {
    let upper = line.keyword.to_ascii_uppercase();
    let args = line.args.as_str();
    let needs_args = |what: &str| -> Result<(), ParseError> {
        if args.trim().is_empty() {
            Err(err_at(
                line,
                format!("{what} requires at least one argument"),
            ))
        } else {
            Ok(())
        }
    };
    let kind = match upper.as_str() {
        "RUN" => {
            let (flags, rest) = take_flags(args, escape);
            check_flags(line, &flags, &["mount", "network", "security"])?;
            if rest.trim().is_empty() {
                return Err(err_at(line, "RUN requires at least one argument"));
            }
            let mounts = flags
                .iter()
                .filter(|(k, _)| k == "mount")
                .map(|(_, v)| parse_mount(line, v.as_deref().unwrap_or_default()))
                .collect::<Result<_, _>>()?;
            let network = flag_value(line, &flags, "network")?;
            if let Some(n) = &network {
                if !matches!(n.as_str(), "default" | "none" | "host") {
                    return Err(err_args(line, format!("unsupported network mode \"{n}\"")));
                }
            }
            Kind::Run(Run {
                command: command_form(&rest),
                mounts,
                network,
                heredocs: line.heredocs.clone(),
            })
        }
        "COPY" | "ADD" => {
            let (flags, rest) = take_flags(args, escape);
            let c = parse_copy(line, escape, upper == "ADD", &flags, &rest)?;
            if upper == "ADD" {
                Kind::Add(c)
            } else {
                Kind::Copy(c)
            }
        }
        "ENV" => Kind::Env(name_values(line, args, escape, "ENV")?),
        "LABEL" => Kind::Label(name_values(line, args, escape, "LABEL")?),
        "ARG" => {
            needs_args("ARG")?;
            Kind::Arg(
                split_words(args, escape)
                    .into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                        None => (w, None),
                    })
                    .collect(),
            )
        }
        "WORKDIR" => {
            needs_args("WORKDIR")?;
            Kind::Workdir(args.trim().to_owned())
        }
        "USER" => {
            needs_args("USER")?;
            Kind::User(args.trim().to_owned())
        }
        "EXPOSE" => {
            needs_args("EXPOSE")?;
            Kind::Expose(split_words(args, escape))
        }
        "CMD" => Kind::Cmd(command_form(args)),
        "ENTRYPOINT" => Kind::Entrypoint(command_form(args)),
        "VOLUME" => {
            needs_args("VOLUME")?;
            Kind::Volume(json_array(args).unwrap_or_else(|| split_words(args, escape)))
        }
        "HEALTHCHECK" => {
            let (flags, rest) = take_flags(args, escape);
            Kind::Healthcheck(parse_healthcheck(line, escape, &flags, &rest)?)
        }
        "SHELL" => match json_array(args) {
            Some(v) if !v.is_empty() => Kind::Shell(v),
            _ => {
                return Err(err_args(
                    line,
                    "SHELL requires the arguments to be in JSON form",
                ))
            }
        },
        "STOPSIGNAL" => {
            needs_args("STOPSIGNAL")?;
            Kind::StopSignal(args.trim().to_owned())
        }
        "MAINTAINER" => {
            needs_args("MAINTAINER")?;
            Kind::Maintainer(args.trim().to_owned())
        }
        "ONBUILD" => {
            needs_args("ONBUILD")?;
            let (kw, rest) = args
                .trim()
                .split_once(char::is_whitespace)
                .unwrap_or((args.trim(), ""));
            let kw_upper = kw.to_ascii_uppercase();
            match kw_upper.as_str() {
                "ONBUILD" => {
                    return Err(err_args(
                        line,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(err_args(
                        line,
                        format!("{kw_upper} isn't allowed as an ONBUILD trigger"),
                    ))
                }
                _ => {}
            }
            let trigger = format!("{kw_upper} {}", rest.trim());
            // Checked now, run when an image is built FROM this one.
            let inner = LogicalLine {
                keyword: kw_upper.clone(),
                args: rest.trim().to_owned(),
                heredocs: Vec::new(),
                ..line.clone()
            };
            parse_instruction(&inner, escape)?;
            Kind::OnBuild(trigger.trim_end().to_owned())
        }
        _ => {
            return Err(err_at(
                line,
                format!("unknown instruction: {}", line.keyword),
            ))
        }
    };
    Ok(Instruction {
        line: line.line,
        column: line.column,
        original: original(line),
        kind,
    })
}

/// Parses one trigger of a base image's `ONBUILD` list as an instruction.
///
/// # Errors
/// The trigger is not a valid instruction.
pub fn parse_trigger(trigger: &str, escape: char) -> Result<Instruction, ParseError> {
    let (_, mut lines) = lex(trigger)?;
    let line = lines
        .pop()
        .ok_or_else(|| ParseError::new(1, 1, "empty ONBUILD trigger"))?;
    parse_instruction(&line, escape)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn one(text: &str) -> Kind {
        let f = parse(&format!("FROM scratch\n{text}\n")).unwrap();
        f.stages[0].instructions[0].kind.clone()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[rstest]
    #[case("RUN echo hi", CommandForm::Shell("echo hi".into()))]
    #[case("RUN [\"echo\", \"hi\"]", CommandForm::Exec(s(&["echo", "hi"])))]
    #[case("RUN [not json", CommandForm::Shell("[not json".into()))]
    #[case("run a \\\n b", CommandForm::Shell("a  b".into()))]
    fn run_forms(#[case] text: &str, #[case] want: CommandForm) {
        let Kind::Run(r) = one(text) else { panic!() };
        assert_eq!(r.command, want);
    }

    #[test]
    fn run_flags() {
        let Kind::Run(r) = one(
            "RUN --mount=type=cache,target=/c,id=x,sharing=locked --mount=type=bind,source=a,target=/a,rw --mount=type=secret,id=s --mount=type=tmpfs,target=/t --network=none make",
        ) else {
            panic!()
        };
        assert_eq!(r.mounts.len(), 4);
        assert_eq!(r.mounts[0].kind, MountType::Cache);
        assert_eq!(r.mounts[0].sharing.as_deref(), Some("locked"));
        assert_eq!(r.mounts[1].readonly, Some(false));
        assert_eq!(r.mounts[2].kind, MountType::Secret);
        assert_eq!(r.mounts[3].kind, MountType::Tmpfs);
        assert_eq!(r.network.as_deref(), Some("none"));
        assert_eq!(r.command, CommandForm::Shell("make".into()));
    }

    #[rstest]
    #[case("COPY a b /dst/", &["a", "b"], "/dst/", None, None)]
    #[case("COPY --from=build --chown=app:app /x /y", &["/x"], "/y", Some("build"), Some("app:app"))]
    #[case("COPY [\"a b\", \"/c d\"]", &["a b"], "/c d", None, None)]
    #[case("COPY --link --chmod=755 a b", &["a"], "b", None, None)]
    fn copies(
        #[case] text: &str,
        #[case] sources: &[&str],
        #[case] dest: &str,
        #[case] from: Option<&str>,
        #[case] chown: Option<&str>,
    ) {
        let Kind::Copy(c) = one(text) else { panic!() };
        assert_eq!(c.sources, s(sources));
        assert_eq!(c.dest, dest);
        assert_eq!(c.from.as_deref(), from);
        assert_eq!(c.chown.as_deref(), chown);
    }

    #[rstest]
    #[case("ENV A=b", &[("A", "b")])]
    #[case("ENV A b c", &[("A", "b c")])]
    #[case("ENV A=\"b c\" D=e\\ f", &[("A", "\"b c\""), ("D", "e\\ f")])]
    #[case("LABEL a=b \"c d\"=e", &[("a", "b"), ("\"c d\"", "e")])]
    fn name_value_lists(#[case] text: &str, #[case] want: &[(&str, &str)]) {
        let pairs = match one(text) {
            Kind::Env(p) | Kind::Label(p) => p,
            _ => panic!(),
        };
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(pairs, want);
    }

    #[test]
    fn every_instruction() {
        let f = parse(
            "ARG BASE=scratch\nFROM --platform=linux/amd64 ${BASE} AS Build\nARG A B=2\nWORKDIR /w\nUSER app:app\nEXPOSE 80 443/udp\nCMD [\"sh\"]\nENTRYPOINT run me\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nHEALTHCHECK --interval=1m30s --retries=3 CMD true\nHEALTHCHECK NONE\nSHELL [\"/bin/bash\", \"-c\"]\nSTOPSIGNAL SIGKILL\nONBUILD run echo x\nMAINTAINER me\nADD --chown=1:1 a.tar /\nFROM build\n",
        )
        .unwrap();
        assert_eq!(f.meta_args.len(), 1);
        assert_eq!(f.stages.len(), 2);
        let st = &f.stages[0];
        assert_eq!(st.name.as_deref(), Some("build"));
        assert_eq!(st.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(st.base, "${BASE}");
        let kw: Vec<&str> = st.instructions.iter().map(|i| i.kind.keyword()).collect();
        assert_eq!(
            kw,
            [
                "ARG",
                "WORKDIR",
                "USER",
                "EXPOSE",
                "CMD",
                "ENTRYPOINT",
                "VOLUME",
                "VOLUME",
                "HEALTHCHECK",
                "HEALTHCHECK",
                "SHELL",
                "STOPSIGNAL",
                "ONBUILD",
                "MAINTAINER",
                "ADD"
            ]
        );
        assert_eq!(
            st.instructions[8].kind,
            Kind::Healthcheck(Healthcheck::Check {
                command: CommandForm::Shell("true".into()),
                interval: Some(90_000_000_000),
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: Some(3),
            })
        );
        assert_eq!(
            st.instructions[9].kind,
            Kind::Healthcheck(Healthcheck::None)
        );
        assert_eq!(st.instructions[12].kind, Kind::OnBuild("RUN echo x".into()));
        assert_eq!(f.stage_index("BUILD"), Some(0));
        assert_eq!(f.stage_index("1"), Some(1));
        assert_eq!(f.step_count(1), 1 + 16 + 1);
    }

    #[test]
    fn heredoc_instructions() {
        let f = parse("FROM scratch\nRUN <<EOF\necho a\nEOF\nCOPY <<EOT /f\nhello\nEOT\n").unwrap();
        let Kind::Run(r) = &f.stages[0].instructions[0].kind else {
            panic!()
        };
        assert_eq!(r.heredocs[0].content, "echo a\n");
        let Kind::Copy(c) = &f.stages[0].instructions[1].kind else {
            panic!()
        };
        assert_eq!(c.sources, ["<<EOT"]);
        assert_eq!(c.heredocs[0].content, "hello\n");
    }

    #[rstest]
    #[case("FROM a\nFOO bar\n", 2, 1, "unknown instruction: FOO")]
    #[case("FROM a\n  RUN\n", 2, 3, "RUN requires at least one argument")]
    #[case("RUN x\nFROM a\n", 1, 1, "no build stage")]
    #[case("FROM a b\n", 1, 6, "FROM requires either one or three arguments")]
    #[case("FROM a AS 1x\n", 1, 6, "invalid name for build stage")]
    #[case("FROM a AS x\nFROM b AS x\n", 2, 1, "duplicate stage name")]
    #[case("FROM a\nCOPY a\n", 2, 6, "COPY requires at least two arguments")]
    #[case("FROM a\nCOPY --bogus a b\n", 2, 6, "unknown flag: --bogus")]
    #[case("FROM a\nADD --from=x a b\n", 2, 5, "unknown flag: --from")]
    #[case(
        "FROM a\nRUN --mount=type=nfs,target=/x a\n",
        2,
        5,
        "unsupported mount type"
    )]
    #[case("FROM a\nRUN --mount=type=cache a\n", 2, 5, "target=")]
    #[case("FROM a\nSHELL sh -c\n", 2, 7, "JSON form")]
    #[case("FROM a\nHEALTHCHECK --interval=x CMD a\n", 2, 13, "invalid duration")]
    #[case("FROM a\nHEALTHCHECK FOO\n", 2, 13, "Unknown type")]
    #[case("FROM a\nONBUILD ONBUILD RUN x\n", 2, 9, "Chaining ONBUILD")]
    #[case("FROM a\nONBUILD FROM x\n", 2, 9, "isn't allowed")]
    #[case("FROM a\nLABEL novalue\n", 2, 7, "LABEL requires an equals sign")]
    #[case("FROM a\nENV A\n", 2, 5, "ENV must have two arguments")]
    #[case("FROM a\nENV A=b c\n", 2, 5, "can't find =")]
    #[case("\n\n", 1, 1, "no FROM")]
    fn errors(
        #[case] text: &str,
        #[case] line: usize,
        #[case] column: usize,
        #[case] message: &str,
    ) {
        let e = parse(text).unwrap_err();
        assert_eq!((e.line, e.column), (line, column), "{e}");
        assert!(e.message.contains(message), "{e}");
        assert!(e.to_string().contains(&format!("line {line}")));
    }

    #[rstest]
    #[case("5s", 5_000_000_000)]
    #[case("1m30s", 90_000_000_000)]
    #[case("100ms", 100_000_000)]
    #[case("1.5h", 5_400_000_000_000)]
    #[case("0", 0)]
    fn durations(#[case] s: &str, #[case] want: i64) {
        assert_eq!(duration(s), Some(want));
    }

    #[test]
    fn triggers_parse() {
        let i = parse_trigger("RUN echo x", '\\').unwrap();
        assert!(matches!(i.kind, Kind::Run(_)));
    }
}
