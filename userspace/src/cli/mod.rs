//! Command-line interface: argument definitions and dispatch. Handlers return
//! `anyhow::Result`; `main` prints the error chain as one message.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the command line: what a command prints is its output"
)]

mod args;
mod bench_cmd;
mod check_cmd;
mod diagnose_cmd;
mod fastpath_cmd;
mod impair_check;
mod impair_cmd;
mod serve_cmd;
mod tracing_cmd;
mod wiring;

use clap::{Parser, Subcommand};

use crate::inspect::graph::Format;
use crate::topology::names::{parse_ifname, parse_lab, parse_netns, parse_prefix};

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
        #[arg(long, default_value = "", value_parser = parse_prefix)]
        prefix: String,
        /// Enable the eBPF fast path (bpf_redirect_peer between bridge ports) right away.
        #[arg(long)]
        fast_path: bool,
        /// Print what `up` would do (create the lab, or the changes to a running one) and stop.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove exactly what vethscope made for a lab (also after a crash). Absent labs are fine.
    #[command(after_help = "Examples:\n  vethscope down bridge\n  vethscope down --all")]
    Down {
        /// Lab names.
        #[arg(required_unless_present = "all", value_parser = parse_lab)]
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
        #[arg(value_parser = parse_lab)]
        lab: Option<String>,
        #[arg(long)]
        json: bool,
        /// List where the live lab differs from the file it was made from (exit 1 if it
        /// does); `up FILE` repairs it.
        #[arg(long, requires = "lab")]
        drift: bool,
    },
    /// Draw a lab's live topology as Graphviz dot or Mermaid.
    #[command(
        after_help = "Examples:\n  vethscope graph bridge | dot -Tsvg > bridge.svg\n  vethscope graph ovs --format mermaid"
    )]
    Graph {
        #[arg(value_parser = parse_lab)]
        lab: Option<String>,
        #[arg(long, value_enum, default_value = "dot")]
        format: Format,
    },
    /// Follow every ARP and ICMP packet of a lab hop by hop with eBPF and print its path.
    #[command(
        after_help = "Examples:\n  vethscope trace bridge                       # then ping in another terminal\n  vethscope trace bridge -- ip netns exec ns1 ping -c1 10.1.1.3\n  vethscope trace bridge -- vethscope exec bridge ns1 -- ping -c1 10.1.1.3\n  vethscope trace same-ns --count 1 --json\n  vethscope trace bridge --pcap lab.pcapng --duration 10\n  vethscope trace --proto arp                  # every veth on the host\n\nWith `-- CMD ARGS...`: CMD starts only once every program is attached (after the\n\"tracing\" line on stderr) and the trace stops when CMD exits, like `perf record --\ncmd`. CMD runs as given, on the host, with vethscope's privileges: write `ip netns\nexec NS ...` or `vethscope exec LAB NS -- ...` to run it in a namespace. It is run\ndirectly, never through a shell. Its standard output goes to vethscope's standard\nerror, so standard output stays the trace (NDJSON with --json); stdin and stderr are\nshared. Ctrl-C or SIGTERM is passed on to CMD, and the trace ends when CMD does.\n\nExit status: without CMD, 0 after a trace, 1 on an error. With CMD, CMD's exit\nstatus (128+N if a signal N ended it); 127 when CMD is not found and 126 when it\ncannot be run (both checked before anything is attached, nothing is traced then);\n1 when the trace itself fails (CMD is then ended)."
    )]
    Trace(TraceArgs),
    /// Say why a path fails, where, and the command that fixes it (static checks + a traced probe).
    #[command(
        after_help = "Examples:\n  vethscope diagnose same-ns --from ns1 --to 10.1.1.3\n  vethscope diagnose bridge --from ns1 --to 10.1.1.3 --json\n  vethscope diagnose bridge                 # every endpoint pair of the lab\n  vethscope diagnose bridge --from ns1 --to 10.1.1.3 --fix --yes\n\nExit status: 0 healthy, 1 findings, 2 usage error. Finding codes: docs/diagnose.md."
    )]
    Diagnose(DiagnoseArgs),
    /// Export per-link packet, byte and drop counters for Prometheus (in-kernel counting).
    #[command(
        after_help = "Examples:\n  vethscope serve bridge                      # http://127.0.0.1:9464/metrics\n  vethscope serve --all --listen 127.0.0.1:9100"
    )]
    Serve(ServeArgs),
    /// The eBPF fast path: bpf_redirect_peer between the veths of a bridged lab.
    #[command(
        after_help = "Examples:\n  vethscope fastpath enable bridge\n  vethscope fastpath status bridge --json\n  vethscope fastpath disable bridge"
    )]
    Fastpath {
        #[command(subcommand)]
        action: FastpathAction,
    },
    /// Impair packets leaving an interface end: loss, duplication, corruption, rate, delay.
    #[command(
        long_about = "Impair packets *leaving* one interface end of a live lab (each direction of a link is set on its own). \
The settings replace the end's impairment; `vethscope impair LAB` lists them with exact per-action counters.\n\n\
Engines: loss, duplicate and corrupt are done by an eBPF program on TC egress of the end (exact counts); \
rate by a TBF queueing discipline; delay and jitter by netem (sch_netem), only when the kernel has it — \
otherwise the command fails before changing anything. Corruption flips one bit that the receiver's \
checksum check catches (an IPv4 header bit for TCP/UDP whose checksum a veth leaves to the receiver's trust).",
        after_help = "Examples:\n  vethscope impair direct ns1/veth0 --loss 1% --duplicate 0.5%\n  vethscope impair bridge host/br-veth1 --rate 100mbit\n  vethscope impair direct ns1/veth0 --check      # configured vs achieved\n  vethscope impair direct ns1/veth0 --clear\n  vethscope impair direct                        # list, with counters"
    )]
    Impair(ImpairArgs),
    /// Take a link down or up (both ends, like a pulled cable), or flap it.
    #[command(
        after_help = "Examples:\n  vethscope link direct ns1/veth0 down\n  vethscope link direct ns1/veth0 up\n  vethscope link direct ns1/veth0 flap --down 1s --up 2s --count 3"
    )]
    Link(LinkArgs),
    /// Measure throughput, latency and CPU of each wiring, side by side.
    #[command(
        after_help = "Examples:\n  vethscope bench --duration 5 --svg bench.svg --json bench.json\n  vethscope bench --wirings direct,bridge,fast-path --streams 4"
    )]
    Bench(BenchArgs),
    /// Run a command (or a shell) inside a namespace of a lab.
    #[command(
        after_help = "Examples:\n  vethscope exec bridge ns1 -- ping -c1 10.1.1.3\n  vethscope exec bridge ns1 -- ip route\n  vethscope exec bridge ns1            # a shell ($SHELL, else /bin/sh)\n\nThe command sees the namespace's interfaces in `ip` and in /sys; its exit code is vethscope's."
    )]
    Exec {
        /// The lab.
        #[arg(value_parser = parse_lab)]
        lab: String,
        /// One of the lab's namespaces.
        ns: String,
        /// The command and its arguments (after `--`); none for a shell.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Print a running lab as a topology file that `up` accepts and that brings it back.
    #[command(
        after_help = "Examples:\n  vethscope save bridge > bridge-now.yaml\n  vethscope down bridge && vethscope up bridge-now.yaml"
    )]
    Save {
        /// The lab.
        #[arg(value_parser = parse_lab)]
        lab: String,
    },
    /// Check a topology file without building anything: every error of the file at once,
    /// each with file:line:col. Exit status 0 when the file is valid.
    #[command(
        after_help = "Examples:\n  vethscope check examples/bridge.yaml\n  vethscope check lab.yaml --prefix t1-"
    )]
    Check {
        /// A topology file, or a built-in scenario name.
        topology: String,
        /// Check as `up --prefix` would build it.
        #[arg(long, default_value = "", value_parser = parse_prefix)]
        prefix: String,
    },
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
    #[arg(value_parser = parse_lab)]
    pub lab: Option<String>,
    /// NDJSON output (docs/trace-json.md).
    #[arg(long)]
    pub json: bool,
    /// Also write every traced frame to this pcapng file (one interface per namespace/interface).
    #[arg(long)]
    pub pcap: Option<std::path::PathBuf>,
    /// Stop after this many seconds (at most a year).
    #[arg(long, value_parser = args::run_seconds)]
    pub duration: Option<f64>,
    /// Stop after this many completed paths.
    #[arg(long)]
    pub count: Option<usize>,
    /// Protocols to trace, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "arp,icmp,icmpv6"
    )]
    pub proto: Vec<crate::trace::Proto>,
    /// Only interfaces in this namespace.
    #[arg(long = "ns", value_parser = parse_netns)]
    pub netns: Option<String>,
    /// Only interfaces with this name.
    #[arg(long, value_parser = parse_ifname)]
    pub iface: Option<String>,
    /// Forward the eBPF programs' own log messages (parse decisions) to the terminal.
    #[arg(long)]
    pub ebpf_log: bool,
    /// Seconds a request waits for its reply before it is reported unanswered.
    #[arg(long, default_value_t = 1.0, value_parser = args::reply_timeout)]
    pub reply_timeout: f64,
    /// Print only paths, not a line per hop.
    #[arg(long)]
    pub paths_only: bool,
    /// Also serve the per-link counters on this address while tracing (as `vethscope serve`).
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
    /// A command to trace (after `--`): run once everything is attached; the trace stops
    /// when it exits and vethscope exits with its status.
    #[arg(last = true, value_name = "CMD", conflicts_with_all = ["duration", "count"])]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DiagnoseArgs {
    /// The lab.
    pub lab: String,
    /// Source namespace (`host` for the root namespace).
    #[arg(long)]
    pub from: Option<String>,
    /// Destination address (IPv4 or IPv6) anywhere in the lab.
    #[arg(long)]
    pub to: Option<String>,
    /// JSON output (docs/diagnose.md).
    #[arg(long)]
    pub json: bool,
    /// Static checks only: send no probe.
    #[arg(long)]
    pub no_probe: bool,
    /// Apply the fixes after showing them (asks first unless --yes); only on the lab's own objects.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: do not ask.
    #[arg(long)]
    pub yes: bool,
    /// Seconds the probe waits for each reply.
    #[arg(long, default_value_t = 0.3)]
    pub timeout: f64,
    /// Without --from/--to: check at most this many endpoint pairs.
    #[arg(long, default_value_t = 64)]
    pub max_pairs: usize,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Labs to watch (labs brought up later are picked up when named here).
    #[arg(value_parser = parse_lab)]
    pub labs: Vec<String>,
    /// Watch every veth on the host (and lo of every named namespace) instead.
    #[arg(long, conflicts_with = "labs")]
    pub all: bool,
    /// Address of the /metrics and /healthz endpoints.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,
    /// Seconds between looks for links that appeared or vanished.
    #[arg(long, default_value_t = 2.0, value_parser = args::refresh)]
    pub refresh: f64,
}

