//! The `countersign` command line.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "countersign",
    version,
    about = "An approval inbox for actions proposed by AI agents",
    long_about = "An approval inbox for actions proposed by AI agents.\n\nWithout a command, \
                  `serve` runs. Storage is SQLite under --data-dir unless DATABASE_URL points \
                  at PostgreSQL (postgres://user:password@host:port/database)."
)]
pub struct Cli {
    /// Database URL: sqlite://PATH or postgres://... (default: SQLite file in the data dir).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the SQLite database and server-held keys; created on first run.
    #[arg(
        long,
        env = "COUNTERSIGN_DATA_DIR",
        default_value = "data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// The Ed25519 key file that signs audit checkpoints (default: audit-signing.key in the data
    /// dir; created on first use). Processes sharing one database must share this file.
    #[arg(long, env = "COUNTERSIGN_AUDIT_KEY_FILE", global = true)]
    pub audit_key_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Fill the database with a reproducible demo history from a simulated fleet of agents.
    Demo(DemoArgs),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage agents, their API tokens and webhook secrets.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Work with the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain over every event and check every signed checkpoint; name the
    /// first bad sequence number.
    Verify,
    /// Sign a checkpoint over the current head of the trail now.
    Checkpoint,
    /// Print the public key that verifies checkpoints and evidence bundles.
    PublicKey,
    /// Verify an evidence bundle (.tar.gz) offline: manifest signature, file hashes, every
    /// event's hash and links, snapshots against their hashes, checkpoint signatures.
    VerifyBundle {
        /// The bundle file downloaded from the audit page.
        file: PathBuf,
        /// The public key you trust (hex), e.g. from the audit page; without it the key inside
        /// the bundle is used and the report says so.
        #[arg(long)]
        public_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Register an agent; prints its first API token and its webhook secret (shown once).
    Add {
        /// Lower-case name, e.g. refund-bot.
        name: String,
        /// What the agent does, for reviewers.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Create another API token for an agent (shown once).
    Token {
        name: String,
        /// Revoke every earlier token of this agent (rotation).
        #[arg(long)]
        revoke_others: bool,
    },
    /// Revoke every API token of an agent, effective immediately.
    Revoke { name: String },
    /// Replace an agent's webhook signing secret (shown once).
    Secret { name: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input when it is not a terminal,
    /// otherwise prompted for (twice).
    Add(UserAddArgs),
}

#[derive(Debug, Args, Clone)]
pub struct UserAddArgs {
    /// The user's email address (their sign-in name).
    pub email: String,

    /// Display name (defaults to the part of the email before '@').
    #[arg(long)]
    pub name: Option<String>,

    /// Give the admin role (same as --role admin).
    #[arg(long)]
    pub admin: bool,

    /// Roles to give: reviewer, senior_reviewer, admin, auditor (repeatable).
    #[arg(long = "role", value_parser = ["reviewer", "senior_reviewer", "admin", "auditor"])]
    pub roles: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "COUNTERSIGN_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    /// Directory holding the built site (pkg/ with the WebAssembly bundle and CSS).
    #[arg(long, env = "COUNTERSIGN_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Send the session cookie without `Secure`, for plain-HTTP development on a loopback
    /// address only (refused for any other bind address).
    #[arg(long, env = "COUNTERSIGN_INSECURE_COOKIES")]
    pub insecure_cookies: bool,

    /// A reverse proxy whose X-Forwarded-For header is believed (repeatable, or comma-separated).
    #[arg(
        long = "trusted-proxy",
        env = "COUNTERSIGN_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Let agents' callback URLs reach private, loopback and link-local addresses (by default
    /// only public addresses are called, against server-side request forgery). For agents in
    /// the same private network.
    #[arg(long, env = "COUNTERSIGN_ALLOW_PRIVATE_CALLBACKS")]
    pub allow_private_callbacks: bool,

    /// Serve `GET /metrics` only to requests with `Authorization: Bearer TOKEN` (at least 16
    /// characters; give it through the environment, where other users' `ps` cannot read it).
    /// Unset, /metrics is open: keep it on an internal network.
    /// Checked when the server starts (`config::BearerToken`), never echoed.
    #[arg(long, env = "COUNTERSIGN_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Minutes of inactivity after which a session ends.
    #[arg(long, env = "COUNTERSIGN_IDLE_TIMEOUT_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub idle_timeout_minutes: u64,

    /// Hours after sign-in after which a session ends, however active.
    #[arg(long, env = "COUNTERSIGN_ABSOLUTE_TIMEOUT_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=168))]
    pub absolute_timeout_hours: u64,

    /// Keep audit events at least this many days (default: forever). Countersign never deletes
    /// them; older events are reported on the audit page so they can be archived.
    #[arg(long, env = "COUNTERSIGN_AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub audit_retention_days: Option<u32>,

    /// The address people reach this server at, for links in notifications
    /// (default: http://BIND).
    #[arg(long, env = "COUNTERSIGN_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Send email notifications through this SMTP server: smtp://host:port, or
    /// smtps://user:password@host:port (without it, notifications wait undelivered).
    #[arg(long, env = "COUNTERSIGN_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender address of email notifications.
    #[arg(
        long,
        env = "COUNTERSIGN_SMTP_FROM",
        default_value = "countersign@localhost"
    )]
    pub smtp_from: String,

    /// How often a person who chose digests gets one: this many minutes after the first item
    /// waiting for it.
    #[arg(long, env = "COUNTERSIGN_DIGEST_MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub digest_minutes: u64,

    /// Write a signed audit checkpoint after this many new events (or every 10 minutes).
    #[arg(long, env = "COUNTERSIGN_CHECKPOINT_EVERY_EVENTS", default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=10_000_000))]
    pub checkpoint_every_events: i64,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Seed for the simulation; the same seed gives the same history.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Days of history to simulate, ending now.
    #[arg(long, default_value_t = 42, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,

    /// Average action requests per day across the fleet.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub per_day: u32,

    /// Load even if the database already holds action requests (otherwise it is left alone).
    #[arg(long)]
    pub force: bool,
}

impl Cli {
    /// Parses the process arguments; no command means `serve` with its defaults.
    pub fn parse_with_default() -> Cli {
        let cli = Cli::parse();
        if cli.command.is_some() {
            return cli;
        }
        Cli::parse_from(std::env::args_os().chain(["serve".into()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_bind_address_is_a_clear_error() {
        let e = Cli::try_parse_from(["countersign", "serve", "--bind", "localhost:x"]).unwrap_err();
        assert!(e.to_string().contains("--bind"), "{e}");
    }
}
