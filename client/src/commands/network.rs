//! `berth network create|ls|inspect|connect|disconnect|rm|prune`: Docker's commands over
//! [`crate::network::store`].

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cli::{
    NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs,
    NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs,
};
use crate::context::Ctx;
use crate::filters::Filters;
use crate::format::{self, Row};
use crate::network::store::{self, Definition, RemoveError};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
];

fn key_values(flags: &[String]) -> BTreeMap<String, String> {
    flags
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// `network create [--subnet] [--gateway] [--internal] [--label] [-d bridge] NAME`: prints
/// the ID.
///
/// # Errors
/// Docker's messages (a taken name, a bad subnet, an unknown driver).
pub fn create(ctx: &Ctx, args: &NetworkCreateArgs) -> anyhow::Result<()> {
    if args.driver != "bridge" {
        anyhow::bail!(
            "Error response from daemon: plugin \"{}\" not found",
            args.driver
        );
    }
    if args.ipv6 {
        anyhow::bail!("Error response from daemon: IPv6 networks are not supported by berth");
    }
    if args.subnet.len() > 1 || args.gateway.len() > 1 {
        anyhow::bail!("Error response from daemon: berth networks have one IPv4 subnet");
    }
    let opts = store::CreateOptions {
        name: args.name.clone(),
        subnet: args.subnet.first().cloned(),
        gateway: args.gateway.first().cloned(),
        internal: args.internal,
        attachable: args.attachable,
        labels: key_values(&args.label),
        options: key_values(&args.opt),
    };
    let def = store::create(ctx.store.root(), &opts).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    ctx.printer.data(&def.id);
    Ok(())
}

fn scope(_: &Definition) -> &'static str {
    "local"
}

fn row(n: &Definition, no_trunc: bool) -> Row {
    let labels = n
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let id = if no_trunc {
        n.id.clone()
    } else {
        n.id[..12].to_owned()
    };
    Row::from([
        ("ID", id),
        ("Name", n.name.clone()),
        ("Driver", n.driver.clone()),
        ("Scope", scope(n).to_owned()),
        ("IPv6", "false".to_owned()),
        ("Internal", n.internal.to_string()),
        ("Labels", labels),
        ("CreatedAt", created_at(n)),
    ])
}

/// Docker's `CreatedAt` column: `2024-01-02 03:04:05.123456789 +0000 UTC`.
fn created_at(n: &Definition) -> String {
    chrono::DateTime::parse_from_rfc3339(&n.created).map_or_else(
        |_| String::new(),
        |t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S%.f +0000 UTC")
                .to_string()
        },
    )
}

fn matches(f: &Filters, n: &Definition) -> bool {
    let by_name = f.get("name").is_empty() || f.get("name").iter().any(|v| n.name.contains(v));
    let by_id = f.get("id").is_empty() || f.get("id").iter().any(|v| n.id.starts_with(v));
    let by_driver = f.get("driver").is_empty() || f.get("driver").contains(&n.driver);
    let by_scope = f.get("scope").is_empty() || f.get("scope").contains(&scope(n).to_owned());
    let by_type = f.get("type").iter().all(|t| match t.as_str() {
        "custom" => !n.is_predefined(),
        "builtin" => n.is_predefined(),
        _ => false,
    });
    let by_label = Filters::labels_match(f.get("label"), f.get("label!"), &n.labels);
    let by_dangling = f.get("dangling").iter().all(|d| {
        let dangling = !n.is_predefined() && n.endpoints().is_empty();
        matches!(
            (d.as_str(), dangling),
            ("true" | "1", true) | ("false" | "0", false)
        )
    });
    by_name && by_id && by_driver && by_scope && by_type && by_label && by_dangling
}

/// `network ls [-q] [--no-trunc] [--filter] [--format]`: Docker's table, by name.
///
/// # Errors
/// A bad filter or template.
pub fn ls(ctx: &Ctx, args: &NetworkLsArgs) -> anyhow::Result<()> {
    let f = Filters::parse(&args.filter)?;
    f.validate(&[
        "driver", "id", "label", "label!", "name", "scope", "type", "dangling",
    ])?;
    for t in f.get("type") {
        if t != "custom" && t != "builtin" {
            anyhow::bail!(
                "Error response from daemon: invalid filter: 'type'='{t}' (expected \"custom\" \
                 or \"builtin\")"
            );
        }
    }
    let all: Vec<Definition> = store::list(ctx.store.root())
        .into_iter()
        .filter(|n| matches(&f, n))
        .collect();
    if args.quiet {
        for n in &all {
            ctx.printer
                .data(if args.no_trunc { &n.id } else { &n.id[..12] });
        }
        return Ok(());
    }
    let rows: Vec<Row> = all.iter().map(|n| row(n, args.no_trunc)).collect();
    let out = format::render(&rows, COLUMNS, args.format.as_deref()).map_err(anyhow::Error::msg)?;
    if !out.is_empty() {
        ctx.printer.data(out.trim_end_matches('\n'));
    }
    Ok(())
}

