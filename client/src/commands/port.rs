//! `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: [`crate::container::port`]'s published ports
//! of a running container in Docker's format and order.

use crate::cli::PortArgs;
use crate::container::port::{self, PortOptions};
use crate::context::Ctx;
use crate::network::ports::natural_cmp;

/// Prints `80/tcp -> 0.0.0.0:8080` lines, or the host addresses of one port.
///
/// # Errors
/// No such container; an invalid port; `No public port '80/tcp' published for NAME`.
pub fn run(ctx: &Ctx, args: &PortArgs) -> anyhow::Result<()> {
    let opts = PortOptions {
        container: args.container.clone(),
        private_port: args.private_port.clone(),
    };
    let mappings = port::port(ctx.store.root(), &opts)?;
    let mut out: Vec<String> = mappings
        .into_iter()
        .map(|m| match &args.private_port {
            None => format!("{} -> {}", m.port, m.host),
            Some(_) => m.host,
        })
        .collect();
    out.sort_by(|a, b| natural_cmp(a, b));
    for line in out {
        ctx.printer.data(&line);
    }
    Ok(())
}