#[derive(Debug, Subcommand)]
pub enum FastpathAction {
    /// Attach the redirect programs (TC filters) to every bridge port the bridge forwards
    /// from and fill the per-bridge forwarding table from live state. Again: refresh the
    /// table and attach to ports that lack the program (new or recreated interfaces).
    Enable {
        #[arg(value_parser = parse_lab)]
        lab: String,
    },
    /// Detach the programs, remove the pinned maps, OVS flows and offload changes (also
    /// what an interrupted `enable` left).
    Disable {
        #[arg(value_parser = parse_lab)]
        lab: String,
    },
    /// Per port: VLAN, attached or not (read from the kernel), frames redirected, frames
    /// passed to the bridge; and the ports left out, with why.
    Status {
        #[arg(value_parser = parse_lab)]
        lab: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct ImpairArgs {
    pub lab: String,
    /// The end, as NS/IFNAME (host/IFNAME for the root namespace). Without it: list.
    pub end: Option<String>,
    /// Drop this share of packets (eBPF), e.g. 1% or 0.05%.
    #[arg(long, allow_hyphen_values = true)]
    pub loss: Option<String>,
    /// Send a second copy of this share of packets (eBPF, bpf_clone_redirect).
    #[arg(long, allow_hyphen_values = true)]
    pub duplicate: Option<String>,
    /// Flip one bit in this share of IP packets (eBPF); the receiver drops them as checksum errors.
    #[arg(long, allow_hyphen_values = true)]
    pub corrupt: Option<String>,
    /// Shape to this rate (TBF), e.g. 100mbit, 1gbit, 10mbps (bytes).
    #[arg(long, allow_hyphen_values = true)]
    pub rate: Option<String>,
    /// Hold packets back this long (netem; needs sch_netem), e.g. 20ms.
    #[arg(long, allow_hyphen_values = true)]
    pub delay: Option<String>,
    /// Vary the delay by up to this much (netem), e.g. 2ms.
    #[arg(long, allow_hyphen_values = true)]
    pub jitter: Option<String>,
    /// Remove the end's impairment.
    #[arg(long, requires = "end", conflicts_with_all = ["loss", "duplicate", "corrupt", "rate", "delay", "jitter", "check"])]
    pub clear: bool,
    /// Probe the link (pings, a short TCP run) and print configured vs achieved; exit 1 when outside statistical bounds.
    #[arg(long, requires = "end", conflicts_with_all = ["loss", "duplicate", "corrupt", "rate", "delay", "jitter"])]
    pub check: bool,
    /// List as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LinkAction {
    Down,
    Up,
    Flap,
}

#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    pub lab: String,
    /// The end, as NS/IFNAME (host/IFNAME for the root namespace); its peer goes too.
    pub end: String,
    #[arg(value_enum)]
    pub action: LinkAction,
    /// flap: how long each down phase lasts.
    #[arg(long, default_value = "1s")]
    pub down: String,
    /// flap: how long each up phase lasts.
    #[arg(long, default_value = "2s")]
    pub up: String,
    /// flap: how many down/up rounds.
    #[arg(long, default_value_t = 3)]
    pub count: u32,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Wirings to compare, comma separated: direct, bridge, ovs, ovs-internal, fast-path, ovs-fast-path.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = crate::bench::Wiring::parse_arg,
        default_value = "direct,bridge,ovs,ovs-internal,fast-path"
    )]
    pub wirings: Vec<crate::bench::Wiring>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0, value_parser = args::bench_seconds)]
    pub duration: f64,
    /// Parallel TCP streams for the multi-stream run.
    #[arg(long, default_value_t = 4)]
    pub streams: u32,
    /// Rounds: the wirings run interleaved (A B C A B C ...) this many times.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Also measure UDP small-packet rate.
    #[arg(long)]
    pub udp: bool,
    /// Also measure tracing and counting overhead on the bridge wiring.
    #[arg(long)]
    pub overhead: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Write a bar chart (throughput and CPU per wiring) as SVG to this file.
    #[arg(long)]
    pub svg: Option<std::path::PathBuf>,
    /// Prefix of the labs the bench makes (at most 6 characters; labs with it are
    /// removed first, as leftovers of an earlier run).
    #[arg(long, default_value = "vsb-", value_parser = parse_prefix)]
    pub prefix: String,
}