/// Docker's `network inspect` document.
fn document(ctx: &Ctx, n: &Definition) -> Value {
    let mut containers = serde_json::Map::new();
    let prefix = n.subnet().map_or(16, |s| s.prefix);
    for (ip, id) in n.endpoints() {
        let name = crate::container::load(&crate::container::root(ctx.store.root()).join(&id))
            .map(|s| s.name)
            .unwrap_or_default();
        containers.insert(
            id.clone(),
            json!({
                "Name": name,
                "EndpointID": "",
                "MacAddress": "",
                "IPv4Address": format!("{ip}/{prefix}"),
                "IPv6Address": "",
            }),
        );
    }
    let config: Vec<Value> = match (&n.subnet, n.gateway) {
        (Some(s), Some(g)) => vec![json!({"Subnet": s, "Gateway": g.to_string()})],
        (Some(s), None) => vec![json!({ "Subnet": s })],
        _ => Vec::new(),
    };
    let mut options: serde_json::Map<String, Value> = n
        .options
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    if let Some(b) = &n.bridge {
        options.insert(
            "com.docker.network.bridge.name".into(),
            Value::String(b.clone()),
        );
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": if n.created.is_empty() { "0001-01-01T00:00:00Z" } else { &n.created },
        "Scope": scope(n),
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

/// `network inspect [-f FORMAT] NETWORK...`: Docker's JSON array.
///
/// # Errors
/// `No such network: NAME` (the others are still shown).
pub fn inspect(ctx: &Ctx, args: &NetworkInspectArgs) -> anyhow::Result<()> {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for name in &args.networks {
        match store::find(ctx.store.root(), name) {
            Ok(n) => docs.push(document(ctx, &n)),
            Err(_) => errors.push(format!("Error: No such network: {name}")),
        }
    }
    match &args.format {
        Some(tpl) if tpl != "json" => {
            for d in &docs {
                let line = format::render_value(tpl, d).map_err(anyhow::Error::msg)?;
                ctx.printer.data(&line);
            }
        }
        _ => ctx
            .printer
            .data(&serde_json::to_string_pretty(&Value::Array(docs))?),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(errors.join("\n")))
    }
}

/// `network rm NETWORK...`: prints each name removed; refuses predefined networks and
/// networks with containers attached.
///
/// # Errors
/// Docker's messages, one per network not removed.
pub fn rm(ctx: &Ctx, args: &NetworkRmArgs) -> anyhow::Result<()> {
    super::each(ctx, &args.networks, |name| {
        let def = match store::find(ctx.store.root(), name) {
            Ok(d) => d,
            Err(_) if args.force => return Ok(None),
            Err(_) => anyhow::bail!("Error: No such network: {name}"),
        };
        match store::remove(ctx.store.root(), &def) {
            Ok(()) => Ok(Some(name.to_owned())),
            Err(e @ (RemoveError::Predefined(_) | RemoveError::InUse { .. })) => {
                Err(anyhow::anyhow!("Error response from daemon: {e}"))
            }
            Err(RemoveError::Other(e)) => Err(anyhow::anyhow!("Error response from daemon: {e:#}")),
        }
    })
}

/// `network prune [-f] [--filter label=…]`: user networks no running container is attached
/// to, asking first unless `-f`.
///
/// # Errors
/// No confirmation; a bad filter.
pub fn prune(ctx: &Ctx, args: &NetworkPruneArgs) -> anyhow::Result<()> {
    let f = Filters::parse(&args.filter)?;
    f.validate(&["label", "label!", "until"])?;
    if !super::confirm(
        "WARNING! This will remove all custom networks not used by at least one container.",
        args.force,
    )? {
        return Ok(());
    }
    let mut deleted = Vec::new();
    for n in store::list_user(ctx.store.root()) {
        if !Filters::labels_match(f.get("label"), f.get("label!"), &n.labels) {
            continue;
        }
        if store::remove(ctx.store.root(), &n).is_ok() {
            deleted.push(n.name);
        }
    }
    if !deleted.is_empty() {
        ctx.printer
            .data(&format!("Deleted Networks:\n{}\n\n", deleted.join("\n")));
    }
    Ok(())
}

/// `network connect [--alias A] NETWORK CONTAINER`: [`crate::container::connect`].
///
/// # Errors
/// No such network or container; it is on that network already, shares another namespace, has
/// none, or does not run; the network is predefined.
pub fn connect(ctx: &Ctx, args: &NetworkConnectArgs) -> anyhow::Result<()> {
    crate::container::connect::connect(
        ctx.store.root(),
        &args.network,
        &args.container,
        &args.alias,
    )?;
    Ok(())
}

/// `network disconnect [-f] NETWORK CONTAINER`: [`crate::container::connect::disconnect`].
///
/// # Errors
/// No such network or container; it is not on that network, or that is its first network.
pub fn disconnect(ctx: &Ctx, args: &NetworkDisconnectArgs) -> anyhow::Result<()> {
    crate::container::connect::disconnect(ctx.store.root(), &args.network, &args.container)?;
    Ok(())
}
