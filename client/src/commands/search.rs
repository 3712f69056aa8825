//! `berth search`: Docker's v1 search API where the registry has one (Docker Hub), else the
//! registry's catalog filtered by the term (`specs/docker-cli/search.md`).

use anyhow::{bail, Context as _};

use crate::cli::SearchArgs;
use crate::context::Ctx;
use crate::format::{render, Row};
use crate::remote::{Client, RemoteOptions, SearchResult, DOCKER_HUB};

/// Docker's table columns.
const COLUMNS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("StarCount", "STARS"),
    ("IsOfficial", "OFFICIAL"),
];

/// Descriptions are cut to this many characters (with `...`) unless `--no-trunc`.
const DESCRIPTION_WIDTH: usize = 45;

/// Runs `search`.
///
/// # Errors
/// A bad limit or template, an unreachable registry, one with neither search nor catalog.
pub async fn run(ctx: &Ctx, args: &SearchArgs) -> anyhow::Result<()> {
    if !(1..=100).contains(&args.limit) {
        bail!("limit {} is outside the range of [1, 100]", args.limit);
    }
    let (registry, term) = split_term(&args.term);
    let opts = RemoteOptions::load(&ctx.daemon)?;
    let client = Client::connect(&registry, &opts)
        .await
        .with_context(|| format!("cannot search {registry}"))?;
    let results = match client
        .search_v1(term, args.limit)
        .await
        .with_context(|| format!("cannot search {registry}"))?
    {
        Some(r) => r,
        None => {
            ctx.printer.debug(&format!(
                "{registry} has no /v1/search; filtering its catalog instead"
            ));
            catalog_matches(&client, &registry, term)
                .await
                .with_context(|| {
                    format!(
                        "cannot search {registry}: it has no search API, and its catalog failed"
                    )
                })?
        }
    };
    let rows: Vec<Row> = results
        .iter()
        .take(args.limit)
        .map(|r| row(r, args.no_trunc))
        .collect();
    let out = render(&rows, COLUMNS, args.format.as_deref()).map_err(anyhow::Error::msg)?;
    ctx.printer.data(&out);
    Ok(())
}

/// `host[:port]/term` searches that registry; anything else searches Docker Hub.
#[must_use]
pub fn split_term(term: &str) -> (String, &str) {
    if let Some((first, rest)) = term.split_once('/') {
        if first.contains(['.', ':']) || first == "localhost" {
            return (first.to_ascii_lowercase(), rest);
        }
    }
    (DOCKER_HUB.to_owned(), term)
}

/// Catalog repositories containing `term` (case-insensitively), named `registry/repo` so they
/// can be pulled as printed.
async fn catalog_matches(
    client: &Client,
    registry: &str,
    term: &str,
) -> anyhow::Result<Vec<SearchResult>> {
    let needle = term.to_lowercase();
    Ok(client
        .catalog()
        .await?
        .into_iter()
        .filter(|r| r.to_lowercase().contains(&needle))
        .map(|r| SearchResult {
            name: format!("{registry}/{r}"),
            description: String::new(),
            star_count: 0,
            is_official: false,
            is_automated: false,
        })
        .collect())
}

fn row(r: &SearchResult, no_trunc: bool) -> Row {
    let mut description = r.description.replace(['\n', '\r'], " ");
    if !no_trunc && description.chars().count() > DESCRIPTION_WIDTH {
        description = description
            .chars()
            .take(DESCRIPTION_WIDTH - 3)
            .collect::<String>()
            + "...";
    }
    let ok = |b: bool| if b { "[OK]".to_owned() } else { String::new() };
    let mut row = Row::new();
    row.insert("Name", r.name.clone());
    row.insert("Description", description);
    row.insert("StarCount", r.star_count.to_string());
    row.insert("IsOfficial", ok(r.is_official));
    row.insert("IsAutomated", ok(r.is_automated));
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_name_their_registry() {
        assert_eq!(split_term("busybox"), ("docker.io".into(), "busybox"));
        assert_eq!(
            split_term("library/busybox"),
            ("docker.io".into(), "library/busybox")
        );
        assert_eq!(
            split_term("127.0.0.1:5000/bus"),
            ("127.0.0.1:5000".into(), "bus")
        );
        assert_eq!(split_term("localhost/x/y"), ("localhost".into(), "x/y"));
    }

    #[test]
    fn descriptions_truncate_like_docker() {
        let r = SearchResult {
            name: "radial/busyboxplus".into(),
            description: "Full-chain, Internet enabled, busybox made from scratch. Comes in git and cURL flavors.".into(),
            star_count: 8,
            is_official: false,
            is_automated: false,
        };
        assert_eq!(
            row(&r, false)["Description"],
            "Full-chain, Internet enabled, busybox made..."
        );
        assert_eq!(row(&r, true)["Description"], r.description);
        assert_eq!(row(&r, true)["IsOfficial"], "");
    }
}
