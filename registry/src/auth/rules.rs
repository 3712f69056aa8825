//! Access rules: which actions a user (or `anonymous`) has on a resource.
//!
//! Semantics, in order:
//! - `anonymous_pull` gives everyone, signed in or not, `pull` on every repository.
//! - With no `[[auth.access]]` rule, every signed-in user has every action (the CNCF registry's
//!   htpasswd behaviour) and anonymous clients have nothing more.
//! - Otherwise the actions are the union of the rules that match both the resource and the
//!   client: `users` naming the user, `*` (any signed-in user) or `anonymous` (no credentials),
//!   or `groups` holding the user (`[auth.groups]`).
//! - A repository rule matches when one of its globs matches the name: `*` within one `/`
//!   component, `**` over any number of components (`team/**` matches `team/a/b`).
//! - `registry:catalog` is granted by the action `catalog`, or by `*` on `**`.

use std::collections::{BTreeMap, BTreeSet};

use berth_config::registry::{AccessRule, AuthConfig};

use super::access::{Action, Resource};

/// The rules of one configuration.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    anonymous_pull: bool,
    rules: Vec<AccessRule>,
    groups: BTreeMap<String, Vec<String>>,
}

impl Rules {
    /// From `[auth]`.
    #[must_use]
    pub fn new(cfg: &AuthConfig) -> Self {
        Self {
            anonymous_pull: cfg.anonymous_pull,
            rules: cfg.access.clone(),
            groups: cfg.groups.clone(),
        }
    }

    /// Groups `user` belongs to.
    fn groups_of(&self, user: &str) -> Vec<&str> {
        self.groups
            .iter()
            .filter(|(_, members)| members.iter().any(|m| m == user))
            .map(|(g, _)| g.as_str())
            .collect()
    }

    /// Every action `user` (`None`: anonymous) has on `resource`; `All` stands for itself and
    /// is also added when pull, push and delete are all granted.
    #[must_use]
    pub fn allowed(&self, user: Option<&str>, resource: &Resource) -> BTreeSet<Action> {
        let mut out = BTreeSet::new();
        let catalog = *resource == Resource::catalog();
        if !catalog && !resource.is_repository() {
            return out;
        }
        if self.anonymous_pull && !catalog {
            out.insert(Action::Pull);
        }
        if self.rules.is_empty() {
            if user.is_some() {
                out.extend([Action::Pull, Action::Push, Action::Delete, Action::All]);
            }
            return out;
        }
        let groups = user.map(|u| self.groups_of(u)).unwrap_or_default();
        for rule in &self.rules {
            let who = match user {
                None => rule.users.iter().any(|u| u == "anonymous"),
                Some(name) => {
                    rule.users.iter().any(|u| u == name || u == "*")
                        || rule.groups.iter().any(|g| groups.contains(&g.as_str()))
                }
            };
            if !who {
                continue;
            }
            let has = |a: &str| rule.actions.iter().any(|x| x == a);
            if catalog {
                if has("catalog") || (has("*") && rule.repositories.iter().any(|r| r == "**")) {
                    out.insert(Action::All);
                }
                continue;
            }
            if !rule.repositories.iter().any(|g| glob(g, &resource.name)) {
                continue;
            }
            for (name, action) in [
                ("pull", Action::Pull),
                ("push", Action::Push),
                ("delete", Action::Delete),
            ] {
                if has(name) || has("*") {
                    out.insert(action);
                }
            }
        }
        if !catalog
            && [Action::Pull, Action::Push, Action::Delete]
                .iter()
                .all(|a| out.contains(a))
        {
            out.insert(Action::All);
        }
        out
    }
}

/// Whether `name` matches the repository glob `pattern`.
#[must_use]
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let n: Vec<&str> = name.split('/').collect();
    match_components(&p, &n)
}

