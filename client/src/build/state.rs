//! The image being built: its config document (kept as JSON so fields berth does not model
//! survive), its layers, and Docker's history strings (`created_by`) for each instruction.
//! Calls only the store (to read a base image).

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::store::{ImageRecord, LayerRecord, Store};

/// Docker's default `PATH`, added when a base image has none (moby `initializeStage`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An image config plus its layers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageState {
    /// The whole config document (`architecture`, `os`, `config`, `rootfs`, `history`, …).
    pub doc: Value,
    /// Layers, base first.
    pub layers: Vec<LayerRecord>,
}

impl ImageState {
    /// `FROM scratch`.
    #[must_use]
    pub fn scratch() -> Self {
        let p = crate::archive::Platform::host();
        let mut doc = json!({
            "architecture": p.architecture,
            "os": p.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        });
        if let Some(v) = p.variant {
            doc["variant"] = json!(v);
        }
        Self {
            doc,
            layers: Vec::new(),
        }
    }

    /// A stored image.
    ///
    /// # Errors
    /// Its config is missing or not JSON.
    pub fn from_image(store: &Store, rec: &ImageRecord) -> anyhow::Result<Self> {
        let doc: Value = serde_json::from_slice(&store.read_blob(&rec.id.parse()?)?)?;
        Ok(Self {
            doc,
            layers: rec.layers.clone(),
        })
    }

    /// The config bytes as stored (the image ID is their digest).
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.doc).expect("serializable")
    }

    /// `sha256:<hex>` of [`Self::bytes`].
    #[must_use]
    pub fn id(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(self.bytes())))
    }

    /// The `config` object, created when missing.
    pub fn config_mut(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.doc["config"].is_object() {
            self.doc["config"] = json!({});
        }
        self.doc["config"].as_object_mut().expect("object")
    }

    /// A field of `config`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.doc
            .get("config")
            .and_then(|c| c.get(key))
            .filter(|v| !v.is_null())
    }

    /// `config.Env`.
    #[must_use]
    pub fn env(&self) -> Vec<String> {
        strings(self.get("Env"))
    }

    /// The value of `name` in `config.Env`.
    #[must_use]
    pub fn env_value(&self, name: &str) -> Option<String> {
        self.env().into_iter().find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
            (k == name).then(|| v.to_owned())
        })
    }

    /// Sets `name=value` in `config.Env` (in place, or appended).
    pub fn set_env(&mut self, name: &str, value: &str) {
        let mut env = self.env();
        let kv = format!("{name}={value}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(name)) {
            Some(slot) => *slot = kv,
            None => env.push(kv),
        }
        self.config_mut().insert("Env".into(), json!(env));
    }

    /// `config.Shell`, or `/bin/sh -c`.
    #[must_use]
    pub fn shell(&self) -> Vec<String> {
        let s = strings(self.get("Shell"));
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }

    /// `config.WorkingDir`, or `/`.
    #[must_use]
    pub fn workdir(&self) -> String {
        self.get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_owned()
    }

    /// The typed config for the runtime's spec builder.
    #[must_use]
    pub fn oci_config(&self) -> Option<oci_spec::image::Config> {
        self.doc
            .get("config")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
    }

    /// Appends a history entry; with a layer, its diff ID goes into `rootfs`.
    pub fn record(
        &mut self,
        created: &str,
        created_by: &str,
        layer: Option<(LayerRecord, String)>,
    ) {
        self.doc["created"] = json!(created);
        let mut h = json!({"created": created, "created_by": created_by});
        match layer {
            Some((rec, diff_id)) => {
                if !self.doc["rootfs"]["diff_ids"].is_array() {
                    self.doc["rootfs"] = json!({"type": "layers", "diff_ids": []});
                }
                self.doc["rootfs"]["diff_ids"]
                    .as_array_mut()
                    .expect("array")
                    .push(json!(diff_id));
                self.layers.push(rec);
            }
            None => h["empty_layer"] = json!(true),
        }
        if !self.doc["history"].is_array() {
            self.doc["history"] = json!([]);
        }
        self.doc["history"].as_array_mut().expect("array").push(h);
    }
}

/// A JSON array of strings (or nothing) as a vector.
#[must_use]
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Go's `%q` of a string slice, as Docker's history shows `CMD ["sh" "-c" "x"]`.
#[must_use]
pub fn go_quoted(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).expect("string"))
        .collect();
    format!("[{}]", items.join(" "))
}

/// Go's `time.Duration.String()`.
#[must_use]
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let ns = ns.unsigned_abs();
    let body = if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{}µs", trim_float(ns as f64 / 1e3))
    } else if ns < 1_000_000_000 {
        format!("{}ms", trim_float(ns as f64 / 1e6))
    } else {
        let h = ns / 3_600_000_000_000;
        let m = (ns / 60_000_000_000) % 60;
        let s = (ns % 60_000_000_000) as f64 / 1e9;
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!("{}s", trim_float(s)));
        out
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

fn trim_float(f: f64) -> String {
    let s = format!("{f:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(5_000_000_000, "5s")]
    #[case(0, "0s")]
    #[case(90_000_000_000, "1m30s")]
    #[case(3_600_000_000_000, "1h0m0s")]
    #[case(100_000_000, "100ms")]
    #[case(1_500_000_000, "1.5s")]
    fn durations_print_like_go(#[case] ns: i64, #[case] want: &str) {
        assert_eq!(go_duration(ns), want);
    }

    #[test]
    fn env_is_replaced_in_place() {
        let mut s = ImageState::scratch();
        s.set_env("A", "1");
        s.set_env("B", "2");
        s.set_env("A", "3");
        assert_eq!(s.env(), ["A=3", "B=2"]);
        assert_eq!(s.env_value("B").as_deref(), Some("2"));
        assert_eq!(go_quoted(&s.env()), "[\"A=3\" \"B=2\"]");
    }
}
