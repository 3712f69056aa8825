//! Container names: Docker's rules (the pattern `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, uniqueness, its
//! messages) and Docker-like generated `adjective_surname` names.
//!
//! Whoever gives a container a name (`run`, `rename`) holds the names lock
//! ([`super::lock::lock_names`]) from the uniqueness check until the name is in `state.json`, so
//! two of them never both take one name. May call [`super::state`].

use std::path::Path;

/// A name Docker refuses.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// Not `[a-zA-Z0-9][a-zA-Z0-9_.-]+`; the name as the message shows it.
    #[error(
        "Error response from daemon: Invalid container name ({0}), only {VALID_CHARS} are allowed"
    )]
    Invalid(String),
    /// Another container has it.
    #[error(
        "Error response from daemon: Conflict. The container name \"/{name}\" is already in use by \
         container \"{id}\". You have to remove (or rename) that container to be able to reuse \
         that name."
    )]
    Taken {
        /// The name, without `/`.
        name: String,
        /// The container that has it.
        id: String,
    },
}

/// The characters Docker allows, as its messages print them.
const VALID_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// Whether `name` (without its leading `/`) matches `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Refuses a name Docker would refuse; `shown` is the name as the message prints it.
///
/// # Errors
/// Docker's `Invalid container name (…), only … are allowed`.
pub fn check_valid(name: &str, shown: &str) -> Result<(), NameError> {
    if valid_name(name.strip_prefix('/').unwrap_or(name)) {
        Ok(())
    } else {
        Err(NameError::Invalid(shown.to_owned()))
    }
}

/// Refuses `name` when a container other than `except` has it. The caller holds the names
/// lock.
///
/// # Errors
/// Docker's conflict message.
pub fn check_free(data_root: &Path, name: &str, except: Option<&str>) -> Result<(), NameError> {
    let taken = super::state::list(data_root)
        .into_iter()
        .find(|(_, s)| s.name == name && Some(s.id.as_str()) != except);
    match taken {
        Some((_, s)) => Err(NameError::Taken {
            name: name.to_owned(),
            id: s.id,
        }),
        None => Ok(()),
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const NAMES: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bell",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "brahmagupta",
    "brattain",
    "brown",
    "cannon",
    "carson",
    "cerf",
    "chandrasekhar",
    "curie",
    "darwin",
    "diffie",
    "dijkstra",
    "einstein",
    "elion",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "hodgkin",
    "hopper",
    "hypatia",
    "jackson",
    "jang",
    "johnson",
    "kalam",
    "kepler",
    "khorana",
    "knuth",
    "kowalevski",
    "lamarr",
    "lamport",
    "leakey",
    "lovelace",
    "lumiere",
    "mayer",
    "mccarthy",
    "mcclintock",
    "meitner",
    "mendel",
    "mirzakhani",
    "morse",
    "newton",
    "nobel",
    "noether",
    "pare",
    "pascal",
    "pasteur",
    "perlman",
    "pike",
    "poincare",
    "ptolemy",
    "raman",
    "ritchie",
    "rosalind",
    "sammet",
    "shannon",
    "shockley",
    "sinoussi",
    "stonebraker",
    "swanson",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A Docker-like `adjective_surname` name no container in `taken` has (a digit is appended
/// after a few collisions, as Docker does).
#[must_use]
pub fn generate_name(taken: &dyn Fn(&str) -> bool) -> String {
    let mut retry = 0u32;
    loop {
        let r = uuid::Uuid::new_v4().as_u128();
        #[allow(clippy::cast_possible_truncation)]
        let (a, n) = (
            ADJECTIVES[(r % ADJECTIVES.len() as u128) as usize],
            NAMES[((r >> 64) % NAMES.len() as u128) as usize],
        );
        let mut name = format!("{a}_{n}");
        if retry > 3 {
            name.push_str(&((r >> 32) % 10).to_string());
        }
        if !taken(&name) {
            return name;
        }
        retry += 1;
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_look_like_dockers_and_avoid_taken_ones() {
        let n = generate_name(&|_| false);
        let (a, b) = n.split_once('_').unwrap();
        assert!(ADJECTIVES.contains(&a) && NAMES.contains(&b), "{n}");
        let first = n.clone();
        assert_ne!(generate_name(&|c| c == first), first);
    }

    #[rstest::rstest]
    #[case("web", true)]
    #[case("my_app.v2-1", true)]
    #[case("0abc", true)]
    #[case("a", false)]
    #[case("", false)]
    #[case("_web", false)]
    #[case("-web", false)]
    #[case("my app", false)]
    #[case("a/b", false)]
    #[case("caf\u{e9}", false)]
    fn names_follow_dockers_pattern(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(valid_name(name), ok, "{name}");
    }

    #[test]
    fn messages_are_dockers() {
        assert_eq!(
            check_valid("a b", "/a b").unwrap_err().to_string(),
            "Error response from daemon: Invalid container name (/a b), only \
             [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert!(check_valid("/ok", "/ok").is_ok());
    }

    #[test]
    fn a_taken_name_conflicts_except_with_itself() {
        let t = tempfile::tempdir().unwrap();
        let dir = crate::container::state::root(t.path()).join("abc");
        std::fs::create_dir_all(&dir).unwrap();
        let lock = crate::container::lock::Lock::take(&dir).unwrap();
        let s = crate::container::state::State {
            id: "abc".into(),
            name: "web".into(),
            ..crate::container::state::State::default()
        };
        crate::container::state::save(&dir, &s, &lock).unwrap();
        let e = check_free(t.path(), "web", None).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "Error response from daemon: Conflict. The container name \"/web\" is already in use by container \"abc\". You have to remove"
            ),
            "{e}"
        );
        assert!(check_free(t.path(), "web", Some("abc")).is_ok());
        assert!(check_free(t.path(), "db", None).is_ok());
    }
}