/// Component-wise match by dynamic programming: `m[i][j]` is whether the pattern components
/// from `i` match the name components from `j`. O(|p|·|n|) whatever the `**`s: the name comes
/// from the client, and a recursive try-every-split took exponential time on `**/**/**/…`.
fn match_components(p: &[&str], n: &[&str]) -> bool {
    let mut m = vec![vec![false; n.len() + 1]; p.len() + 1];
    m[p.len()][n.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=n.len()).rev() {
            m[i][j] = if p[i] == "**" {
                // Skip nothing, or take one more name component and stay on `**`.
                m[i + 1][j] || (j < n.len() && m[i][j + 1])
            } else {
                j < n.len() && m[i + 1][j + 1] && match_star(p[i].as_bytes(), n[j].as_bytes())
            };
        }
    }
    m[0][0]
}

/// `*` matches any run of bytes within one component.
fn match_star(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("team/*", "team/app", true)]
    #[case("team/*", "team/a/b", false)]
    #[case("team/**", "team/a/b", true)]
    #[case("team/**", "team", true)]
    #[case("**", "a/b/c", true)]
    #[case("*", "a/b", false)]
    #[case("a*c/x", "abbc/x", true)]
    #[case("a*c/x", "abbd/x", false)]
    #[case("exact", "exact", true)]
    #[case("**/app", "x/y/app", true)]
    fn globs(#[case] p: &str, #[case] n: &str, #[case] ok: bool) {
        assert_eq!(glob(p, n), ok, "{p} ~ {n}");
    }

    fn rule(repos: &[&str], users: &[&str], groups: &[&str], actions: &[&str]) -> AccessRule {
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect();
        AccessRule {
            repositories: v(repos),
            users: v(users),
            groups: v(groups),
            actions: v(actions),
        }
    }

    #[test]
    fn rules_union_users_groups_anonymous() {
        let cfg = AuthConfig {
            access: vec![
                rule(&["team/*"], &["alice"], &[], &["pull"]),
                rule(&["team/*"], &[], &["devs"], &["push"]),
                rule(&["public/**"], &["anonymous", "*"], &[], &["pull"]),
                rule(&["**"], &["root"], &[], &["*"]),
            ],
            groups: [("devs".to_owned(), vec!["alice".to_owned()])].into(),
            ..AuthConfig::default()
        };
        let r = Rules::new(&cfg);
        let repo = Resource::repository;
        let set = |v: &[Action]| v.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(
            r.allowed(Some("alice"), &repo("team/app")),
            set(&[Action::Pull, Action::Push])
        );
        assert_eq!(r.allowed(Some("bob"), &repo("team/app")), set(&[]));
        assert_eq!(
            r.allowed(Some("bob"), &repo("public/x/y")),
            set(&[Action::Pull])
        );
        assert_eq!(r.allowed(None, &repo("public/x")), set(&[Action::Pull]));
        assert_eq!(r.allowed(None, &repo("team/app")), set(&[]));
        assert!(r.allowed(Some("root"), &repo("a")).contains(&Action::All));
        assert!(r
            .allowed(Some("root"), &Resource::catalog())
            .contains(&Action::All));
        assert!(r.allowed(Some("alice"), &Resource::catalog()).is_empty());
    }

    #[test]
    fn no_rules_means_signed_in_users_do_everything() {
        let r = Rules::new(&AuthConfig {
            anonymous_pull: true,
            ..AuthConfig::default()
        });
        let repo = Resource::repository("x");
        assert_eq!(r.allowed(Some("u"), &repo).len(), 4);
        assert_eq!(r.allowed(None, &repo), [Action::Pull].into());
        assert!(r.allowed(None, &Resource::catalog()).is_empty());
        assert!(r
            .allowed(Some("u"), &Resource::catalog())
            .contains(&Action::All));
    }

    #[test]
    fn many_double_stars_match_in_polynomial_time() {
        let name = vec!["a"; 120].join("/");
        let start = std::time::Instant::now();
        assert!(!glob("**/**/**/**/**/**/x", &name));
        assert!(glob("**/**/**/**/**/**/a", &name));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        assert!(glob("team/**", "team/a/b") && glob("team/**", "team"));
        assert!(glob("**", "a") && !glob("team/*", "team/a/b"));
    }
}
