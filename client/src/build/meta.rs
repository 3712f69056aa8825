//! Instructions that only change the config (ENV, LABEL, USER, EXPOSE, VOLUME, CMD,
//! ENTRYPOINT, HEALTHCHECK, SHELL, STOPSIGNAL, ONBUILD, MAINTAINER, ARG): the change, and
//! Docker's classic-builder history text for it (`/bin/sh -c #(nop)  ENV A=b`). Pure: words
//! arrive expanded through the caller's expander.

use serde_json::{json, Value};

use super::dockerfile::{CommandForm, Healthcheck, Kind};
use super::state::{go_duration, go_quoted, ImageState};

/// `#(nop)` history text for a config-only instruction.
#[must_use]
pub fn nop(text: &str) -> String {
    format!("/bin/sh -c #(nop)  {text}")
}

/// The argv of a command form: exec as is, shell form prefixed with the stage's `SHELL`.
#[must_use]
pub fn argv(form: &CommandForm, shell: &[String]) -> Vec<String> {
    match form {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// `EXPOSE` words → `ExposedPorts` keys (`80` → `80/tcp`, ranges expanded).
///
/// # Errors
/// A word that is not a port, range or protocol Docker accepts.
pub fn ports(words: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for w in words {
        let (range, proto) = w.split_once('/').unwrap_or((w, "tcp"));
        let proto = proto.to_ascii_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid proto: {proto}"));
        }
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
            return Err(format!("invalid containerPort: {range}"));
        };
        if hi < lo {
            return Err(format!(
                "invalid range specified for containerPort: {range}"
            ));
        }
        for p in lo..=hi {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

fn insert_keys(state: &mut ImageState, field: &str, keys: &[String]) {
    let c = state.config_mut();
    let entry = c.entry(field.to_owned()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    let obj = entry.as_object_mut().expect("object");
    for k in keys {
        obj.insert(k.clone(), json!({}));
    }
}

/// Applies a config-only instruction whose words are already expanded (`words` per kind:
/// pairs for ENV/LABEL, one word for USER/STOPSIGNAL/MAINTAINER, the list for EXPOSE/VOLUME).
/// Returns the history text. `cmd_set` tracks whether CMD was given in this stage (an
/// ENTRYPOINT resets an inherited CMD, as Docker does).
///
/// # Errors
/// A value Docker refuses (bad port), as text.
pub fn apply(
    kind: &Kind,
    state: &mut ImageState,
    pairs: &[(String, String)],
    words: &[String],
    cmd_set: &mut bool,
) -> Result<String, String> {
    let shell = state.shell();
    Ok(match kind {
        Kind::Env(_) => {
            let mut text = String::from("ENV");
            for (k, v) in pairs {
                state.set_env(k, v);
                text.push_str(&format!(" {k}={v}"));
            }
            nop(&text)
        }
        Kind::Label(_) => {
            let mut text = String::from("LABEL");
            let c = state.config_mut();
            let labels = c.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in pairs {
                labels[k.as_str()] = json!(v);
                text.push_str(&format!(" {k}={v}"));
            }
            nop(&text)
        }
        Kind::User(_) => {
            let user = words.first().cloned().unwrap_or_default();
            state.config_mut().insert("User".into(), json!(user));
            nop(&format!("USER {user}"))
        }
        Kind::Expose(_) => {
            let keys = ports(words)?;
            insert_keys(state, "ExposedPorts", &keys);
            nop(&format!("EXPOSE {}", words.join(" ")))
        }
        Kind::Volume(_) => {
            if words.iter().any(String::is_empty) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            insert_keys(state, "Volumes", words);
            nop(&format!("VOLUME [{}]", words.join(" ")))
        }
        Kind::Cmd(form) => {
            let v = argv(form, &shell);
            state.config_mut().insert("Cmd".into(), json!(v));
            *cmd_set = true;
            nop(&format!("CMD {}", go_quoted(&v)))
        }
        Kind::Entrypoint(form) => {
            let v = argv(form, &shell);
            let c = state.config_mut();
            c.insert("Entrypoint".into(), json!(v));
            if !*cmd_set {
                c.insert("Cmd".into(), Value::Null);
            }
            nop(&format!("ENTRYPOINT {}", go_quoted(&v)))
        }
        Kind::Healthcheck(h) => match h {
            Healthcheck::None => {
                state
                    .config_mut()
                    .insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
                nop("HEALTHCHECK &{[\"NONE\"] \"0s\" \"0s\" \"0s\" '\\x00'}")
            }
            Healthcheck::Check {
                command,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            } => {
                let test = match command {
                    CommandForm::Exec(v) => {
                        let mut t = vec!["CMD".to_owned()];
                        t.extend(v.iter().cloned());
                        t
                    }
                    CommandForm::Shell(s) => vec!["CMD-SHELL".to_owned(), s.clone()],
                };
                let mut hc = json!({"Test": test});
                for (k, v) in [
                    ("Interval", interval),
                    ("Timeout", timeout),
                    ("StartPeriod", start_period),
                    ("StartInterval", start_interval),
                ] {
                    if let Some(v) = v.filter(|v| *v != 0) {
                        hc[k] = json!(v);
                    }
                }
                if let Some(r) = retries.filter(|r| *r != 0) {
                    hc["Retries"] = json!(r);
                }
                state.config_mut().insert("Healthcheck".into(), hc);
                let d = |v: &Option<i64>| go_duration(v.unwrap_or(0));
                let r = retries.unwrap_or(0);
                let retries_text = if r == 0 {
                    "'\\x00'".to_owned()
                } else {
                    format!("'\\x{r:02x}'")
                };
                nop(&format!(
                    "HEALTHCHECK &{{{} \"{}\" \"{}\" \"{}\" {retries_text}}}",
                    go_quoted(&test),
                    d(interval),
                    d(timeout),
                    d(start_period)
                ))
            }
        },
        Kind::Shell(v) => {
            state.config_mut().insert("Shell".into(), json!(v));
            nop(&format!("SHELL [{}]", v.join(" ")))
        }
        Kind::StopSignal(_) => {
            let sig = words.first().cloned().unwrap_or_default();
            state.config_mut().insert("StopSignal".into(), json!(sig));
            nop(&format!("STOPSIGNAL {sig}"))
        }
        Kind::OnBuild(trigger) => {
            let c = state.config_mut();
            let list = c.entry("OnBuild").or_insert_with(|| json!([]));
            if !list.is_array() {
                *list = json!([]);
            }
            list.as_array_mut().expect("array").push(json!(trigger));
            nop(&format!("ONBUILD {trigger}"))
        }
        Kind::Maintainer(_) => {
            let who = words.first().cloned().unwrap_or_default();
            state.doc["author"] = json!(who);
            nop(&format!("MAINTAINER {who}"))
        }
        Kind::Arg(_) => nop(&format!("ARG {}", words.join(" "))),
        other => {
            return Err(format!(
                "{} is not a config-only instruction",
                other.keyword()
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[rstest]
    #[case(&["80"], &["80/tcp"])]
    #[case(&["53/udp", "8000-8001"], &["53/udp", "8000/tcp", "8001/tcp"])]
    fn exposed_ports(#[case] words: &[&str], #[case] want: &[&str]) {
        assert_eq!(ports(&s(words)).unwrap(), s(want));
    }

    #[test]
    fn history_text_matches_docker() {
        let mut st = ImageState::scratch();
        let mut cmd_set = false;
        let e = apply(
            &Kind::Env(vec![]),
            &mut st,
            &[("A".into(), "b".into()), ("C".into(), "d e".into())],
            &[],
            &mut cmd_set,
        )
        .unwrap();
        assert_eq!(e, "/bin/sh -c #(nop)  ENV A=b C=d e");
        let c = apply(
            &Kind::Entrypoint(CommandForm::Shell("echo hi".into())),
            &mut st,
            &[],
            &[],
            &mut cmd_set,
        )
        .unwrap();
        assert_eq!(
            c,
            "/bin/sh -c #(nop)  ENTRYPOINT [\"/bin/sh\" \"-c\" \"echo hi\"]"
        );
        let h = apply(
            &Kind::Healthcheck(Healthcheck::Check {
                command: CommandForm::Shell("true".into()),
                interval: Some(5_000_000_000),
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: None,
            }),
            &mut st,
            &[],
            &[],
            &mut cmd_set,
        )
        .unwrap();
        assert_eq!(
            h,
            "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"5s\" \"0s\" \"0s\" '\\x00'}"
        );
        let v = apply(
            &Kind::Volume(vec![]),
            &mut st,
            &[],
            &s(&["/data"]),
            &mut cmd_set,
        )
        .unwrap();
        assert_eq!(v, "/bin/sh -c #(nop)  VOLUME [/data]");
        assert_eq!(st.get("Volumes").unwrap(), &json!({"/data": {}}));
    }
}
