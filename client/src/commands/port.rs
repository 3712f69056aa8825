//! `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: the published ports of a running container,
//! from its `state.json`, in Docker's format and order.

use crate::cli::PortArgs;
use crate::container::{self, Status};
use crate::context::Ctx;
use crate::network::{self, ports::natural_cmp};

/// Prints `80/tcp -> 0.0.0.0:8080` lines, or the host addresses of one port.
///
/// # Errors
/// No such container; an invalid port; `No public port '80/tcp' published for NAME`.
pub fn run(ctx: &Ctx, args: &PortArgs) -> anyhow::Result<()> {
    let (_, state) = container::find(ctx.store.root(), &args.container)?;
    let mappings = match (&state.network, state.status()) {
        (Some(n), Status::Running) => network::mappings(n),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = match &args.private_port {
        None => mappings
            .iter()
            .map(|(k, ip, port)| format!("{k} -> {}", network::join_host_port(ip, port)))
            .collect(),
        Some(want) => {
            let (port, proto) = want.split_once('/').unwrap_or((want, "tcp"));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if port.parse::<u16>().is_err() {
                anyhow::bail!(
                    "Error: invalid port ({port}): strconv.ParseUint: parsing \"{port}\": invalid syntax"
                );
            }
            let key = format!("{port}/{proto}");
            let hits: Vec<String> = mappings
                .iter()
                .filter(|(k, ..)| *k == key)
                .map(|(_, ip, port)| network::join_host_port(ip, port))
                .collect();
            if hits.is_empty() {
                anyhow::bail!(
                    "Error: No public port '{want}' published for {}",
                    args.container
                );
            }
            hits
        }
    };
    out.sort_by(|a, b| natural_cmp(a, b));
    for line in out {
        ctx.printer.data(&line);
    }
    Ok(())
}
