//! `berth images` / `berth image ls`: Docker's table, filters and formats.

use std::collections::BTreeMap;

use super::short_id;
use crate::cli::ImagesArgs;
use crate::context::Ctx;
use crate::format::{self, human_size, Row};
use crate::reference::Reference;
use crate::store::ImageRecord;

const COLUMNS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
];
const COLUMNS_DIGESTS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
];

/// One listed line: an image under one of its tags (or `<none>`).
struct Line<'a> {
    image: &'a ImageRecord,
    reference: Option<Reference>,
}

enum Filter {
    Dangling(bool),
    Reference(String),
}

fn parse_filters(raw: &[String]) -> anyhow::Result<Vec<Filter>> {
    raw.iter()
        .map(|f| {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("bad format of filter (expected name=value): `{f}`")
            })?;
            match k {
                "dangling" => match v {
                    "true" | "1" => Ok(Filter::Dangling(true)),
                    "false" | "0" => Ok(Filter::Dangling(false)),
                    _ => anyhow::bail!("invalid filter 'dangling={v}': use true or false"),
                },
                "reference" => Ok(Filter::Reference(v.to_owned())),
                _ => anyhow::bail!("invalid filter '{k}'; supported: dangling, reference"),
            }
        })
        .collect()
}

/// `path.Match`-style glob: `*` matches within one path component, `?` one character.
#[must_use]
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => t.first().is_some_and(|c| *c != '/') && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// Lists images.
///
/// # Errors
/// Bad filters or templates, store failures.
pub fn run(ctx: &Ctx, args: &ImagesArgs) -> anyhow::Result<()> {
    let filters = parse_filters(&args.filter)?;
    let images = ctx.store.images()?;
    let by_id: BTreeMap<&str, &ImageRecord> = images.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut lines: Vec<Line<'_>> = Vec::new();
    let mut tagged = std::collections::HashSet::new();
    for (tag, id) in ctx.store.tags()? {
        if let (Some(image), Ok(r)) = (by_id.get(id.as_str()), Reference::parse(&tag)) {
            tagged.insert(id.clone());
            lines.push(Line {
                image,
                reference: Some(r),
            });
        }
    }
    for image in &images {
        if !tagged.contains(&image.id) {
            lines.push(Line {
                image,
                reference: None,
            });
        }
    }
    let wanted = args
        .repository
        .as_deref()
        .map(|r| (Reference::parse(r), Reference::has_explicit_tag(r)));
    lines.retain(|l| {
        // Docker lists dangling (`<none>:<none>`) images by default; `-a` would add the
        // intermediate images of builds, which berth does not keep.
        let dangling = l.reference.is_none();
        if let Some((want, explicit_tag)) = &wanted {
            let Ok(want) = want else { return false };
            let Some(r) = &l.reference else { return false };
            if r.name() != want.name() || (*explicit_tag && r.tag != want.tag) {
                return false;
            }
        }
        filters.iter().all(|f| match f {
            Filter::Dangling(d) => dangling == *d,
            Filter::Reference(p) => l.reference.as_ref().is_some_and(|r| {
                glob(p, &r.familiar_name()) || glob(p, &r.familiar()) || glob(p, &r.to_string())
            }),
        })
    });
    lines.sort_by(|a, b| {
        b.image.created.cmp(&a.image.created).then_with(|| {
            let name = |l: &Line<'_>| l.reference.as_ref().map(Reference::familiar);
            name(a).cmp(&name(b))
        })
    });
    let id_of = |i: &ImageRecord| {
        if args.no_trunc {
            i.id.clone()
        } else {
            short_id(&i.id)
        }
    };
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for l in &lines {
            if seen.insert(&l.image.id) {
                ctx.printer.data(&id_of(l.image));
            }
        }
        return Ok(());
    }
    let rows: Vec<Row> = lines
        .iter()
        .map(|l| {
            let mut row = Row::new();
            let (repo, tag) = match &l.reference {
                Some(r) => (
                    r.familiar_name(),
                    r.tag.clone().unwrap_or_else(|| "<none>".into()),
                ),
                None => ("<none>".to_owned(), "<none>".to_owned()),
            };
            let digest = l
                .reference
                .as_ref()
                .and_then(|r| {
                    let name = r.name();
                    l.image.repo_digests.iter().find_map(|d| {
                        d.split_once('@')
                            .filter(|(n, _)| *n == name)
                            .map(|(_, d)| d.to_owned())
                    })
                })
                .unwrap_or_else(|| "<none>".into());
            row.insert("Repository", repo);
            row.insert("Tag", tag);
            row.insert("Digest", digest);
            row.insert("ID", id_of(l.image));
            row.insert("CreatedSince", format::since(l.image.created.as_deref()));
            row.insert("CreatedAt", l.image.created.clone().unwrap_or_default());
            row.insert("Size", human_size(l.image.size));
            row.insert("Containers", "N/A".into());
            row
        })
        .collect();
    let columns = if args.digests {
        COLUMNS_DIGESTS
    } else {
        COLUMNS
    };
    let out = format::render(&rows, columns, args.format.as_deref()).map_err(anyhow::Error::msg)?;
    if !out.is_empty() {
        ctx.printer.data(&out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_like_path_match() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("*:latest", "busybox:latest"));
        assert!(!glob("*", "team/app"));
        assert!(glob("team/*", "team/app"));
        assert!(glob("b?sybox", "busybox"));
        assert!(!glob("alpine", "busybox"));
    }
}
