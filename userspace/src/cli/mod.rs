//! Command-line interface: argument definitions and dispatch. Handlers return
//! `anyhow::Result`; `main` prints the error chain as one message.

mod tracing_cmd;
mod wiring;

use clap::{Parser, Subcommand};

use crate::inspect::graph::Format;

#[derive(Debug, Parser)]
#[command(
    name = "vethscope",
    version,
    about = "Wire network namespaces together and watch every packet with eBPF",
    long_about = "Wire Linux network namespaces together — veth pairs, Linux bridges, Open vSwitch — \
from a YAML file or a built-in scenario, and see with eBPF what every packet does on the way.",
    after_help = "Examples:\n  vethscope up bridge            # the built-in bridge lab\n  vethscope show bridge\n  vethscope down bridge\n\nBuilt-in scenarios: direct, bridge, ovs, ovs-internal, same-ns (see `vethscope scenarios`)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a lab from a YAML file or a built-in scenario.
    #[command(
        after_help = "Examples:\n  vethscope up same-ns\n  vethscope up examples/bridge.yaml\n  vethscope up bridge --prefix t1-   # a second copy: lab t1-bridge, namespaces t1-ns1, t1-ns2"
    )]
    Up {
        /// A topology file, or a built-in scenario name.
        topology: String,
        /// Prefix the lab name, namespaces and root-namespace objects (run copies side by side).
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Remove exactly what vethscope made for a lab (also after a crash). Absent labs are fine.
    #[command(after_help = "Examples:\n  vethscope down bridge\n  vethscope down --all")]
    Down {
        /// Lab names.
        #[arg(required_unless_present = "all")]
        labs: Vec<String>,
        /// Remove every lab vethscope made.
        #[arg(long, conflicts_with = "labs")]
        all: bool,
    },
    /// Show a lab from live kernel and OVS state: namespaces, links, peers, bridges.
    #[command(
        after_help = "Examples:\n  vethscope show bridge\n  vethscope show bridge --json | jq '.links[] | {netns, name, peer}'\n  vethscope show           # every lab"
    )]
    Show {
        lab: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Draw a lab's live topology as Graphviz dot or Mermaid.
    #[command(
        after_help = "Examples:\n  vethscope graph bridge | dot -Tsvg > bridge.svg\n  vethscope graph ovs --format mermaid"
    )]
    Graph {
        lab: Option<String>,
        #[arg(long, value_enum, default_value = "dot")]
        format: Format,
    },
    /// Follow every ARP and ICMP packet of a lab hop by hop with eBPF and print its path.
    #[command(
        after_help = "Examples:\n  vethscope trace bridge                       # then ping in another terminal\n  vethscope trace same-ns --count 1 --json\n  vethscope trace bridge --pcap lab.pcapng --duration 10\n  vethscope trace --proto arp                  # every veth on the host"
    )]
    Trace(TraceArgs),
    /// List the labs that are up.
    #[command(after_help = "Example:\n  vethscope list")]
    List,
    /// List the built-in scenarios.
    #[command(after_help = "Example:\n  vethscope scenarios")]
    Scenarios,
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  vethscope completions bash > /etc/bash_completion.d/vethscope"
    )]
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// Lab to trace; without it, every veth on the host and lo of every named namespace.
    pub lab: Option<String>,
    /// NDJSON output (docs/trace-json.md).
    #[arg(long)]
    pub json: bool,
    /// Also write every traced frame to this pcapng file (one interface per namespace/interface).
    #[arg(long)]
    pub pcap: Option<std::path::PathBuf>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many completed paths.
    #[arg(long)]
    pub count: Option<usize>,
    /// Protocols to trace, comma separated: arp, icmp, icmpv6.
    #[arg(long, default_value = "arp,icmp,icmpv6")]
    pub proto: String,
    /// Only interfaces in this namespace.
    #[arg(long = "ns")]
    pub netns: Option<String>,
    /// Only interfaces with this name.
    #[arg(long)]
    pub iface: Option<String>,
    /// Forward the eBPF programs' own log messages (parse decisions) to the terminal.
    #[arg(long)]
    pub ebpf_log: bool,
    /// Seconds a request waits for its reply before it is reported unanswered.
    #[arg(long, default_value_t = 1.0)]
    pub reply_timeout: f64,
    /// Print only paths, not a line per hop.
    #[arg(long)]
    pub paths_only: bool,
}

/// Runs one command; the returned code is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Up { topology, prefix } => wiring::up(&topology, &prefix).await,
        Command::Down { labs, all } => wiring::down(&labs, all).await,
        Command::Show { lab, json } => wiring::show(lab.as_deref(), json).await,
        Command::Graph { lab, format } => wiring::graph(lab.as_deref(), format).await,
        Command::Trace(args) => tracing_cmd::trace(args).await,
        Command::List => wiring::list().await,
        Command::Scenarios => {
            for name in crate::topology::scenarios::NAMES {
                println!("{name:<13} {}", crate::topology::scenarios::describe(name));
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "vethscope",
                &mut std::io::stdout(),
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