/// Runs one command; the returned code is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Up {
            topology,
            prefix,
            fast_path,
            dry_run,
        } => wiring::up(&topology, &prefix, fast_path, dry_run).await,
        Command::Down { labs, all } => wiring::down(&labs, all).await,
        Command::Show {
            lab: Some(lab),
            json,
            drift: true,
        } => wiring::drift(&lab, json).await,
        Command::Show { lab, json, .. } => wiring::show(lab.as_deref(), json).await,
        Command::Graph { lab, format } => wiring::graph(lab.as_deref(), format).await,
        Command::Trace(args) => tracing_cmd::trace(args).await,
        Command::Diagnose(args) => diagnose_cmd::diagnose(args).await,
        Command::Serve(args) => serve_cmd::serve(args).await,
        Command::Fastpath { action } => fastpath_cmd::fastpath(action).await,
        Command::Impair(args) => impair_cmd::impair(args).await,
        Command::Link(args) => impair_cmd::link(args).await,
        Command::Bench(args) => bench_cmd::bench(args).await,
        Command::List => wiring::list().await,
        Command::Save { lab } => wiring::save(&lab).await,
        Command::Exec { lab, ns, command } => wiring::exec(&lab, &ns, &command).await,
        Command::Check { topology, prefix } => check_cmd::check(&topology, &prefix),
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
